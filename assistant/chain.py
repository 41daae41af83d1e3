"""The retrieval chain in LangChain Expression Language: question -> retrieve -> rerank + answer.

The chain's input is ``{"question": QuestionProfile}``, optionally with ``length``
(:data:`assistant.types.Length`) and, for a follow-up, ``intent``
(:data:`assistant.types.Intent`), ``previous`` (the spans the previous answer quoted) and
``shown`` (the spans quoted on this topic so far); ``last``/``last_answer`` are the spans and
text of the conversation's last answer, which no answer repeats. Its output adds ``query_vector``,
``retrieved`` (passages reranked by their best sentence) and ``answer``/``citations``, so the
evidence travels with the answer (as in LangChain's ``create_retrieval_chain``) and citations
can be checked.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableLambda

from assistant.answering import ALREADY_QUOTED, ExtractiveAnswerer
from assistant.embeddings import Embedder
from assistant.retrieval import HybridRetriever
from assistant.types import Draft

if TYPE_CHECKING:
    from assistant.generative import GenerativeAnswerer
    from assistant.types import ScoredSentence


def build_chain(
    embedder: Embedder,
    retriever: HybridRetriever,
    answerer: ExtractiveAnswerer,
    generator: GenerativeAnswerer | None = None,
) -> Runnable:
    """Wire the stages; each adds its wall time as ``retrieve_ms`` / ``answer_ms``.

    With a ``generator`` (an LLM backend is configured) a third stage writes and checks an LLM
    answer, falling back to the extractive one (see :mod:`assistant.generative`).
    """

    def retrieve(state: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        vector = embedder.encode([state["question"].text])[0]
        with embedder.cpu_limits():  # its matrix-vector products: 1 BLAS thread is fastest on busy cores
            retrieved = retriever.retrieve(state["question"], vector)
        elapsed_ms = (time.perf_counter() - started) * 1e3
        return state | {"query_vector": vector, "retrieved": retrieved, "retrieve_ms": elapsed_ms}

    def compose(state: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        reranker = answerer.reranker
        with embedder.cpu_limits():
            scored = reranker.score_sentences(state["question"], state["query_vector"], state["retrieved"])
        draft = _conversational(answerer, state, scored)
        # The passages the answer cites rank first, in the order of their best sentence.
        return state | {
            "retrieved": reranker.rerank(state["retrieved"], scored, cited={s.passage.id for s in draft.sentences}),
            "answer": draft.text,
            "citations": draft.citations,
            "refused": draft.refused,
            "answerability": draft.answerability,
            "answer_ms": (time.perf_counter() - started) * 1e3,
        }

    chain = RunnableLambda(retrieve) | RunnableLambda(compose)
    return chain if generator is None else chain | RunnableLambda(generator.run)


def _conversational(answerer: ExtractiveAnswerer, state: dict[str, Any], scored: list[ScoredSentence]) -> Draft:
    """The draft for the question in its conversation.

    "Why?" gives the reason for the previous answer's claim; "shorter" its key sentence; "more"
    the best evidence the conversation has not quoted yet. A question answered by exactly the
    sentences the last answer quoted says so (:data:`ALREADY_QUOTED`) instead of repeating it.
    """
    question, intent, length = state["question"], state.get("intent", "new"), state.get("length", "normal")
    previous: tuple[tuple[int, int], ...] = tuple(state.get("previous", ()))
    if intent == "why" and previous:
        if (draft := answerer.explain_previous(scored, previous)) is not None:
            return draft
        # No reason next to the claim: the best evidence for "why …" that the user has not seen.
        unseen = [s for s in scored if (s.span.start, s.span.end) not in set(previous)]
        if not (draft := answerer.compose(question, unseen, length)).refused:
            return draft
    if intent == "shorter" and previous and (draft := answerer.shorter(scored, previous)) is not None:
        return draft
    if intent == "more":
        return answerer.more(question, scored, set(state.get("shown", ())) | set(previous), length)
    draft = answerer.compose(question, scored, length)
    last = set(state.get("last", ()))
    if last and not draft.refused and _spans(draft) == last:
        # The evidence that answers it is what the previous answer quoted: say so rather than repeat
        # it, and, if the previous answer said so already, go on to the evidence not yet quoted.
        if not state.get("last_answer", "").startswith(ALREADY_QUOTED):
            return replace(draft, text=f"{ALREADY_QUOTED} {draft.text}")
        return answerer.more(question, scored, set(state.get("shown", ())) | last, length)
    return draft


def _spans(draft: Draft) -> set[tuple[int, int]]:
    return {(c.start, c.end) for c in draft.citations}
