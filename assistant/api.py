"""The Python API: ``answer(question)`` and the reusable :class:`Assistant`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.answering import Answer, ExtractiveAnswerer
from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.errors import AssistantError
from assistant.question import profile, rewrite_followup, validate
from assistant.retrieval import RetrievedPassage

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from assistant.index import LoadedIndex

log = logging.getLogger(__name__)

__all__ = ["Answer", "Assistant", "answer"]


@dataclass
class _Loaded:
    index: LoadedIndex
    chain: Runnable
    answerer: ExtractiveAnswerer


class Assistant:
    """Answers questions about the essay, loading the model and index once.

    The index is opened on the first question (built first if missing or stale). When
    another process swaps in a new build, the next question picks it up; questions already
    running finish on the build they started with, which stays readable until they are done
    (see :class:`assistant.index.BuildLease`). A question whose search fails because its build
    was swapped out meanwhile is answered again from the new build. Safe to share between
    threads.

    Args:
        settings: Settings to use; default ``Settings()`` (environment variables applied).

    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def _load(self) -> _Loaded:
        from assistant import index
        from assistant.chain import build_chain
        from assistant.embeddings import get_embedder
        from assistant.retrieval import HybridRetriever

        with self._lock:
            loaded = self._loaded
            if loaded is not None and index.served_build(self.settings) == loaded.index.build:
                return loaded
            opened = index.open_index(self.settings)
            corpus = load_corpus(self.settings.corpus_path)
            answerer = ExtractiveAnswerer(opened, corpus, self.settings)
            chain = build_chain(get_embedder(self.settings), HybridRetriever(opened, self.settings), answerer)
            self._loaded = _Loaded(opened, chain, answerer)
            return self._loaded

    def answer(self, question: str, *, history: Sequence[str] | None = None, id: str | None = None) -> Answer:
        """Answer one question with citations, or decline when the essay does not say.

        Args:
            question: The question, 1..``max_question_chars`` characters, no control characters.
            history: Earlier questions of the conversation, oldest first; a follow-up such as
                "When did Japan do that?" is made standalone with their key terms.
            id: Copied to ``Answer.id``.

        Raises:
            InvalidQuestionError: For an empty, over-long or control-character question.
            IndexStoreError, ModelError, CorpusError: If the index, model or corpus is unusable.

        """
        text = validate(question, self.settings.max_question_chars)
        if isinstance(history, str):
            history = [history]
        limit = self.settings.max_question_chars
        history = [h[:limit] for h in (history or []) if isinstance(h, str)]
        loaded = self._load()  # not timed: the first question also loads the model and index
        started = time.perf_counter()
        standalone = rewrite_followup(text, history)
        try:
            state = loaded.chain.invoke({"question": profile(standalone)})
        except AssistantError:
            raise
        except Exception:
            # A rebuild may have removed the build under this question (e.g. on a Chroma
            # server); if so, answer from the new build. Otherwise it is a real failure.
            fresh = self._load()
            if fresh is loaded:
                raise
            log.info("index changed during a question; answering it from build %s", fresh.index.build)
            loaded = fresh
            state = loaded.chain.invoke({"question": profile(standalone)})
        retrieved = state["retrieved"][: self.settings.top_k]
        # Every cited passage is shown, even one the retriever ranked below top_k (score 0).
        shown = {r.passage.id for r in retrieved}
        for citation in state["citations"]:
            if citation.passage_id not in shown:
                shown.add(citation.passage_id)
                retrieved.append(RetrievedPassage(loaded.index.passages[citation.passage_id], 0.0, None, None))
        return Answer(
            question=text,
            answer=state["answer"],
            refused=not state["citations"],
            citations=state["citations"],
            passages=retrieved,
            timings_ms={
                "retrieve": state["retrieve_ms"],
                "answer": state["answer_ms"],
                "total": (time.perf_counter() - started) * 1e3,
            },
            id=id,
            standalone_question=standalone,
            answerability=state["answerability"],
        )

    def answer_many(self, items: Iterable[tuple[str | None, object]]) -> Iterable[Answer | AssistantError]:
        """Answer ``(id, question)`` pairs in order, yielding an error in place of a bad one."""
        for item_id, question in items:
            try:
                yield self.answer(question, id=item_id)  # type: ignore[arg-type]
            except AssistantError as exc:
                yield exc


_default: Assistant | None = None
_default_lock = threading.Lock()


def answer(question: str, *, history: Sequence[str] | None = None, settings: Settings | None = None) -> Answer:
    """Answer ``question`` from the essay. See :meth:`Assistant.answer`.

    With ``settings=None`` a process-wide :class:`Assistant` is reused across calls; with
    explicit settings a new one is made (load cost: a few seconds).
    """
    global _default
    if settings is not None:
        return Assistant(settings).answer(question, history=history)
    with _default_lock:
        if _default is None:
            _default = Assistant()
    return _default.answer(question, history=history)
