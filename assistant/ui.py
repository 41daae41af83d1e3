"""The browser chat UI (Gradio): cited answers, a source panel, an evidence panel, export.

``create_app(assistant)`` builds the :class:`gradio.Blocks` app without serving it (tests mount
it); ``launch(...)`` serves it, on 127.0.0.1:7860 by default. Gradio is imported only in this
module, and only when a function here runs.

Layout: on the left the essay's overview (title, author, outline, suggested questions), the
chat and the question box; on the right the *Source* panel (the passage of the clicked or
hovered ``[n]`` marker, with the cited sentence highlighted, and its references) and the
*Evidence* panel (the question as searched, the ranked passages with their rerank, fused, dense and
BM25 scores, and a notice when the assistant declined).

Everything the user or the essay wrote is HTML-escaped before it reaches the page, and the
chat renders each message as one HTML block, so Markdown or HTML in a question shows as text.

Concurrency: the chat event runs at most :data:`CHAT_CONCURRENCY` answers at once; further
questions wait in the queue (at most :data:`QUEUE_SIZE`) and see their place in it. An answer
costs about 0.1 s of CPU and then streams for well under a second, mostly waiting, so 4 keeps
two cores busy without letting many users slow each other down. ``Assistant.answer`` is
thread-safe, and the overview and corpus the UI reads are immutable.

API (gradio_client): ``/answer`` takes ``question`` and ``history`` (earlier questions, oldest
first) and returns ``Answer.to_dict()``; ``/chat`` is the chat event itself (the conversation
is kept per client session).
"""

from __future__ import annotations

import html
import ipaddress
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.answering import Answer, Citation
from assistant.corpus import Corpus, load_corpus
from assistant.errors import AssistantError, InvalidQuestionError
from assistant.overview import Overview, build_overview
from assistant.question import validate

if TYPE_CHECKING:
    import gradio as gr

    from assistant.api import Assistant

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
CHAT_CONCURRENCY = 4  # answers computed/streamed at once (see the module docstring)
QUEUE_SIZE = 64  # questions waiting beyond that; more get "queue full"
STREAM_WORDS = 3  # words added per streamed update
STREAM_DELAY_S = 0.02  # pause between streamed updates, seconds (0 = as fast as possible)

CSS = """
.ea-msg { line-height: 1.55; }
.ea-marker { display: inline; border: 0; padding: 0 .15em; margin: 0 .05em; border-radius: .25em;
  background: var(--color-accent-soft); color: var(--color-accent); font-weight: 600; cursor: pointer;
  font-size: .85em; vertical-align: baseline; }
.ea-marker:hover, .ea-marker:focus, .ea-marker.ea-active { background: var(--color-accent); color: white; }
.ea-sources { margin-top: .6em; padding-top: .4em; border-top: 1px solid var(--border-color-primary);
  font-size: .9em; }
.ea-src { margin: .3em 0; }
.ea-where { color: var(--body-text-color-subdued); }
.ea-notice { color: var(--color-red-600, #b91c1c); font-weight: 600; margin: .25em 0; }
.ea-panel h4 { margin: .2em 0; }
.ea-panel mark.ea-hl { background: #fde68a; color: inherit; padding: 0 .1em; }
.ea-panel .ea-para { line-height: 1.6; margin: .4em 0; }
.ea-panel .ea-meta, .ea-hint { color: var(--body-text-color-subdued); font-size: .9em; }
.ea-refs { padding-left: .2em; font-size: .9em; list-style: none; }
.ea-declined { background: #fef3c7; border-left: 4px solid #d97706; padding: .5em .7em; margin: .4em 0; }
.ea-evidence table { width: 100%; font-size: .85em; border-collapse: collapse; }
.ea-evidence th, .ea-evidence td { text-align: left; padding: .2em .3em; vertical-align: top;
  border-bottom: 1px solid var(--border-color-primary); }
.ea-evidence tr.ea-cited td:first-child { font-weight: 700; }
.ea-outline { margin: .2em 0 .2em 1.2em; }
"""

