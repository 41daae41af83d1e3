"""Hybrid retrieval: dense + BM25 + best-sentence similarity, merged by reciprocal-rank fusion.

Dense search runs in Chroma (cosine space); BM25 (rank-bm25, Okapi) and the best-sentence
ranking run in memory.

Questions about the essay's sources are routed to the bibliography: the reference passages
cited by the best essay passages, and the best-matching reference entries, join the ranking.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from assistant.config import Settings
from assistant.question import QuestionProfile
from assistant.text import terms
from assistant.types import RetrievedPassage

if TYPE_CHECKING:
    import numpy as np

    from assistant.index import LoadedIndex


class HybridRetriever:
    """Ranks passages of a :class:`~assistant.index.LoadedIndex` for a question.

    Args:
        index: The loaded index.
        settings: Settings (``candidate_k``, ``rrf_k``).
        text_terms: How passage text becomes BM25 terms; default :func:`assistant.text.terms`
            (the answerer passes the lexicon's, so "Japanese" in a passage meets "Japan").

    """

    def __init__(self, index: LoadedIndex, settings: Settings, text_terms: Callable[[str], list[str]] = terms) -> None:
        self.index = index
        self.settings = settings
        self.text_terms = text_terms
        self._ids = list(index.passages)

    @cached_property
    def _bm25(self):
        from rank_bm25 import BM25Okapi

        return BM25Okapi([self.text_terms(p.text) or ["_"] for p in self.index.passages.values()])

    def _dense(self, query_vector: np.ndarray, k: int) -> dict[str, float]:
        hits = self.index.store.similarity_search_by_vector_with_relevance_scores(query_vector.tolist(), k=k)
        # Chroma's cosine space returns distance = 1 - cosine similarity.
        return {doc.id: 1.0 - distance for doc, distance in hits}

    def _sentence_dense(self, query_vector: np.ndarray, k: int) -> dict[str, float]:
        """Passages ranked by their best sentence's cosine similarity to the question.

        Vectorised (:meth:`~assistant.index.table.SentenceTable.best_by_passage`, one
        ``maximum.reduceat``): the Python loop it replaces grew with the corpus (9 ms a question
        at 10x the essay on a busy CPU).
        """
        import numpy as np

        sentences = self.index.sentences
        if not len(sentences):
            return {}
        ids, best = sentences.best_by_passage(sentences.vectors @ query_vector)
        top = np.argsort(-best, kind="stable")[:k]  # stable: ties keep corpus order, as before
        return {ids[i]: float(best[i]) for i in top}

    @cached_property
    def _postings(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each term -> (indices of the passages that have it, its frequency in each), from rank-bm25's counts."""
        import numpy as np

        found: dict[str, tuple[list[int], list[int]]] = {}
        for i, frequencies in enumerate(self._bm25.doc_freqs):
            for term, frequency in frequencies.items():
                docs, counts = found.setdefault(term, ([], []))
                docs.append(i)
                counts.append(frequency)
        return {term: (np.array(docs), np.array(counts)) for term, (docs, counts) in found.items()}

    def bm25_scores(self, query: list[str]) -> np.ndarray:
        """rank-bm25's ``BM25Okapi.get_scores(query)``, equal to the last bit: shape ``(n_passages,)``.

        The same Okapi formula with the library's idf, ``k1``, ``b`` and lengths, in the same order of
        operations, but each query term touches only the passages that contain it (a passage without
        the term adds exactly 0 there). ``get_scores`` builds a Python list over every passage per
        term, which grows with the corpus (3.7 ms a question at 10x the essay, about 37 ms at 100x).
        """
        import numpy as np

        bm25 = self._bm25
        scores = np.zeros(bm25.corpus_size)
        lengths = self._lengths
        for term in query:
            if (posting := self._postings.get(term)) is None:
                continue
            docs, frequency = posting
            scores[docs] += (bm25.idf.get(term) or 0) * (
                frequency * (bm25.k1 + 1) / (frequency + bm25.k1 * (1 - bm25.b + bm25.b * lengths[docs] / bm25.avgdl))
            )
        return scores

    @cached_property
    def _lengths(self) -> np.ndarray:
        import numpy as np

        return np.array(self._bm25.doc_len)

    def _lexical(self, question: QuestionProfile, k: int) -> dict[str, float]:
        import numpy as np

        scores = self.bm25_scores(list(question.terms) or ["_"])
        best = np.argsort(-scores, kind="stable")[:k]  # stable: ties keep corpus order, as sorted() did
        return {self._ids[i]: float(scores[i]) for i in best if scores[i] > 0}

    def retrieve(
        self, question: QuestionProfile, query_vector: np.ndarray, k: int | None = None
    ) -> list[RetrievedPassage]:
        """Up to ``k`` passages (default ``settings.candidate_k``), best first by ``fused_score`` (not yet reranked)."""
        k = k or self.settings.candidate_k
        rrf = self.settings.rrf_k
        dense = self._dense(query_vector, self.settings.candidate_k)
        lexical = self._lexical(question, self.settings.candidate_k)
        sentence = self._sentence_dense(query_vector, self.settings.candidate_k)
        fused: dict[str, float] = {}
        for ranking in (dense, lexical, sentence):
            for rank, pid in enumerate(sorted(ranking, key=lambda p: -ranking[p])):
                fused[pid] = fused.get(pid, 0.0) + 1.0 / (rrf + rank + 1)
        if question.wants_reference:
            self._route_to_references(fused, dense, lexical)
        ranked = sorted(fused, key=lambda p: -fused[p])[:k]
        return [
            RetrievedPassage(
                self.index.passages[pid], fused_score=fused[pid], dense=dense.get(pid), bm25=lexical.get(pid)
            )
            for pid in ranked
        ]

    def _route_to_references(self, fused: dict[str, float], dense: dict[str, float], lexical: dict[str, float]) -> None:
        """Lift reference entries: those cited by the top essay passages, and those matching best."""
        top = 1.0 / (self.settings.rrf_k + 1)
        essay = [p for p in sorted(fused, key=lambda p: -fused[p]) if self.index.passages[p].kind == "essay"][:3]
        for rank, pid in enumerate(essay):
            for number in self.index.passages[pid].refs:
                if (entry := self.index.sentences.reference_passage(number)) is not None:
                    fused[entry.id] = fused.get(entry.id, 0.0) + top / (rank + 2)
        for ranking in (dense, lexical):
            refs = [p for p in sorted(ranking, key=lambda p: -ranking[p]) if self.index.passages[p].kind == "reference"]
            for rank, pid in enumerate(refs[:3]):
                fused[pid] = fused.get(pid, 0.0) + top / (rank + 1)
