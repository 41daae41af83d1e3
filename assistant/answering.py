"""The extractive answerer: the essay's own sentences, each cited, or a plain refusal.

Sentences come scored by :mod:`assistant.reranking` (the probability that each is evidence).
Whether to answer at all is decided by the answerability model: a logistic regression over
question-level evidence features (:data:`ANSWERABILITY_FEATURES`), fitted on the tune split by
:mod:`assistant.fitting`. An answer takes the best sentence, the sentences the question's form
calls for (the reason of a "why", the thesis of a summary, the sentence holding the date a
"when" asks for, the references behind a source question), and further sentences that cover
question terms it misses. Names and numbers of the question that the essay never mentions
are named in the answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from assistant import structure
from assistant.config import Settings
from assistant.corpus import FRONT_MATTER, INTRODUCTION, Corpus, footnotes_in
from assistant.patterns import (
    CONNECTIVE,
    CONSEQUENCE,
    CONTINUATION,
    MONTH_NAMES,
    MONTHS,
    RELATIVE_TIME,
    YEAR,
    YEAR_DIGITS,
)
from assistant.question import QuestionProfile
from assistant.reranking import LogisticModel, SentenceReranker, defines, holds_kind
from assistant.text import leans_on_previous, strip_footnotes
from assistant.types import Citation, Draft, Length, Offsets, ReferenceInfo, ScoredSentence

if TYPE_CHECKING:
    from assistant.index import LoadedIndex, SentenceTable

REFUSAL = "The essay does not say."
# A refusal right after a refusal, so that no answer repeats the previous one word for word.
REFUSED_AGAIN = "The essay does not say this either."
# Opens a "shorter" answer: the extractive answerer quotes, it never rewords.
SHORTER_NOTE = "In one sentence, quoted from the essay (I quote it rather than reword it):"
ALREADY_QUOTED = "The sentences the previous answer quoted answer this too:"
NOTHING_MORE = "The essay says nothing more about this than the sentences already quoted."
# Opens an answer whose answerability is below the fitted ``hedge_below`` (fitted.json).
HEDGE = "The essay may not answer exactly this; the closest it says:"
# Question-level features of the answerability model (each 0..1 unless it says otherwise); fitted weights in
# fitted.json.
ANSWERABILITY_FEATURES = {
    "best": "the best sentence's evidence log-odds, divided by 10",
    "second": "the second-best sentence's evidence log-odds, divided by 10",
    "dense": "the highest cosine similarity of a candidate sentence",
    "bm25": "the best passage BM25 score s, as s / (s + 5)",
    "topicality": "cosine similarity of the question and the mean of the essay's sentence vectors",
    "coverage": "IDF-weighted coverage of the question's terms by the top 3 sentences together",
    "detail": "the same for its terms other than names (what is asked about the named things)",
    "unknown_names": "share of the question's names and numbers the corpus never uses",
    "unknown_focus": "what the question asks for ('which city') is a word the corpus never uses",
    "kind_missing": "it asks for a date, number, name or place and none of the top 3 sentences holds one",
    "kind_missing_best": "the same for the best sentence alone",
    "focus_missing": "what the question asks for ('which city') is in none of the top 3 sentences' paragraphs",
    "asks_source": "it asks about the essay's sources",
    "asks_why": "it asks why",
    "asks_fact": "it asks an open 'what/which/how' question of no more specific form",
    "asks_kind": "it asks for a date, number, person or place",
    "exemplar_margin": (
        "the cosine similarity to the nearest tune question the essay does not answer minus that to the nearest "
        "it answers (assistant.reranking.exemplar_margin)"
    ),
}

_CAUSAL = re.compile(
    # "since" gives a reason, except before a time ("the first time … since 2019").
    rf"\b(because|since(?! (?:the )?(?:\d|then\b|{MONTH_NAMES}))|due to|reasons?|in order to|so that|so as to|"
    r"as a result|driven by|aims? to|"
    r"seeks? to|designed to|to (?:prevent|avoid|ensure|protect|maintain|stop|keep)|to (?:that|this) end|such that|"
    r"thereby|in an effort to|with the aim of|owing to|thanks to|stems? from|given that)\b",
    re.I,
)
# A sentence that gives a reason or justification (searched for "Why?" in the claim's paragraph).
_REASON_GIVEN = re.compile(
    rf"{_CAUSAL.pattern}|\b(justif\w*|rationale|motivat\w*|in response to|out of concern|concerns?)\b", re.I
)
_TITLE = re.compile(r"\b(title|called|named)\b", re.I)
# Asks which claim a source backs: "What claim is the Politico piece used for?", "What does the essay cite X for?"
# (not "Which outlet is cited for the attack?", which asks for the source).
_CITED_FOR = re.compile(
    r"\b(?:(?:what|which) (?:claims?|statements?|points?)\b|(?:used|cited?|cites|citing)(?: [\w’'-]+){0,6} for\W*$)",
    re.I,
)
# Asks for what only a table or figure holds, not what the text says it shows.
_ARTIFACT_CONTENTS = re.compile(
    r"\b(columns?|rows?|headings?|headers?|cells?|values?|entries|entry|numbers?|data|percent\w*|how many|"
    r"caption|labels?|axis|axes|units?|source of the (?:table|figure))\b",
    re.I,
)
_ABOUT_DOCUMENT = re.compile(r"\b(title|titled|headline|author|byline|wrote|written|writer)\b", re.I)
_THESIS = re.compile(r"\b(main (argument|point|idea|claim)|thesis|argue|arguing)\b", re.I)


_EVENT_DATE = re.compile(rf"\b(?:(?P<month>{MONTH_NAMES})(?: \d{{1,2}},)? )?(?P<year>{YEAR_DIGITS})\b")


def _event_date(text: str) -> tuple[int, int] | None:
    """(year, month) of the first date ``text`` names ("In December 2017, …" -> (2017, 12)); month 0 if none."""
    match = _EVENT_DATE.search(text)
    if match is None:
        return None
    month = MONTHS.index(match.group("month").lower()) + 1 if match.group("month") else 0
    return int(match.group("year")), month


# A month without a year ("In July, …"): dated by the sentences before it.
_MONTH_ONLY = re.compile(
    rf"\b(?:in|this|last|by|since|until|early|late|mid-?) (?P<month>{MONTH_NAMES})\b(?!,? \d)", re.I
)
_BEFORE = re.compile(r"\b(?:prior|before|earlier)\b", re.I)


def _unique_rows(sentences: list[ScoredSentence]) -> list[ScoredSentence]:
    """``sentences`` without repeats of a row, first occurrence kept."""
    seen: set[int] = set()
    return [s for s in sentences if not (s.row in seen or seen.add(s.row))]


def _label(sentence: ScoredSentence) -> str:
    """How an answer names a sentence's passage: "reference 18", or its section in quotes."""
    passage = sentence.passage
    return f"reference {passage.refs[0]}" if passage.kind == "reference" and passage.refs else f"“{passage.section}”"


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