# Installed once per page by the Source panel: a click on (or the pointer over) an [n] marker
# anywhere in the page shows that citation's passage in the panel.
PANEL_JS = """
window.__eaSourcePanel = element;
if (!window.__eaMarkersBound) {
  window.__eaMarkersBound = true;
  // The chat's sanitiser drops data-* attributes, so a marker's key travels as class "ea-k-<turn>-<n>".
  const markerKey = (m) => {
    const c = [...m.classList].find((x) => x.startsWith('ea-k-'));
    return c ? c.slice(5) : null;
  };
  const show = (marker) => {
    const panel = window.__eaSourcePanel;
    const key = markerKey(marker);
    if (!panel || !key) return;
    let found = false;
    panel.querySelectorAll('[data-cite]').forEach((p) => {
      const on = p.dataset.cite === key;
      p.hidden = !on;
      found = found || on;
    });
    panel.querySelectorAll('.ea-hint').forEach((h) => { h.hidden = found; });
    const mark = panel.querySelector('[data-cite]:not([hidden]) mark');
    if (mark) mark.scrollIntoView({ block: 'nearest' });
    document.querySelectorAll('.ea-marker').forEach((m) => m.classList.toggle('ea-active', markerKey(m) === key));
  };
  const markerOf = (event) => event.target && event.target.closest ? event.target.closest('.ea-marker') : null;
  document.addEventListener('click', (event) => {
    const marker = markerOf(event);
    if (marker) { event.preventDefault(); show(marker); }
  });
  document.addEventListener('mouseover', (event) => { const m = markerOf(event); if (m) show(m); });
  document.addEventListener('focusin', (event) => { const m = markerOf(event); if (m) show(m); });
}
"""

SOURCE_HINT = "Click or hover over a citation marker such as [1] to see the cited sentence in its passage."
EVIDENCE_HINT = "After each answer, the passages the assistant retrieved are listed here with their scores."


def _e(text: str) -> str:
    """HTML-escape ``text`` (quotes too)."""
    return html.escape(text, quote=True)


def _key(turn: int, n: int) -> str:
    return f"{turn}-{n}"


def _marker(turn: int, n: int) -> str:
    return (
        f'<button type="button" class="ea-marker ea-k-{_key(turn, n)}" '
        f'title="Show source {n}" aria-label="Show source {n}">[{n}]</button>'
    )


# --- message and panel rendering (pure functions of the answers) ---------------------------


def render_question(question: str) -> str:
    """A user message: the question, escaped, as one HTML block."""
    return f'<div class="ea-msg ea-question">{_e(question)}</div>'


def render_partial(text: str) -> str:
    """A message being streamed: plain escaped text (markers are not clickable yet)."""
    return f'<div class="ea-msg ea-streaming">{_e(text)}</div>'


def render_answer(answer: Answer, turn: int) -> str:
    """A finished answer: text with clickable ``[n]`` markers, then its numbered sources.

    Args:
        answer: The answer.
        turn: Its 1-based position in the conversation (keys markers to the Source panel).

    """
    text = _e(answer.answer)
    for c in answer.citations:
        text = text.replace(f"[{c.n}]", _marker(turn, c.n), 1)
    parts = [f'<div class="ea-msg ea-answer ea-turn-{turn}">', f"<p>{text}</p>"]
    if answer.citations:
        parts.append('<div class="ea-sources"><strong>Sources</strong>')
        for c in answer.citations:
            refs = ", ".join(f"({r.number})" for r in c.references if r.text != c.quote)
            tail = f" · refs {refs}" if refs else ""
            parts.append(
                f"<div class='ea-src'>{_marker(turn, c.n)} <span class='ea-where'>{_e(c.section)} — "
                f"{_e(c.passage_id)}{_e(tail)}</span><br>“{_e(_shorten(c.quote, 160))}”</div>"
            )
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def _reference_html(corpus: Corpus, number: int) -> str:
    ref = corpus.references.get(number)
    if ref is None:
        return ""
    bits = [f"<strong>({number})</strong> {_e(ref.title or ref.text)}"]
    meta = ", ".join(_e(x) for x in (ref.outlet, ref.date) if x)
    if meta:
        bits.append(f" — {meta}")
    if ref.url:
        bits.append(f' <a href="{_e(ref.url)}" target="_blank" rel="noopener noreferrer">{_e(ref.url)}</a>')
    return f"<li>{''.join(bits)}</li>"


