"""The chat app (Gradio Blocks): its events, its API, and serving it with a login.

``create_app(assistant)`` builds the :class:`gradio.Blocks` app without serving it (tests mount
it); ``launch(...)`` serves it, on 127.0.0.1:7860 by default. Gradio is imported only in this
module, and only when a function here runs. The HTML comes from :mod:`assistant.ui.rendering`;
the page's stylesheet and scripts are the files of ``static/`` (read when the app is built).

Nothing is written to disk: *Export* builds the Markdown file in the browser, and the
conversation's questions are kept in the browser's storage (``gr.BrowserState``), so a reload
replays them; *New conversation* clears it.

Concurrency: an extractive answer takes about 30 ms of CPU and is sent whole (nothing is
streamed word by word: no LLM here streams), so the chat event runs up to
:data:`CHAT_CONCURRENCY` answers at once and queues up to :data:`QUEUE_SIZE` more.
``Assistant.answer`` is thread-safe, and the overview and corpus the UI reads are immutable.

API (gradio_client): ``/answer`` takes ``question`` and ``history`` (earlier questions, oldest
first) and returns ``Answer.to_dict()``; ``/chat`` is the chat event itself (the conversation
is kept per client session).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.corpus import load_corpus
from assistant.errors import AssistantError, InvalidQuestionError
from assistant.overview import build_overview
from assistant.question import validate
from assistant.types import LENGTHS, Answer
from assistant.ui.rendering import (
    conversation_markdown,
    corpus_of,
    messages,
    render_essay,
    render_evidence,
    render_notice,
    render_overview,
    render_sources_panel,
)

if TYPE_CHECKING:
    import gradio as gr

    from assistant.api import Assistant

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
CHAT_CONCURRENCY = 16  # answers computed at once (see the module docstring)
QUEUE_SIZE = 256  # questions waiting beyond that; more get "queue full"
MAX_THREADS = 64  # Gradio's worker threads (>= CHAT_CONCURRENCY + the other events)
MAX_RESTORED_TURNS = 50  # questions replayed from the browser's storage after a reload
STORAGE_KEY = "essay-assistant-conversation"
SHUTDOWN_GRACE_S = 3  # after Ctrl+C, the seconds open requests get to finish before they are cancelled

# The page's static files (assistant/ui/static/, shipped as package data), used as they are:
# chat.css   the stylesheet, put in the page's <head> by the overview;
# chat.js    installed once per page by the Source panel. A click on (or the pointer over) an [n]
#            marker anywhere in the page shows that citation's passage in the panel; a click on an
#            answer's Copy button copies the answer's plain text; and every chat message's
#            aria-label (which Gradio fills with the message's raw HTML) is replaced by its plain
#            text, so screen readers read no tags;
# export.js  the Export button: the conversation's Markdown (a hidden textbox) downloaded as a file
#            made in the browser, so the server writes no file.


@cache
def static_text(name: str) -> str:
    """The text of the static file ``name`` (e.g. ``"chat.css"``), read once from the package.

    Raises:
        FileNotFoundError: If the package has no such file (an install without its package data).

    """
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


# --- the app ---------------------------------------------------------------------------------


def create_app(assistant: Assistant) -> gr.Blocks:
    """Build the chat app for ``assistant`` (not launched; see :func:`launch`).

    Args:
        assistant: A loaded or lazy :class:`~assistant.api.Assistant`; shared by every session.

    Returns:
        The :class:`gradio.Blocks` app, with its queue configured (``CHAT_CONCURRENCY``).

    Raises:
        CorpusError: If the corpus cannot be read.

    """
    import gradio as gr

    corpus = load_corpus(assistant.settings.corpus_path)
    overview = build_overview(corpus)
    threshold = assistant.refusal_threshold

    def finished(done: list[Answer]) -> tuple[Any, ...]:
        """The outputs for the conversation ``done`` (see ``outputs`` below), notice and box cleared."""
        last = done[-1] if done else None
        return (
            messages(done),
            done,
            render_sources_panel(corpus, done),
            render_evidence(last, threshold, corpus_of(last, corpus)),
            conversation_markdown(overview, done) if done else "",
            render_essay(corpus_of(last, corpus), last),
            [a.question for a in done],
            *(gr.update(visible=False) for _ in follow_up_buttons),  # filled in by suggest() next
            "",
            "",
        )

    def respond(question: str, answers: list[Answer], length: str = "normal") -> tuple[Any, ...]:
        """Answer ``question`` in the conversation ``answers``; returns every output at once.

        Not a generator: an extractive answer takes tens of milliseconds and arrives whole, and
        each intermediate update would cost the server as much again under load.
        """
        skip = gr.skip()
        n = len(outputs)
        try:
            text = validate(question, assistant.settings.max_question_chars)
        except InvalidQuestionError as exc:
            return (*(skip,) * (n - 2), render_notice(f"{str(exc)[:1].upper()}{str(exc)[1:]}."), skip)
        done = list(answers or [])
        try:
            result = assistant.answer(text, history=done, length=length if length in LENGTHS else "normal")
        except AssistantError as exc:
            log.error("cannot answer: %s", exc)
            return (*(skip,) * (n - 2), render_notice(str(exc)), skip)
        return finished([*done, result])

    def suggest(answers: list[Answer]) -> tuple[Any, ...]:
        """Up to three follow-ups for the last answer, each checked not to be declined (after it is shown)."""
        done = list(answers or [])
        try:
            found = assistant.follow_ups(done[-1], history=done[:-1]) if done else []
        except AssistantError as exc:
            log.warning("no follow-ups: %s", exc)
            found = []
        return tuple(
            gr.update(value=found[i], visible=True) if i < len(found) else gr.update(visible=False)
            for i in range(len(follow_up_buttons))
        )

    def restore(saved: list[str] | None) -> tuple[Any, ...]:
        """After a page load: replay the questions kept in the browser's storage (at most ``MAX_RESTORED_TURNS``)."""
        if not saved or not isinstance(saved, list):
            return tuple(gr.skip() for _ in outputs)  # nothing stored: leave the page as it is
        done: list[Answer] = []
        for question in saved[-MAX_RESTORED_TURNS:]:
            try:
                done.append(assistant.answer(question, history=done))
            except AssistantError as exc:  # a stored value that is no valid question: dropped
                log.warning("stored question not replayed: %s", exc)
        return (*finished(done)[:-2], gr.skip(), gr.skip())  # the notice and question box are left alone

    def clear() -> tuple[Any, ...]:
        return finished([])

    def answer_api(question: str, history: list[str] | None = None) -> dict:
        """Answer ``question`` (after the earlier questions ``history``); returns ``Answer.to_dict()``.

        An invalid question raises a ``gr.Error`` with the reason (logged in one line, no traceback).
        """
        try:
            return assistant.answer(question, history=history or []).to_dict()
        except AssistantError as exc:
            log.warning("/answer request rejected: %s", exc)
            raise gr.Error(str(exc), print_exception=False) from None

    # Nothing of ours is written to Gradio's cache; delete_cache bounds whatever Gradio keeps there itself.
    with gr.Blocks(
        title="Essay assistant — Bonding Over Bans", analytics_enabled=False, delete_cache=(600, 3600)
    ) as app:
        answers_state = gr.State([])
        saved = gr.BrowserState([], storage_key=STORAGE_KEY)
        with gr.Tabs(elem_id="ea-tabs"):
            with gr.Tab("Chat", id="chat", elem_id="ea-tab-chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300):
                        gr.HTML(
                            render_overview(overview),
                            elem_id="ea-overview",
                            head=f"<style>{static_text('chat.css')}</style>",
                        )
                        with gr.Row():
                            suggestions = [
                                gr.Button(q, size="sm", variant="secondary", elem_classes=["ea-suggestion"])
                                for q in overview.suggestions
                            ]
                        chatbot = gr.Chatbot(
                            label="Conversation",
                            elem_id="ea-chat",
                            height=520,
                            sanitize_html=True,
                            latex_delimiters=[],  # math in a question shows as typed
                            feedback_options=None,
                            buttons=[],  # each answer has its own Copy button (plain text, not HTML)
                            placeholder="Answers appear here, each sentence cited [n] to the essay.",
                        )
                        with gr.Row(elem_id="ea-follow-ups"):
                            follow_up_buttons = [
                                gr.Button(
                                    "", size="sm", variant="secondary", visible=False, elem_classes=["ea-follow-up"]
                                )
                                for _ in range(3)
                            ]
                        notice = gr.HTML("", elem_id="ea-notice", js_on_load=None)
                        with gr.Row():
                            question_box = gr.Textbox(
                                placeholder="Ask about the essay, e.g. “Why is cooperative prohibition hard "
                                "to achieve?” (Enter to send)",
                                show_label=False,
                                elem_id="ea-question",
                                scale=6,
                                lines=1,
                                max_lines=6,
                                autofocus=True,
                            )
                            send = gr.Button("Ask", variant="primary", scale=1, elem_id="ea-send")
                        with gr.Row():
                            length_choice = gr.Radio(
                                list(LENGTHS),
                                value="normal",
                                label="Answer length",
                                info="short: the one sentence with the key fact; long: twice the usual",
                                elem_id="ea-length",
                            )
                        with gr.Row():
                            new_chat = gr.Button("New conversation", size="sm", elem_id="ea-clear")
                            export = gr.Button("Export conversation (Markdown)", size="sm", elem_id="ea-export")
                            export_markdown = gr.Textbox("", visible=False, elem_id="ea-export-markdown")
                    with gr.Column(scale=2, min_width=280):
                        gr.Markdown("### Source")
                        source_panel = gr.HTML(
                            render_sources_panel(corpus, []),
                            elem_id="ea-source",
                            js_on_load=static_text("chat.js"),
                            max_height=480,
                        )
                        gr.Markdown("### Evidence")
                        evidence_panel = gr.HTML(
                            render_evidence(None, threshold), elem_id="ea-evidence", js_on_load=None, max_height=480
                        )
            with gr.Tab("Read the essay", id="essay", elem_id="ea-tab-essay"):
                essay_view = gr.HTML(render_essay(corpus), elem_id="ea-essay", js_on_load=None)

        # The order keeps the API's /chat outputs as before: chat, Source, Evidence, ..., notice, box.
        outputs = [
            chatbot,
            answers_state,
            source_panel,
            evidence_panel,
            export_markdown,
            essay_view,
            saved,
            *follow_up_buttons,
            notice,
            question_box,
        ]
        options: dict[str, Any] = {"outputs": outputs, "concurrency_id": "chat", "show_progress": "minimal"}
        # The chosen length lives in a State: the /chat API keeps its one question parameter.
        length_state = gr.State("normal")
        length_choice.change(lambda value: value, length_choice, length_state, api_visibility="private")
        inputs = [answers_state, length_state]
        follow = {"fn": suggest, "inputs": [answers_state], "outputs": follow_up_buttons, "api_visibility": "private"}
        question_box.submit(respond, [question_box, *inputs], api_name="chat", **options).then(**follow)
        send.click(respond, [question_box, *inputs], api_visibility="private", **options).then(**follow)
        for button in [*suggestions, *follow_up_buttons]:  # a suggestion button's value is its question
            button.click(respond, [button, *inputs], api_visibility="private", **options).then(**follow)
        new_chat.click(clear, None, outputs, api_visibility="private")
        chatbot.clear(clear, None, outputs, api_visibility="private")
        export.click(None, [export_markdown], None, js=static_text("export.js"), api_visibility="private")
        app.load(restore, [saved], outputs, api_visibility="private", concurrency_id="chat")
        gr.api(answer_api, api_name="answer", concurrency_id="chat")

    app.queue(default_concurrency_limit=CHAT_CONCURRENCY, max_size=QUEUE_SIZE)
    return app


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_auth_file(path: str | Path) -> list[tuple[str, str]]:
    """The ``username:password`` pairs of an auth file (one a line; blank lines and ``#`` comments skipped).

    Raises:
        ValueError: If the file cannot be read, a line has no ``:``, a username or password is
            empty, a username repeats, or the file holds no pair; the message names the line.

    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the auth file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        username, colon, password = line.partition(":")
        username = username.strip()
        if not colon or not username or not password:
            raise ValueError(f"{path}, line {number}: expected username:password (both non-empty)")
        if username in pairs:
            raise ValueError(f"{path}, line {number}: username {username!r} appears twice")
        pairs[username] = password
    if not pairs:
        raise ValueError(f"{path} holds no username:password line")
    return list(pairs.items())


def _authenticator(pairs: Sequence[tuple[str, str]]) -> Any:
    """Gradio's ``auth`` callable for ``pairs``: constant-time comparison, a refused login logged in one line."""
    table = {u: p.encode("utf-8") for u, p in pairs}

    def check(username: str, password: str) -> bool:
        expected = table.get(username)
        given = (password or "").encode("utf-8", "replace")
        ok = expected is not None and hmac.compare_digest(expected, given)
        if not ok:
            log.warning("login refused for user %r", str(username)[:64])
        return ok

    return check


# What a visitor without a login may fetch when the app has one: the page that shows the login
# form, the login route itself and the static files that page needs.
LOGIN_PAGE_PATHS = frozenset(
    {"/", "/login", "/logout", "/config", "/theme.css", "/favicon.ico", "/manifest.json", "/robots.txt"}
    | {"/gradio_api/startup-events"}  # Gradio's launch() calls it on itself (answers true/false)
)
LOGIN_PAGE_PREFIXES = ("/assets/", "/static/", "/svelte/")


class Door:
    """ASGI middleware in front of the Gradio app: the one door every request passes.

    * Gradio's upload route answers 403 (the app has no upload field).
    * When the app has a login, every route but the login page's (:data:`LOGIN_PAGE_PATHS`)
      answers 401 without one; Gradio's own check leaves a few routes open (``/gradio_api/token``,
      ``/heartbeat``, ``/runs``…).

    Each refusal is logged in one line.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                from starlette.responses import JSONResponse

                status, message = refusal
                client = (scope.get("client") or ("?", 0))[0]
                log.warning("refused %s %s from %s: %s", scope.get("method"), scope.get("path"), client, message)
                await JSONResponse({"detail": message}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _refusal(scope: dict) -> tuple[int, str] | None:
        path = scope.get("path", "")
        if path.rstrip("/").endswith("/upload"):
            return 403, "uploads are disabled: this app takes no files"
        server = scope.get("app")
        if not getattr(server, "auth", None):
            return None
        if (path.rstrip("/") or "/") in LOGIN_PAGE_PATHS or path.startswith(LOGIN_PAGE_PREFIXES):
            return None
        from starlette.requests import HTTPConnection

        cookies = HTTPConnection(scope).cookies
        cookie_id = getattr(server, "cookie_id", "")
        token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
        if token is not None and token in getattr(server, "tokens", {}):
            return None
        return 401, "not logged in"


def launch(
    assistant: Assistant,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    auth: Sequence[tuple[str, str]] | None = None,
    no_auth: bool = False,
    block: bool = True,
) -> gr.Blocks:
    """Warm up ``assistant`` and serve the chat app at ``http://host:port`` (share off, no debug).

    Args:
        assistant: The assistant to serve; its model and index are loaded (and the index built
            if missing or stale) before the server starts, so the first question is fast.
        host: Interface to bind. Anything but a loopback address needs ``auth`` (or ``no_auth``).
        port: TCP port.
        auth: ``(username, password)`` pairs (:func:`load_auth_file`): every page and API route then
            needs a login (Gradio's built-in authentication), on any host.
        no_auth: Serve a non-loopback ``host`` without a login, on purpose (the CLI warns; logged at INFO).
        block: Serve until interrupted; ``False`` returns once the server is up (tests).

    Returns:
        The running app (``app.close()`` stops it).

    Raises:
        ValueError: For a non-loopback ``host`` with neither ``auth`` nor ``no_auth``.
        AssistantError: If the model, index or corpus cannot be loaded.
        OSError: If the port is in use.

    """
    if not is_loopback(host) and not auth:
        if not no_auth:
            raise ValueError(
                f"refusing to serve on {host} without a login: it is reachable from other machines "
                "(give auth pairs, or no_auth=True to serve it to anyone on purpose)"
            )
        log.info("serving on %s:%s with no login: anyone who can reach this machine can use the assistant", host, port)
    from starlette.middleware import Middleware

    from assistant import language

    made = [folder for folder in _gradio_temp_folders() if not folder.exists()]
    app = create_app(assistant)
    started = time.perf_counter()
    assistant.answer(build_overview(load_corpus(assistant.settings.corpus_path)).suggestions[0])
    language.warm()
    log.info("model, index and language detector loaded in %.1f s", time.perf_counter() - started)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        debug=False,
        show_error=False,
        inbrowser=False,
        prevent_thread_lock=True,
        quiet=True,  # our own line below: Gradio's banner suggests share=True, which this app never uses
        footer_links=["api"],
        auth=_authenticator(auth) if auth else None,
        max_file_size="4kb",
        max_threads=MAX_THREADS,
        # The door (uploads, login), and no FastAPI schema or docs pages.
        app_kwargs={
            "middleware": [Middleware(Door)],
            "openapi_url": None,
            "docs_url": None,
            "redoc_url": None,
        },
    )
    if app.server is not None:  # read by uvicorn when it stops (Gradio's launch() has no parameter for it)
        app.server.config.timeout_graceful_shutdown = SHUTDOWN_GRACE_S
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"Running on local URL: http://{shown}:{port}/", flush=True)
    if block:
        try:
            _serve_until_interrupted(app)
        finally:
            for folder in made:  # left empty by Gradio: nothing of this run stays in the temporary folder
                try:
                    folder.rmdir()
                except OSError:  # not empty (another Gradio app's files), or already gone
                    pass
    return app


def _gradio_temp_folders() -> list[Path]:
    """Gradio's temporary folder (``GRADIO_TEMP_DIR``) and the folder it makes in it for every app, inner first.

    This app writes nothing there, but Gradio 6 creates ``vibe_edit_history`` in it with each app.
    """
    from gradio.route_utils import DEFAULT_TEMP_DIR

    root = Path(DEFAULT_TEMP_DIR)
    return [root / "vibe_edit_history", root]


def _serve_until_interrupted(app: gr.Blocks) -> None:
    """Wait until Ctrl+C (or until the server stops by itself), then stop the server for good.

    Not Gradio's ``block_thread()``: on Ctrl+C it only asks uvicorn to stop, and uvicorn then
    waits forever for the open ``/heartbeat`` streams (every browser tab and gradio_client keeps
    one; they end only when the app's stop event is set). After 5 s Gradio gave up waiting and
    Python exited with the server's (daemon) thread still running its event loop, an exit that
    sometimes never finished. Here :meth:`gradio.Blocks.close` sets the stop event (ending the
    heartbeats), closes the queue and stops uvicorn, which gives the requests still open
    :data:`SHUTDOWN_GRACE_S` seconds, then cancels them; the server thread has ended when this
    returns (unless uvicorn itself hangs: then a warning).
    """
    server = app.server
    try:
        # Not server.thread.join(): in Python 3.11, a join interrupted by Ctrl+C marks the thread
        # as stopped although it runs on, and every later join() then returns at once.
        while app.is_running:  # until Ctrl+C, or app.close() elsewhere
            time.sleep(0.1)
    except KeyboardInterrupt:
        print("Ctrl+C: stopping the server…", flush=True)
    finally:
        # A request cancelled after the grace time would log its CancelledError with a traceback.
        logging.getLogger("uvicorn.error").addFilter(_not_cancelled)
        app.close(verbose=False)  # waits up to 5 s for the server thread
        if server is not None and server.thread.is_alive():
            server.force_exit = True
            server.thread.join(timeout=SHUTDOWN_GRACE_S)
            if server.thread.is_alive():
                log.warning("the server did not stop within %s s", 5 + SHUTDOWN_GRACE_S)


def _not_cancelled(record: logging.LogRecord) -> bool:
    """Logging filter: drop the records of requests cancelled at shutdown (keep every other one)."""
    import asyncio

    return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))
