"""Generative answering: the LLM writes, the checker verifies, the extractive answer is the fallback.

One chain stage (:meth:`GenerativeAnswerer.run`) after the extractive one. The extractive
answer is always computed first (a few milliseconds) and is returned instead of the LLM's when:

* the extractive answerer declined (the evidence scores below ``refusal_threshold``): the LLM
  is not called, since a checked answer could only cite passages already judged not to answer;
* the LLM call fails (not installed, timeout, connection error, rate limit, bad reply);
* the LLM declined, or none of its sentences survived the citation check (and, when
  ``llm_second_opinion`` is on, the LLM's own second opinion on each sentence that passed);
* what survived does not answer the question: it lacks the date or number a date/number
  question asks for, or, read in the context of the essay it cites, it covers the question's
  terms (IDF-weighted) less than :data:`COVERAGE_RATIO` times as well as the extractive answer
  read the same way (:meth:`GenerativeAnswerer.does_not_answer`).

The reason is recorded as ``fallback`` in the answer.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from assistant.errors import LLMError
from assistant.llm import DECLINE, LLMWriter
from assistant.patterns import YEAR_OR_MONTH

if TYPE_CHECKING:
    from assistant.chain import ChainState
    from assistant.config import Settings
    from assistant.question import QuestionProfile
    from assistant.types import Citation, Passage, RetrievedPassage
    from assistant.verification import CitationChecker

log = logging.getLogger(__name__)

MAX_PROMPT_PASSAGES = 8  # top_k passages plus any the extractive answer cites from further down
# The checked answer, read in its context, must cover at least this share of what the extractive answer
# covers of the question. Fitted by ``python -m assistant.llm_eval fit`` on the tune questions only
# (tests/data/tune.jsonl: their gold answers replayed, which should be shown, against each one answered
# with another question's gold answer, which should not); the sweep is in docs/llm_coverage_fit.json:
# 0.5 makes the fewest errors, 25 of 195 cases (10 answers dropped, 15 non-answers kept). The rule it
# replaces read the answer and its quotes alone: on the same cases it made 47 errors at 0.5 (34 answers
# dropped: a direct answer does not restate the question) and did best by never firing (32).
COVERAGE_RATIO = 0.5
# Any number, a year or "one" too (unlike the reranker's _QUANTITY: here any number in the answer will do).
_NUMBER = re.compile(
    r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty\S*|thirty\S*)\b", re.I
)


class GenerativeAnswerer:
    """Answers with the configured LLM, checked by a :class:`CitationChecker`."""

    def __init__(self, writer: LLMWriter, checker: CitationChecker, settings: Settings) -> None:
        self.writer = writer
        self.checker = checker
        self.settings = settings

    def prompt_passages(self, retrieved: list[RetrievedPassage], extractive_citations: list[Any]) -> list[Passage]:
        """The passages the LLM sees: the top ``top_k``, then any the extractive answer cites."""
        passages = [r.passage for r in retrieved[: self.settings.top_k]]
        ids = {p.id for p in passages}
        for citation in extractive_citations:
            if citation.passage_id not in ids and len(passages) < MAX_PROMPT_PASSAGES:
                ids.add(citation.passage_id)
                passages.append(self.checker.index.passages[citation.passage_id])
        return passages

    @cached_property
    def _context(self) -> list[frozenset[str]]:
        """Per corpus sentence row, the terms it is read with (a frozenset of stemmed terms per row).

        Its own and those of the sentence before it in its paragraph (what an "Indeed, …" or "As such,
        …" continues); for a reference entry, its own and those of the essay sentences that cite it
        (its footnote "(n)" is the link).
        """
        table = self.checker.reranker.sentences
        out = []
        for row in range(len(table)):
            terms = set(table.terms[row])
            passage = table.passage(row)
            if passage.kind == "reference":
                terms |= {t for n in passage.refs for r in table.citing_rows(n) for t in table.terms[r]}
            elif (before := table.neighbour(row, -1)) is not None:
                terms |= table.terms[before]
            out.append(frozenset(terms))
        return out

    def answered(self, question: QuestionProfile, text: str, citations: Iterable[Citation]) -> float:
        """How much of ``question`` (IDF-weighted share of its terms, 0..1) ``text`` covers in context.

        The context is what its citations quote, each sentence read as :attr:`_context` says: a direct
        answer ("April 27, 2023.", "Because other countries …") need not repeat the question's words
        when the essay it quotes states them ("The success … hinged on …. Indeed, if other …").
        """
        reranker = self.checker.reranker
        have = set(reranker.terms(text))
        for citation in citations:
            row = reranker.sentences.find_row(citation.passage_id, citation.start)
            have |= self._context[row] if row is not None else set(reranker.terms(citation.quote))
        return self.checker.coverage(set(question.terms), frozenset(have))

    def does_not_answer(
        self,
        question: QuestionProfile,
        text: str,
        extractive_text: str,
        cited: Iterable[Citation] = (),
        extractive_cited: Iterable[Citation] = (),
    ) -> str | None:
        """Why the checked ``text`` (with its citations ``cited``) does not answer ``question`` (``None`` when it does).

        Both answers are read the same way (:meth:`answered`), each with the passages it cites.
        """
        if question.kind == "date" and not YEAR_OR_MONTH.search(text):
            return "the checked LLM answer gives no date for a date question"
        if question.kind == "number" and not _NUMBER.search(text):
            return "the checked LLM answer gives no number for a how-many question"
        mine = self.answered(question, text, cited)
        theirs = self.answered(question, extractive_text, extractive_cited)
        if mine < COVERAGE_RATIO * theirs:
            return f"the checked LLM answer covers too little of the question ({mine:.2f} vs {theirs:.2f} extractive)"
        return None

    def run(self, state: ChainState) -> ChainState:
        """Chain stage: adds ``backend``, ``verified``, ``fallback``, ``llm_ms``, ``check_ms``.

        Replaces ``answer``/``citations`` with the checked LLM answer unless it falls back.
        Never raises for LLM failures; they become the ``fallback`` reason (logged as a warning).
        """
        question: QuestionProfile = state["question"]
        out = {"backend": "extractive", "verified": None, "fallback": None}
        if state["refused"]:
            return state | out | {"fallback": "the essay does not answer this (extractive check); LLM not asked"}
        passages = self.prompt_passages(state["retrieved"], state["citations"])
        started = time.perf_counter()
        try:
            generation = self.writer.generate(question.text, passages)
        except LLMError as exc:
            log.info("LLM unavailable, answering extractively: %s", exc)
            return state | out | {"fallback": str(exc), "llm_ms": (time.perf_counter() - started) * 1e3}
        llm_ms = generation.elapsed_ms
        started = time.perf_counter()
        judged_ms = 0.0

        def judge(text: str, quotes: list[str]) -> str | None:  # timed apart: check_ms is the check alone
            nonlocal judged_ms
            asked = time.perf_counter()
            try:
                return self.writer.second_opinion(text, quotes)
            finally:
                judged_ms += (time.perf_counter() - asked) * 1e3

        verification = self.checker.check(
            list(generation.sentences),
            passages,
            judge if self.settings.llm_second_opinion else None,
            question=question.text,
        )
        check_ms = (time.perf_counter() - started) * 1e3 - judged_ms
        out |= {"verified": verification.to_dict(), "llm_ms": llm_ms + judged_ms, "check_ms": check_ms}
        declined = all(DECLINE.lower().rstrip(".") in text.lower() for text, _ in generation.sentences)
        if not generation.sentences:
            reason = "the LLM wrote no answer sentence (empty or unreadable reply)"
        elif declined:
            reason = "the LLM declined to answer from the passages"
        elif not verification.kept:
            reason = "no generated sentence was supported by the passage it cites"
        else:
            reason = self.does_not_answer(
                question,
                verification.answer,
                state["answer"],
                verification.citations,
                state["citations"],
            )
        if reason:
            log.info("falling back to the extractive answer: %s", reason)
            out["verified"]["used"] = False
            return state | out | {"fallback": reason}
        out["verified"]["used"] = True
        return (
            state
            | out
            | {"backend": self.settings.llm, "answer": verification.answer, "citations": verification.citations}
        )
