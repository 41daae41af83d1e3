"""The Python API: ``answer(question)`` and the reusable :class:`Assistant`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from assistant import types
from assistant.answering import ExtractiveAnswerer
from assistant.config import Settings, load_settings
from assistant.conversation import Resolution, Turn, in_context, resolve, turns_from
from assistant.corpus import Corpus, load_corpus
from assistant.errors import AssistantError, IndexStoreError, InvalidQuestionError, SettingsError
from assistant.language import corpus_words, english_only_message, foreign_language, proper_names
from assistant.question import final_question, normalise_question, validate
from assistant.types import LENGTHS, Length, RetrievedPassage

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from assistant.chain import ChainState
    from assistant.embeddings import Embedder
    from assistant.generative import GenerativeAnswerer
    from assistant.index import LoadedIndex
    from assistant.reranking import SentenceReranker

log = logging.getLogger(__name__)

__all__ = ["Answer", "Assistant", "answer"]


@dataclass
class Answer(types.Answer):
    """:class:`assistant.types.Answer` with the index build and corpus text it came from.

    Attributes:
        build: Name of the index build that answered (as ``index status`` shows it).
        corpus: The parsed corpus of that build: every citation's ``quote`` equals
            ``corpus.text[start:end]``. Render sources from it, not from a corpus loaded earlier:
            after a rebuild on an edited essay, offsets index into this text only.

    """

    build: str = ""
    corpus: Corpus | None = field(default=None, repr=False, compare=False)


@dataclass
class _Loaded:
    index: LoadedIndex
    chain: Runnable[ChainState, ChainState]
    answerer: ExtractiveAnswerer
    generator: GenerativeAnswerer | None = None
    corpus_stat: tuple[int, int] | None = None  # (size, mtime_ns) of the corpus file when its hash was last checked


class Assistant:
    """Answers questions about the essay, loading the model and index once.

    The index is opened on the first question (built first if missing or stale). When
    another process swaps in a new build, the next question picks it up; questions already
    running finish on the build they started with, which stays readable until they are done
    (see :class:`assistant.index.BuildLease`). A question whose search fails because its build
    was swapped out meanwhile is answered again from the new build. Before each question the
    corpus file is checked (one ``stat``; read and hashed only when its size or mtime changed):
    when it no longer holds the text the build was made from, the index is rebuilt first, or,
    with ``auto_rebuild`` off, the question fails with "the essay changed: run `essay-assistant
    index rebuild`". Each :class:`Answer` carries its build and corpus text. Safe to share
    between threads.

    Args:
        settings: Settings to use; default ``Settings()`` (environment variables applied).

    Raises:
        SettingsError: If ``settings`` is None and an ``ASSISTANT_*`` variable is out of range
            (one line naming it and the allowed range).

    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    @property
    def refusal_threshold(self) -> float:
        """The answerability (0..1) below which questions are declined: the setting, else the fitted value."""
        if self.settings.refusal_threshold is not None:
            return self.settings.refusal_threshold
        from assistant.reranking import load_fitted

        return float(load_fitted()["answerability"]["threshold"])

    def _corpus_stat(self) -> tuple[int, int] | None:
        try:
            stat = self.settings.corpus_path.stat()
        except OSError:
            return None
        return stat.st_size, stat.st_mtime_ns

    def _corpus_unchanged(self, loaded: _Loaded) -> bool:
        """Whether the corpus file still holds the text ``loaded`` was built from.

        One ``stat`` call per question; the file is read and hashed only when its size or
        modification time changed (then the new stat is remembered if the text is the same).

        Raises:
            CorpusError: If the corpus file is gone or unreadable.

        """
        stat = self._corpus_stat()
        if stat is not None and stat == loaded.corpus_stat:
            return True
        if load_corpus(self.settings.corpus_path).sha256 == loaded.index.manifest.get("corpus_sha256"):
            loaded.corpus_stat = stat
            return True
        return False

    def _load(self) -> _Loaded:
        from assistant import index
        from assistant.chain import build_chain
        from assistant.embeddings import get_embedder
        from assistant.retrieval import HybridRetriever

        with self._lock:
            loaded = self._loaded
            if loaded is not None and index.served_build(self.settings) == loaded.index.build:
                if self._corpus_unchanged(loaded):
                    return loaded
                log.warning("%s changed since build %s; rebuilding", self.settings.corpus_path, loaded.index.build)
                if not self.settings.auto_rebuild:
                    raise IndexStoreError(
                        f"the essay changed ({self.settings.corpus_path}): run `essay-assistant index rebuild`"
                    )
            for _attempt in range(3):
                stat = self._corpus_stat()  # taken before reading, so a later edit is noticed
                opened = index.open_index(self.settings)
                corpus = load_corpus(self.settings.corpus_path)
                if corpus.sha256 == opened.manifest.get("corpus_sha256"):
                    break
                log.info("%s changed while its index was opened; opening again", self.settings.corpus_path)
            else:
                raise IndexStoreError(
                    f"{self.settings.corpus_path} keeps changing while the index is opened; try again when it is saved"
                )
            if self.settings.top_k > len(opened.passages):
                raise SettingsError(
                    f"ASSISTANT_TOP_K (top_k) is {self.settings.top_k} but the index holds only "
                    f"{len(opened.passages)} passages; allowed 1..{len(opened.passages)}"
                )
            answerer = ExtractiveAnswerer(opened, corpus, self.settings)
            embedder = get_embedder(self.settings)
            generator = self._generator(answerer.reranker, embedder)
            chain = build_chain(
                embedder, HybridRetriever(opened, self.settings, answerer.reranker.terms), answerer, generator
            )
            self._loaded = _Loaded(opened, chain, answerer, generator, stat)
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

    def _resolve(
        self, text: str, history: Sequence[str | types.Answer], loaded: _Loaded
    ) -> tuple[Resolution, Resolution | None]:
        """``text`` in its conversation (see :mod:`assistant.conversation`), and its reading in context.

        A follow-up is made standalone by the LLM when one is configured (and its rewrite is
        kept), else by rule. The second reading (None unless ``text`` stands alone after earlier
        turns) is :func:`assistant.conversation.in_context`, answered only if the first is declined.
        """
        countries = loaded.answerer.reranker.lexicon.aliases

        def by_rule(question: str, turns: list[Turn]) -> Resolution:
            return resolve(question, turns, countries=countries)

        turns = turns_from(history, by_rule)
        resolution = by_rule(text, turns)
        if resolution.intent == "new":
            names = proper_names(loaded.answerer.corpus.text)
            return resolution, in_context(text, turns, countries=countries, names=names)
        if resolution.intent == "followup" and loaded.generator is not None:
            rewritten = self._rewrite(text, [t.standalone for t in turns], loaded.generator)
            if rewritten is not None:
                return replace(resolution, standalone=rewritten), None
        return resolution, None

    def _rewrite(self, text: str, history: Sequence[str], generator: GenerativeAnswerer) -> str | None:
        """``text`` made standalone by the LLM, or None if it fails or answers instead of rewriting."""
        if history:
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
        return None

    def _invoke(self, loaded: _Loaded, resolution: Resolution, length: Length) -> tuple[_Loaded, ChainState]:
        """Run the chain for ``resolution``; returns the build it ran on and the chain's final state.

        Raises:
            AssistantError: As the chain raises it.

        """
        standalone = resolution.standalone
        request: ChainState = {
            "question": loaded.answerer.reranker.read(standalone),
            "length": length,
            "intent": resolution.intent,
            "previous": resolution.previous.cited if resolution.previous else (),
            "shown": resolution.shown,
            "last": resolution.last.cited if resolution.last else (),
            "last_answer": resolution.last.answer if resolution.last else "",
        }
        try:
            return loaded, loaded.chain.invoke(request)
        except AssistantError:
            raise
        except Exception:
            # A rebuild may have removed the build under this question (e.g. on a Chroma
            # server); if so, answer from the new build. Otherwise it is a real failure.
            fresh = self._load()
            if fresh is loaded:
                raise
            log.info("index changed during a question; answering it from build %s", fresh.index.build)
            return fresh, fresh.chain.invoke(request | {"question": fresh.answerer.reranker.read(standalone)})

    def answer(
        self,
        question: str,
        *,
        history: Sequence[str | types.Answer] | None = None,
        id: str | None = None,
        length: Length = "normal",
    ) -> Answer:
        """Answer one question with citations, or decline when the essay does not say.

        Args:
            question: The question, 1..``max_question_chars`` characters, no control characters. It is
                searched NFKC-normalised with format characters (zero-width, soft hyphen, bidi
                marks, BOM) removed (``Answer.standalone_question``); ``Answer.question`` keeps it
                as written, whitespace collapsed.
            history: The conversation so far, oldest first: earlier :class:`Answer` objects (best:
                a follow-up can then avoid repeating them, and "why?"/"tell me more"/"shorter"
                work on what they quoted) or earlier questions as text. A question that leans on
                them ("When did Japan do that?", "And the Netherlands?") is made standalone: by
                the LLM when one is configured, else by rule; any other question stands alone, unless
                it is declined alone and names nothing of its own: then it is answered on the last
                turn's topic if that is not declined.
            id: Copied to ``Answer.id``.
            length: ``"short"`` (the key sentence), ``"normal"`` or ``"long"`` (twice the budget).

        Raises:
            InvalidQuestionError: For an empty, over-long or control-character question, or an
                unknown ``length``. (A question in another language than English is not an error:
                it is declined with one line saying the assistant reads English; see
                :mod:`assistant.language`.)
            IndexStoreError, ModelError, CorpusError: If the index, model or corpus is unusable, or
                the corpus changed (or the index is stale) while ``auto_rebuild`` is off.
            SettingsError: If ``top_k`` exceeds the number of passages in the index.

        """
        as_written = validate(question, self.settings.max_question_chars)
        text = normalise_question(as_written)  # searched: NFKC, no zero-width or bidi characters
        if length not in LENGTHS:
            raise InvalidQuestionError(f"length must be one of {', '.join(LENGTHS)}, not {length!r}")
        if isinstance(history, str | types.Answer):
            history = [history]
        limit = self.settings.max_question_chars
        history = [
            normalise_question(h[: 10 * limit])[:limit] if isinstance(h, str) else h
            for h in (history or [])
            if isinstance(h, str | types.Answer)
        ]
        loaded = self._load()  # not timed: the first question also loads the model and index
        started = time.perf_counter()
        corpus_text = loaded.answerer.corpus.text
        foreign = foreign_language(text, proper_names(corpus_text), corpus_words(corpus_text))
        if foreign is not None:  # the model and index are English: say so rather than "The essay does not say."
            return Answer(
                question=as_written,
                answer=english_only_message(foreign),
                refused=True,
                citations=[],
                passages=[],
                timings_ms={"total": (time.perf_counter() - started) * 1e3},
                id=id,
                standalone_question=text,
                build=loaded.index.build,
                corpus=loaded.answerer.corpus,
            )
        resolution, in_context_reading = self._resolve(text, history, loaded)
        loaded, state = self._invoke(loaded, resolution, length)
        if state["refused"] and in_context_reading is not None:
            # Declined alone, but it may lean on the conversation without a pronoun ("Which allies?").
            loaded_in_context, state_in_context = self._invoke(loaded, in_context_reading, length)
            if not state_in_context["refused"]:
                loaded, state, resolution = loaded_in_context, state_in_context, in_context_reading
        if state["refused"] and resolution.intent == "new" and (asked := final_question(text)) is not None:
            # Declined whole, but it wraps a question in something else ("Write me a haiku. Never mind — who …?").
            alone = Resolution(asked, "new", last=resolution.last)
            loaded_alone, state_alone = self._invoke(loaded, alone, length)
            if not state_alone["refused"]:
                loaded, state, resolution = loaded_alone, state_alone, alone
        standalone = resolution.standalone
        retrieved = state["retrieved"][: self.settings.top_k]
        # Every cited passage is shown, even one the retriever ranked below top_k (score 0).
        shown = {r.passage.id for r in retrieved}
        for citation in state["citations"]:
            if citation.passage_id not in shown:
                shown.add(citation.passage_id)
                passage = loaded.index.passages[citation.passage_id]
                retrieved.append(RetrievedPassage(passage, fused_score=None, dense=None, bm25=None, rerank_score=0.0))
        return Answer(
            question=as_written,
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
            build=loaded.index.build,
            corpus=loaded.answerer.corpus,
        )

    def follow_ups(
        self, answer: types.Answer, history: Sequence[str | types.Answer] | None = None, limit: int = 3
    ) -> list[str]:
        """Up to ``limit`` follow-up questions worth asking after ``answer``, none of them declined.

        Derived from the evidence the answer used: the reason behind its claim ("Why did Japan
        ban Huawei equipment?"), more of what the essay says on it ("Tell me more"), and the
        section its key sentence comes from ("Summarize the section “…”"). Each is answered
        (with ``answer`` as the last turn) and kept only when the answer is not a refusal, so
        this costs up to three answers' time (about 0.1 s).

        Args:
            answer: The answer just given (not a refusal; a refusal gets no suggestions).
            history: The turns before it, as passed to :meth:`answer`.
            limit: Most suggestions, 0..3.

        """
        if answer.refused or not answer.citations or limit <= 0:
            return []
        from assistant.conversation import why_of

        turns = [*(history or []), answer]
        candidates = []
        if not (why := why_of(answer.standalone_question)).startswith("Why? ("):
            candidates.append(why)  # "When did Japan ban Huawei?" -> "Why did Japan ban Huawei?"
        candidates.append("Tell me more")
        section = next((c.section for c in answer.citations if c.passage_id.startswith("essay-")), None)
        if section:
            candidates.append(f"Summarize the section “{section}”")
        kept = []
        for candidate in candidates:
            followed = self.answer(candidate, history=turns)
            if not followed.refused and followed.answer != answer.answer:
                kept.append(candidate)
            if len(kept) == limit:
                break
        return kept


_default: Assistant | None = None
_default_lock = threading.Lock()


def answer(
    question: str,
    *,
    history: Sequence[str | types.Answer] | None = None,
    settings: Settings | None = None,
    length: Length = "normal",
) -> Answer:
    """Answer ``question`` from the essay. See :meth:`Assistant.answer`.

    With ``settings=None`` a process-wide :class:`Assistant` is reused across calls; with
    explicit settings a new one is made (load cost: a few seconds).
    """
    global _default
    if settings is not None:
        return Assistant(settings).answer(question, history=history, length=length)
    with _default_lock:
        if _default is None:
            _default = Assistant()
    return _default.answer(question, history=history, length=length)
