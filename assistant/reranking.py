"""Sentence-level reranking: score candidate sentences, then order passages by their best one.

There is no cross-encoder offline, so each candidate sentence gets a row of evidence features
(:data:`SENTENCE_FEATURES`, each 0..1) and its score is a logistic regression over them: the
probability that the sentence is gold evidence for the question. The weights are fitted on
the tune split of the question bank by :mod:`assistant.fitting` and stored in
``assistant/fitted.json`` with their source; nothing here is tuned by hand.

Passages are then reranked by their best sentence, so the evidence shown is the evidence the
answer uses.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import Settings
from assistant.corpus import FRONT_MATTER, INTRODUCTION, Corpus
from assistant.lexicon import Lexicon
from assistant.patterns import CONCLUSION, CONTRAST, RELATIVE_TIME, YEAR_DIGITS, YEAR_OR_MONTH
from assistant.question import QuestionProfile
from assistant.text import terms
from assistant.types import Passage, QuestionKind, RetrievedPassage, ScoredSentence

if TYPE_CHECKING:
    import numpy as np

    from assistant.index import LoadedIndex, SentenceTable

FITTED_PATH = Path(__file__).with_name("fitted.json")
# Cosine at or above which an exemplar is the question itself (float16-stored vectors: within 1e-5 of 1.0).
SELF_SIMILARITY = 0.9999

# What each feature measures (all 0..1); the order is the order of the fitted weights.
SENTENCE_FEATURES = {
    "dense": "cosine similarity of question and sentence embeddings (negative -> 0)",
    "dense_relative": "its dense similarity over the best candidate's (1 for the most similar sentence)",
    "paragraph_dense": "cosine similarity of the question and the mean of its paragraph's sentence vectors",
    "coverage_relative": "its coverage over the best candidate's (1 for the best-covering sentence)",
    "coverage": "IDF-weighted share of the question's terms in the sentence",
    "context_coverage": "the same for the sentence's whole paragraph (or reference entry)",
    "names": "share of the question's names and numbers in the sentence (0.5 if it has none)",
    "other_country": "names a country (of the lexicon) and none of the countries the question names",
    "kind": "holds what the question's form asks for: a date, number, name, place, contrast, definition (0.5: n/a)",
    "rank": "1 / (1 + rank) of its passage in the fused retrieval ranking",
    "bm25": "its passage's BM25 score over the best BM25 score of the question",
    "quoted": "holds a phrase the question quotes",
    "reference_asked": "is a reference entry, for a question about sources",
    "reference_unasked": "is a reference entry, for any other question",
    "reference_unasked_coverage": "its coverage, when it is a reference entry and the question is not about sources",
    "cites_asked": "is an essay sentence with a footnote, for a question about sources",
    "about_essay_asked": "is the title/byline or about-the-author text, for a question about the essay itself",
    "about_essay_unasked": "is the title/byline or about-the-author text, for any other question",
    "thesis_asked": "is in the introduction's last or the conclusion's paragraph, for a summary question",
    "section_named": "is in a section the question names",
    "reference_number": "is reference entry n, or cites it, for a question naming reference/footnote n",
    "reference_field": "is a reference entry whose outlet, author, date or language the source question names",
    "missing_artifact": "describes a table or figure the text does not contain",
    "interrogative": "is itself a question ('What exactly did … mean?')",
    "exemplar_evidence": (
        "cosine similarity of the nearest of the EXEMPLAR_NEIGHBOURS answerable tune questions nearest the "
        "question whose gold evidence this sentence is, above the fitted floor (exemplar_evidence(); 0: none)"
    ),
}
# How many of the nearest answerable tune questions lend their gold evidence (``exemplar_evidence``). The
# sentence model's cross-validated top-1 hardly depends on it (tune, 30 Nov 2026: 0.826, 0.827, 0.823 for
# 3, 5, 10 neighbours), so it is not fitted.
EXEMPLAR_NEIGHBOURS = 5

# A quantity (years excluded: "how many" is not answered by "in 2019"; nor by "one", too often "no one").
_QUANTITY = re.compile(
    rf"\b((?!{YEAR_DIGITS}\b)\d+|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty\S*|thirty\S*|"
    r"dozens?|hundreds?|thousands?|millions?|billions?)\b",
    re.I,
)
_NAME = re.compile(r"(?<!^)\b[A-Z][a-z]+(?: [A-Z][a-z]+)+\b")
_PLACE = re.compile(r"\b(?:in|at|from|to|of) (?:the )?[A-Z][a-z]+")
# A recommendation: what someone should, must or would do well to do.
_ADVICE = re.compile(
    r"\b(should|must|ought to|would do well|would be well served|needs? to|has to|have to|recommend\w*|"
    r"it would be a mistake|priority|priorities)\b",
    re.I,
)
# What each kind of question asks for (see holds_kind).
_ASKED_FOR: dict[QuestionKind, re.Pattern[str]] = {
    "date": re.compile(f"{YEAR_OR_MONTH.pattern}|(?i:{RELATIVE_TIME.pattern})"),  # months stay capitalised
    "timeline": YEAR_OR_MONTH,
    "number": _QUANTITY,
    "who": _NAME,
    "where": _PLACE,
    "recommendation": _ADVICE,
}
# "reference 12", "footnote (12)", "source #12", "ref. 12", "note 12", "[12]"
_REFERENCE_NUMBER = re.compile(
    r"(?:\b(?:ref(?:erence)?s?|footnotes?|sources?|notes?|entry|entries|citations?)\.?\s*(?:no\.?|number|#)?\s*"
    r"[(\[]?(\d{1,2})\b|[(\[](\d{1,2})[)\]])",
    re.I,
)
# A question about the introduction or the conclusion (these have no heading of their own to name).
_INTRODUCTION_WORDS = re.compile(r"\b(intro(duction)?|opening (section|paragraphs?)|before the first heading)\b", re.I)


def _asks_about_sections(question: QuestionProfile) -> bool:
    """Whether a question may name sections: it says "section" or asks for a summary."""
    return "section" in question.text.lower() or question.kind == "summary"


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


def holds_kind(kind: QuestionKind, text: str, known: tuple[str, ...] = ()) -> bool | None:
    """Whether ``text`` holds the thing a question of ``kind`` asks for; None for kinds that ask for none.

    A date for ``date`` (or a time relative to another: "a year later"), a quantity for
    ``number``, a multi-word name for ``who``, a place ("in Nagasaki", "at the Brookings
    Institution") for ``where``, advice ("should", "must", "would be well served to") for
    ``recommendation``. Words of ``known`` (the question's own names) do not count: "Who
    introduced Sullivan?" is not answered by "Jake Sullivan".
    """
    pattern = _ASKED_FOR.get(kind)
    if pattern is None:
        return None
    for name in known:
        text = re.sub(rf"\b{re.escape(name)}\b", "_", text)
    return bool(pattern.search(text))


def exemplars_path(fitted_path: Path) -> Path:
    """Where the answerability exemplars fitted with ``fitted_path`` are stored (beside it)."""
    return fitted_path.with_name("exemplars.npz")


def load_fitted(path: Path = FITTED_PATH) -> dict[str, Any]:
    """The fitted weights (``sentence`` and ``answerability`` models, and their ``source``).

    With them, when :func:`exemplars_path` exists, ``exemplars``: the tune questions' unit
    vectors (``vectors``, shape ``(n, dim)``, float32), whether the essay answers each
    (``answerable``, shape ``(n,)``, bool), and their gold evidence as corpus spans
    (``evidence_spans``, shape ``(m, 2)``, int32, each of exemplar ``evidence_owner[i]``), for
    :func:`exemplar_margin` and :meth:`SentenceReranker.exemplar_evidence`.

    Raises:
        FileNotFoundError: If ``path`` is missing (run ``python -m assistant.fitting``).

    """
    fitted = json.loads(path.read_text(encoding="utf-8"))
    if (exemplars := exemplars_path(path)).exists():
        import numpy as np

        with np.load(exemplars) as data:
            fitted["exemplars"] = {
                "vectors": data["vectors"].astype(np.float32),
                "answerable": data["answerable"].astype(bool),
                "evidence_spans": data["evidence_spans"].astype(np.int32),
                "evidence_owner": data["evidence_owner"].astype(np.int32),
            }
    return fitted


def overlaps_half(start: Any, end: Any, span_start: int, span_end: int) -> Any:
    """Whether ``[start, end)`` overlaps ``[span_start, span_end)`` by half the shorter of the two.

    ``start``/``end`` are ints or NumPy arrays of them (then elementwise: a bool array).
    """
    import numpy as np

    overlap = np.minimum(end, span_end) - np.maximum(start, span_start)
    return overlap >= 0.5 * np.minimum(end - start, span_end - span_start)


def is_evidence(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether ``[start, end)`` overlaps a gold span by half the shorter of the two (:func:`overlaps_half`)."""
    return any(bool(overlaps_half(start, end, s, e)) for s, e in spans)


def exemplar_evidence(similarity: float, floor: float) -> float:
    """The ``exemplar_evidence`` feature: ``similarity`` (a lending tune question's cosine) above ``floor``, 0..1.

    ``max(0, similarity - floor) / (1 - floor)``; ``floor`` (0 <= floor < 1) is fitted
    (``exemplar_floor`` in fitted.json): a loosely similar tune question lends nothing.
    """
    return max(0.0, similarity - floor) / (1.0 - floor)


def exemplar_similarities(query_vector: np.ndarray, exemplars: dict[str, Any] | None) -> np.ndarray | None:
    """Cosine of ``query_vector`` (unit, shape ``(dim,)``) to each exemplar, shape ``(n,)`` float32.

    None without exemplars or when the vector's dimension differs (another model's vectors).
    """
    if not exemplars or exemplars["vectors"].shape[1] != query_vector.shape[0]:
        return None
    return exemplars["vectors"] @ query_vector.astype(exemplars["vectors"].dtype)


def exemplar_margin(
    query_vector: np.ndarray, exemplars: dict[str, Any] | None, similarities: np.ndarray | None = None
) -> float:
    """Semantic refusal by example: how much nearer ``query_vector`` lies to a question the essay does not answer.

    The highest cosine similarity to an unanswerable tune question minus the highest to an
    answerable one (-2..2; 0 without exemplars or when the vector's dimension differs). The
    question itself is never its own example: an exemplar at cosine >= ``SELF_SIMILARITY`` is
    left out, so a tune question is judged as :mod:`assistant.fitting` fitted it (leave one
    out) and tune figures stay out of sample. Semantic routing by example utterances is the
    idea; the answerability model weighs it with the evidence features. ``similarities``, when
    given, is :func:`exemplar_similarities` of the same arguments (computed once per question).
    """
    if not exemplars:
        return 0.0
    if similarities is None:
        similarities = exemplar_similarities(query_vector, exemplars)
    if similarities is None:
        return 0.0
    others = similarities < SELF_SIMILARITY
    unanswerable = similarities[others & ~exemplars["answerable"]]
    answerable = similarities[others & exemplars["answerable"]]
    if not len(unanswerable) or not len(answerable):
        return 0.0
    return float(unanswerable.max() - answerable.max())


@dataclass(frozen=True)
class LogisticModel:
    """A fitted logistic regression: ``p = 1 / (1 + exp(-(coef · x + intercept)))``."""

    features: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogisticModel:
        return cls(tuple(data["features"]), tuple(float(c) for c in data["coef"]), float(data["intercept"]))

    def probability(self, features: dict[str, float]) -> float:
        z = self.intercept + sum(c * features[f] for f, c in zip(self.features, self.coef, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


class SentenceReranker:
    """Scores sentences and reranks passages for one loaded index. Thread-safe (no per-question state).

    Args:
        index: The loaded index (its manifest holds the corpus's :class:`~assistant.lexicon.Lexicon`).
        corpus: The parsed corpus the index was built from.
        settings: Settings (``answer.disabled`` switches mechanisms off for ablations).
        fitted: The fitted weights; default :func:`load_fitted`.

    """

    def __init__(
        self, index: LoadedIndex, corpus: Corpus, settings: Settings, fitted: dict[str, Any] | None = None
    ) -> None:
        self.index = index
        self.corpus = corpus
        self.settings = settings
        self.lexicon = Lexicon.from_dict(index.manifest.get("lexicon"))
        self.fitted = fitted if fitted is not None else load_fitted()
        self.model = LogisticModel.from_dict(self.fitted["sentence"])
        self.exemplar_floor = float(self.fitted["sentence"].get("exemplar_floor", 0.0))

    @cached_property
    def term_aliases(self) -> dict[str, str]:
        return self.lexicon.term_aliases()

    def terms(self, text: str) -> list[str]:
        """Stemmed content terms of ``text`` read with the lexicon ("U.S." -> "unit", "state"; "Japanese" -> "japan").

        Corpus and questions go through the same reading, so either form meets the other.
        """
        aliases = self.term_aliases
        if self.settings.answer.enabled("lexicon"):
            text = self.lexicon.normalise(text)
        return [aliases.get(t, t) for t in terms(text)]

    @cached_property
    def country_names(self) -> dict[str, frozenset[str]]:
        """The country names the lexicon maps to, with their terms ("United States": {"unit", "state"})."""
        return {name: frozenset(self.terms(name)) for name in sorted(set(self.lexicon.aliases.values()))}

    @cached_property
    def countries(self) -> frozenset[str]:
        """Terms of the country names the lexicon maps to ("japan", "china", "unit", "state", …)."""
        return frozenset().union(*self.country_names.values())

    @cached_property
    def sentences(self) -> SentenceTable:
        """The index's sentence table, with each row's :meth:`terms` (its ``terms`` column)."""
        return self.index.sentences.with_terms(self.terms)

    @cached_property
    def context_terms(self) -> list[frozenset[str]]:
        """Each sentence row's terms with its section heading's ("About the Author" -> "author" for "He graduated…").

        The heading says what a section's sentences are about when they do not name it; the
        introduction, the front matter and the references have no heading of their own.
        """
        sentences = self.sentences
        if not self.settings.answer.enabled("heading_terms"):
            return list(sentences.terms)
        heading = self.section_terms
        return [
            terms | heading.get(sentences.passage(row).section, frozenset())
            for row, terms in enumerate(sentences.terms)
        ]

    @cached_property
    def passage_terms(self) -> dict[str, frozenset[str]]:
        """Each passage's terms, widened to its whole paragraph for essay passages."""
        by_paragraph: dict[tuple[str, int], set[str]] = {}
        for p in self.index.passages.values():
            by_paragraph.setdefault((p.kind, p.paragraph), set()).update(self.terms(p.text))
        return {pid: frozenset(by_paragraph[(p.kind, p.paragraph)]) for pid, p in self.index.passages.items()}

    @cached_property
    def idf(self) -> dict[str, float]:
        df = Counter(t for ts in self.sentences.terms for t in ts)
        n = len(self.sentences)
        return {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}

    @cached_property
    def essay_centroid(self) -> np.ndarray:
        """The unit mean of the essay sentences' vectors (dim,): what the essay is about as a whole."""
        return self.sentences.unit_mean(self.sentences.rows(kind="essay"))

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
    def section_terms(self) -> dict[str, frozenset[str]]:
        """Each essay section's heading terms (sections other than the title and references)."""
        skip = {FRONT_MATTER, INTRODUCTION, "References"}
        return {s: frozenset(self.terms(s)) for s in self.corpus.sections if s not in skip}

    def named_headings(self, question: QuestionProfile) -> set[str]:
        """Sections whose heading a question names: all of its terms, or two of them.

        Failing that, when it says "section": the one heading that shares more of its terms than
        any other ("the japan section", "the us controls section").
        Only when the question says "section" or asks for a summary ("summarize paths forward").
        The author section only when it says "section": "the author's recommendations in a
        nutshell" is about the essay. The introduction has no heading: see :meth:`named_sections`.
        """
        said = "section" in question.text.lower()
        if not _asks_about_sections(question):
            return set()
        asked = set(question.terms)
        named = {
            s
            for s, ts in self.section_terms.items()
            if ts and (ts <= asked or len(ts & asked) >= 2) and (said or s != self.author_section)
        }
        if named or not said:
            return named
        # "the japan section", "the us controls section": the one heading that shares the most terms.
        shared = {s: len(ts & asked) for s, ts in self.section_terms.items()}
        best = max(shared.values(), default=0)
        tied = [s for s, n in shared.items() if n == best]
        return set(tied) if best and len(tied) == 1 else set()

    def asks_conclusion(self, question: QuestionProfile) -> bool:
        """Whether the question asks about the essay's conclusion ("how does it wrap up", "the last paragraph")."""
        return bool(CONCLUSION.search(question.text))

    def named_sections(self, question: QuestionProfile) -> set[str]:
        """Sections a question asks about.

        Those whose heading it names (:meth:`named_headings`); "introduction" ("intro", "the
        opening section") names the first and "conclusion" the conclusion paragraph's.
        """
        if not _asks_about_sections(question):
            return set()
        found = self.named_headings(question)
        if _INTRODUCTION_WORDS.search(question.text):
            found.add(INTRODUCTION)
        if self.asks_conclusion(question):
            conclusion = self.thesis_paragraphs[1]
            found |= {p.section for p in self.corpus.paragraphs if p.number == conclusion}
        return found

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        """Every term the corpus uses: its sentences and its section headings."""
        return frozenset(self.idf) | frozenset().union(
            *self.section_terms.values(), frozenset(self.terms(INTRODUCTION))
        )

    def read(self, text: str) -> QuestionProfile:
        """Profile a validated question, read with the corpus lexicon (unless switched off)."""
        from assistant.question import profile

        if not self.settings.answer.enabled("lexicon"):
            return profile(text)
        return profile(self.lexicon.normalise(text), self.term_aliases)

    def reference_numbers(self, question: QuestionProfile) -> set[int]:
        """Reference numbers the question names ("reference 12", "footnote (3)") that the corpus has."""
        if not self.settings.answer.enabled("citation_graph"):
            return set()
        found = {int(a or b) for a, b in _REFERENCE_NUMBER.findall(question.text)}
        return found & self.corpus.references.keys()

    def reference_matches(self, question: QuestionProfile) -> set[int]:
        """The citation graph, outlet/author/date -> entries: references whose record a source question names.

        "Which sources come from Reuters?", "What did Kelly and Uranaka write?", "Which references
        are dated December 10, 2018?".
        """
        if not (question.wants_reference and self.settings.answer.enabled("citation_graph")):
            return set()
        text = question.text.lower()

        def named(phrase: str | None) -> bool:
            return bool(phrase) and re.search(rf"\b{re.escape(phrase.lower())}\b", text) is not None

        found = set()
        for number, ref in self.corpus.references.items():
            people = re.split(r",| and | et al\.?", ref.authors or "")
            surnames = [p.split()[-1] for p in people if p.strip() and len(p.split()[-1]) >= 3]
            if named(ref.outlet) or named(ref.date) or named(ref.authors) or any(map(named, surnames)):
                found.add(number)
        return found

    def _weight(self, term: str) -> float:
        return self.idf.get(term, math.log(len(self.sentences) + 1))

    def coverage(self, wanted: set[str] | tuple[str, ...], have: frozenset[str]) -> float:
        """IDF-weighted share (0..1) of the ``wanted`` terms found in ``have``."""
        # fsum: exact whatever the order a set iterates in (the hash seed), so scores never tie-break by chance.
        total = math.fsum(self._weight(t) for t in wanted)
        return math.fsum(self._weight(t) for t in wanted if t in have) / total if total else 0.0

    def question_terms(self, question: QuestionProfile) -> set[str]:
        return set(question.terms)

    def name_terms(self, question: QuestionProfile) -> frozenset[str]:
        """The terms of the question's names and numbers."""
        return frozenset(t for n in question.names for t in self.terms(n))

    def _kind_match(self, question: QuestionProfile, passage: Passage, text: str) -> float:
        if passage.kind == "reference":
            return 0.5
        found = holds_kind(question.kind, text, question.names)
        if found is not None:
            return float(found)
        match question.kind:
            case "compare":
                return 1.0 if CONTRAST.search(text) else 0.0
            case "definition":
                return 1.0 if question.subject and defines(question.subject, text) else 0.0
        return 0.5

    def _is_about_essay(self, passage: Passage) -> bool:
        return passage.section in (FRONT_MATTER, self.author_section)

    def _structural_passages(self, question: QuestionProfile) -> list[Passage]:
        """Passages a question's form points to, wherever retrieval ranked them.

        The thesis paragraphs for summary questions, the title/byline and the author section
        for author questions, the sections a question names.
        """
        sections = self.named_sections(question) if self.settings.answer.enabled("section_scope") else set()
        thesis = self.thesis_paragraphs if question.kind == "summary" else ()
        numbers = self.reference_numbers(question)
        table = self.sentences
        matched = {p.id for n in self.reference_matches(question) if (p := table.reference_passage(n)) is not None}
        return [
            p
            for p in self.index.passages.values()
            if (set(p.refs) & numbers)
            or p.id in matched
            or p.kind == "essay"
            and (
                p.section in sections
                or p.paragraph in thesis
                or (question.kind == "author" and self._is_about_essay(p))
            )
        ]

    def _reference_passages(self, retrieved: list[RetrievedPassage], rows: list[int]) -> list[Passage]:
        """The citation graph, essay -> references.

        The entries footnoted by the top essay sentences, and the best-ranked entries of retrieval.
        """
        table = self.sentences
        found: list[Passage] = []
        for row in rows[: self.settings.answer.candidate_references]:
            for number in table.footnotes(row):
                if (p := table.reference_passage(number)) is not None:
                    found.append(p)
        found += [r.passage for r in retrieved if r.passage.kind == "reference"][
            : self.settings.answer.candidate_references
        ]
        return found

    def features(
        self,
        question: QuestionProfile,
        passage: Passage,
        row: int,
        similarity: float,
        rank: int,
        bm25: float,
        sections: set[str],
        numbers: set[int],
        matched: set[int] = frozenset(),
        names: frozenset[str] | None = None,
    ) -> dict[str, float]:
        """The feature row (:data:`SENTENCE_FEATURES`) of sentence ``row`` of ``passage`` for ``question``.

        ``names`` are the terms of the question's names (computed here when not given).
        """
        text = self.sentences.texts[row]
        footnotes = self.sentences.footnotes(row)
        have = self.sentences.terms[row]
        q_terms = self.question_terms(question)
        if names is None:
            names = self.name_terms(question)
        asked_countries = q_terms & self.countries
        is_ref = passage.kind == "reference"
        coverage = self.coverage(q_terms, self.context_terms[row])
        about_essay = self._is_about_essay(passage)
        asks_essay = question.kind == "author"
        return {
            "dense": max(0.0, similarity),
            "coverage": coverage,
            "context_coverage": self.coverage(q_terms, self.passage_terms[passage.id]),
            "names": len(names & have) / len(names) if names else 0.5,
            "other_country": float(
                bool(asked_countries) and bool(have & self.countries) and not asked_countries & have
            ),
            "kind": self._kind_match(question, passage, text),
            "rank": 1.0 / (1 + rank),
            "bm25": bm25,
            "quoted": float(bool(question.quoted) and any(q in text.lower() for q in question.quoted)),
            "reference_asked": float(is_ref and question.wants_reference),
            "reference_unasked": float(is_ref and not question.wants_reference),
            "reference_unasked_coverage": coverage if is_ref and not question.wants_reference else 0.0,
            "cites_asked": float(not is_ref and question.wants_reference and bool(footnotes)),
            "about_essay_asked": float(about_essay and asks_essay),
            "about_essay_unasked": float(about_essay and not asks_essay),
            "thesis_asked": float(
                question.kind == "summary" and not is_ref and passage.paragraph in self.thesis_paragraphs
            ),
            "section_named": float(passage.section in sections),
            "reference_number": float(
                bool(numbers) and (bool(set(passage.refs) & numbers) if is_ref else bool(set(footnotes) & numbers))
            ),
            "reference_field": float(is_ref and bool(set(passage.refs) & matched)),
            "missing_artifact": float(any(a in text for a in self.corpus.missing_artifacts)),
            "interrogative": float(text.rstrip('”’" ').endswith("?")),
        }

    def score_sentences(
        self, question: QuestionProfile, query_vector: np.ndarray, retrieved: list[RetrievedPassage]
    ) -> list[ScoredSentence]:
        """Score the candidate sentences; best first.

        Candidates: the sentences of the top retrieved passages, of the passages BM25 ranks best
        (``candidate_lexical``), of the passages the question's form points to, the sentences most
        similar to the question anywhere, and the reference entries the best of those cite or that
        retrieval ranks best. ``retrieved`` is in fused order (not yet reranked).
        """
        import numpy as np

        passages = [r.passage for r in retrieved[: self.settings.answer.candidate_passages]]
        lexical = sorted((r for r in retrieved if r.bm25), key=lambda r: -(r.bm25 or 0.0))
        if self.settings.answer.enabled("lexical_candidates"):
            passages += [r.passage for r in lexical[: self.settings.answer.candidate_lexical]]
        passages += self._structural_passages(question)
        sentences = self.sentences
        similarities = sentences.vectors @ query_vector
        context_similarities = sentences.paragraph_vectors @ query_vector
        similar = [int(i) for i in np.argsort(-similarities)[: self.settings.answer.candidate_sentences]]
        topicality = float(self.essay_centroid @ query_vector)
        exemplars = self.fitted.get("exemplars") if self.settings.answer.enabled("exemplars") else None
        to_exemplars = exemplar_similarities(query_vector, self.fitted.get("exemplars"))
        margin = exemplar_margin(query_vector, exemplars, to_exemplars)
        lent = (
            self.exemplar_evidence(query_vector, to_exemplars)
            if self.settings.answer.enabled("exemplar_evidence")
            else {}
        )
        if self.settings.answer.enabled("citation_graph"):
            passages += self._reference_passages(retrieved, similar)
        rank_of = {r.passage.id: i for i, r in enumerate(retrieved)}
        best_bm25 = max((r.bm25 or 0.0 for r in retrieved), default=0.0) or 1.0
        bm25_of = {r.passage.id: (r.bm25 or 0.0) / best_bm25 for r in retrieved}
        bm25_raw = {r.passage.id: r.bm25 or 0.0 for r in retrieved}
        rows = [row for p in passages for row in sentences.rows_of(p.id)] + similar + list(lent)
        sections = self.named_sections(question) if self.settings.answer.enabled("section_scope") else set()
        numbers = self.reference_numbers(question)
        matched = self.reference_matches(question)
        names = self.name_terms(question)
        rows = list(dict.fromkeys(rows))
        table = []
        for row in rows:
            passage = sentences.passage(row)
            rank = rank_of.get(passage.id, len(retrieved))
            values = self.features(
                question,
                passage,
                row,
                float(similarities[row]),
                rank,
                bm25_of.get(passage.id, 0.0),
                sections,
                numbers,
                matched,
                names,
            )
            context = self.settings.answer.enabled("paragraph_context")
            values["paragraph_dense"] = max(0.0, float(context_similarities[row])) if context else 0.0
            values["bm25_raw"] = bm25_raw.get(passage.id, 0.0)
            values["topicality"] = topicality  # question-level, for the answerability model
            values["exemplar_margin"] = margin  # so is this
            values["exemplar_similarity"] = lent.get(row, 0.0)
            values["exemplar_evidence"] = exemplar_evidence(values["exemplar_similarity"], self.exemplar_floor)
            table.append((row, passage, values))
        best_dense = max((v["dense"] for _, _, v in table), default=0.0) or 1.0
        best_coverage = max((v["coverage"] for _, _, v in table), default=0.0) or 1.0
        scored = []
        for row, passage, values in table:
            values["dense_relative"] = values["dense"] / best_dense
            values["coverage_relative"] = values["coverage"] / best_coverage
            score = self.model.probability(values)
            scored.append(ScoredSentence(row, passage, sentences.spans[row], score, self.context_terms[row], values))
        return sorted(scored, key=lambda s: -s.score)

    @cached_property
    def exemplar_rows(self) -> tuple[tuple[int, ...], ...]:
        """For each exemplar (tune question), the sentence rows that are its gold evidence.

        A row is evidence when it overlaps a gold span by half the shorter of the two
        (:func:`overlaps_half`, the rule the sentence model is fitted by). Empty without exemplars,
        or when the corpus is not the one they were fitted on (its spans would point elsewhere).
        """
        import numpy as np

        exemplars = self.fitted.get("exemplars")
        # No recorded source: exemplars being fitted on this very corpus (assistant.fitting).
        fitted_on = self.fitted.get("source", {}).get("corpus_sha256", self.corpus.sha256)
        if not exemplars or "evidence_spans" not in exemplars or fitted_on != self.corpus.sha256:
            return ()
        starts = np.array([span.start for span in self.sentences.spans])
        ends = np.array([span.end for span in self.sentences.spans])
        rows: list[set[int]] = [set() for _ in exemplars["answerable"]]
        for owner, (start, end) in zip(exemplars["evidence_owner"], exemplars["evidence_spans"], strict=True):
            rows[int(owner)].update(int(r) for r in np.flatnonzero(overlaps_half(starts, ends, start, end)))
        return tuple(tuple(sorted(r)) for r in rows)

    def exemplar_evidence(self, query_vector: np.ndarray, similarities: np.ndarray | None = None) -> dict[int, float]:
        """Evidence by example: the gold evidence rows of the answerable tune questions nearest the question.

        Returns ``{row: cosine}``: for each sentence row that is gold evidence of one of the
        :data:`EXEMPLAR_NEIGHBOURS` nearest answerable tune questions, that question's similarity
        to this one (the nearest's, when several). The question itself is never its own example
        (:data:`SELF_SIMILARITY`). Empty without exemplars or for another model's vectors.
        ``similarities``, when given, is :func:`exemplar_similarities` of the question.
        """
        import numpy as np

        if not self.exemplar_rows:
            return {}
        if similarities is None:
            similarities = exemplar_similarities(query_vector, self.fitted.get("exemplars"))
        if similarities is None:
            return {}
        exemplars = self.fitted["exemplars"]
        lent: dict[int, float] = {}
        taken = 0
        for i in np.argsort(-similarities, kind="stable"):
            if similarities[i] >= SELF_SIMILARITY or not exemplars["answerable"][i]:
                continue
            for row in self.exemplar_rows[i]:
                lent.setdefault(row, float(similarities[i]))
            taken += 1
            if taken == EXEMPLAR_NEIGHBOURS:
                break
        return lent

    def rerank(
        self, retrieved: list[RetrievedPassage], scored: list[ScoredSentence], cited: set[str] = frozenset()
    ) -> list[RetrievedPassage]:
        """Reorder passages by their best sentence score, which becomes their ``rerank_score`` (0..1, 6 decimals).

        The ``cited`` passages (those the answer quotes) come first, strongest evidence first, each
        with the best score of all, so scores never increase down the list. Passages with no scored
        sentence follow, in fusion order, with score 0. Passages of scored sentences that
        retrieval did not return are added, with ``fused_score`` 0. ``fused_score`` is kept as
        retrieval gave it.
        """
        best: dict[str, float] = {}
        for sentence in scored:
            best[sentence.passage.id] = max(best.get(sentence.passage.id, 0.0), sentence.score)
        by_id = {r.passage.id: r for r in retrieved}
        for pid in sorted((best.keys() | cited) - by_id.keys()):  # sorted: ties keep one order whatever the hash seed
            by_id[pid] = RetrievedPassage(self.index.passages[pid], fused_score=0.0, dense=None, bm25=None)
        top = max(best.values(), default=0.0)
        ranked = sorted(by_id.values(), key=lambda r: (r.passage.id not in cited, -best.get(r.passage.id, -1.0)))
        best |= {pid: top for pid in cited}
        return [replace(r, rerank_score=round(best.get(r.passage.id, 0.0), 6)) for r in ranked]
