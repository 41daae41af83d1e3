"""Sentence-level reranking: score candidate sentences, then order passages by their best one.

There is no cross-encoder offline, so each sentence is scored by four features (0..1 each):

* ``dense``: cosine similarity of sentence and question embeddings (the local embedder);
* ``coverage``: IDF-weighted share of the question's content terms found in the sentence;
* ``kind``: whether it holds what the question's form asks for (a date, a number, a name, a
  contrast, a definition, a source entry, the thesis, the byline);
* ``rank``: 1 / (1 + rank) of its passage in the fused retrieval ranking.

The weighted sum is the sentence score (0..1), plus ``QUOTE_BONUS`` when the sentence holds a
phrase the question quotes. Passages are then reranked by their best
sentence score, so the evidence shown is the evidence the answer uses.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from assistant.chunking import Passage
from assistant.config import Settings
from assistant.corpus import FRONT_MATTER, INTRODUCTION, Corpus, Span
from assistant.question import QuestionProfile
from assistant.retrieval import RetrievedPassage
from assistant.text import CONTRAST, terms

if TYPE_CHECKING:
    import numpy as np

    from assistant.index import LoadedIndex

# Feature weights of the sentence score, set by hand on the dev set's answerable questions.
WEIGHTS = {"dense": 0.5, "coverage": 0.3, "kind": 0.12, "rank": 0.08}
CANDIDATE_PASSAGES = 8  # sentences are drawn from this many top passages…
CANDIDATE_SENTENCES = 10  # …and from the sentences most similar to the question anywhere
QUOTE_BONUS = 0.2  # the sentence contains a phrase the question quotes ("tightened a year later")
MISSING_ARTIFACT_FACTOR = 0.8  # a sentence describing an absent table ("Table 1 shows…") says little

_YEAR_OR_DATE = re.compile(
    r"\b(1[89]\d\d|20\d\d|January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
# A quantity (years excluded: "how many" is not answered by "in 2019").
_NUMBER = re.compile(
    r"\b((?!(?:19|20)\d\d\b)\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty\S*|thirty\S*)\b",
    re.I,
)
_FOOTNOTE = re.compile(r"\(\d{1,2}\)")
_NAME = re.compile(r"(?<!^)\b[A-Z][a-z]+(?: [A-Z][a-z]+)+\b")


def defines(term: str, text: str) -> bool:
    """Whether ``text`` introduces or defines ``term``.

    That is: “term” in quotes, "called term", "known as term", or "term is a/means/refers to".
    """
    t = re.escape(term)
    pattern = (
        rf"[“\"]{t}[,.]?[”\"]|\b(called|known as|termed|dubbed) [“\"]?{t}|"
        rf"\b{t}[”\"]? ((is|are) (a|an|the)|means|refers to)\b"
    )
    return re.search(pattern, text, re.I) is not None


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate sentence and its score (0..1, higher is better)."""

    row: int
    passage: Passage
    span: Span
    score: float
    terms: frozenset[str]


