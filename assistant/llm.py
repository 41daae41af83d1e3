"""LLM backends: a LangChain chat model, the cited-answer prompt, and clear errors.

``openai`` is ``langchain_openai.ChatOpenAI`` (any OpenAI-compatible server: a hosted API,
vLLM, ``llama_cpp.server``); ``ollama`` is ``langchain_ollama.ChatOllama``. Both come with the
``[llm]`` extra and are imported only when that backend is used. The API key is read from
``ASSISTANT_LLM_API_KEY`` or ``OPENAI_API_KEY`` at connection time; it is never logged, stored in
``Settings`` or written to an answer.

What the LLM writes is untrusted: :mod:`assistant.verification` checks it before it is shown.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from assistant.config import Settings
from assistant.errors import LLMError
from assistant.text import strip_footnotes
from assistant.types import Passage, ReplyFormat

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "ollama": "llama3.2"}
API_KEY_VARIABLES = ("ASSISTANT_LLM_API_KEY", "OPENAI_API_KEY")
# llama.cpp and vLLM servers accept any key; ChatOpenAI refuses to start without one.
PLACEHOLDER_KEY = "not-needed"
DECLINE = "The essay does not say."

SYSTEM_PROMPT = (
    "You answer questions about one essay, using only the numbered passages from it that you are given. "
    "Write one to three short sentences. End every sentence with the number of the passage that states it, "
    "in square brackets, for example: Japan joined the controls in 2023 [2]. "
    "Use only facts written in the passages; never cite a number that is not a passage. "
    "If the passages do not answer the question, reply exactly: " + DECLINE
)
STRUCTURED_NOTE = (
    ' Reply in JSON: an object with "sentences", a list with one object per sentence of your answer, '
    'each with "text" (the sentence) and "citations" (the numbers of the passages it comes from).'
)
# Repeated after the question: small models follow the instruction nearest the end.
USER_SUFFIX = (
    "Answer in one or two sentences, using only the passages. End each sentence with the number of "
    "the passage it comes from in square brackets, like [1]."
)
JUDGE_PROMPT = (
    "You check one sentence against the essay sentences it cites. Reply with one word: yes if the cited "
    "sentences state everything the sentence says (names, numbers, dates, who did what, negation), "
    "otherwise no."
)
REWRITE_PROMPT = (
    "Rewrite the last question of a conversation so that it can be understood without the conversation. "
    "Keep its meaning; replace words like 'that', 'it' or 'they' by what they refer to. "
    "Reply with the rewritten question only."
)


# Reply formats, most structured first: OpenAI's JSON-schema response format (OpenAI, vLLM, Ollama),
# llama-cpp-python's JSON mode with a schema (its server rejects "json_schema"), plain text with [n].
FORMATS: tuple[ReplyFormat, ...] = ("json_schema", "json_object_schema", "text")


class GeneratedSentence(BaseModel):
    """One sentence of a structured LLM answer."""

    text: str = Field(description="One sentence of the answer, without citation markers.")
    citations: list[int] = Field(default_factory=list, description="Numbers of the passages that state it.")


class GeneratedAnswer(BaseModel):
    """The structured answer the LLM is asked for."""

    sentences: list[GeneratedSentence] = Field(description="The answer, one entry per sentence.")


@dataclass(frozen=True)
class Generation:
    """What the LLM wrote, before any checking.

    Attributes:
        sentences: ``(text, markers)`` pairs; ``markers`` are the passage numbers the LLM gave,
            unvalidated (they may not resolve). Text keeps no ``[n]`` markers.
        raw: The reply as received (JSON text in structured mode).
        structured: Whether the reply came through the JSON-schema response format.
        elapsed_ms: Wall time of the LLM call, in milliseconds.

    """

    sentences: tuple[tuple[str, tuple[int, ...]], ...]
    raw: str
    structured: bool
    elapsed_ms: float


_MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
# A sentence ends at . ! ? (optionally closed by a quote or bracket) followed by space and a capital/quote/digit.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"”’)]))(?<!U\.S\.)(?<!\b[A-Z]\.)\s+(?=[\"“(A-Z0-9])|\n+")


def split_cited_text(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """Split an answer written with ``[n]`` markers into ``(sentence, markers)`` pairs.

    Markers after a sentence's final stop ("… 2018. [1]") belong to that sentence; ``[1, 2]``
    and ``[1][2]`` both give ``(1, 2)``. Empty sentences are dropped; text is whitespace-normalised.
    """
    # Move markers that follow a stop in front of it: "2018. [1] Next" -> "2018 [1]. Next".
    text = re.sub(r"([.!?])((?:\s*\[\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*\])+)", r"\2\1", text.strip())
    pairs = []
    for piece in _SENTENCE_END.split(text):
        markers = tuple(int(n) for group in _MARKER.findall(piece) for n in re.split(r"\s*[,;]\s*", group))
        clean = " ".join(_MARKER.sub(" ", piece).split())
        clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
        if re.search(r"\w", clean):
            pairs.append((clean, tuple(dict.fromkeys(markers))))
    return pairs


def api_key() -> str | None:
    """The API key from the environment (``ASSISTANT_LLM_API_KEY``, then ``OPENAI_API_KEY``), if any."""
    return next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), None)


def make_chat_model(settings: Settings) -> BaseChatModel:
    """The LangChain chat model for ``settings.llm`` (``openai`` or ``ollama``).

    Requests time out after ``llm_timeout_s`` and are not retried (a retry would double the wait).

    Raises:
        LLMError: If the backend's package is not installed, or no API key is set for the hosted
            OpenAI API (no ``llm_base_url``).

    """
    backend = settings.llm
    model = settings.llm_model or DEFAULT_MODELS.get(backend, "")
    try:
        if backend == "openai":
            from langchain_openai import ChatOpenAI

            key = api_key()
            if key is None and settings.llm_base_url is None:
                raise LLMError(
                    "the openai backend needs an API key: set ASSISTANT_LLM_API_KEY (or OPENAI_API_KEY), "
                    "or point --llm-base-url at a local OpenAI-compatible server"
                )
            # langchain-openai sends max_completion_tokens, which llama.cpp and older vLLM servers
            # ignore (and then generate up to their context size): a local server also gets max_tokens.
            extra = {"extra_body": {"max_tokens": settings.llm_max_tokens}} if settings.llm_base_url else {}
            return ChatOpenAI(
                model=model,
                base_url=settings.llm_base_url,
                api_key=key or PLACEHOLDER_KEY,
                timeout=settings.llm_timeout_s,
                max_retries=0,
                max_tokens=settings.llm_max_tokens,
                temperature=0.0,
                **extra,
            )
        if backend == "ollama":
            from langchain_ollama import ChatOllama

            return ChatOllama(
                model=model,
                base_url=settings.llm_base_url,
                temperature=0.0,
                num_predict=settings.llm_max_tokens,
                client_kwargs={"timeout": settings.llm_timeout_s},
            )
    except ImportError as exc:
        raise LLMError(
            f"the {backend} backend needs the [llm] extra: pip install -e '.[llm]' ({exc.name} is missing)"
        ) from None
    raise LLMError(f"unknown LLM backend {backend!r}; use extractive, openai or ollama")


def describe_error(exc: BaseException, settings: Settings) -> str:
    """A one-line, user-facing reason for a failed LLM call (never includes the API key)."""
    name = type(exc).__name__
    where = settings.llm_base_url or f"the default {settings.llm} server"
    text = f"{name}: {exc}".lower()
    if "lengthfinishreason" in name.lower():
        return f"the LLM reply was cut off at {settings.llm_max_tokens} tokens (ASSISTANT_LLM_MAX_TOKENS)"
    if "timeout" in text or "timed out" in text:
        return f"the LLM at {where} did not answer within {settings.llm_timeout_s:g} s (ASSISTANT_LLM_TIMEOUT_S)"
    if "ratelimit" in name.lower() or "429" in text or "rate limit" in text:
        return f"the LLM at {where} is rate-limiting requests; try again later"
    if "connect" in text or "refused" in text or "resolve" in text:
        return f"cannot connect to the LLM at {where}; is the server running? (--llm-base-url)"
    if "authentication" in text or "401" in text or "api key" in text:
        return f"the LLM at {where} rejected the API key (ASSISTANT_LLM_API_KEY / OPENAI_API_KEY)"
    if "notfound" in name.lower() or "404" in text:
        return f"the LLM at {where} does not know model {settings.llm_model!r} or the URL is wrong (--llm-model)"
    first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"the LLM call failed ({name}{': ' + first_line if first_line else ''})"


def passages_block(passages: list[Passage]) -> str:
    """The passages as the prompt shows them: ``[n] text``, footnote markers removed.

    No section titles: small models copy them into the answer.
    """
    return "\n\n".join(f"[{n}] {strip_footnotes(p.text)}" for n, p in enumerate(passages, start=1))


class LLMWriter:
    """Writes cited answers (and standalone follow-up questions) with the configured chat model.

    The chat model is made on first use. Thread-safe for concurrent calls (LangChain chat
    models are).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._chat: BaseChatModel | None = None
        self._format: ReplyFormat = FORMATS[0] if settings.llm_structured_output else "text"

    @property
    def chat(self) -> BaseChatModel:
        """The LangChain chat model (made on first use; raises :class:`LLMError`)."""
        if self._chat is None:
            self._chat = make_chat_model(self.settings)
        return self._chat

    def messages(self, question: str, passages: list[Passage], *, structured: bool) -> list[tuple[str, str]]:
        """The prompt: a system message and a user message with the numbered passages."""
        system = SYSTEM_PROMPT + (STRUCTURED_NOTE if structured else "")
        suffix = "Reply in the JSON format described above." if structured else USER_SUFFIX
        user = f"Passages:\n\n{passages_block(passages)}\n\nQuestion: {question}\n{suffix}"
        return [("system", system), ("human", user)]

    def _invoke(self, runnable: Any, messages: list[tuple[str, str]]) -> Any:
        try:
            return runnable.invoke(messages)
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001 - every transport/server failure becomes one clear message
            log.debug("LLM call failed", exc_info=True)
            raise LLMError(describe_error(exc, self.settings)) from exc

    def generate(self, question: str, passages: list[Passage]) -> Generation:
        """Ask the LLM to answer ``question`` from ``passages`` (numbered 1..len(passages)).

        Reply formats are tried in :data:`FORMATS` order (from ``json_schema`` when
        ``llm_structured_output`` is on, else ``text``); a server that rejects one (HTTP 400/422,
        or 500 naming ``response_format``) is asked again in the next, which is then used for later questions too.

        Raises:
            LLMError: On a missing package, timeout, connection error, rate limit or other failure.

        """
        started = time.perf_counter()
        while True:
            fmt = self._format
            try:
                raw, parsed = self._ask(fmt, question, passages)
                break
            except LLMError as exc:
                status = getattr(exc.__cause__, "status_code", None)
                # llama_cpp.server answers an unknown response_format with HTTP 500 naming the field.
                rejected = status in (400, 422) or (status == 500 and "response_format" in str(exc.__cause__))
                if fmt == "text" or not rejected:
                    raise
                following = FORMATS[FORMATS.index(fmt) + 1]
                log.warning("the LLM server rejected the %s reply format (HTTP %s); trying %s", fmt, status, following)
                self._format = following
        elapsed_ms = (time.perf_counter() - started) * 1e3
        if parsed is None:  # plain text, or JSON that does not fit the schema: read it as cited text
            return Generation(tuple(split_cited_text(raw)), raw, False, elapsed_ms)
        sentences = []
        for item in parsed.sentences:
            for text, markers in split_cited_text(item.text):
                sentences.append((text, tuple(dict.fromkeys((*markers, *item.citations)))))
        return Generation(tuple(sentences), raw, True, elapsed_ms)

    def _ask(self, fmt: ReplyFormat, question: str, passages: list[Passage]) -> tuple[str, GeneratedAnswer | None]:
        """One LLM call in reply format ``fmt``; returns the raw reply and the parsed answer, if any."""
        messages = self.messages(question, passages, structured=fmt != "text")
        if fmt == "json_schema":
            runnable = self.chat.with_structured_output(GeneratedAnswer, method="json_schema", include_raw=True)
            result = self._invoke(runnable, messages)
            if result.get("parsing_error") is not None:
                log.info("structured reply did not parse (%s); reading it as text", result["parsing_error"])
            return _content_text(result.get("raw")), result.get("parsed")
        if fmt == "json_object_schema":
            schema = GeneratedAnswer.model_json_schema()
            raw = _content_text(
                self._invoke(self.chat.bind(response_format={"type": "json_object", "schema": schema}), messages)
            )
            try:
                return raw, GeneratedAnswer.model_validate_json(raw)
            except ValueError as exc:
                log.info("JSON reply did not parse (%s); reading it as text", exc)
                return raw, None
        return _content_text(self._invoke(self.chat, messages)), None

    def second_opinion(self, sentence: str, quotes: list[str]) -> str | None:
        """Ask the LLM whether ``quotes`` support ``sentence``: a reason to drop it on "no", else None.

        A failed call or an unclear reply keeps the sentence (it already passed the check).
        """
        cited = "\n".join(f"- {strip_footnotes(q)}" for q in quotes)
        user = f"Cited sentences:\n{cited}\n\nSentence: {sentence}\n\nAnswer yes or no."
        try:
            reply = _content_text(self._invoke(self.chat, [("system", JUDGE_PROMPT), ("human", user)]))
        except LLMError as exc:
            log.info("second opinion unavailable, keeping the checked sentence: %s", exc)
            return None
        word = re.match(r"\W*(\w+)", reply.lower())
        return (
            "the LLM's second opinion is that the cited sentences do not support it"
            if word and word.group(1) == "no"
            else None
        )

    def rewrite_followup(self, question: str, history: list[str] | tuple[str, ...]) -> str:
        """Make a follow-up standalone with the LLM (one short call).

        Raises:
            LLMError: As :meth:`generate`.

        """
        conversation = "\n".join(f"Q: {q}" for q in history[-3:])
        user = f"Conversation:\n{conversation}\n\nLast question: {question}\n\nRewritten question:"
        reply = self._invoke(self.chat, [("system", REWRITE_PROMPT), ("human", user)])
        text = " ".join(_content_text(reply).split()).strip().strip('"“”')
        return text


def _content_text(message: Any) -> str:
    """The text of a chat message (``content`` may be a string or a list of parts)."""
    if message is None:
        return ""
    content = getattr(message, "content", message)
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)