class ExtractiveAnswerer:
    """Composes answers from corpus sentences. Thread-safe: it holds no per-question state."""

    def __init__(
        self, index: LoadedIndex, corpus: Corpus, settings: Settings, fitted: dict[str, Any] | None = None
    ) -> None:
        self.index = index
        self.corpus = corpus
        self.settings = settings
        self.reranker = SentenceReranker(index, corpus, settings, fitted)
        fitted = self.reranker.fitted["answerability"]
        self.answerability_model = LogisticModel.from_dict(fitted)
        self.refusal_threshold = (
            settings.refusal_threshold if settings.refusal_threshold is not None else float(fitted["threshold"])
        )
        self.hedge_below = max(self.refusal_threshold, float(fitted.get("hedge_below", 0.0)))
        selection = self.reranker.fitted.get("selection", {})

        def setting_or_fitted(name: str, default: float) -> float:
            value = getattr(settings.answer, name)
            return float(value if value is not None else selection.get(name, default))

        self.join_ratio = setting_or_fitted("join_ratio", 0.5)
        self.join_coverage = setting_or_fitted("join_coverage", 0.3)
        self.join_strong = setting_or_fitted("join_strong", 2.0)  # absent from older fits: no strong joins

    @property
    def refusal_note(self) -> str:
        """What the assistant answers from, from the corpus's own title and byline."""
        author = self.corpus.author_line.removeprefix("By ").strip()
        return (
            f"I answer only from the essay “{self.corpus.title}”{f' ({author})' if author else ''} and its references."
        )

    @property
    def sentences(self) -> SentenceTable:
        """The index's sentence table (with the reranker's terms): rows, neighbours, footnote links."""
        return self.reranker.sentences

    def _row(self, row: int, score: float = 1.0) -> ScoredSentence:
        """Sentence ``row`` as a candidate of evidence probability ``score``."""
        table = self.sentences
        return ScoredSentence(row, table.passage(row), table.spans[row], score, self.reranker.context_terms[row])

    def _neighbour(self, sentence: ScoredSentence, step: int, *, same_paragraph: bool = True) -> ScoredSentence | None:
        """The essay sentence ``step`` places after (or before) essay sentence ``sentence``; None for a reference entry.

        It must be in the same paragraph (with ``same_paragraph=False``: the same section).
        """
        if sentence.passage.kind != "essay":
            return None
        row = self.sentences.neighbour(sentence.row, step, within="paragraph" if same_paragraph else "section")
        return None if row is None else self._row(row, sentence.score)  # ranks with its anchor

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

    def _central(self, rows: list[int]) -> list[int]:
        """``rows`` from the most to the least central: cosine similarity to their mean vector.

        Centroid-based extractive summarisation (Radev et al., 2004): the sentences closest to
        the mean of a passage's sentence embeddings carry its gist.
        """
        vectors = self.sentences.vectors[rows]
        centroid = vectors.mean(axis=0)
        similarity = vectors @ centroid
        return [rows[i] for i in sorted(range(len(rows)), key=lambda i: -float(similarity[i]))]

    def _paragraphs(self, sections: set[str] | None = None, numbers: set[int] | None = None) -> list[list[int]]:
        """The essay paragraphs in ``sections`` (or numbered ``numbers``) as lists of rows, in reading order."""
        table = self.sentences
        groups: dict[int, list[int]] = {}
        for row in table.rows(kind="essay", sections=sections):
            paragraph = table.passage(row).paragraph
            if numbers is None or paragraph in numbers:
                groups.setdefault(paragraph, []).append(row)
        return list(groups.values())

    def _outline(self, paragraphs: list[list[int]]) -> list[ScoredSentence]:
        """A summary of ``paragraphs``: each one's opening (topic) sentence, then each one's closing sentence.

        Topic sentences come first, the most central first (:meth:`_central`), then the
        closing sentences, which state a paragraph's point nearly as often as its opening
        does (on the tune split, of the essay sentences holding a key fact of a summary
        question, 60 open a paragraph, 46 close one and 94 lie between). The answer's
        character cap drops the least central.
        """
        opening = [rows[0] for rows in paragraphs]
        closing = [rows[-1] for rows in paragraphs if len(rows) > 1]
        return [self._row(row) for row in self._central(opening) + self._central(closing)]

    def _essay_summary(self) -> list[ScoredSentence]:
        """The whole essay as its introduction previews it: from the thesis paragraph back.

        The introduction's paragraphs from the last (the thesis) to the first, each one's
        closing sentence and then its opening sentence: the argument first, then the problem
        it answers. The answer's character cap drops the earliest paragraphs.
        """
        thesis = self.reranker.thesis_paragraphs[0]
        paragraphs = [
            rows for rows in self._paragraphs({INTRODUCTION}) if self.sentences.passage(rows[0]).paragraph <= thesis
        ]
        return [self._row(row) for rows in reversed(paragraphs) for row in dict.fromkeys((rows[-1], rows[0]))]

    def _summary(self, question: QuestionProfile, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """The sentences a summary question calls for.

        * sections the question names by their heading: :meth:`_outline` of their paragraphs;
        * the essay's argument ("main argument", "thesis"): :meth:`_thesis_sentences`;
        * the conclusion ("how does the essay wrap up"): :meth:`_outline` of the conclusion paragraph;
        * the introduction, or the whole essay: :meth:`_essay_summary`.
        """
        scoped = self.settings.answer.enabled("section_scope")
        if scoped and (headings := self.reranker.named_headings(question)):
            return self._outline(self._paragraphs(headings))
        if _THESIS.search(question.text):  # the argument itself, not an overview
            return self._thesis_sentences(scored)
        if scoped and self.reranker.asks_conclusion(question):
            return self._outline(self._paragraphs(numbers={self.reranker.thesis_paragraphs[1]}))
        return self._essay_summary()

    def _timeline(
        self, question: QuestionProfile, scored: list[ScoredSentence], best: ScoredSentence
    ) -> list[ScoredSentence]:
        """Every dated essay sentence among the evidence, earliest event first.

        A sentence joins when it names a date and clears the bar any further sentence clears
        (``join_ratio`` of the best's probability), or shares the paragraph of the best essay
        sentence or of the best dated sentence naming each side the question names ("the US and
        Japanese restrictions": see :meth:`sides`). Sentences are ordered by the first date they
        name (year, then month); the answer keeps this order (see :meth:`select`).
        """
        bar = self.join_ratio * best.score
        found = {s.row: s for s in scored if s.passage.kind == "essay" and s.score >= bar}
        essay = [s for s in scored if s.passage.kind == "essay"]
        dated_essay = [s for s in essay if _event_date(self._text(s)) is not None]
        anchors = essay[:1] + [
            pick for side in self.sides(question) if (pick := next((s for s in dated_essay if side <= s.terms), None))
        ]
        for anchor in anchors:
            for row in self.sentences.paragraph_rows(anchor.row):
                found.setdefault(row, self._row(row, anchor.score))
        # A timeline of one country's steps leaves out sentences about another country only.
        dated = {
            s.row: when
            for s in found.values()
            if (when := self._when(s.row)) is not None and not (s.features or {}).get("other_country")
        }
        ordered = sorted((s for s in found.values() if s.row in dated), key=lambda s: (dated[s.row], s.span.start))
        return ordered or [best]

    def _when(self, row: int) -> tuple[int, float] | None:
        """(year, month) of the event sentence ``row`` tells, for ordering a timeline; None if undated.

        A sentence naming a date has that date (month 0 if it names only a year). One that names a
        month without a year ("In July, …"), or a time relative to another ("a year later", "The
        week prior, …"), is dated by the nearest dated sentence before it in its paragraph: a month
        earlier in the year than that date's falls in the next year (the essay tells events
        forward); a time before it sorts just before it. None when no sentence before it is dated.
        """
        text = self._text(self._row(row))
        if (date := _event_date(text)) is not None:
            return date
        month, relative = _MONTH_ONLY.search(text), RELATIVE_TIME.search(text)
        if month is None and relative is None:
            return None
        rows = self.sentences.paragraph_rows(row)
        anchor = next((d for r in reversed(rows[: rows.index(row)]) if (d := self._when(r)) is not None), None)
        if anchor is None:
            return None
        year, anchor_month = anchor
        if month is not None:
            number = MONTHS.index(month.group("month").lower()) + 1
            return (year + 1, number) if number < anchor_month else (year, number)
        return (year, anchor_month - 0.5) if _BEFORE.search(relative.group(0)) else anchor

    def _across_sections(
        self, question: QuestionProfile, scored: list[ScoredSentence], best: ScoredSentence
    ) -> list[ScoredSentence]:
        """For "what does the essay say about X": the best sentence on X in each other section.

        A sentence is on X when it holds at least half of X's terms (IDF-weighted); sections
        follow in reading order after the best sentence, up to ``max_answer_sentences`` in all.
        """
        topic = set(self.reranker.terms(question.subject))
        if not topic:
            return []
        found: dict[str, ScoredSentence] = {best.passage.section: best}
        for s in scored:
            if (
                s.passage.kind == "essay"
                and s.passage.section not in found
                and self.reranker.coverage(topic, s.terms) >= 0.5
            ):
                found[s.passage.section] = s
        order = {section: i for i, section in enumerate(self.corpus.sections)}
        others = sorted((s for s in found.values() if s is not best), key=lambda s: order.get(s.passage.section, 0))
        return others[: self.settings.max_answer_sentences - 1]

    def _states_something(self, question: QuestionProfile, sentence: ScoredSentence) -> bool:
        """False for sentences that answer no question but their own kind.

        A question in the essay ("What exactly did Sullivan mean?") states nothing; the title
        and byline answer only questions about the title or the author.
        """
        if self._text(sentence).rstrip('”’" ').endswith("?"):
            return False
        if sentence.passage.section == FRONT_MATTER:
            return question.kind == "author" or bool(_ABOUT_DOCUMENT.search(question.text))
        return True

    def sides(self, question: QuestionProfile) -> list[frozenset[str]]:
        """The things a question sets side by side: its countries and other names, as term sets.

        "Timeline of the US and Japanese restrictions" -> United States, Japan (read through the
        lexicon). Fewer than two: none.
        """
        asked = set(question.terms)
        countries = [ts for ts in self.reranker.country_names.values() if ts and ts <= asked]
        covered = frozenset().union(*countries)
        others = [frozenset(ts) for n in dict.fromkeys(question.names) if (ts := set(self.reranker.terms(n))) - covered]
        found = list(dict.fromkeys(countries + [ts - covered for ts in others]))
        return found if len(found) >= 2 else []

    def _explanation(self, best: ScoredSentence) -> list[ScoredSentence]:
        """Sentences that explain ``best`` for a "why" question.

        If ``best`` draws a consequence ("As such, …"): the sentence before it. If it states no
        cause ("because", "in order to"): the next sentence when it gives one or leans on
        ``best`` ("Indeed, if …"), else the previous one when it gives one, else the next one
        (a claim is usually followed by its reason); a reason that goes on over connected
        sentences is taken whole (:meth:`_chain`).
        """
        text = self._text(best)
        if CONSEQUENCE.match(text) and (before := self._neighbour(best, -1, same_paragraph=False)):
            return [before]
        if _CAUSAL.search(text):
            return []
        after, before = self._neighbour(best, 1), self._neighbour(best, -1)
        if after is not None and (_CAUSAL.search(self._text(after)) or leans_on_previous(self._text(after))):
            return self._chain(after)
        if before is not None and _CAUSAL.search(self._text(before)):
            return [before]
        return self._chain(after) if after is not None else []

    def _chain(self, first: ScoredSentence) -> list[ScoredSentence]:
        """``first`` and the sentences after it that go on with the same explanation.

        A reason often runs over several sentences ("…operate in different parts… In addition,
        the three countries confront…"; "This gesture could include … These steps would project
        stability…"): each next sentence of the paragraph that leans on the one before it
        (:func:`assistant.text.leans_on_previous`: "In addition", "Moreover", "These steps") joins,
        up to ``max_answer_sentences - 1`` sentences.
        """
        chain = [first]
        while len(chain) < self.settings.max_answer_sentences - 1:
            following = self._neighbour(chain[-1], 1)
            if following is None or not leans_on_previous(self._text(following)):
                break
            chain.append(following)
        return chain

    def _structural(self, question: QuestionProfile, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """Sentences the question's form calls for, whatever their own score.

        * summary: of a section the question names, each paragraph's topic sentence; else the
          thesis and the conclusion's topic sentence;
        * author: the byline and the first sentence of the author section (the title line
          for questions about the title);
        * why: the reason around the best sentence (see :meth:`_explanation`);
        * otherwise, the next sentence when it continues the best one ("This action…");
        * source questions answered by an essay sentence: the references that sentence cites;
        * definition: the best sentence that introduces the term (“…what can be called “X””)
          leads, in place of the best-scoring one.
        """
        answer = self.settings.answer
        best = scored[0]
        if question.kind == "definition":
            best = next((s for s in scored if defines(question.subject, self._text(s))), best)
        if question.kind == "summary":
            summary = self._summary(question, scored)
            if answer.enabled("claimless"):  # its sentences come by position, so filter them here too
                summary = [s for s in summary if self._states_something(question, s)] or summary
            return summary or [best]
        if question.kind == "author":
            # The byline (last sentence of paragraph 0), then the best sentence about the author.
            byline = sorted((s for s in scored if s.passage.section == FRONT_MATTER), key=lambda s: s.span.start)
            if _TITLE.search(question.text):
                return byline[:1] or [best]
            author = self.reranker.author_section
            about = sorted((s for s in scored if s.passage.section == author), key=lambda s: s.span.start)
            return byline[-1:] + about[:1] or [best]
        chosen = [best]
        if question.kind == "timeline" and answer.enabled("timeline"):
            return self._timeline(question, scored, best)
        if question.kind == "topic" and answer.enabled("topic_sections"):
            chosen += self._across_sections(question, scored, best)
        if question.kind == "why":
            if answer.enabled("explanation"):
                chosen += self._explanation(best)
        elif (
            answer.enabled("continuation")
            and (after := self._neighbour(best, 1))
            and CONTINUATION.match(self._text(after))
        ):
            chosen.append(after)
        if best.passage.kind == "reference" and answer.enabled("citation_graph"):
            # The citation graph, reference -> essay: the best sentence citing this entry (any score
            # when the question names the entry's number, "what is reference 9 about?", or asks what
            # the entry is cited for, "What claim is the Politico piece used for?").
            cited_for = bool(_CITED_FOR.search(question.text))
            named = bool(self.reranker.reference_numbers(question)) or cited_for
            rows = {row for number in best.passage.refs for row in self.sentences.citing_rows(number)}
            citing = next((c for c in scored[1:] if c.row in rows), None)
            if citing is None and cited_for and rows:  # not a retrieval candidate: the first citing sentence
                citing = self._row(min(rows, key=self.sentences.position), best.score)
            if citing is not None and (named or citing.score >= self.join_ratio * best.score):
                chosen.append(citing)
        if best.passage.kind == "reference" and (matched := self.reranker.reference_matches(question)):
            # Every entry of the outlet, author or date the question names ("Which Reuters articles…").
            if set(best.passage.refs) & matched:
                rows = {c.row for c in chosen}
                chosen += [
                    c
                    for c in scored
                    if c.passage.kind == "reference" and set(c.passage.refs) & matched and c.row not in rows
                ][: self.settings.max_answer_sentences - 1]
        if question.wants_reference and best.passage.kind == "essay" and answer.enabled("citation_graph"):
            for number in self.sentences.footnotes(best.row):
                chosen += [self._row(row, best.score) for row in self.sentences.reference_rows(number)]
        return chosen

    def select(
        self,
        question: QuestionProfile,
        scored: list[ScoredSentence],
        length: Length = "normal",
        parts: Sequence[ScoredSentence] = (),
    ) -> list[ScoredSentence]:
        """Pick the answer's sentences from ``scored`` (best first); returns them in reading order.

        After the sentences the question's form calls for, a candidate joins when its evidence
        probability is at least ``join_ratio`` of the best and it covers ``join_coverage``
        (IDF-weighted) of the question terms still uncovered, or when its probability is at least
        ``join_strong`` of the best whatever it covers (all three fitted) and it holds what the
        question's form asks for (:func:`~assistant.reranking.holds_kind`), or when it continues a
        chosen sentence ("This action…"). Summary and author questions take only what their form
        calls for; why questions add only strong candidates (term coverage would only add loosely
        related sentences). ``parts`` (the best sentences of parts of a several-question
        message) join right after what the form calls for.
        ``length="short"`` keeps the first sentence the form calls for; ``"long"`` doubles the
        character budgets and the sentence cap.
        """
        answer = self.settings.answer
        if answer.enabled("claimless"):
            scored = [s for s in scored if self._states_something(question, s)] or scored
        best = scored[0]
        chosen = self._structural(question, scored)
        chosen += [p for p in parts if p.row not in {c.row for c in chosen}]
        scale = 2 if length == "long" else 1
        if length == "short":
            return self._in_reading_order(chosen[:1])
        if question.kind == "timeline":
            return self._in_reading_order(chosen, scale, by_date=True)
        if question.kind in ("summary", "author") or not answer.enabled("coverage"):
            return self._in_reading_order(chosen, scale)
        rows = {c.row for c in chosen}
        q_terms = self.reranker.question_terms(question)
        covered = set().union(*(c.terms for c in chosen)) & q_terms
        chars = sum(c.span.end - c.span.start for c in chosen)
        for candidate in scored[1:]:
            if len(chosen) >= scale * self.settings.max_answer_sentences or chars >= scale * answer.answer_chars:
                break
            if candidate.row in rows or candidate.score < self.join_ratio * best.score:
                continue
            text = self._text(candidate)
            continues = any(self.sentences.neighbour(c.row, 1) == candidate.row for c in chosen) and CONTINUATION.match(
                text
            )
            # A strong candidate that lacks what the question's form asks for (a date for "when",
            # advice for "what should") would pad the answer: it joins only on its coverage.
            strong = (
                answer.enabled("strong_join")
                and candidate.score >= self.join_strong * best.score
                and holds_kind(question.kind, self._text(candidate), question.names) is not False
            )
            if question.kind == "why" and not strong:
                continue
            new = self.reranker.coverage(q_terms - covered, candidate.terms) if q_terms - covered else 0.0
            if new >= self.join_coverage or strong or (continues and answer.enabled("continuation")):
                chosen.append(candidate)
                rows.add(candidate.row)
                covered |= candidate.terms & q_terms
                chars += len(text)
        return self._in_reading_order(chosen, scale)

    def _in_reading_order(
        self, chosen: list[ScoredSentence], scale: int = 1, *, by_date: bool = False
    ) -> list[ScoredSentence]:
        """``chosen`` (most important first) cut to ``scale`` × ``answer.max_chars``, in reading order, essay first.

        With ``by_date``, ``chosen`` is in date order and stays so (the cap then drops the latest).
        """
        kept, chars = [], 0
        for sentence in _unique_rows(chosen):
            length = sentence.span.end - sentence.span.start
            if kept and chars + length > scale * self.settings.answer.max_chars:
                continue
            kept.append(sentence)
            chars += length
        return kept if by_date else sorted(kept, key=lambda s: (s.passage.kind == "reference", s.span.start))

    def unknown(self, question: QuestionProfile) -> tuple[list[str], set[str]]:
        """(names and numbers, asked-for terms) of the question that the corpus never uses.

        An acronym counts as used when the lexicon spells it out.
        """
        vocabulary = self.reranker.vocabulary
        numbers = {str(n) for n in self.reranker.reference_numbers(question)}
        names = [
            n
            for n in dict.fromkeys(question.names)
            if n not in numbers and (ts := self.reranker.terms(n)) and not any(t in vocabulary for t in ts)
        ]
        aliases = self.reranker.term_aliases
        unknown_focus = {aliases.get(t, t) for t in question.focus} - vocabulary
        return names, unknown_focus

    def answerability_features(
        self, question: QuestionProfile, scored: list[ScoredSentence], sentence_model: LogisticModel | None = None
    ) -> dict[str, float]:
        """The answerability model's feature row (:data:`ANSWERABILITY_FEATURES`).

        The evidence is judged on its own: sentences are ranked by ``sentence_model`` (default the
        reranker's) with ``exemplar_evidence`` set to 0, since a near miss's nearest tune questions
        are answerable ones about the same thing and would lend their evidence to it;
        ``exemplar_margin`` carries what the tune questions say about answerability.
        """
        reranker = self.reranker
        model = sentence_model or reranker.model
        # Only the sentences that borrowed evidence change score (``scored`` is scored by ``model``).
        own = [
            replace(s, score=model.probability(s.features | {"exemplar_evidence": 0.0}))
            if s.features.get("exemplar_evidence")
            else s
            for s in scored
            if s.features
        ]
        scored = sorted(own, key=lambda s: -s.score)
        names, unknown_focus = self.unknown(question)
        q_terms = reranker.question_terms(question)
        name_terms = reranker.name_terms(question)
        top = scored[:3]
        have = frozenset().union(*(s.terms for s in top))
        kinds = [holds_kind(question.kind, self._text(s), question.names) for s in top]
        focus = {reranker.term_aliases.get(t, t) for t in question.focus}
        paragraphs = frozenset().union(*(reranker.passage_terms[s.passage.id] for s in top))
        bm25 = max(((s.features or {}).get("bm25_raw", 0.0) for s in scored), default=0.0)
        return {
            "best": _logit(scored[0].score) / 10 if scored else -1.0,
            "second": _logit(scored[1].score) / 10 if len(scored) > 1 else -1.0,
            "dense": max(((s.features or {}).get("dense", 0.0) for s in scored), default=0.0),
            "bm25": bm25 / (bm25 + 5.0),
            "topicality": (scored[0].features or {}).get("topicality", 0.0) if scored else 0.0,
            "coverage": reranker.coverage(q_terms, have),
            "detail": reranker.coverage(q_terms - name_terms, have) if q_terms - name_terms else 1.0,
            "unknown_names": len(names) / len(set(question.names)) if question.names else 0.0,
            "unknown_focus": float(bool(unknown_focus)),
            "kind_missing": float(bool(kinds) and kinds[0] is not None and not any(kinds)),
            "kind_missing_best": float(bool(kinds) and kinds[0] is False),
            "focus_missing": float(bool(focus) and not focus & paragraphs),
            "asks_source": float(question.wants_reference),
            "asks_why": float(question.kind == "why"),
            "asks_fact": float(question.kind == "fact"),
            "asks_kind": float(question.kind in ("date", "number", "who", "where")),
            "exemplar_margin": (scored[0].features or {}).get("exemplar_margin", 0.0) if scored else 0.0,
        }

    def answerability(self, question: QuestionProfile, scored: list[ScoredSentence]) -> float:
        """The probability (0..1) that the essay answers ``question``: the answerability model."""
        if not scored:
            return 0.0
        return self.answerability_model.probability(self.answerability_features(question, scored))

    def _citation(self, n: int, sentence: ScoredSentence) -> Citation:
        """Cite ``sentence`` with exactly its own footnotes' references (a reference entry: itself)."""
        quote = self._text(sentence)
        numbers = sentence.passage.refs if sentence.passage.kind == "reference" else footnotes_in(quote)
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
        """The sentence mentioning ``artifact``, unless the question asks for what only the artifact holds.

        "What does Table 1 show?", "What is Table 1 supposed to compare?" are answered by "Table 1
        shows…"; "What columns does it use?", "How many rows?" are not, unless the sentence covers
        at least half the rest of the question (IDF-weighted).
        """
        mentions = [s for s in scored if artifact in self._text(s)]
        if not mentions:
            return None
        rest = self.reranker.question_terms(question) - set(self.reranker.terms(artifact))
        if not _ARTIFACT_CONTENTS.search(question.text) or (
            rest and self.reranker.coverage(rest, mentions[0].terms) >= 0.5
        ):
            return mentions[0]
        return None

    def missing_artifact(self, question: QuestionProfile) -> str | None:
        """A table or figure the question asks about that the essay mentions but does not contain."""
        return next((a for a in self.corpus.missing_artifacts if a.lower() in question.text.lower()), None)

    def compose(
        self,
        question: QuestionProfile,
        scored: list[ScoredSentence],
        length: Length = "normal",
        parts: Sequence[ScoredSentence | None] = (),
    ) -> Draft:
        """Compose the answer from scored sentences (best first), or decline.

        Args:
            question: The profiled question.
            scored: Candidate sentences, best first (:meth:`SentenceReranker.score_sentences`).
            length: ``short`` (the key sentence), ``normal`` or ``long`` (see :meth:`select`).
            parts: For a message asking several questions, the best sentence of parts searched
                on their own (None for a part the essay does not answer; see
                :func:`assistant.question.question_parts`): each is quoted, and when the essay
                answers every part the message is answered even if, read whole, it would be declined.

        """
        if self.settings.answer.enabled("structure") and (
            found := structure.answer(question.text, self.corpus, self.reranker.lexicon.aliases)
        ):
            quoted = _unique_rows([s for span in found.spans for s in self._sentences_within(span)])
            kept = self._in_reading_order(quoted)
            draft = self._draft(kept, 1.0)
            left_out = [s for s in quoted if s not in kept]
            # The lead names every item; the quotes stop at the answer's length cap, and say so.
            note = f" Not quoted, for length: {', '.join(_label(s) for s in left_out)}." if left_out else ""
            return replace(draft, text=f"{found.lead} {draft.text}{note}".strip())
        answerability = self.answerability(question, scored)
        if artifact := self.missing_artifact(question):
            # Only what the essay says about the absent table is answerable, never its contents.
            description = self._description(artifact, question, scored)
            if description is None:
                text = f"{REFUSAL} It refers to {artifact}, but {artifact} itself is not part of the essay’s text."
                return Draft(text, [], answerability, [], refused=True)
            return self._draft([description], answerability)
        # Questions about the essay's argument or author are answered from its structure.
        structural = question.kind in ("summary", "author")
        notes = self.settings.answer.enabled("missing_note") and not structural
        # Names the essay never uses, less the abbreviations of names it does ("PM"): these notes must be true.
        abbreviation = self.reranker.lexicon.abbreviation
        names = [n for n in self.unknown(question)[0] if abbreviation(n) is None] if notes else []
        listed = " or ".join(f"“{n}”" for n in names[:3])
        answered_parts = [p for p in parts if p is not None]
        by_parts = bool(parts) and len(answered_parts) == len(parts)
        if not scored or (not structural and not by_parts and answerability < self.refusal_threshold):
            # What is missing, when the question names it: "It never mentions “GDP”."
            missing = f" It never mentions {listed}." if listed else ""
            return Draft(f"{REFUSAL}{missing} {self.refusal_note}", [], answerability, [], refused=True)
        if not structural and answerability < self.refusal_threshold:  # declined whole, answered part by part
            sentences = self._in_reading_order(answered_parts)
        else:
            sentences = self.select(question, scored, length, answered_parts)
        draft = self._draft(sentences, answerability)
        if names:
            # Part of the question (or its premise) is not in the essay: say so, then what the essay says.
            return replace(draft, text=f"The essay does not mention {listed}; what it says: {draft.text}")
        if notes and (mismatch := self.mismatch(question, sentences)):
            return replace(draft, text=f"{mismatch} {draft.text}")
        if notes and answerability < self.hedge_below:
            return replace(draft, text=f"{HEDGE} {draft.text}")
        return draft

    def sentence_at(self, span: Offsets, score: float = 1.0) -> ScoredSentence | None:
        """The sentence row at corpus ``span`` (start, end), or None if no sentence has it."""
        row = self.sentences.row_at(*span)
        return None if row is None else self._row(row, score)

    def _sentences_within(self, span: Offsets) -> list[ScoredSentence]:
        """The sentence rows lying inside corpus ``span``, in reading order."""
        return [self._row(row) for row in self.sentences.rows_within(*span)]

    def _key_sentence(self, scored: list[ScoredSentence], among: Sequence[Offsets]) -> ScoredSentence | None:
        """The best-scoring sentence of ``among`` (spans): the one carrying an earlier answer's key fact."""
        wanted = set(among)
        ranked = [s for s in scored if (s.span.start, s.span.end) in wanted]
        if ranked:
            return ranked[0]
        return next((s for span in among if (s := self.sentence_at(span)) is not None), None)

    def more(
        self, question: QuestionProfile, scored: list[ScoredSentence], shown: set[Offsets], length: Length
    ) -> Draft:
        """The answer to "tell me more": evidence and context not in ``shown`` (spans quoted so far).

        First the best unseen evidence that clears the bar any further sentence clears
        (``join_ratio`` of the best's probability), then the unseen sentences of the paragraphs
        already quoted (their context), up to the answer's budget; :data:`NOTHING_MORE` when
        there is neither.
        """
        answerability = self.answerability(question, scored)
        bar = self.join_ratio * scored[0].score if scored else 1.0
        evidence = [s for s in scored if s.score >= bar]
        # Essay paragraphs quoted so far (a reference entry's ``paragraph`` is its number, not a paragraph).
        quoted = {
            s.passage.paragraph
            for span in shown
            if (s := self.sentence_at(span)) is not None and s.passage.kind == "essay"
        }
        context = [
            s for row in self.sentences.rows(kind="essay") if (s := self._row(row, 0.0)).passage.paragraph in quoted
        ]
        chosen = [
            s
            for s in {s.row: s for s in evidence + context}.values()
            if (s.span.start, s.span.end) not in shown and self._states_something(question, s)
        ]
        if not chosen:
            return Draft(NOTHING_MORE, [], answerability, [], refused=True)
        scale = 2 if length == "long" else 1
        limit = 1 if length == "short" else scale * self.settings.max_answer_sentences
        kept, chars = [], 0
        for sentence in chosen[:limit]:
            if kept and chars >= scale * self.settings.answer.answer_chars:
                break
            kept.append(sentence)
            chars += sentence.span.end - sentence.span.start
        return self._draft(self._in_reading_order(kept, scale), answerability)

    def shorter(self, scored: list[ScoredSentence], previous: Sequence[Offsets]) -> Draft | None:
        """The previous answer's key sentence alone, under :data:`SHORTER_NOTE`; None without one."""
        key = self._key_sentence(scored, previous)
        if key is None:
            return None
        draft = self._draft([key], key.score)
        return replace(draft, text=f"{SHORTER_NOTE} {draft.text}")

    def explain_previous(self, scored: list[ScoredSentence], previous: Sequence[Offsets]) -> Draft | None:
        """The reason for an earlier answer's claim ("Why?"), if the sentences around it give one.

        The earlier answer's essay sentences are tried as the claim, best-scoring first: its reason
        comes from :meth:`_explanation`, else from the nearest sentence of its paragraph that gives
        one ("Japan's justification also followed U.S. rationale: …"), and must be a sentence the
        earlier answer did not quote. When no claim has a marked reason, the best claim's
        :meth:`_explanation` even so (a claim is most often followed by its reason); None when it
        has none.
        """
        shown = set(previous)
        ranked = {(s.span.start, s.span.end): s for s in reversed(scored)}
        claims = sorted(
            (c for span in previous if (c := ranked.get(span) or self.sentence_at(span, 0.0)) is not None),
            key=lambda c: -c.score,
        )
        unmarked: Draft | None = None
        for claim in (c for c in claims if c.passage.kind == "essay"):
            reasons = [r for r in self._explanation(claim) if (r.span.start, r.span.end) not in shown]
            if reasons and any(_CAUSAL.search(self._text(r)) or leans_on_previous(self._text(r)) for r in reasons):
                return self._draft(self._in_reading_order(reasons), claim.score)
            if reasons and unmarked is None:
                unmarked = self._draft(self._in_reading_order(reasons), claim.score)
            paragraph = [
                s
                for row in self.sentences.paragraph_rows(claim.row)
                if ((s := self._row(row, claim.score)).span.start, s.span.end) not in shown
                and _REASON_GIVEN.search(self._text(s))
            ]
            if paragraph:
                position = self.sentences.position
                nearest = min(paragraph, key=lambda s: abs(position(s.row) - position(claim.row)))
                return self._draft([nearest], claim.score)
        return unmarked

    def mismatch(self, question: QuestionProfile, sentences: list[ScoredSentence]) -> str:
        """A note when the quoted sentences give another year or country than the question names.

        "What did Japan do in December 2017?" quoted with the December 2018 ban: "The quoted
        sentences give 2018, not 2017:" (the year is read from the quoted sentences that name the
        countries the question names, when there are any). Empty when they agree (or name no year
        or country).
        """
        countries = self.reranker.country_names
        asked = {n for n, ts in countries.items() if ts <= set(question.terms)}
        # The year is checked on the sentences about the country asked about, when any is quoted:
        # "What did Japan do in December 2017?" is not answered by the U.S. step of December 2017.
        about = [s for s in sentences if all(countries[n] <= s.terms for n in asked)] if asked else []
        text = " ".join(self._text(s) for s in about or sentences)
        asked_years = set(YEAR.findall(question.text))
        quoted_years = list(dict.fromkeys(YEAR.findall(text)))
        if asked_years and quoted_years and not asked_years & set(quoted_years):
            return f"The quoted sentences give {', '.join(quoted_years)}, not {', '.join(sorted(asked_years))}:"
        have = set().union(*(s.terms for s in sentences)) if sentences else set()
        quoted = [n for n, ts in countries.items() if ts <= have]
        if asked and quoted and not asked & set(quoted):
            listed = ", ".join(f"“{n}”" for n in quoted)
            return f"The quoted sentences name {listed}, not {', '.join(f'“{n}”' for n in sorted(asked))}:"
        return ""

    def _draft(self, sentences: list[ScoredSentence], answerability: float) -> Draft:
        parts, citations = [], []
        for n, sentence in enumerate(sentences, start=1):
            citation = self._citation(n, sentence)
            citations.append(citation)
            parts.append(f"{strip_footnotes(citation.quote)} [{n}]")
        return Draft(" ".join(parts), citations, answerability, sentences)