def _citation_html(corpus: Corpus, turn: int, citation: Citation) -> str:
    """The Source panel entry of one citation: its paragraph with the sentence highlighted."""
    text = corpus.text
    para = next((p for p in corpus.paragraphs if p.start <= citation.start < p.end), None)
    if para is not None:
        start, end, where = para.start, para.end, f"paragraph {para.number}"
    else:  # a bibliography entry
        ref = next((r for r in corpus.references.values() if r.start <= citation.start <= r.end), None)
        start, end = (ref.start, ref.end) if ref else (citation.start, citation.end)
        where = f"reference ({ref.number})" if ref else "reference"
    body = (
        _e(text[start : citation.start])
        + f'<mark class="ea-hl">{_e(text[citation.start : citation.end])}</mark>'
        + _e(text[citation.end : end])
    )
    refs = "".join(_reference_html(corpus, r.number) for r in citation.references)
    refs_html = f"<div><strong>References</strong><ol class='ea-refs'>{refs}</ol></div>" if refs else ""
    return (
        f'<div class="ea-cite" data-cite="{_key(turn, citation.n)}" hidden>'
        f"<h4>[{citation.n}] {_e(citation.section)}</h4>"
        f'<div class="ea-meta">{_e(where)} · passage {_e(citation.passage_id)} · '
        f"{_e(citation.source)}, characters {citation.start}–{citation.end}</div>"
        f'<p class="ea-para">{body}</p>{refs_html}</div>'
    )


def render_sources_panel(corpus: Corpus, answers: Sequence[Answer]) -> str:
    """The Source panel: one hidden entry per citation of the conversation, plus a hint.

    The page's script shows the entry of the marker clicked or hovered (``data-cite`` =
    ``"<turn>-<n>"``).
    """
    entries = [_citation_html(corpus, turn, c) for turn, a in enumerate(answers, start=1) for c in a.citations]
    return f'<div class="ea-panel"><p class="ea-hint">{_e(SOURCE_HINT)}</p>{"".join(entries)}</div>'


