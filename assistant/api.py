"""The Python API: ``answer(question)`` and the reusable :class:`Assistant`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.answering import Answer, ExtractiveAnswerer
from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.errors import AssistantError
from assistant.language import english_only_message, foreign_language, proper_names
from assistant.question import rewrite_followup, validate
from assistant.retrieval import RetrievedPassage

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from assistant.embeddings import Embedder
    from assistant.generative import GenerativeAnswerer
    from assistant.index import LoadedIndex
    from assistant.reranking import SentenceReranker

log = logging.getLogger(__name__)

__all__ = ["Answer", "Assistant", "answer"]


@dataclass
class _Loaded:
    index: LoadedIndex
    chain: Runnable
    answerer: ExtractiveAnswerer
    generator: GenerativeAnswerer | None = None


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

    @property
    def refusal_threshold(self) -> float:
        """The answerability (0..1) below which questions are declined: the setting, else the fitted value."""
        if self.settings.refusal_threshold is not None:
            return self.settings.refusal_threshold
        from assistant.reranking import load_fitted

        return float(load_fitted()["answerability"]["threshold"])

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
            embedder = get_embedder(self.settings)
            generator = self._generator(answerer.reranker, embedder)
            chain = build_chain(
                embedder, HybridRetriever(opened, self.settings, answerer.reranker.terms), answerer, generator
            )
            self._loaded = _Loaded(opened, chain, answerer, generator)
            return self._loaded

    def _generator(self, reranker: SentenceReranker, embedder: Embedder) -> GenerativeAnswerer | None:
        """The LLM stage when ``settings.llm`` names a backend (imports nothing LLM-specific otherwise)."""
        if self.settings.llm == "extractive":
            return None
        from assistant.generative import GenerativeAnswerer
        from assistant.llm import LLMWriter
        from assistant.verification import CitationChecker

        checker = CitationChecker(reranker, embedder, self.settings)
        return GenerativeAnswerer(LLMWriter(self.settings), checker, self.settings)

    def _standalone(self, text: str, history: Sequence[str], generator: GenerativeAnswerer | None) -> str:
        """``text`` made standalone: by the LLM when one is configured, else (or if it fails) by rule."""
        if history and generator is not None:
            from assistant.errors import LLMError
            from assistant.text import terms

            try:
                rewritten = generator.writer.rewrite_followup(text, list(history))
                # A small model may answer instead of rewriting: keep it only if it still asks the
                # question (shares a content term with it) and is not much longer than its sources.
                limit = min(self.settings.max_question_chars, 2 * (len(text) + len(history[-1])))
                if 0 < len(rewritten) <= limit and set(terms(rewritten)) & set(terms(text)):
                    return rewritten
                log.info("LLM follow-up rewrite %r rejected; using the rule-based one", rewritten[:200])
            except LLMError as exc:
                log.info("LLM follow-up rewriting failed, using the rule-based one: %s", exc)
        return rewrite_followup(text, history)

    def answer(self, question: str, *, history: Sequence[str] | None = None, id: str | None = None) -> Answer:
        """Answer one question with citations, or decline when the essay does not say.

        Args:
            question: The question, 1..``max_question_chars`` characters, no control characters.
            history: Earlier questions of the conversation, oldest first; a follow-up such as
                "When did Japan do that?" is made standalone: by the LLM when one is configured
                (checked to still share a content term with the question), else with their key terms.
            id: Copied to ``Answer.id``.

        Raises:
            InvalidQuestionError: For an empty, over-long or control-character question.
                (A question in another language than English is not an error: it is declined
                with one line saying the assistant reads English; see :mod:`assistant.language`.)
            IndexStoreError, ModelError, CorpusError: If the index, model or corpus is unusable.

        """
        text = validate(question, self.settings.max_question_chars)
        if isinstance(history, str):
            history = [history]
        limit = self.settings.max_question_chars
        history = [h[:limit] for h in (history or []) if isinstance(h, str)]
        loaded = self._load()  # not timed: the first question also loads the model and index
        started = time.perf_counter()
        foreign = foreign_language(text, proper_names(loaded.answerer.corpus.text))
        if foreign is not None:  # the model and index are English: say so rather than "The essay does not say."
            return Answer(
                question=text,
                answer=english_only_message(foreign),
                refused=True,
                citations=[],
                passages=[],
                timings_ms={"total": (time.perf_counter() - started) * 1e3},
                id=id,
                standalone_question=text,
            )
        standalone = self._standalone(text, history, loaded.generator)
        try:
            state = loaded.chain.invoke({"question": loaded.answerer.reranker.read(standalone)})
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
            state = loaded.chain.invoke({"question": loaded.answerer.reranker.read(standalone)})
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
            refused=state["refused"],
            citations=state["citations"],
            passages=retrieved,
            backend=state.get("backend", "extractive"),
            timings_ms={
                "retrieve": state["retrieve_ms"],
                "answer": state["answer_ms"],
                **{k: state[f"{k}_ms"] for k in ("llm", "check") if f"{k}_ms" in state},
                "total": (time.perf_counter() - started) * 1e3,
            },
            id=id,
            standalone_question=standalone,
            answerability=state["answerability"],
            verified=state.get("verified"),
            fallback=state.get("fallback"),
        )


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
