"""The chat UI's HTML and Markdown: pure functions of the answers, the corpus and the overview.

Nothing here imports Gradio or touches a model, an index or a file: each function takes the
:class:`~assistant.types.Answer` objects (and the :class:`~assistant.corpus.Corpus` or
:class:`~assistant.overview.Overview` they quote) and returns a ``str`` (or, for
:func:`messages`, the chat's message dicts). :mod:`assistant.ui.app` puts them on the page.

Everything the user or the essay wrote is HTML-escaped before it reaches the page, and the
chat renders each message as one HTML block with Markdown's LaTeX off, so Markdown, math or
HTML in a question shows as typed. Each answer carries its plain-text form (answer with ``[n]``
markers, then the numbered sources) for its *Copy* button and for screen readers (the page's
script, ``static/chat.js``, replaces the chat's raw-HTML ``aria-label`` with it). The class
names (``ea-*``) are styled, in light and dark mode, by ``static/chat.css``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from assistant.corpus import Corpus
from assistant.overview import Overview
from assistant.text import terms
from assistant.types import Answer, Citation

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
        _citation_html(corpus_of(a, corpus), turn, c) for turn, a in enumerate(answers, start=1) for c in a.citations
    ]
    return f'<div class="ea-panel"><p class="ea-hint">{_e(SOURCE_HINT)}</p>{"".join(entries)}</div>'


def corpus_of(answer: Answer | None, corpus: Corpus) -> Corpus:
    """The corpus whose text ``answer``'s citations index: its build's, else ``corpus``.

    An :class:`assistant.api.Answer` carries the corpus of the index build that answered; after a
    rebuild on an edited essay its character offsets index that text, not the ``corpus`` the app
    loaded. An answer without one (or ``None``) gives ``corpus``.
    """
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
        if r.dense is None and r.bm25 is None and not r.fused_score:
            why += " The search did not rank it among its candidates; it is shown because the answer cites it."
        details = (
            f"<dl><dt>passage</dt><dd>{_e(p.id)}</dd>"
            f"<dt title='best sentence score of the reranker, 0..1'>rerank</dt><dd>{_score(r.rerank_score, 3)}</dd>"
            f"<dt title='reciprocal-rank fusion score'>fused</dt><dd>{_score(r.fused_score, 4)}</dd>"
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


def render_notice(message: str) -> str:
    """A warning above the question box (an invalid question, an error): ``message`` escaped, ``role="alert"``."""
    return f'<div class="ea-notice" role="alert">⚠ {_e(message)}</div>'
