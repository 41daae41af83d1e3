"""The retrieval chain in LangChain Expression Language: question -> retrieve -> rerank + answer.

The chain's input is ``{"question": QuestionProfile}``; its output adds ``query_vector``,
``retrieved`` (passages reranked by their best sentence) and ``answer``/``citations``, so the
evidence travels with the answer (as in LangChain's ``create_retrieval_chain``) and citations
can be checked.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableLambda

from assistant.answering import ExtractiveAnswerer
from assistant.embeddings import Embedder
from assistant.retrieval import HybridRetriever

if TYPE_CHECKING:
    from assistant.generative import GenerativeAnswerer


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
        draft = answerer.compose(state["question"], scored)
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
