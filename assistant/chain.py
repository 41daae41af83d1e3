"""The retrieval chain in LangChain Expression Language: question -> retrieve -> rerank + answer.

The chain's state is a :class:`ChainState`. Its input is ``{"question": QuestionProfile}``,
optionally with ``length`` and, for a follow-up, ``intent``, ``previous`` (the spans the previous
answer quoted) and ``shown`` (the spans quoted on this topic so far); ``last``/``last_answer`` are
the spans and text of the conversation's last answer, which no answer repeats. Its output adds
``query_vector``, ``retrieved`` (passages reranked by their best sentence) and
``answer``/``citations``, so the evidence travels with the answer (as in LangChain's
``create_retrieval_chain``) and citations can be checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Required, TypedDict, cast

from langchain_core.runnables import Runnable, RunnableLambda

from assistant.answering import ALREADY_QUOTED, REFUSAL, REFUSED_AGAIN, ExtractiveAnswerer
from assistant.embeddings import Embedder
from assistant.question import question_parts
from assistant.retrieval import HybridRetriever
from assistant.types import Draft

if TYPE_CHECKING:
    import numpy as np

    from assistant.generative import GenerativeAnswerer
    from assistant.question import QuestionProfile
    from assistant.types import Backend, Citation, Intent, Length, Offsets, RetrievedPassage, ScoredSentence


class ChainState(TypedDict, total=False):
    """What the chain's stages pass on: each returns the state it was given with its keys added.

    Only ``question`` is required; the other input keys have defaults, and each stage's keys
    appear once it has run.

    Attributes:
        question: The question to answer (standalone), profiled.
        length: How long the answer may run; default ``"normal"``.
        intent: How the question leans on the conversation; default ``"new"``.
        previous: Spans the previous answer quoted (the turn a follow-up leans on); default none.
        shown: Spans the conversation quoted on this topic so far; default none.
        last: Spans the conversation's last answer quoted; default none.
        last_answer: That answer's text; default ``""``.
        parts: For a message asking several questions, the best sentence of the parts searched
            on their own (None for a part the essay does not answer), which the answer quotes
            (compose stage).
        query_vector: The question's embedding, shape ``(dim,)``, unit length (retrieve stage).
        retrieved: The passages, best first: fused ranking after the retrieve stage, reranked
            after the compose stage.
        retrieve_ms: Wall time of the retrieve stage, milliseconds.
        answer: The answer text with ``[n]`` markers, or the refusal (compose stage; the LLM
            stage replaces it with a checked LLM answer).
        citations: One per marker, in marker order (replaced with ``answer``).
        refused: The essay does not answer the question.
        answerability: The answerability model's probability, 0..1.
        answer_ms: Wall time of the compose stage, milliseconds.
        backend: Who wrote ``answer`` (LLM stage only, as the keys below).
        verified: The citation check of the LLM's answer
            (:meth:`assistant.verification.Verification.to_dict` plus ``used``), or ``None``.
        fallback: Why the extractive answer is shown although an LLM is configured, or ``None``.
        llm_ms: Wall time of the LLM calls, milliseconds.
        check_ms: Wall time of the citation check, milliseconds.

    """

    question: Required[QuestionProfile]
    length: Length
    intent: Intent
    previous: tuple[Offsets, ...]
    shown: frozenset[Offsets]
    last: tuple[Offsets, ...]
    last_answer: str
    parts: list[ScoredSentence | None]
    query_vector: np.ndarray
    retrieved: list[RetrievedPassage]
    retrieve_ms: float
    answer: str
    citations: list[Citation]
    refused: bool
    answerability: float
    answer_ms: float
    backend: Backend
    verified: dict[str, Any] | None
    fallback: str | None
    llm_ms: float
    check_ms: float


def build_chain(
    embedder: Embedder,
    retriever: HybridRetriever,
    answerer: ExtractiveAnswerer,
    generator: GenerativeAnswerer | None = None,
) -> Runnable[ChainState, ChainState]:
    """Wire the stages; each adds its wall time as ``retrieve_ms`` / ``answer_ms``.

    With a ``generator`` (an LLM backend is configured) a third stage writes and checks an LLM
    answer, falling back to the extractive one (see :mod:`assistant.generative`).
    """

    def retrieve(state: ChainState) -> ChainState:
        started = time.perf_counter()
        vector = embedder.encode([state["question"].text])[0]
        with embedder.cpu_limits():  # its matrix-vector products: 1 BLAS thread is fastest on busy cores
            retrieved = retriever.retrieve(state["question"], vector)
        elapsed_ms = (time.perf_counter() - started) * 1e3
        return state | {"query_vector": vector, "retrieved": retrieved, "retrieve_ms": elapsed_ms}

    def part_evidence(question: QuestionProfile, draft: Draft) -> list[ScoredSentence | None]:
        """The best sentence of parts of a message asking several questions (None: the essay does not answer it).

        See :func:`assistant.question.question_parts`. A part is retrieved, scored and judged
        answerable on its own. When ``draft`` (the message answered whole) is declined, every part
        is; otherwise only the part its quoted sentences cover least (IDF-weighted terms), since
        each part costs a question embedding (about 9 ms). Empty for a message asking one question.
        """
        if not answerer.settings.answer.enabled("question_parts"):
            return []
        reranker = answerer.reranker
        parts = [reranker.read(text) for text in question_parts(question.text)]
        if parts and not draft.refused:
            quoted = frozenset().union(*(s.terms for s in draft.sentences))
            parts = [min(parts, key=lambda part: reranker.coverage(reranker.question_terms(part), quoted))]
        if not parts:
            return []
        vectors = embedder.encode([part.text for part in parts])
        best = []
        with embedder.cpu_limits():
            for part, vector in zip(parts, vectors, strict=True):
                scored = reranker.score_sentences(part, vector, retriever.retrieve(part, vector))
                answered = bool(scored) and answerer.answerability(part, scored) >= answerer.refusal_threshold
                best.append(scored[0] if answered else None)
        return best

    def compose(state: ChainState) -> ChainState:
        started = time.perf_counter()
        reranker = answerer.reranker
        with embedder.cpu_limits():
            scored = reranker.score_sentences(state["question"], state["query_vector"], state["retrieved"])
        draft = _conversational(answerer, state, scored)
        if state.get("intent", "new") in ("new", "followup") and any(parts := part_evidence(state["question"], draft)):
            draft = _conversational(answerer, state | {"parts": parts}, scored)
        # The passages the answer cites rank first, in the order of their best sentence.
        return state | {
            "retrieved": reranker.rerank(state["retrieved"], scored, cited={s.passage.id for s in draft.sentences}),
            "answer": draft.text,
            "citations": draft.citations,
            "refused": draft.refused,
            "answerability": draft.answerability,
            "answer_ms": (time.perf_counter() - started) * 1e3,
        }

    chain = _stage(retrieve) | _stage(compose)
    return chain if generator is None else chain | _stage(generator.run)


def _stage(step: Callable[[ChainState], ChainState]) -> RunnableLambda:
    """``step`` as a chain stage named after it, which LangChain sees as ``dict[str, Any] -> dict[str, Any]``.

    LangChain builds a stage's input and output schemas (``input_schema``, ``get_graph()``) from its
    annotations, and pydantic cannot build one from a ``typing.TypedDict`` on Python 3.11, so the
    stages show LangChain the plain dict they have always shown it.
    """

    def stage(state: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], step(cast(ChainState, state)))

    return RunnableLambda(stage, name=step.__name__)


def _conversational(answerer: ExtractiveAnswerer, state: ChainState, scored: list[ScoredSentence]) -> Draft:
    """The draft for the question in its conversation.

    "Why?" gives the reason for the previous answer's claim; "shorter" its key sentence; "more"
    the best evidence the conversation has not quoted yet. A question answered by exactly the
    sentences the last answer quoted says so (:data:`ALREADY_QUOTED`) instead of repeating it.
    """
    question, intent, length = state["question"], state.get("intent", "new"), state.get("length", "normal")
    previous: tuple[Offsets, ...] = tuple(state.get("previous", ()))
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
    draft = answerer.compose(question, scored, length, state.get("parts", []))
    if draft.refused and draft.text == state.get("last_answer"):
        # Declined twice running: say it is declined again rather than repeat the same words.
        return replace(draft, text=draft.text.replace(REFUSAL, REFUSED_AGAIN, 1))
    last = set(state.get("last", ()))
    if last and not draft.refused and _spans(draft) == last:
        # The evidence that answers it is what the previous answer quoted: say so rather than repeat
        # it, and, if the previous answer said so already, go on to the evidence not yet quoted.
        if not state.get("last_answer", "").startswith(ALREADY_QUOTED):
            return replace(draft, text=f"{ALREADY_QUOTED} {draft.text}")
        return answerer.more(question, scored, set(state.get("shown", ())) | last, length)
    return draft


def _spans(draft: Draft) -> set[Offsets]:
    return {(c.start, c.end) for c in draft.citations}
