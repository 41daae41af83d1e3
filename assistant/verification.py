"""Citation checking: every generated sentence must be supported by the passage it cites.

For each sentence the LLM wrote:

1. its ``[n]`` markers are resolved against the passages it was given (1..k); markers that do
   not resolve are removed (and recorded);
2. each resolved passage is scored against the sentence: for every sentence of the passage,
   ``support = 0.5 * cosine + 0.5 * coverage``, where ``cosine`` is the similarity of the two
   embeddings (local embedder, -1..1, floored at 0) and ``coverage`` the IDF-weighted share of
   the generated sentence's content terms found in the passage sentence (0..1); the passage's
   support is its best sentence's. A passage sentence that lacks a number, year or month of the
   generated sentence scores 0 (the usual way a small model is wrong);
3. the sentence is kept when at least one cited passage reaches ``Settings.support_threshold``
   (chosen on tests/data/dev.jsonl, see docs/llm.md); each supporting passage becomes a
   citation of the passage sentence that supports it best, quoted verbatim with its corpus
   offsets, so every final citation is as checkable as an extractive one.

Sentences with no resolving marker are dropped: an uncited claim never reaches the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from assistant.answering import Citation, ReferenceInfo
from assistant.config import Settings
from assistant.corpus import Span, footnotes_in

if TYPE_CHECKING:
    from assistant.chunking import Passage
    from assistant.embeddings import Embedder
    from assistant.reranking import SentenceReranker

SIMILARITY_WEIGHT = 0.5  # support = 0.5 * cosine + 0.5 * coverage (equal weights; not tuned)
_MONTHS = "january february march april may june july august september october november december".split()
_NUMBER = re.compile(r"\b\d[\d,.]*\b")


def _numbers(text: str) -> set[str]:
    """Digits and month names in ``text``, normalised ("2,000" -> "2000", "December" -> "december")."""
    found = {m.group(0).replace(",", "").rstrip(".") for m in _NUMBER.finditer(text)}
    found |= {w for w in re.findall(r"[a-z]+", text.lower()) if w in _MONTHS}
    return found


@dataclass(frozen=True)
class Support:
    """How well one passage supports one generated sentence.

    Attributes:
        marker: The passage's number in the prompt (1..k).
        passage_id: The passage.
        score: Support, 0..1 (0 when a number is missing from the passage).
        span: The passage sentence that supports it best (absolute corpus offsets).
        cosine: Embedding cosine similarity with that sentence, -1..1.
        coverage: IDF-weighted term coverage by that sentence, 0..1.
        missing_numbers: Numbers/months of the generated sentence that the passage's most similar
            sentence lacks.

    """

    marker: int
    passage_id: str
    score: float
    span: Span
    cosine: float
    coverage: float
    missing_numbers: tuple[str, ...] = ()


@dataclass
class SentenceCheck:
    """The verdict on one generated sentence.

    Attributes:
        text: The sentence without markers.
        markers: Passage numbers the LLM gave it.
        unresolved: Markers that name no given passage (removed).
        supports: One :class:`Support` per resolved marker.
        kept: Whether it reaches the final answer.
        reason: Why it was kept or dropped, in words.
        citation_numbers: Its final ``[n]`` numbers (empty when dropped).

    """

    text: str
    markers: tuple[int, ...]
    unresolved: tuple[int, ...]
    supports: list[Support]
    kept: bool
    reason: str
    citation_numbers: list[int] = field(default_factory=list)

    @property
    def support(self) -> float:
        """Best support among its cited passages, 0..1 (0 when none resolved)."""
        return max((s.score for s in self.supports), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "markers": list(self.markers),
            "unresolved_markers": list(self.unresolved),
            "support": round(self.support, 4),
            "kept": self.kept,
            "reason": self.reason,
            "citations": self.citation_numbers,
        }


@dataclass
class Verification:
    """The checked answer.

    Attributes:
        sentences: One check per generated sentence, in order.
        answer: The kept sentences, each followed by its renumbered ``[n]`` markers.
        citations: Final citations, ``n`` = 1..N in order of first use.
        citation_support: Support score of each final citation, by ``n``.
        threshold: The support threshold used.

    """

    sentences: list[SentenceCheck]
    answer: str
    citations: list[Citation]
    citation_support: dict[int, float]
    threshold: float

    @property
    def kept(self) -> list[SentenceCheck]:
        return [s for s in self.sentences if s.kept]

    def to_dict(self) -> dict[str, Any]:
        """The ``verified`` object of the JSON answer."""
        return {
            "threshold": self.threshold,
            "sentences_generated": len(self.sentences),
            "sentences_kept": len(self.kept),
            "sentences": [s.to_dict() for s in self.sentences],
            "citations": [
                {"n": n, "support": round(score, 4), "verified": True} for n, score in self.citation_support.items()
            ],
        }


class CitationChecker:
    """Checks generated sentences against the passages they cite (see the module docstring)."""

    def __init__(self, reranker: SentenceReranker, embedder: Embedder, settings: Settings) -> None:
        self.reranker = reranker  # its sentence terms, IDF and coverage are the lexical half of support
        self.index = reranker.index
        self.corpus = reranker.corpus
        self.embedder = embedder
        self.settings = settings

    def coverage(self, wanted: set[str], have: frozenset[str]) -> float:
        """IDF-weighted share (0..1) of the ``wanted`` terms found in ``have`` (0 when nothing is wanted)."""
        return self.reranker.coverage(wanted, have)

    def score(self, text: str, vector: Any, passage: Passage, marker: int) -> Support:
        """Support of ``passage`` for the generated sentence ``text`` (embedding ``vector``).

        The best passage sentence wins; a sentence lacking one of the numbers/months of ``text``
        scores 0 (so "banned in 2023" is not supported by a passage that says "December 2018"
        for the ban and "2023" for something else).
        """
        wanted = set(self.reranker.terms(text))
        numbers = _numbers(text)
        best: Support | None = None
        closest: Support | None = None  # best by similarity alone, to say which numbers it lacks
        for span in passage.sentences:
            row = self.reranker.row_of[(passage.id, span.start)]
            cosine = float(self.index.sentence_vectors[row] @ vector)
            coverage = self.coverage(wanted, self.reranker.sentence_terms[row])
            raw = SIMILARITY_WEIGHT * max(0.0, cosine) + (1 - SIMILARITY_WEIGHT) * coverage
            missing = tuple(sorted(numbers - _numbers(self.corpus.text[span.start : span.end])))
            support = Support(marker, passage.id, 0.0 if missing else raw, span, cosine, coverage, missing)
            if best is None or support.score > best.score:
                best = support
            if closest is None or raw > closest.cosine * SIMILARITY_WEIGHT + closest.coverage * (1 - SIMILARITY_WEIGHT):
                closest = support
        assert best is not None and closest is not None  # every passage has at least one sentence
        # Report the numbers the most similar sentence lacks, even when another one scored higher.
        return replace(best, missing_numbers=closest.missing_numbers) if best.score > 0 else closest

    def _citation(self, n: int, passage: Passage, span: Span) -> Citation:
        quote = self.corpus.text[span.start : span.end]
        numbers = passage.refs if passage.kind == "reference" else footnotes_in(quote) or passage.refs
        refs = tuple(
            ReferenceInfo(num, self.corpus.references[num].text, self.corpus.references[num].url)
            for num in numbers
            if num in self.corpus.references
        )
        return Citation(n, passage.id, passage.section, quote, span.start, span.end, self.corpus.display_path, refs)

    def check(self, sentences: list[tuple[str, tuple[int, ...]]], passages: list[Passage]) -> Verification:
        """Check generated ``(text, markers)`` pairs against ``passages`` (marker n = passages[n-1]).

        Returns the per-sentence verdicts and the answer made of the kept sentences, with
        citations renumbered 1..N in order of first use (one per distinct quoted sentence).
        """
        threshold = self.settings.support_threshold
        vectors = self.embedder.encode([text for text, _ in sentences]) if sentences else []
        checks, citations, support_of = [], [], {}
        number_of: dict[tuple[str, int], int] = {}
        parts = []
        for (text, markers), vector in zip(sentences, vectors, strict=True):
            resolved = tuple(m for m in markers if 1 <= m <= len(passages))
            unresolved = tuple(m for m in markers if m not in resolved)
            supports = [self.score(text, vector, passages[m - 1], m) for m in resolved]
            passing = [s for s in supports if s.score >= threshold]
            check = SentenceCheck(text, markers, unresolved, supports, bool(passing), "")
            if not resolved:
                check.reason = "no citation to a given passage" + (
                    f" (markers {list(unresolved)} do not resolve)" if unresolved else ""
                )
            elif not passing:
                best = max(supports, key=lambda s: s.score)
                check.reason = f"cited passage support {best.score:.2f} < {threshold:.2f}" + (
                    f"; its closest sentence does not mention {', '.join(best.missing_numbers)}"
                    if best.missing_numbers
                    else ""
                )
            else:
                for s in sorted(passing, key=lambda s: -s.score):
                    key = (s.passage_id, s.span.start)
                    if key not in number_of:
                        number_of[key] = len(number_of) + 1
                        citations.append(self._citation(number_of[key], self.index.passages[s.passage_id], s.span))
                        support_of[number_of[key]] = s.score
                    if number_of[key] not in check.citation_numbers:
                        check.citation_numbers.append(number_of[key])
                check.reason = f"supported ({check.support:.2f} >= {threshold:.2f})" + (
                    f"; removed markers {list(unresolved)}" if unresolved else ""
                )
                body = text if text[-1] in ".!?" else text + "."
                parts.append(f"{body} " + "".join(f"[{n}]" for n in check.citation_numbers))
            checks.append(check)
        return Verification(checks, " ".join(parts), citations, support_of, threshold)
