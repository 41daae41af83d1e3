"""The data types the stages pass to each other, and the names of their kinds and states.

One home for them, so that a stage depends on the shapes it reads rather than on the stage that
made them (the citation checker reads a ``Citation`` without importing the extractive answerer).
The stages turn corpus spans into passages, retrieved passages, scored sentences, a draft and
an answer with its citations. Every offset is a character offset into the corpus text. This
module imports nothing from the package and nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

# --- kinds and states ----------------------------------------------------------------------------

# What a question asks for (assistant.question.profile; the first pattern that matches wins, else "fact").
QuestionKind = Literal[
    "author",  # who wrote the essay, or its title
    "summary",
    "compare",
    "topic",  # what the essay says about X
    "recommendation",  # what someone should do
    "why",
    "timeline",  # events in date order
    "date",
    "number",
    "where",
    "who",
    "definition",  # "What is X?"
    "fact",  # any other question
]
# A passage of the essay body, or one entry of its reference list.
PassageKind = Literal["essay", "reference"]
# How a question leans on the conversation (assistant.conversation.Resolution.intent).
Intent = Literal["new", "followup", "why", "more", "shorter"]
# How long an answer may run: the key sentence only, the default, or twice the default budget.
Length = Literal["short", "normal", "long"]
LENGTHS: tuple[Length, ...] = get_args(Length)
# Who writes the answer: the extractive answerer, or an LLM backend (Settings.llm).
Backend = Literal["extractive", "openai", "ollama"]
# How the LLM is asked to reply (assistant.llm.FORMATS): a JSON schema, JSON mode with a schema, or cited text.
ReplyFormat = Literal["json_schema", "json_object_schema", "text"]
# Whether the index on disk matches the corpus, model and settings (assistant.index.manifest.IndexStatus).
IndexState = Literal["fresh", "stale", "missing"]
# A question about the document's structure (assistant.structure.classify).
StructureQuestion = Literal["reference_count", "sections", "language", "uncited"]
# A ``(start, end)`` pair of corpus offsets, as conversation turns and follow-up requests keep a quoted sentence.
Offsets = tuple[int, int]


# --- the corpus and its passages -----------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A character range ``[start, end)`` of the corpus text."""

    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of the corpus.

    Attributes:
        id: ``essay-PP-C`` (paragraph PP, chunk C) or ``ref-NN``.
        kind: ``"essay"`` or ``"reference"``.
        section: Section heading (``"References"`` for reference passages).
        paragraph: 1-based body paragraph number (the reference number for references).
        start, end: Character offsets into the corpus text; ``text == corpus.text[start:end]``.
        text: The passage text, verbatim.
        refs: Reference numbers it cites (its own number for a reference passage).
        sentences: Sentence spans inside it (absolute corpus offsets).

    """

    id: str
    kind: PassageKind
    section: str
    paragraph: int
    start: int
    end: int
    text: str
    refs: tuple[int, ...]
    sentences: tuple[Span, ...]

    def metadata(self) -> dict[str, str | int]:
        """Flat metadata for the vector store (lists joined as ``"3,4"``)."""
        return {
            "kind": self.kind,
            "section": self.section,
            "paragraph": self.paragraph,
            "start": self.start,
            "end": self.end,
            "refs": ",".join(map(str, self.refs)),
        }


# --- retrieval and reranking ---------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievedPassage:
    """One ranked passage.

    Attributes:
        passage: The passage.
        fused_score: Reciprocal-rank-fusion score of the retrievers, higher is better: at most
            ``3 / (rrf_k + 1)`` from the three rankings plus source routing. 0 for a passage the
            reranker added (a scored sentence's passage that retrieval did not return); ``None``
            for one added only because an answer cites it (see :meth:`assistant.api.Assistant.answer`).
        dense: Cosine similarity of passage and question embeddings, -1..1 (``None`` if the
            dense retriever did not rank it among its candidates).
        bm25: BM25 (Okapi) score, >= 0 (``None`` if BM25 did not rank it).
        rerank_score: The reranker's score, 0..1: its best sentence's evidence probability (the
            best of all for a passage the answer cites); ``None`` before reranking.

    """

    passage: Passage
    fused_score: float | None
    dense: float | None
    bm25: float | None
    rerank_score: float | None = None


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate sentence and its score (0..1: the probability that it is evidence for the question).

    Attributes:
        row: Its row in the index's sentence table.
        passage: The passage it belongs to.
        span: Its corpus offsets.
        score: Evidence probability, 0..1.
        terms: Its stemmed content terms (with its section heading's).
        features: The reranker's feature row it was scored from (``None`` for a sentence added
            without scoring, e.g. a neighbour that ranks with its anchor).

    """

    row: int
    passage: Passage
    span: Span
    score: float
    terms: frozenset[str]
    features: dict[str, float] | None = None


# --- answers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceInfo:
    """An essay reference attached to a citation.

    Attributes:
        number: The entry's number in the reference list (the ``(n)`` footnote marker).
        text: The entry as the essay writes it (without its ``(n)``).
        url: Its first URL, or ``None``.

    """

    number: int
    text: str
    url: str | None

    def to_dict(self) -> dict[str, Any]:
        """``{"number", "text", "url"}`` (``url`` may be ``None``)."""
        return {"number": self.number, "text": self.text, "url": self.url}


@dataclass(frozen=True)
class Citation:
    """One cited sentence: ``quote == corpus_text[start:end]`` and lies inside the passage.

    Attributes:
        n: Its marker number in the answer, 1..N in order of first use.
        passage_id: The :attr:`Passage.id` it is quoted from.
        section: That passage's section heading.
        quote: The sentence, verbatim (footnote markers included).
        start, end: Its character offsets into the corpus text.
        source: The corpus file, relative to the repository when inside it.
        references: The essay references behind it: the sentence's footnotes (for a checked LLM
            citation, its passage's when the sentence has none; for a reference entry, itself).

    """

    n: int
    passage_id: str
    section: str
    quote: str
    start: int
    end: int
    source: str
    references: tuple[ReferenceInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Its fields as JSON, ``references`` as a list of :meth:`ReferenceInfo.to_dict`."""
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


@dataclass(frozen=True)
class Draft:
    """An answer before timing and passages are attached.

    Attributes:
        text: Answer text with ``[n]`` markers (or the refusal).
        citations: Citations in marker order; empty for a refusal.
        answerability: 0..1; compared with the refusal threshold.
        sentences: The cited sentences, in marker order.
        refused: The essay does not answer the question (any sentences are only related).

    """

    text: str
    citations: list[Citation]
    answerability: float
    sentences: list[ScoredSentence]
    refused: bool = False


@dataclass
class Answer:
    """A cited answer (or a refusal) with the evidence it came from.

    Attributes:
        question: The question as answered (whitespace-normalised).
        answer: Answer text; each sentence ends with its ``[n]`` citation marker.
        refused: True when the essay does not answer the question; it may still quote related
            sentences, under a plain statement of what is missing.
        citations: One per marker, ``n`` = 1..N in order of first use.
        passages: The retrieved passages after reranking, best first (``top_k`` of them).
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
    backend: Backend = "extractive"
    timings_ms: dict[str, float] = field(default_factory=dict)
    id: str | None = None
    standalone_question: str = ""
    answerability: float | None = None
    verified: dict[str, Any] | None = None
    fallback: str | None = None

    @property
    def _is_followup(self) -> bool:
        return bool(self.standalone_question) and self.standalone_question != self.question

    def to_dict(self) -> dict[str, Any]:
        """The JSON form documented in the README (``id`` only when set, ``standalone_question`` for follow-ups).

        A passage's ``score`` is its :attr:`RetrievedPassage.rerank_score` (0 if it was not reranked).
        """
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
                    "score": round(r.rerank_score or 0.0, 6),
                }
                for r in self.passages
            ],
            "backend": self.backend,
            **({"standalone_question": self.standalone_question} if self._is_followup else {}),
            **({"verified": self.verified} if self.verified is not None else {}),
            **({"fallback": self.fallback} if self.fallback is not None else {}),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
        return data
