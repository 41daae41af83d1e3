"""The extractive answerer: the essay's own sentences, each cited, or a plain refusal.

Sentences come scored by :mod:`assistant.reranking`. The best one is taken, with the sentences
the question's form calls for (the explanation of a "why", the thesis of a summary, the
references behind a source question); others join only when they cover question terms it
misses or continue it ("This action…"). If the best evidence scores below
``Settings.refusal_threshold``, the answer says the essay does not say and cites nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.config import Settings
from assistant.corpus import FRONT_MATTER, Corpus, footnotes_in
from assistant.question import QuestionProfile
from assistant.reranking import ScoredSentence, SentenceReranker, defines
from assistant.retrieval import RetrievedPassage
from assistant.text import CONNECTIVE, CONSEQUENCE, CONTINUATION, CONTRAST, stem, strip_footnotes, terms

if TYPE_CHECKING:
    import numpy as np

    from assistant.index import LoadedIndex

REFUSAL = "The essay does not say."
REFUSAL_NOTE = (
    " I answer only from the essay “Bonding Over Bans” (Ian Wong) and its references; "
    "try asking about U.S. and Japanese technology controls, China, or the essay’s recommendations."
)
ANSWER_CHARS = 600  # stop adding sentences past this many characters (hard cap in the issue: 900)
# Answerability kept per question name / asked-for term / other content term the essay never
# uses; these separate the dev set's unanswerable questions from its answerable ones (docs/eval.md).
UNKNOWN_NAME_FACTOR = 0.75
UNKNOWN_FOCUS_FACTOR = 0.6
UNKNOWN_TERM_FACTOR = 0.9
BRIDGE_CHARS = 40  # a continuation this short is a bridge to the sentence after it
CONTINUE_BELOW_CHARS = 200  # a continuation that adds no question term joins only a best sentence this short

_CAUSAL = re.compile(r"\b(because|since|due to|reasons?|in order to|so that|as a result|driven by)\b", re.I)
_TITLE = re.compile(r"\b(title|called|named)\b", re.I)
# A paragraph's closing sentence that interprets what came before ("These … positions represent …").
_SUMMARY = re.compile(r"^(These|This|Such|Taken together|In short|In sum|In this way|Ultimately)\b")


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


@dataclass(frozen=True)
class Draft:
    """An answer before timing and passages are attached.

    Attributes:
        text: Answer text with ``[n]`` markers (or the refusal).
        citations: Citations in marker order; empty for a refusal.
        answerability: 0..1; compared with ``Settings.refusal_threshold``.
        sentences: The cited sentences, in marker order.

    """

    text: str
    citations: list[Citation]
    answerability: float
    sentences: list[ScoredSentence]


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
    answerability: float | None = None
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


class ExtractiveAnswerer:
    """Composes answers from corpus sentences. Thread-safe: it holds no per-question state."""

    def __init__(self, index: LoadedIndex, corpus: Corpus, settings: Settings) -> None:
        self.index = index
        self.corpus = corpus
        self.settings = settings
        self.reranker = SentenceReranker(index, corpus, settings)

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
        span, terms_ = self.index.sentence_spans[row], self.reranker.sentence_terms[row]
        return ScoredSentence(row, passage, span, sentence.score, terms_)  # ranks with its anchor

    def _text(self, sentence: ScoredSentence) -> str:
        return self.corpus.text[sentence.span.start : sentence.span.end]

    def _thesis_sentences(self, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """The thesis and the conclusion's topic sentence.

        The thesis is the introduction's closing sentence, with the one before it when it
        opens with a connective such as "Instead,".
        """
        intro, conclusion = self.reranker.thesis_paragraphs

        def in_paragraph(number: int) -> list[ScoredSentence]:
            found = (s for s in scored if s.passage.kind == "essay" and s.passage.paragraph == number)
            return sorted(found, key=lambda s: s.span.start)

        thesis = in_paragraph(intro)[-1:]
        if thesis and CONNECTIVE.match(self._text(thesis[0])) and (before := self._neighbour(thesis[0], -1)):
            thesis.insert(0, before)
        return thesis + in_paragraph(conclusion)[:1]

    def _explanation(self, question: QuestionProfile, best: ScoredSentence) -> list[ScoredSentence]:
        """Sentences that explain ``best`` for a "why" question.

        If ``best`` draws a consequence ("As such, …"): the sentence before it. If it restates
        the question (covers half its terms) without giving a cause ("because", "reason"): the
        sentence after it (two when ``best`` is short).
        If ``best`` opens its paragraph and the paragraph closes by interpreting itself
        ("These … represent …"): that closing sentence.
        """
        text = self._text(best)
        if CONSEQUENCE.match(text) and (before := self._neighbour(best, -1, same_paragraph=False)):
            return [before]
        found = []
        if self.reranker.coverage(question.terms, best.terms) >= 0.5 and not _CAUSAL.search(text):
            after = self._neighbour(best, 1)
            while after and len(found) < 2:
                found.append(after)
                after = self._neighbour(after, 1) if len(text) < 100 else None
        if self._neighbour(best, -1) is None:
            last = best
            while (following := self._neighbour(last, 1)) is not None:
                last = following
            if last.row != best.row and last.row not in {f.row for f in found} and _SUMMARY.match(self._text(last)):
                found.append(last)
        return found

    def _structural(self, question: QuestionProfile, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """Sentences the question's form calls for, whatever their own score.

        * summary: the thesis and the conclusion's topic sentence;
        * author: the byline and the first sentence of the author section (the title line
          for questions about the title);
        * why: the explanation around the best sentence (see :meth:`_explanation`);
        * otherwise, the next sentence when it continues the best one ("This action…") and
          either adds a question term or follows a short best sentence; and the one after that
          when the continuation is a short bridge;
        * compare, when the best sentence states no contrast: the best one that does;
        * source questions answered by an essay sentence: the references that sentence cites;
        * definition: the best sentence that introduces the term (“…what can be called “X””)
          leads, in place of the best-scoring one.
        """
        best = scored[0]
        if question.kind == "definition":
            best = next((s for s in scored if defines(question.subject, self._text(s))), best)
        if question.kind == "summary":
            return self._thesis_sentences(scored) or [best]
        if question.kind == "author":
            # The byline (last sentence of paragraph 0), then the best sentence about the author.
            byline = sorted((s for s in scored if s.passage.section == FRONT_MATTER), key=lambda s: s.span.start)
            if _TITLE.search(question.text):
                return byline[:1] or [best]
            author = self.reranker.author_section
            about = sorted((s for s in scored if s.passage.section == author), key=lambda s: s.span.start)
            return byline[-1:] + about[:1] or [best]
        chosen = [best]
        text = self.corpus.text[best.span.start : best.span.end]
        if question.kind == "why":
            chosen += self._explanation(question, best)
        elif (after := self._neighbour(best, 1)) and CONTINUATION.match(self._text(after)):
            bridge = len(self._text(after)) <= BRIDGE_CHARS
            adds = self.reranker.coverage(set(question.terms) - best.terms, after.terms) >= 0.15
            if bridge or adds or len(text) < CONTINUE_BELOW_CHARS:
                chosen.append(after)
            # A very short bridge ("This was no coincidence.") leads into the sentence after it.
            if bridge and (further := self._neighbour(after, 1)):
                chosen.append(further)
        if question.kind == "compare" and not CONTRAST.search(text):
            # The other side of the comparison: the best sentence that states a contrast.
            contrast = next((c for c in scored[1:] if CONTRAST.search(self._text(c))), None)
            if contrast and contrast.score >= 0.6 * best.score:
                chosen.append(contrast)
        if question.wants_reference and best.passage.kind == "essay":
            for number in footnotes_in(text) or best.passage.refs:
                rows = [i for i, pid in enumerate(self.index.sentence_ids) if pid == f"ref-{number:02d}"]
                for row in rows:
                    passage = self.index.passages[self.index.sentence_ids[row]]
                    span = self.index.sentence_spans[row]
                    chosen.append(ScoredSentence(row, passage, span, best.score, self.reranker.sentence_terms[row]))
        return chosen

    def _name_grounding(
        self, question: QuestionProfile, scored: list[ScoredSentence], chosen: list[ScoredSentence]
    ) -> list[ScoredSentence]:
        """The sentence that best covers the question's names the chosen sentences miss.

        So a false premise ("Biden met Kishida…") meets what the essay says ("Xi Jinping met …
        Kishida"). At most one sentence, covering two or more missing names (people, places,
        dates), scoring at least 0.6 of the best.
        """
        names = {stem(n) for n in question.names} & self.reranker.idf.keys()
        missing = names - set().union(*(c.terms for c in chosen))
        if len(missing) < 2:
            return []
        rows = {c.row for c in chosen}
        candidates = [c for c in scored if c.row not in rows and c.score >= 0.6 * scored[0].score]
        best = max(candidates, key=lambda c: len(missing & c.terms), default=None)
        return [best] if best and len(missing & best.terms) >= 2 else []

    def select(self, question: QuestionProfile, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """Pick the answer's sentences from ``scored`` (best first); returns them in reading order.

        After the sentences the question's form calls for, a candidate joins when it scores
        at least 0.85 of the best and covers 30% (IDF-weighted) of the question terms still
        uncovered, or when it continues a chosen sentence ("This action…"), or, for source
        questions, when it is another reference entry scoring at least 0.9 of the best. Summary,
        author and why questions take only what their form calls for (plus, for why, the
        sentence naming the people a false premise gets wrong).
        """
        best = scored[0]
        chosen = self._structural(question, scored)
        if question.kind in ("summary", "author"):
            return sorted(chosen, key=lambda s: s.span.start)
        if question.kind == "why":
            # Structure answers these; term coverage would only add loosely related sentences.
            chosen += self._name_grounding(question, scored, chosen)
            return sorted(chosen, key=lambda s: (s.passage.kind == "reference", s.span.start))
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
            ) and CONTINUATION.match(text)
            new = self.reranker.coverage(q_terms - covered, candidate.terms) if q_terms - covered else 0.0
            if candidate.passage.kind == "reference" and not question.wants_reference:
                continue  # a bibliography entry answers only questions about sources
            both_sources = question.wants_reference and candidate.passage.kind == best.passage.kind == "reference"
            if (
                (candidate.score >= 0.85 * best.score and new >= 0.3)
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

        The best sentence's score (capped at 1), times ``UNKNOWN_NAME_FACTOR`` for each
        capitalised name or number of the question that the essay never uses (an acronym counts
        as used when the essay spells it out: "APEC" for "Asia-Pacific Economic Cooperation"),
        ``UNKNOWN_FOCUS_FACTOR`` for each term of what is asked for ("city" in "In which city…")
        that it never uses, and ``UNKNOWN_TERM_FACTOR`` for each other content term it never
        uses: questions about things the essay does not discuss lose confidence.
        """
        if not scored:
            return 0.0
        vocabulary, initialisms = self.reranker.idf, self.reranker.initialisms
        unknown_names = {
            stem(n)
            for n in question.names
            if stem(n) not in vocabulary and not (n.isupper() and n.lower() in initialisms)
        }
        unknown_terms = {t for t in question.terms if t not in vocabulary} - unknown_names
        unknown_focus = {t for t in question.focus if t not in vocabulary} - unknown_names
        return (
            min(1.0, scored[0].score)
            * UNKNOWN_NAME_FACTOR ** len(unknown_names)
            * UNKNOWN_FOCUS_FACTOR ** len(unknown_focus)
            * UNKNOWN_TERM_FACTOR ** len(unknown_terms - unknown_focus)
        )

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
            source=self.corpus.display_path,
            references=refs,
        )

    def _description(
        self, artifact: str, question: QuestionProfile, scored: list[ScoredSentence]
    ) -> ScoredSentence | None:
        """The sentence mentioning ``artifact`` if it covers the rest of the question, else None.

        "What does Table 1 show?" is answered by "Table 1 shows…"; "What columns does it use?" is not.
        """
        rest = set(question.terms) - set(terms(artifact))
        mentions = [s for s in scored if artifact in self._text(s)]
        if rest and mentions and self.reranker.coverage(rest, mentions[0].terms) >= 0.5:
            return mentions[0]
        return None

    def missing_artifact(self, question: QuestionProfile) -> str | None:
        """A table or figure the question asks about that the essay mentions but does not contain."""
        return next((a for a in self.corpus.missing_artifacts if a.lower() in question.text.lower()), None)

    def answer(
        self, question: QuestionProfile, query_vector: np.ndarray, retrieved: list[RetrievedPassage]
    ) -> tuple[str, list[Citation]]:
        """Return ``(answer_text, citations)`` for ``retrieved`` passages; no citations means a refusal."""
        draft = self.compose(question, self.reranker.score_sentences(question, query_vector, retrieved))
        return draft.text, draft.citations

    def compose(self, question: QuestionProfile, scored: list[ScoredSentence]) -> Draft:
        """Compose the answer from scored sentences (best first); see :meth:`answer`."""
        answerability = self.answerability(question, scored)
        if artifact := self.missing_artifact(question):
            # Only what the essay says about the absent table is answerable, never its contents.
            description = self._description(artifact, question, scored)
            if description is None:
                text = f"{REFUSAL} It refers to {artifact}, but {artifact} itself is not part of the essay’s text."
                return Draft(text, [], answerability, [])
            return self._draft([description], answerability)
        # Questions about the essay's argument or author are answered from its structure.
        structural = question.kind in ("summary", "author")
        if not scored or (not structural and answerability < self.settings.refusal_threshold):
            return Draft(REFUSAL + REFUSAL_NOTE, [], answerability, [])
        return self._draft(self.select(question, scored), answerability)

    def _draft(self, sentences: list[ScoredSentence], answerability: float) -> Draft:
        parts, citations = [], []
        for n, sentence in enumerate(sentences, start=1):
            citation = self._citation(n, sentence)
            citations.append(citation)
            parts.append(f"{strip_footnotes(citation.quote)} [{n}]")
        return Draft(" ".join(parts), citations, answerability, sentences)
