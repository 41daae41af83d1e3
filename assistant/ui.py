"""The browser chat UI (Gradio): cited answers, a source panel, an evidence panel, export.

``create_app(assistant)`` builds the :class:`gradio.Blocks` app without serving it (tests mount
it); ``launch(...)`` serves it, on 127.0.0.1:7860 by default. Gradio is imported only in this
module, and only when a function here runs.

Layout: on the left the essay's overview (title, author, outline, suggested questions), the
chat and the question box; on the right the *Source* panel (the passage of the clicked or
hovered ``[n]`` marker, with the cited sentence highlighted, and its references) and the
*Evidence* panel (the question as searched and, for each passage retrieved, where it is, the
sentence used and why it was chosen, with the scores behind a *Details* toggle). A second tab,
*Read the essay*, shows the whole essay with its footnotes linked to the references and the
current answer's sentences highlighted.

Everything the user or the essay wrote is HTML-escaped before it reaches the page, and the
chat renders each message as one HTML block with Markdown's LaTeX off, so Markdown, math or
HTML in a question shows as typed. Each answer carries its plain-text form (answer with ``[n]``
markers, then the numbered sources) for its *Copy* button and for screen readers (the page's
script replaces the chat's raw-HTML ``aria-label`` with it).

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
import html
import ipaddress
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.answering import LENGTHS, Answer, Citation
from assistant.corpus import Corpus, load_corpus
from assistant.errors import AssistantError, InvalidQuestionError
from assistant.overview import Overview, build_overview
from assistant.question import validate
from assistant.text import terms

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

CSS = """
.ea-msg { line-height: 1.55; overflow-wrap: anywhere; }
.ea-marker { display: inline; border: 0; padding: 0 .15em; margin: 0 .05em; border-radius: .25em;
  background: var(--color-accent-soft); color: var(--color-accent); font-weight: 600; cursor: pointer;
  font-size: .85em; vertical-align: baseline; }
.ea-marker:hover, .ea-marker:focus, .ea-marker.ea-active { background: var(--color-accent); color: white; }
.ea-sources { margin-top: .6em; padding-top: .4em; border-top: 1px solid var(--border-color-primary);
  font-size: .9em; }