def _score(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render_evidence(answer: Answer | None, threshold: float) -> str:
    """The Evidence panel for ``answer``: the searched question, a refusal notice, ranked passages."""
    if answer is None:
        return f'<div class="ea-evidence"><p class="ea-hint">{_e(EVIDENCE_HINT)}</p></div>'
    parts = ['<div class="ea-evidence">']
    standalone = answer.standalone_question or answer.question
    if standalone != answer.question:
        parts.append(
            f'<p class="ea-standalone"><strong>Searched as:</strong> {_e(standalone)}<br>'
            f'<span class="ea-meta">Your follow-up was made standalone with the previous question.</span></p>'
        )
    else:
        parts.append(f'<p class="ea-standalone"><strong>Searched as:</strong> {_e(standalone)}</p>')
    if answer.refused:
        parts.append(
            '<div class="ea-declined" role="status"><strong>The assistant declined.</strong> No passage of the '
            f"essay answers this question (its answerability {answer.answerability or 0:.2f} is below the refusal "
            f"threshold {threshold:g}, or the question names something the essay never mentions), so it does not "
            "guess. Any sentences quoted are only related. The closest passages are below.</div>"
        )
    cited = {c.passage_id for c in answer.citations}
    parts.append(
        "<table><thead><tr><th>#</th><th>passage</th><th title='best sentence score of the reranker, 0..1'>rerank</th>"
        "<th title='reciprocal-rank fusion score'>fused</th>"
        "<th title='cosine similarity'>dense</th><th>BM25</th></tr></thead><tbody>"
    )
    for rank, r in enumerate(answer.passages, start=1):
        p = r.passage
        is_cited = p.id in cited
        where = f"{p.section}, ¶{p.paragraph}" if p.kind == "essay" else f"reference ({p.paragraph})"
        note = " · cited" if is_cited else ""
        if r.dense is None and r.bm25 is None and not r.fused:
            note += " (not among the retrieved candidates)"
        parts.append(
            f"<tr class='{'ea-cited' if is_cited else ''}' data-passage='{_e(p.id)}'><td>{rank}</td>"
            f"<td><details><summary>{_e(p.id)} — {_e(where)}{_e(note)}</summary>{_e(p.text)}</details></td>"
            f"<td>{_score(r.score, 3)}</td><td>{_score(r.fused, 4)}</td>"
            f"<td>{_score(r.dense, 3)}</td><td>{_score(r.bm25, 2)}</td></tr>"
        )
    parts.append("</tbody></table>")
    timings = answer.timings_ms
    if timings:
        parts.append(f'<p class="ea-meta">Answered in {timings.get("total", 0):.0f} ms.</p>')
    parts.append("</div>")
    return "".join(parts)


def render_overview(overview: Overview) -> str:
    """The first screen's header: title, author, section outline."""
    outline = "".join(
        f"<li>{_e(s.name)} <span class='ea-meta'>({s.paragraphs} ¶)</span></li>" for s in overview.sections
    )
    return (
        f'<div class="ea-overview"><h2>{_e(overview.title)}</h2>'
        f'<p class="ea-meta">by {_e(overview.author)} · {overview.references} references</p>'
        f"<details><summary>Outline</summary><ol class='ea-outline'>{outline}</ol></details>"
        "<p>Ask a question about the essay. Every answer is made of the essay’s own sentences, "
        "each followed by a citation [n]; click one to see it in context.</p></div>"
    )


def conversation_markdown(overview: Overview, answers: Sequence[Answer]) -> str:
    """The conversation as Markdown: each question, its answer, its citations and references."""
    lines = [f"# Conversation about “{overview.title}”", "", f"Essay by {overview.author}.", ""]
    for turn, a in enumerate(answers, start=1):
        lines += [f"## {turn}. {a.question}", ""]
        if a.standalone_question and a.standalone_question != a.question:
            lines += [f"*Searched as:* {a.standalone_question}", ""]
        lines += [a.answer, ""]
        if a.refused:
            lines += ["*The essay does not answer this question; any sentences quoted are only related.*", ""]
        for c in a.citations:
            lines.append(f"- [{c.n}] {c.section} — {c.passage_id} ({c.source}, characters {c.start}–{c.end})")
            lines.append(f"  > {c.quote}")
            for r in c.references:
                if r.text != c.quote:
                    lines.append(f"  - ({r.number}) {r.text}")
        if a.citations:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def messages(answers: Sequence[Answer]) -> list[dict[str, str]]:
    """The chat's messages for a finished conversation (Gradio's ``messages`` format)."""
    out: list[dict[str, str]] = []
    for turn, a in enumerate(answers, start=1):
        out.append({"role": "user", "content": render_question(a.question)})
        out.append({"role": "assistant", "content": render_answer(a, turn)})
    return out


def _notice(message: str) -> str:
    return f'<div class="ea-notice" role="alert">⚠ {_e(message)}</div>'


def _stream_chunks(text: str) -> Iterator[str]:
    """Growing prefixes of ``text``, ``STREAM_WORDS`` words at a time, ending with all of it."""
    words = text.split(" ")
    for i in range(STREAM_WORDS, len(words), STREAM_WORDS):
        yield " ".join(words[:i])
    yield text


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
    export_dir = Path(tempfile.mkdtemp(prefix="essay-assistant-export-"))

    def export_file(answers: Sequence[Answer]) -> str:
        folder = export_dir / uuid.uuid4().hex
        folder.mkdir()
        path = folder / "conversation.md"
        path.write_text(conversation_markdown(overview, answers), encoding="utf-8")
        return str(path)

    def respond(question: str, answers: list[Answer]) -> Iterator[tuple[Any, ...]]:
        """Answer ``question`` in the conversation ``answers``; yields the outputs as they change.

        Outputs: chat messages, conversation state, Source panel, Evidence panel, export
        button, notice, question box.
        """
        skip = gr.skip()
        try:
            text = validate(question, assistant.settings.max_question_chars)
        except InvalidQuestionError as exc:
            yield skip, skip, skip, skip, skip, _notice(f"{str(exc)[:1].upper()}{str(exc)[1:]}."), skip
            return
        done = list(answers)
        asked = messages(done) + [{"role": "user", "content": render_question(text)}]
        yield asked, skip, skip, skip, skip, "", ""  # the question shows at once
        try:
            result = assistant.answer(text, history=[a.question for a in answers])
        except AssistantError as exc:
            log.error("cannot answer: %s", exc)
            yield messages(done), skip, skip, skip, skip, _notice(str(exc)), text
            return
        for prefix in _stream_chunks(result.answer):
            partial = asked + [{"role": "assistant", "content": render_partial(prefix)}]
            yield partial, skip, skip, skip, skip, "", ""
            if STREAM_DELAY_S:
                time.sleep(STREAM_DELAY_S)
        done.append(result)
        yield (
            messages(done),
            done,
            render_sources_panel(corpus, done),
            render_evidence(result, threshold),
            gr.DownloadButton(value=export_file(done), interactive=True),
            "",
            "",
        )

    def clear() -> tuple[Any, ...]:
        return (
            [],
            [],
            render_sources_panel(corpus, []),
            render_evidence(None, threshold),
            gr.DownloadButton(value=None, interactive=False),
            "",
            "",
        )

    def answer_api(question: str, history: list[str] | None = None) -> dict:
        """Answer ``question`` (after the earlier questions ``history``); returns ``Answer.to_dict()``.

        An invalid question raises a ``gr.Error`` with the reason.
        """
        try:
            return assistant.answer(question, history=history or []).to_dict()
        except AssistantError as exc:
            raise gr.Error(str(exc)) from None

    with gr.Blocks(
        title="Essay assistant — Bonding Over Bans", analytics_enabled=False, delete_cache=(3600, 86400)
    ) as app:
        answers_state = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                gr.HTML(render_overview(overview), elem_id="ea-overview", head=f"<style>{CSS}</style>")
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
                    feedback_options=None,
                    buttons=["copy"],
                    placeholder="Answers appear here, each sentence cited [n] to the essay.",
                )
                notice = gr.HTML("", elem_id="ea-notice", js_on_load=None)
                with gr.Row():
                    question_box = gr.Textbox(
                        placeholder="Ask about the essay, e.g. “Why does Japan avoid naming China?” (Enter to send)",
                        show_label=False,
                        elem_id="ea-question",
                        scale=6,
                        lines=1,
                        max_lines=6,
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ea-send")
                with gr.Row():
                    new_chat = gr.Button("New conversation", size="sm", elem_id="ea-clear")
                    export = gr.DownloadButton(
                        "Export conversation (Markdown)", value=None, interactive=False, size="sm", elem_id="ea-export"
                    )
            with gr.Column(scale=2, min_width=320):
                gr.Markdown("### Source")
                source_panel = gr.HTML(
                    render_sources_panel(corpus, []), elem_id="ea-source", js_on_load=PANEL_JS, max_height=480
                )
                gr.Markdown("### Evidence")
                evidence_panel = gr.HTML(
                    render_evidence(None, threshold), elem_id="ea-evidence", js_on_load=None, max_height=480
                )

        outputs = [chatbot, answers_state, source_panel, evidence_panel, export, notice, question_box]
        options: dict[str, Any] = {"outputs": outputs, "concurrency_id": "chat", "show_progress": "minimal"}
        question_box.submit(respond, [question_box, answers_state], api_name="chat", **options)
        send.click(respond, [question_box, answers_state], api_visibility="private", **options)
        for button in suggestions:  # a suggestion button's value is its question
            button.click(respond, [button, answers_state], api_visibility="private", **options)
        new_chat.click(clear, None, outputs, api_visibility="private")
        chatbot.clear(clear, None, outputs, api_visibility="private")
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


def launch(
    assistant: Assistant,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    allow_remote: bool = False,
    block: bool = True,
) -> gr.Blocks:
    """Warm up ``assistant`` and serve the chat app at ``http://host:port`` (share off, no debug).

    Args:
        assistant: The assistant to serve; its model and index are loaded (and the index built
            if missing or stale) before the server starts, so the first question is fast.
        host: Interface to bind. Anything but a loopback address needs ``allow_remote``.
        port: TCP port.
        allow_remote: Permit a non-loopback ``host`` (the app has no authentication).
        block: Serve until interrupted; ``False`` returns once the server is up (tests).

    Returns:
        The running app (``app.close()`` stops it).

    Raises:
        ValueError: For a non-loopback ``host`` without ``allow_remote``.
        AssistantError: If the model, index or corpus cannot be loaded.
        OSError: If the port is in use.

    """
    if not is_loopback(host):
        if not allow_remote:
            raise ValueError(f"refusing to serve on {host}: it is reachable from other machines (allow_remote=True)")
        log.warning("serving on %s:%s: anyone who can reach this machine can use the assistant", host, port)
    app = create_app(assistant)
    started = time.perf_counter()
    assistant.answer(build_overview(load_corpus(assistant.settings.corpus_path)).suggestions[0])
    log.info("model and index loaded in %.1f s", time.perf_counter() - started)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        debug=False,
        show_error=False,
        inbrowser=False,
        prevent_thread_lock=not block,
        quiet=not block,
        footer_links=["api"],
    )
    return app
