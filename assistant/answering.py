"""The extractive answerer: the essay's own sentences, each cited, or a plain refusal.

Every sentence of the retrieved passages is scored against the question by four features:
embedding similarity (the local embedder), IDF-weighted coverage of the question's terms,
a match with the kind of answer wanted (a date, a number, a name, a source, the thesis) and
its passage's retrieval rank. The best sentence is taken; others join it only when they
cover question terms it misses or continue it ("This action…"). If even the best sentence
scores below ``Settings.refusal_threshold``, the answer says the essay does not say.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from assistant.chunking import Passage
from assistant.config import REPO_ROOT, Settings
from assistant.corpus import FRONT_MATTER, INTRODUCTION, Corpus, Span, footnotes_in
from assistant.question import QuestionProfile
from assistant.retrieval import RetrievedPassage
from assistant.text import stem, strip_footnotes, terms

if TYPE_CHECKING:
    import numpy as np

    from assistant.index import LoadedIndex

REFUSAL = "The essay does not say."
REFUSAL_NOTE = (
    " I answer only from the essay “Bonding Over Bans” (Ian Wong) and its references; "
    "try asking about U.S. and Japanese technology controls, China, or the essay’s recommendations."
)
# Feature weights of the sentence score (0..1), set by hand on the dev set's answerable questions.
WEIGHTS = {"dense": 0.5, "coverage": 0.3, "kind": 0.12, "rank": 0.08}
CANDIDATE_PASSAGES = 8  # sentences are drawn from this many top passages…
CANDIDATE_SENTENCES = 10  # …and from the sentences most similar to the question anywhere
ANSWER_CHARS = 600  # stop adding sentences past this many characters (hard cap in the issue: 900)

_YEAR_OR_DATE = re.compile(
    r"\b(1[89]\d\d|20\d\d|January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
_NUMBER = re.compile(
    r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty\S*|thirty\S*)\b", re.I
)
_NAME = re.compile(r"(?<!^)\b[A-Z][a-z]+(?: [A-Z][a-z]+)+\b")
# A sentence that points back at the one before it ("This action…", "Crucially, this policy…").
_CONTINUATION = re.compile(r"^(?:\w+, )?(?:[Tt]his|[Tt]hese|[Tt]hat|[Tt]hose|[Ss]uch|It|He|She|They|The latter)\b")
# A sentence that only makes sense after the one before it ("Instead, …", "Yet …").
_CONNECTIVE = re.compile(r"^(Instead|However|Yet|But|Still|Rather|Therefore|Thus|Hence|As such|Indeed)\b")
# A sentence that draws a consequence from the one before it ("As such, …", "Therefore, …").
_CONSEQUENCE = re.compile(r"^(As such|Therefore|Thus|Hence|Consequently|As a result|For this reason|So)\b")


@dataclass(frozen=True)
class ReferenceInfo:
    """An essay reference attached to a citation."""

    number: int
    text: str
    url: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "text": self.text, "url": self.url}


@dataclass(frozen=True)
class Citation:
    """One cited sentence: ``quote == corpus_text[start:end]`` and lies inside the passage."""

    n: int
    passage_id: str
    section: str
    quote: str
    start: int
    end: int
    source: str
    references: tuple[ReferenceInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "passage_id": self.passage_id,
            "section": self.section,
            "quote": self.quote,
            "start": self.start,
            "end": self.end,
            "source": self.source,
            "references": [r.to_dict() for r in self.references],
        }


@dataclass
class Answer:
    """A cited answer (or a refusal) with the evidence it came from.

    Attributes:
        question: The question as answered (whitespace-normalised).
        answer: Answer text; each sentence ends with its ``[n]`` citation marker.
        refused: True when the essay does not answer the question (no citations then).
        citations: One per marker, ``n`` = 1..N in order of first use.
        passages: The retrieved passages, best first (``top_k`` of them).
        backend: Which answerer wrote it: ``"extractive"``, or the LLM backend (``"openai"``,
            ``"ollama"``) when its checked answer is shown.
        verified: With an LLM backend, the citation check of what it wrote
            (:meth:`assistant.verification.Verification.to_dict`); ``None`` otherwise.
        fallback: Why the extractive answer was shown although an LLM is configured, if it was.
        timings_ms: ``retrieve``, ``answer`` and ``total`` wall times in milliseconds.
        id: The caller's id for the question (batch mode), if any.
        standalone_question: The question as retrieved for, after a follow-up was made
            standalone from the conversation (equal to ``question`` otherwise).

    """

    question: str
    answer: str
    refused: bool
    citations: list[Citation]
    passages: list[RetrievedPassage]
    backend: str = "extractive"
    timings_ms: dict[str, float] = field(default_factory=dict)
    id: str | None = None
    standalone_question: str = ""
    verified: dict[str, Any] | None = None
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form documented in the README (``id`` only when set)."""
        data: dict[str, Any] = {} if self.id is None else {"id": self.id}
        data |= {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [
                {
                    "passage_id": r.passage.id,
                    "kind": r.passage.kind,
                    "section": r.passage.section,
                    "text": r.passage.text,
                    "score": round(r.score, 6),
                }
                for r in self.passages
            ],
            "backend": self.backend,
            **({"verified": self.verified} if self.verified is not None else {}),
            **({"fallback": self.fallback} if self.fallback is not None else {}),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
        return data


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate sentence and its score (0..1, higher is better)."""

    row: int
    passage: Passage
    span: Span
    score: float
    terms: frozenset[str]


class ExtractiveAnswerer:
    """Composes answers from corpus sentences. Thread-safe: it holds no per-question state."""

    def __init__(self, index: LoadedIndex, corpus: Corpus, settings: Settings) -> None:
        self.index = index
        self.corpus = corpus
        self.settings = settings
        rows = zip(index.sentence_ids, index.sentence_spans, strict=True)
        self._row_of = {(pid, span.start): i for i, (pid, span) in enumerate(rows)}

    @cached_property
    def _sentence_terms(self) -> list[frozenset[str]]:
        return [frozenset(terms(self.corpus.text[s.start : s.end])) for s in self.index.sentence_spans]

    @cached_property
    def _idf(self) -> dict[str, float]:
        df = Counter(t for ts in self._sentence_terms for t in ts)
        n = len(self._sentence_terms)
        return {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}

    @cached_property
    def _thesis_paragraphs(self) -> tuple[int, int]:
        """(the introduction's last paragraph, the conclusion: the last paragraph citing a source)."""
        paragraphs = self.corpus.paragraphs
        intro = [p.number for p in paragraphs if p.section == INTRODUCTION] or [1]
        cited = [p.number for p in paragraphs if p.footnotes] or intro
        return intro[-1], cited[-1]

    @cached_property
    def _author_section(self) -> str | None:
        """The section about the author, if the essay has one."""
        return next((s for s in self.corpus.sections if "author" in s.lower()), None)

    @cached_property
    def source(self) -> str:
        """The corpus path as shown in citations (relative to the repo when inside it)."""
        path = self.corpus.path.resolve()
        return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)

    def _weight(self, term: str) -> float:
        return self._idf.get(term, math.log(len(self._sentence_terms) + 1))

    def coverage(self, wanted: set[str] | tuple[str, ...], have: frozenset[str]) -> float:
        """IDF-weighted share (0..1) of the ``wanted`` terms found in ``have``."""
        total = sum(self._weight(t) for t in wanted)
        return sum(self._weight(t) for t in wanted if t in have) / total if total else 0.0

    def _kind_match(self, question: QuestionProfile, passage: Passage, text: str) -> float:
        if question.wants_reference:
            return 1.0 if passage.kind == "reference" else 0.0
        if passage.kind == "reference":
            return 0.0
        match question.kind:
            case "date":
                return 1.0 if _YEAR_OR_DATE.search(text) else 0.0
            case "number":
                return 1.0 if _NUMBER.search(text) else 0.0
            case "who":
                return 1.0 if _NAME.search(text) else 0.0
            case "summary":
                return 1.0 if passage.paragraph in self._thesis_paragraphs else 0.0
            case "author":
                return 1.0 if passage.section in (FRONT_MATTER, self._author_section) else 0.0
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
        rows = [(rank, self._row_of[(p.id, s.start)]) for rank, p in enumerate(passages) for s in p.sentences]
        similarities = self.index.sentence_vectors @ query_vector
        rows += [(len(passages), int(i)) for i in np.argsort(-similarities)[:CANDIDATE_SENTENCES]]
        seen, scored = set(), []
        q_terms = set(question.terms)
        for rank, row in rows:
            if row in seen:
                continue
            seen.add(row)
            passage = self.index.passages[self.index.sentence_ids[row]]
            span = self.index.sentence_spans[row]
            text = self.corpus.text[span.start : span.end]
            features = {
                "dense": max(0.0, float(similarities[row])),
                "coverage": self.coverage(q_terms, self._sentence_terms[row]),
                "kind": self._kind_match(question, passage, text),
                "rank": 1.0 / (1 + rank),
            }
            score = sum(WEIGHTS[k] * v for k, v in features.items())
            if any(artifact in text for artifact in self.corpus.missing_artifacts):
                score *= 0.8  # it describes something ("Table 1 shows…") the text does not contain
            scored.append(ScoredSentence(row, passage, span, score, self._sentence_terms[row]))
        return sorted(scored, key=lambda s: -s.score)

    def _neighbour(self, sentence: ScoredSentence, step: int, *, same_paragraph: bool = True) -> ScoredSentence | None:
        """The essay sentence ``step`` places after (or before) ``sentence``.

        It must be in the same paragraph (with ``same_paragraph=False``: the same section).
        """
        row = sentence.row + step
        if not 0 <= row < len(self.index.sentence_ids):
            return None
        passage = self.index.passages[self.index.sentence_ids[row]]
        if passage.kind != "essay" or passage.section != sentence.passage.section:
            return None
        if same_paragraph and passage.paragraph != sentence.passage.paragraph:
            return None
        return ScoredSentence(row, passage, self.index.sentence_spans[row], 0.0, self._sentence_terms[row])

    def _text(self, sentence: ScoredSentence) -> str:
        return self.corpus.text[sentence.span.start : sentence.span.end]

    def _thesis_sentences(self, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """The thesis and the conclusion's topic sentence.

        The thesis is the introduction's closing sentence, with the one before it when it
        opens with a connective such as "Instead,".
        """
        intro, conclusion = self._thesis_paragraphs

        def in_paragraph(number: int) -> list[ScoredSentence]:
            found = (s for s in scored if s.passage.kind == "essay" and s.passage.paragraph == number)
            return sorted(found, key=lambda s: s.span.start)

        thesis = in_paragraph(intro)[-1:]
        if thesis and _CONNECTIVE.match(self._text(thesis[0])) and (before := self._neighbour(thesis[0], -1)):
            thesis.insert(0, before)
        return thesis + in_paragraph(conclusion)[:1]

    def _structural(self, question: QuestionProfile, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """Sentences the question's form calls for, whatever their own score.

        * summary: the thesis and the conclusion's topic sentence;
        * author: the byline and the first sentence of the author section;
        * why, when the best sentence restates the question: the explanation around it, the
          sentence before a consequence ("As such, …") or up to two after a claim;
        * otherwise, the next sentence when it continues the best one ("This action…");
        * source questions answered by an essay sentence: the references that sentence cites.
        """
        best = scored[0]
        if question.kind == "summary":
            return self._thesis_sentences(scored) or [best]
        if question.kind == "author":
            # The byline (last sentence of paragraph 0), then the best sentence about the author.
            byline = sorted((s for s in scored if s.passage.section == FRONT_MATTER), key=lambda s: s.span.start)
            about = sorted((s for s in scored if s.passage.section == self._author_section), key=lambda s: s.span.start)
            return byline[-1:] + about[:1] or [best]
        chosen = [best]
        text = self.corpus.text[best.span.start : best.span.end]
        if question.kind == "why" and self.coverage(question.terms, best.terms) >= 0.5:
            if _CONSEQUENCE.match(text) and (before := self._neighbour(best, -1, same_paragraph=False)):
                chosen.insert(0, before)
            else:
                after = self._neighbour(best, 1)
                while after and len(chosen) < 3:
                    chosen.append(after)
                    after = self._neighbour(after, 1) if len(text) < 100 else None
        elif (after := self._neighbour(best, 1)) and _CONTINUATION.match(self._text(after)):
            chosen.append(after)
        if question.wants_reference and best.passage.kind == "essay":
            for number in footnotes_in(text) or best.passage.refs:
                rows = [i for i, pid in enumerate(self.index.sentence_ids) if pid == f"ref-{number:02d}"]
                for row in rows:
                    passage = self.index.passages[self.index.sentence_ids[row]]
                    span = self.index.sentence_spans[row]
                    chosen.append(ScoredSentence(row, passage, span, 0.0, self._sentence_terms[row]))
        return chosen

    def select(self, question: QuestionProfile, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """Pick the answer's sentences from ``scored`` (best first); returns them in reading order.

        After the sentences the question's form calls for, a candidate joins when it scores
        at least 0.8 of the best and covers a fifth (IDF-weighted) of the question terms still
        uncovered, or when it continues a chosen sentence ("This action…"), or, for source
        questions, when it is another matching reference entry.
        """
        best = scored[0]
        chosen = self._structural(question, scored)
        if question.kind in ("summary", "author"):
            return sorted(chosen, key=lambda s: s.span.start)
        rows = {c.row for c in chosen}
        q_terms = set(question.terms)
        covered = set().union(*(c.terms for c in chosen)) & q_terms
        chars = sum(c.span.end - c.span.start for c in chosen)
        for candidate in scored[1:]:
            if len(chosen) >= self.settings.max_answer_sentences or chars >= ANSWER_CHARS:
                break
            if candidate.row in rows:
                continue
            text = self.corpus.text[candidate.span.start : candidate.span.end]
            continues = any(
                candidate.row == c.row + 1 and candidate.passage.paragraph == c.passage.paragraph for c in chosen
            ) and _CONTINUATION.match(text)
            new = self.coverage(q_terms - covered, candidate.terms) if q_terms - covered else 0.0
            if candidate.passage.kind == "reference" and not question.wants_reference:
                continue  # a bibliography entry answers only questions about sources
            both_sources = question.wants_reference and candidate.passage.kind == best.passage.kind == "reference"
            if (
                (candidate.score >= 0.8 * best.score and new >= 0.2)
                or (continues and candidate.score >= 0.6 * best.score)
                or (both_sources and candidate.score >= 0.9 * best.score)
            ):
                chosen.append(candidate)
                rows.add(candidate.row)
                covered |= candidate.terms & q_terms
                chars += len(text)
        return sorted(chosen, key=lambda s: (s.passage.kind == "reference", s.span.start))

    def answerability(self, question: QuestionProfile, scored: list[ScoredSentence]) -> float:
        """How well the essay answers the question, 0..1.

        The best sentence's score, times 0.75 for each capitalised name or number of the
        question that the essay never uses.
        """
        if not scored:
            return 0.0
        vocabulary = self._idf
        unknown = [n for n in question.names if stem(n) not in vocabulary]
        return scored[0].score * (0.75 ** len(unknown))

    def _citation(self, n: int, sentence: ScoredSentence) -> Citation:
        """Cite ``sentence``; its references are its own footnotes, else its passage's."""
        quote = self._text(sentence)
        numbers = (
            sentence.passage.refs
            if sentence.passage.kind == "reference"
            else footnotes_in(quote) or sentence.passage.refs
        )
        refs = tuple(
            ReferenceInfo(num, self.corpus.references[num].text, self.corpus.references[num].url)
            for num in numbers
            if num in self.corpus.references
        )
        return Citation(
            n=n,
            passage_id=sentence.passage.id,
            section=sentence.passage.section,
            quote=quote,
            start=sentence.span.start,
            end=sentence.span.end,
            source=self.source,
            references=refs,
        )

    def missing_artifact(self, question: QuestionProfile) -> str | None:
        """A table or figure the question asks about that the essay mentions but does not contain."""
        return next((a for a in self.corpus.missing_artifacts if a.lower() in question.text.lower()), None)

    def answer(
        self, question: QuestionProfile, query_vector: np.ndarray, retrieved: list[RetrievedPassage]
    ) -> tuple[str, list[Citation]]:
        """Return ``(answer_text, citations)``; no citations means the answer is a refusal."""
        if artifact := self.missing_artifact(question):
            return (
                f"{REFUSAL} It refers to {artifact}, but {artifact} itself is not part of the essay’s text.",
                [],
            )
        scored = self.score_sentences(question, query_vector, retrieved)
        # Questions about the essay's argument or author are answered from its structure.
        structural = question.kind in ("summary", "author")
        if not structural and self.answerability(question, scored) < self.settings.refusal_threshold:
            return REFUSAL + REFUSAL_NOTE, []
        parts, citations = [], []
        for n, sentence in enumerate(self.select(question, scored), start=1):
            citation = self._citation(n, sentence)
            citations.append(citation)
            parts.append(f"{strip_footnotes(citation.quote)} [{n}]")
        return " ".join(parts), citations