.ea-src { margin: .3em 0; }
.ea-where { color: #57534e; }
.dark .ea-where { color: #d6d3d1; }
.ea-copytext { display: none; }
.ea-actions { margin-top: .4em; }
.ea-copy { border: 1px solid var(--border-color-primary); border-radius: .3em; padding: .05em .6em;
  font-size: .8em; background: transparent; color: var(--body-text-color); cursor: pointer; }
.ea-notice { color: #b91c1c; font-weight: 600; margin: .25em 0; }
.dark .ea-notice { color: #fca5a5; }
.ea-panel h4 { margin: .2em 0; }
/* The cited sentence: dark text on amber in light mode, light text on dark amber in dark mode
   (contrast 12:1 and 8:1, WCAG AAA; tests/test_ui.py measures it in the page). */
mark.ea-hl { background: #fde68a; color: #1c1917; padding: 0 .1em; border-radius: .15em; }
.dark mark.ea-hl { background: #78350f; color: #fef3c7; }
.ea-panel .ea-para, .ea-essay p { line-height: 1.6; margin: .4em 0; }
.ea-meta, .ea-hint, .ea-note { color: #57534e; font-size: .9em; }
.dark .ea-meta, .dark .ea-hint, .dark .ea-note { color: #d6d3d1; }
.ea-refs { padding-left: .2em; font-size: .9em; list-style: none; }
.ea-declined { background: #fef3c7; color: #1c1917; border-left: 4px solid #d97706; padding: .5em .7em;
  margin: .4em 0; }
.dark .ea-declined { background: #422006; color: #fef3c7; }
.ea-evidence { overflow-wrap: anywhere; }
.ea-ev-list { padding-left: 1.4em; margin: .3em 0; }
.ea-ev { margin: .2em 0 .7em; }
.ea-ev-where { font-weight: 600; }
.ea-ev-sentence { margin: .25em 0; padding-left: .6em; border-left: 3px solid var(--border-color-primary); }
.ea-ev.ea-cited .ea-ev-sentence { border-left-color: var(--color-accent); }
.ea-ev-why { font-size: .9em; }
.ea-ev details { font-size: .85em; }
.ea-ev details dl { display: grid; grid-template-columns: max-content 1fr; gap: 0 .8em; margin: .2em 0; }
.ea-ev details dd { margin: 0; }
.ea-outline { margin: .2em 0 .2em 1.2em; }
.ea-essay { max-width: 46em; overflow-wrap: anywhere; }
.ea-essay a.ea-fn { text-decoration: none; font-size: .85em; padding: 0; margin: 0; }
.ea-essay .ea-hl-n { font-weight: 700; font-size: .8em; margin-right: .15em; }
.ea-essay li:target { background: var(--color-accent-soft); }
"""

# Installed once per page by the Source panel. A click on (or the pointer over) an [n] marker
# anywhere in the page shows that citation's passage in the panel; a click on an answer's Copy
# button copies the answer's plain text; and every chat message's aria-label (which Gradio fills
# with the message's raw HTML) is replaced by its plain text, so screen readers read no tags.
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
  // The plain text of a message: its .ea-copytext lines (answers) or its own text (questions).
  const plainText = (msg) => {
    const lines = msg.querySelectorAll('.ea-copytext > span');
    return lines.length ? [...lines].map((s) => s.textContent).join('\\n') : msg.textContent;
  };
  const copy = async (button) => {
    const msg = button.closest('.ea-msg');
    if (!msg) return;
    const text = plainText(msg);
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {  // no clipboard API (plain http to another host): the old way
      const area = document.createElement('textarea');
      area.value = text;
      area.style.position = 'fixed';
      area.style.left = '-9999px';
      document.body.appendChild(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    button.textContent = 'Copied';
    button.classList.add('ea-copied');
    setTimeout(() => { button.textContent = 'Copy'; button.classList.remove('ea-copied'); }, 1500);
  };
  const markerOf = (event) => event.target && event.target.closest ? event.target.closest('.ea-marker') : null;
  document.addEventListener('click', (event) => {
    const copyButton = event.target && event.target.closest ? event.target.closest('.ea-copy') : null;
    if (copyButton) { event.preventDefault(); event.stopPropagation(); copy(copyButton); return; }
    const marker = markerOf(event);
    if (marker) { event.preventDefault(); show(marker); }
  }, true);
  document.addEventListener('mouseover', (event) => { const m = markerOf(event); if (m) show(m); });
  document.addEventListener('focusin', (event) => { const m = markerOf(event); if (m) show(m); });
  // Gradio labels each message "<role>'s message: <content>", i.e. with our HTML: relabel it with
  // the message's plain text once the message is rendered (a later change of either relabels again).
  const relabel = (el) => {
    const label = el.getAttribute('aria-label') || '';
    const m = label.match(/^([\\w ]+'s message: )/);
    const msg = el.querySelector('.ea-msg');
    if (!m || !label.includes('class="ea-msg') || !msg) return;  // only our markup (a question may hold '<')
    el.setAttribute('aria-label', m[1] + plainText(msg).replace(/\\s+/g, ' ').trim());
  };
  const relabelAll = () => document.querySelectorAll(`[aria-label*='class="ea-msg']`).forEach(relabel);
  new MutationObserver(relabelAll).observe(document.body, { subtree: true, childList: true, attributes: true,
                                                           attributeFilter: ['aria-label'] });
  relabelAll();
}
"""

# The Export button: the conversation's Markdown (a hidden textbox) downloaded as a file made in
# the browser, so the server writes no file.
EXPORT_JS = """
(markdown) => {
  if (!markdown) return [];
  const url = URL.createObjectURL(new Blob([markdown], { type: 'text/markdown;charset=utf-8' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = 'conversation.md';
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return [];
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


def plain_answer(answer: Answer) -> str:
    """An answer as plain text: the answer with its ``[n]`` markers, then the numbered sources.

    What the answer's *Copy* button copies and what screen readers read (no HTML).
    """
    lines = [answer.answer]
    if answer.citations:
        lines += ["", "Sources:"]
    for c in answer.citations:
        lines.append(f"[{c.n}] {c.section}: “{c.quote}” ({c.source}, characters {c.start}–{c.end})")
        lines += [f"    ({r.number}) {r.text}" for r in c.references if r.text != c.quote]
    return "\n".join(lines)


def render_answer(answer: Answer, turn: int) -> str:
    """A finished answer: text with clickable ``[n]`` markers, then its numbered sources and a Copy button.

    Args:
        answer: The answer.
        turn: Its 1-based position in the conversation (keys markers to the Source panel).

    """
    text = _e(answer.answer)
    for c in answer.citations:
        text = text.replace(f"[{c.n}]", _marker(turn, c.n), 1)
    parts = [f'<div class="ea-msg ea-answer ea-turn-{turn}">', f'<p class="ea-text">{text}</p>']
    if answer.backend != "extractive":
        parts.append(
            f'<p class="ea-note">Written by the {_e(answer.backend)} LLM; every sentence checked against the essay.</p>'
        )
    elif answer.fallback:
        parts.append(
            f'<p class="ea-note">The LLM’s answer was not used ({_e(answer.fallback)}); quoting the essay instead.</p>'
        )
    if answer.citations:
        parts.append('<div class="ea-sources"><strong>Sources</strong>')
        quoted = answer.backend == "extractive"  # the answer is the quotes: the list says where they are from
        for c in answer.citations:
            refs = ", ".join(f"({r.number})" for r in c.references if r.text != c.quote)
            tail = f" · refs {refs}" if refs else ""
            quote = "" if quoted else f"<br>“{_e(_shorten(c.quote, 160))}”"
            parts.append(
                f"<div class='ea-src'>{_marker(turn, c.n)} <span class='ea-where'>{_e(c.section)} — "
                f"{_e(c.passage_id)}{_e(tail)}</span>{quote}</div>"
            )
        parts.append("</div>")
    # The plain text, one <span> per line (no newlines: the chat parses Markdown around HTML blocks).
    lines = "".join(f"<span>{_e(line)}</span>" for line in plain_answer(answer).split("\n"))
    parts.append(f'<div class="ea-copytext">{lines}</div>')  # display: none (the sanitiser drops aria-hidden)
    parts.append(
        '<div class="ea-actions"><button type="button" class="ea-copy" '
        'aria-label="Copy the answer and its sources as plain text">Copy</button></div>'
    )
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
    entries = [
        _citation_html(_built_from(a, corpus), turn, c) for turn, a in enumerate(answers, start=1) for c in a.citations
    ]
    return f'<div class="ea-panel"><p class="ea-hint">{_e(SOURCE_HINT)}</p>{"".join(entries)}</div>'


def _built_from(answer: Answer | None, corpus: Corpus) -> Corpus:
    """The corpus text ``answer`` quotes (its build's; after a rebuild on an edited essay, not ``corpus``)."""
    return getattr(answer, "corpus", None) or corpus


def _score(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _closest_sentence(passage: Any, question_terms: set[str], text: str) -> str:
    """The passage's sentence sharing the most terms with the question (the first on a tie)."""
    spans = passage.sentences or ()
    best, best_overlap = passage.text, -1
    for span in spans:
        sentence = text[span.start : span.end]
        overlap = len(question_terms & set(terms(sentence)))
        if overlap > best_overlap:
            best, best_overlap = sentence, overlap
    return best


def render_evidence(answer: Answer | None, threshold: float, corpus: Corpus | None = None) -> str:
    """The Evidence panel for ``answer``, written for a reader.

    The question as searched, a notice when the assistant declined, then each passage retrieved,
    best first: where it is (section and paragraph, or reference), the sentence used (the quoted
    one for a cited passage, else its sentence closest to the question) and why it was chosen;
    the scores (rerank, fused, dense, BM25) and the passage id sit behind a *Details* toggle.
    """
    if answer is None:
        return f'<div class="ea-evidence"><p class="ea-hint">{_e(EVIDENCE_HINT)}</p></div>'
    parts = ['<div class="ea-evidence">']
    standalone = answer.standalone_question or answer.question
    parts.append(f'<p class="ea-standalone"><strong>Searched as:</strong> {_e(standalone)}')
    if standalone != answer.question:
        parts.append('<br><span class="ea-meta">Your follow-up was made standalone with the previous question.</span>')
    parts.append("</p>")
    if answer.refused:
        if answer.passages:
            parts.append(
                '<div class="ea-declined" role="status"><strong>The assistant declined.</strong> No passage of the '
                f"essay answers this question (its answerability {answer.answerability or 0:.2f} is below the "
                f"refusal threshold {threshold:g}, or the question names something the essay never mentions), so it "
                "does not guess. Any sentences quoted are only related. The closest passages are below.</div>"
            )
        else:
            parts.append(
                f'<div class="ea-declined" role="status"><strong>Not searched.</strong> {_e(answer.answer)}</div>'
            )
    if answer.passages:
        parts.append(
            '<p class="ea-meta">The passages found for it, best first; <em>Details</em> shows the scores.</p>'
            '<ol class="ea-ev-list">'
        )
    question_terms = set(terms(standalone))
    text = corpus.text if corpus is not None else ""
    for rank, r in enumerate(answer.passages, start=1):
        p = r.passage
        cites = [c for c in answer.citations if c.passage_id == p.id]
        where = f"{p.section}, paragraph {p.paragraph}" if p.kind == "essay" else f"Reference ({p.paragraph})"
        if cites:
            sentence = " … ".join(c.quote for c in cites)
            markers = ", ".join(f"[{c.n}]" for c in cites)
            why = f"Quoted in the answer as {markers}."
        else:
            sentence = _closest_sentence(p, question_terms, text) if text else _shorten(p.text, 240)
            why = "Found for the question but not quoted: other sentences answer it better."
        shared = [w for w in dict.fromkeys(terms(p.text)) if w in question_terms]
        if shared and not answer.refused:
            why += f" It shares {len(shared)} of the question’s key words."
        if r.dense is None and r.bm25 is None and not r.fused:
            why += " The search did not rank it among its candidates; it is shown because the answer cites it."
        details = (
            f"<dl><dt>passage</dt><dd>{_e(p.id)}</dd>"
            f"<dt title='best sentence score of the reranker, 0..1'>rerank</dt><dd>{_score(r.score, 3)}</dd>"
            f"<dt title='reciprocal-rank fusion score'>fused</dt><dd>{_score(r.fused, 4)}</dd>"
            f"<dt title='cosine similarity'>dense</dt><dd>{_score(r.dense, 3)}</dd>"
            f"<dt>BM25</dt><dd>{_score(r.bm25, 2)}</dd></dl>"
            f"<p>{_e(p.text)}</p>"
        )
        parts.append(
            f"<li class='ea-ev{' ea-cited' if cites else ''}' data-passage='{_e(p.id)}' value='{rank}'>"
            f"<div class='ea-ev-where'>{_e(where)}</div>"
            f"<blockquote class='ea-ev-sentence'>{_e(sentence)}</blockquote>"
            f"<div class='ea-ev-why'>{_e(why)}</div>"
            f"<details><summary>Details</summary>{details}</details></li>"
        )
    if answer.passages:
        parts.append("</ol>")
    timings = answer.timings_ms
    if timings:
        parts.append(f'<p class="ea-meta">Answered in {timings.get("total", 0):.0f} ms.</p>')
    parts.append("</div>")
    return "".join(parts)


_FOOTNOTE = re.compile(r"\((\d{1,3})\)")


def _essay_text(corpus: Corpus, start: int, end: int, marks: Sequence[tuple[int, int, int]], link: bool = True) -> str:
    """``corpus.text[start:end]`` as HTML: escaped, footnote markers linked, cited spans highlighted."""

    def piece(a: int, b: int) -> str:
        escaped = _e(corpus.text[a:b])
        if not link:
            return escaped
        return _FOOTNOTE.sub(
            lambda m: (
                f'<a class="ea-fn" href="#ea-ref-{m.group(1)}" title="Reference {m.group(1)}">({m.group(1)})</a>'
                if int(m.group(1)) in corpus.references
                else m.group(0)
            ),
            escaped,
        )

    out, at = [], start
    for s, e, n in marks:
        if e <= start or s >= end or s < at:
            continue
        out.append(piece(at, s))
        out.append(f'<mark class="ea-hl" id="ea-cited-{n}"><span class="ea-hl-n">[{n}]</span>{piece(s, e)}</mark>')
        at = e
    out.append(piece(at, end))
    return "".join(out)


def render_essay(corpus: Corpus, answer: Answer | None = None) -> str:
    """The *Read the essay* view: the whole essay, footnotes linked to the references, ``answer``'s sentences marked."""
    marks = sorted((c.start, c.end, c.n) for c in (answer.citations if answer else []))
    parts = [
        '<article class="ea-essay">',
        f"<h2>{_e(corpus.title)}</h2>",
        f'<p class="ea-meta">{_e(corpus.author_line)}</p>',
    ]
    if answer is not None and answer.citations:
        parts.append(
            f'<p class="ea-hint">Highlighted: the sentences quoted in the answer to “{_e(answer.question)}”.</p>'
        )
    references = ['<h3 id="ea-references">References</h3><ol class="ea-refs">']
    for number, ref in sorted(corpus.references.items()):
        references.append(f'<li id="ea-ref-{number}">{_essay_text(corpus, ref.start, ref.end, marks, False)}</li>')
    references.append("</ol>")
    references_at = min((r.start for r in corpus.references.values()), default=len(corpus.text))
    section = None
    for para in corpus.paragraphs:
        if para.number == 0:
            continue
        if references and para.start > references_at:  # sections after the references (the series note)
            parts += references
            references = []
        if para.section != section:
            section = para.section
            parts.append(f"<h3>{_e(section)}</h3>")
        parts.append(f"<p>{_essay_text(corpus, para.start, para.end, marks)}</p>")
    parts += references
    parts.append("</article>")
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
            render_evidence(last, threshold, _built_from(last, corpus)),
            conversation_markdown(overview, done) if done else "",
            render_essay(_built_from(last, corpus), last),
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
            return (*(skip,) * (n - 2), _notice(f"{str(exc)[:1].upper()}{str(exc)[1:]}."), skip)
        done = list(answers or [])
        try:
            result = assistant.answer(text, history=done, length=length if length in LENGTHS else "normal")
        except AssistantError as exc:
            log.error("cannot answer: %s", exc)
            return (*(skip,) * (n - 2), _notice(str(exc)), skip)
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
                                placeholder="Ask about the essay, e.g. “Why does Japan avoid naming China?” "
                                "(Enter to send)",
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
                            render_sources_panel(corpus, []), elem_id="ea-source", js_on_load=PANEL_JS, max_height=480
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
        export.click(None, [export_markdown], None, js=EXPORT_JS, api_visibility="private")
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
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"Running on local URL: http://{shown}:{port}/", flush=True)
    if block:
        app.block_thread()  # until Ctrl+C
    return app