class SentenceReranker:
    """Scores sentences and reranks passages for one loaded index. Thread-safe (no per-question state)."""

    def __init__(self, index: LoadedIndex, corpus: Corpus, settings: Settings) -> None:
        self.index = index
        self.corpus = corpus
        self.settings = settings
        rows = zip(index.sentence_ids, index.sentence_spans, strict=True)
        self.row_of = {(pid, span.start): i for i, (pid, span) in enumerate(rows)}

    @cached_property
    def sentence_terms(self) -> list[frozenset[str]]:
        return [frozenset(terms(self.corpus.text[s.start : s.end])) for s in self.index.sentence_spans]

    @cached_property
    def idf(self) -> dict[str, float]:
        df = Counter(t for ts in self.sentence_terms for t in ts)
        n = len(self.sentence_terms)
        return {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}

    @cached_property
    def thesis_paragraphs(self) -> tuple[int, int]:
        """(the introduction's last paragraph, the conclusion: the last paragraph citing a source)."""
        paragraphs = self.corpus.paragraphs
        intro = [p.number for p in paragraphs if p.section == INTRODUCTION] or [1]
        cited = [p.number for p in paragraphs if p.footnotes] or intro
        return intro[-1], cited[-1]

    @cached_property
    def author_section(self) -> str | None:
        """The section about the author, if the essay has one."""
        return next((s for s in self.corpus.sections if "author" in s.lower()), None)

    @cached_property
    def initialisms(self) -> frozenset[str]:
        """Lower-cased initials of the corpus's capitalised phrases.

        "apec" for "Asia-Pacific Economic Cooperation", so an acronym in a question is recognised.
        """
        phrases = re.findall(r"(?:[A-Z][\w’]*[\s-]+(?:(?:of|and|the|for)\s+)?){2,}", self.corpus.text)
        found = set()
        for phrase in phrases:
            words = [w for w in re.split(r"[\s-]+", phrase) if w and w[0].isupper()]
            found.add("".join(w[0] for w in words).lower())
        return frozenset(found)

    def _weight(self, term: str) -> float:
        return self.idf.get(term, math.log(len(self.sentence_terms) + 1))

    def coverage(self, wanted: set[str] | tuple[str, ...], have: frozenset[str]) -> float:
        """IDF-weighted share (0..1) of the ``wanted`` terms found in ``have``."""
        total = sum(self._weight(t) for t in wanted)
        return sum(self._weight(t) for t in wanted if t in have) / total if total else 0.0

    def _kind_match(self, question: QuestionProfile, passage: Passage, text: str) -> float:
        if question.wants_reference:
            # A bibliography entry, or an essay sentence whose footnote leads to one.
            return 1.0 if passage.kind == "reference" or _FOOTNOTE.search(text) else 0.0
        if passage.kind == "reference":
            return 0.0
        match question.kind:
            case "date":
                return 1.0 if _YEAR_OR_DATE.search(text) else 0.0
            case "number":
                return 1.0 if _NUMBER.search(text) else 0.0
            case "who":
                return 1.0 if _NAME.search(text) else 0.0
            case "compare":
                return 1.0 if CONTRAST.search(text) else 0.0
            case "definition":
                return 1.0 if question.subject and defines(question.subject, text) else 0.0
            case "summary":
                return 1.0 if passage.paragraph in self.thesis_paragraphs else 0.0
            case "author":
                return 1.0 if passage.section in (FRONT_MATTER, self.author_section) else 0.0
        return 0.5

    def _structural_passages(self, question: QuestionProfile) -> list[Passage]:
        """Passages a question's form points to, wherever retrieval ranked them.

        The thesis paragraphs for summary questions; the title/byline and the author section
        for author questions.
        """
        if question.kind not in ("summary", "author") or question.wants_reference:
            return []
        return [
            p for p in self.index.passages.values() if p.kind == "essay" and self._kind_match(question, p, "") == 1.0
        ]

    def score_sentences(
        self, question: QuestionProfile, query_vector: np.ndarray, retrieved: list[RetrievedPassage]
    ) -> list[ScoredSentence]:
        """Score the sentences of the top retrieved passages and the most similar sentences; best first."""
        import numpy as np

        passages = [r.passage for r in retrieved[:CANDIDATE_PASSAGES]]
        passages += self._structural_passages(question)
        rows = [(rank, self.row_of[(p.id, s.start)]) for rank, p in enumerate(passages) for s in p.sentences]
        similarities = self.index.sentence_vectors @ query_vector
        rows += [(len(passages), int(i)) for i in np.argsort(-similarities)[:CANDIDATE_SENTENCES]]
        seen, scored = set(), []
        q_terms = set(question.terms)
        for rank, row in rows:
            if row in seen:
                continue
            seen.add(row)
            passage = self.index.passages[self.index.sentence_ids[row]]
            if passage.kind == "reference" and not question.wants_reference:
                continue  # a bibliography entry is evidence only for questions about sources
            if passage.section == FRONT_MATTER and question.kind != "author":
                continue  # the title and byline answer only questions about the essay itself
            span = self.index.sentence_spans[row]
            text = self.corpus.text[span.start : span.end]
            features = {
                "dense": max(0.0, float(similarities[row])),
                "coverage": self.coverage(q_terms, self.sentence_terms[row]),
                "kind": self._kind_match(question, passage, text),
                "rank": 1.0 / (1 + rank),
            }
            score = sum(WEIGHTS[k] * v for k, v in features.items())
            if question.quoted and any(q in text.lower() for q in question.quoted):
                score += QUOTE_BONUS
            if any(artifact in text for artifact in self.corpus.missing_artifacts):
                score *= MISSING_ARTIFACT_FACTOR
            scored.append(ScoredSentence(row, passage, span, score, self.sentence_terms[row]))
        return sorted(scored, key=lambda s: -s.score)

    def rerank(self, retrieved: list[RetrievedPassage], scored: list[ScoredSentence]) -> list[RetrievedPassage]:
        """Reorder passages by their best sentence score, which becomes their ``score``.

        Passages with no scored sentence follow, in fusion order, with score 0. Passages of
        scored sentences that retrieval did not return are added.
        """
        best: dict[str, float] = {}
        for sentence in scored:
            best[sentence.passage.id] = max(best.get(sentence.passage.id, 0.0), sentence.score)
        by_id = {r.passage.id: r for r in retrieved}
        for pid in best.keys() - by_id.keys():
            by_id[pid] = RetrievedPassage(self.index.passages[pid], 0.0, None, None)
        ranked = sorted(by_id.values(), key=lambda r: -best.get(r.passage.id, -1.0))
        return [replace(r, fused=r.score, score=round(best.get(r.passage.id, 0.0), 6)) for r in ranked]
