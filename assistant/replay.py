"""A replaying OpenAI-compatible chat server on 127.0.0.1, for tests and the LLM figures.

It answers ``POST /v1/chat/completions`` (and ``GET /v1/models``) with answers written in
advance, so the whole LLM path (LangChain's ``ChatOpenAI``, the prompt, the reply formats, the
citation check, the fallback) runs as with a real model, deterministically and without one.

A script maps a question to the sentences to reply with; each sentence names the essay text it
comes from (``source``, a substring of a passage as the prompt shows it, footnote markers
removed), and the server cites it with the ``[n]`` of the prompt passage that holds it, as a
model reading the prompt would. ``source=None`` writes the sentence without a citation;
``marker`` cites a fixed number instead. A sentence whose source is in no prompt passage is
cited ``[1]`` and recorded in :attr:`ReplayServer.unplaced` (a test can assert there are none).

Replies are JSON (``{"sentences": [{"text", "citations"}]}``) when the request asks for a
JSON response format, else text with ``[n]`` markers. A question not in the script gets
``reply_unknown`` (default: an empty answer).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from assistant.text import strip_footnotes


@dataclass(frozen=True)
class Line:
    """One sentence to reply with.

    Attributes:
        text: The sentence, without a marker.
        source: Essay text it comes from (cited with the prompt passage holding it); None: uncited.
        marker: Cite this passage number instead of looking ``source`` up.
        also: A second source, cited too when it is in another prompt passage.

    """

    text: str
    source: str | None = None
    marker: int | None = None
    also: str | None = None


_PASSAGE = re.compile(r"^\[(\d+)\] (.*?)(?=\n\n\[\d+\] |\n\nQuestion: )", re.S | re.M)


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


def _key(question: str) -> str:
    """A question as matched against the script: words only, "U.S." read as "United States" (as the prompt has it)."""
    text = re.sub(r"\bU\.S\.(?=\W|$)|\bUS\b", "United States", question)
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@dataclass
class ReplayServer:
    """The server (see the module docstring); use as a context manager or call :meth:`start`/:meth:`stop`.

    Attributes:
        script: Question -> sentences to reply with (matched on its words, "U.S." as "United States").
        reply_unknown: Raw reply for a question not in the script.
        verdicts: Second-opinion replies by sentence ("no" rejects; default "yes").
        judged: Sentences the LLM was asked a second opinion about, in order.
        requests: Every request body received, in order.
        unplaced: ``(question, source)`` of sources found in no prompt passage.

    """

    script: dict[str, list[Line]]
    reply_unknown: str = ""
    verdicts: dict[str, str] = field(default_factory=dict)
    judged: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    unplaced: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._keys = {_key(q): lines for q, lines in self.script.items()}
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Base URL (``http://127.0.0.1:PORT/v1``)."""
        assert self._httpd is not None, "start the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> ReplayServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._send(200, {"object": "list", "data": [{"id": "replay", "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append(body)
                content = server.reply(body)
                self._send(
                    200,
                    {
                        "id": f"replay-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "replay"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    },
                )

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _closest(self, question: str) -> list[Line] | None:
        """The script entry for a question the assistant reworded ("Japanese" -> "Japan"): most shared word stems."""
        mine = {w[:4] for w in _key(question).split()}
        best, score = None, 0.0
        for key, lines in self._keys.items():
            theirs = {w[:4] for w in key.split()}
            overlap = len(mine & theirs) / max(1, len(mine | theirs))
            if overlap > score:
                best, score = lines, overlap
        return best if score >= 0.75 else None

    def reply(self, body: dict[str, Any]) -> str:
        """The reply content for one chat-completions request."""
        user = next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        if isinstance(user, list):
            user = "".join(part.get("text", "") for part in user)
        judged = re.search(r"\n\nSentence: (.*)\n", user)
        if judged:  # a second-opinion request (assistant.llm.LLMWriter.second_opinion)
            self.judged.append(judged.group(1).strip())
            return self.verdicts.get(judged.group(1).strip(), "yes")
        match = re.search(r"\n\nQuestion: (.*)\n", user)
        question = match.group(1).strip() if match else ""
        lines = self.script.get(question, self._keys.get(_key(question))) or self._closest(question)
        if lines is None:
            return self.reply_unknown
        passages = {int(n): _squash(text) for n, text in _PASSAGE.findall(user)}
        sentences = []
        for line in lines:
            if line.marker is not None:
                citations = [line.marker]
            elif line.source is None:
                citations = []
            else:
                citations = []
                for source in (line.source, line.also):
                    want = _squash(strip_footnotes(source)) if source else None
                    found = [n for n, text in sorted(passages.items()) if want and want in text][:1]
                    if source and not found:
                        self.unplaced.append((question, source))
                    citations += [n for n in found if n not in citations]
                citations = citations or [1]
            sentences.append({"text": line.text, "citations": citations})
        if body.get("response_format"):
            return json.dumps({"sentences": sentences})
        return " ".join(s["text"] + "".join(f" [{n}]" for n in s["citations"]) for s in sentences)
