"""The chat UI, driven for real: the app served on loopback, Debian's Chromium via Playwright, gradio_client.

Waits are on conditions (generous timeouts for a busy 2-core machine), never fixed sleeps. Rendering an
answer and the chat command's host check are unit tests (the fake model); the rest is integration.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant import ui
from assistant.cli import app as cli_app
from assistant.config import REPO_ROOT
from assistant.corpus import load_corpus
from assistant.overview import build_overview
from assistant.text import strip_footnotes
from tests.conftest import WAIT_MS
from tests.helpers import free_port

JAPAN_Q = "Why does Japan avoid naming China in its export controls?"


def _ask(page, question: str) -> None:
    box = page.locator("#ea-question textarea")
    box.fill(question)
    box.press("Enter")


def _answers(page):
    return page.locator("#ea-chat .ea-answer")


@pytest.mark.integration
def test_browser_cited_answer_and_source_panel(page, assistant, tmp_path):
    expected = assistant.answer(JAPAN_Q)
    # The citation whose sentence has footnoted references, so the panel's reference list is checked too.
    china = next((c for c in expected.citations if c.references), expected.citations[0])

    started = time.perf_counter()
    _ask(page, JAPAN_Q)
    page.locator("#ea-chat .ea-question").first.wait_for()
    question_s = time.perf_counter() - started
    _answers(page).first.wait_for()
    full_s = time.perf_counter() - started

    message = _answers(page).first
    text = message.inner_text()
    assert strip_footnotes(china.quote)[:40] in text
    assert re.search(r"\[\d\]", text)
    assert "Sources" in text  # the finished message keeps the answer and its sources
    assert message.locator(".ea-src").count() == len(expected.citations)

    highlighted = page.locator("#ea-source mark.ea-hl:visible")
    assert highlighted.count() == 0  # nothing is shown until a marker is clicked
    message.locator(f"p .ea-marker.ea-k-1-{china.n}").click()
    highlighted.first.wait_for()
    assert highlighted.count() == 1
    assert highlighted.inner_text() == china.quote
    panel = page.locator("#ea-source").inner_text()
    assert china.section in panel
    for ref in china.references:
        assert f"({ref.number})" in panel and ref.url in panel

    evidence = page.locator("#ea-evidence")
    assert f"Searched as: {JAPAN_Q}" in evidence.inner_text()
    entries = evidence.locator("li.ea-ev")
    assert entries.count() == len(expected.passages)
    for entry, r in zip(entries.all(), expected.passages, strict=True):
        assert entry.get_attribute("data-passage") == r.passage.id
        where = entry.locator(".ea-ev-where").inner_text()
        if r.passage.kind == "essay":
            assert where == f"{r.passage.section}, paragraph {r.passage.paragraph}"
        else:  # a bibliography entry is named by its number
            assert where == f"Reference ({r.passage.paragraph})"

    shot = tmp_path / "chat.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")
    print(f"Enter -> question shown: {question_s:.2f} s; -> full answer: {full_s:.2f} s")


@pytest.mark.integration
def test_browser_follow_up_is_made_standalone(page, assistant):
    _ask(page, "Why was Huawei banned?")
    _answers(page).nth(0).wait_for()
    _ask(page, "When did Japan do that?")
    _answers(page).nth(1).wait_for()
    expected = assistant.answer("When did Japan do that?", history=["Why was Huawei banned?"])
    assert expected.standalone_question != expected.question
    assert f"Searched as: {expected.standalone_question}" in page.locator("#ea-evidence").inner_text()
    assert "December 2018" in _answers(page).nth(1).inner_text()


@pytest.mark.integration
def test_browser_escapes_html_and_rejects_bad_input(page):
    hostile = '<img src=x onerror="window.__pwned=1"><b>bold</b> **stars**'
    _ask(page, hostile)
    _answers(page).first.wait_for()
    shown = page.locator("#ea-chat .ea-question").first
    assert shown.inner_text() == hostile
    assert page.locator("#ea-chat img[src=x], #ea-chat .ea-question b").count() == 0
    assert page.evaluate("() => window.__pwned") is None

    _ask(page, "   ")
    page.locator("#ea-notice .ea-notice").wait_for()
    assert "empty" in page.locator("#ea-notice").inner_text()
    _ask(page, "why " * 600)
    page.get_by_text("the limit is 2,000").wait_for()
    assert page.locator("#ea-chat .ea-question").count() == 1  # neither was added to the chat
    _ask(page, "Who wrote the essay?")  # the UI is still usable
    _answers(page).nth(1).wait_for()
    assert page.locator("#ea-notice .ea-notice").count() == 0


@pytest.mark.integration
def test_browser_suggestion_asks_and_export(page, tmp_path):
    page.get_by_role("button", name="Who wrote the essay?").click()
    _answers(page).first.wait_for()
    assert "Ian Wong" in _answers(page).first.inner_text()
    export = page.locator("#ea-export")
    with page.expect_download() as download:
        export.click()
    assert download.value.suggested_filename == "conversation.md"
    path = tmp_path / "conversation.md"
    download.value.save_as(path)
    markdown = path.read_text(encoding="utf-8")
    assert "## 1. Who wrote the essay?" in markdown
    assert "[1]" in markdown and "> Ian Wong" in markdown


@pytest.mark.integration
def test_overview_suggestions_are_answered(assistant):
    from assistant.corpus import load_corpus
    from assistant.overview import build_overview

    overview = build_overview(load_corpus(assistant.settings.corpus_path))
    assert overview.title.startswith("Bonding Over Bans")
    assert [s.name for s in overview.sections][:2] == ["Introduction", "U.S. Technology Controls"]
    assert 3 <= len(overview.suggestions) <= 4
    for question in overview.suggestions:
        assert not assistant.answer(question).refused, question


def _comparable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timings_ms"}


@pytest.mark.integration
def test_api_matches_python_answer(server, assistant):
    from gradio_client import Client

    client = Client(server, verbose=False)
    got = client.predict(JAPAN_Q, [], api_name="/answer")
    assert _comparable(got) == _comparable(assistant.answer(JAPAN_Q).to_dict())

    first, follow = "Why was Huawei banned?", "When did Japan do that?"
    expected = assistant.answer(follow, history=[first])
    got = client.predict(follow, [first], api_name="/answer")
    assert _comparable(got) == _comparable(expected.to_dict())

    # The chat endpoint keeps the conversation per client session: two turns.
    client.predict(first, api_name="/chat")
    outputs = client.predict(follow, api_name="/chat")
    last = outputs[0][-1]["content"]
    text = last if isinstance(last, str) else "".join(part.get("text", "") for part in last)
    assert text == ui.render_answer(expected, 2)
    assert expected.standalone_question in outputs[2]  # the Evidence panel (the state is not an output)


@pytest.mark.unit
def test_rendering_escapes_everything(fake_assistant):
    result = fake_assistant.answer(JAPAN_Q)
    assert result.citations
    html = ui.render_answer(result, 1)
    assert html.count('class="ea-marker') == 2 * len(result.citations)
    assert "<script" not in ui.render_question("<script>alert(1)</script>")
    markdown = ui.conversation_markdown(build_overview(load_corpus(fake_assistant.settings.corpus_path)), [result])
    for c in result.citations:
        assert f"> {c.quote}" in markdown


@pytest.mark.unit
def test_chat_command_refuses_remote_host_without_a_login():
    result = CliRunner().invoke(cli_app, ["chat", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--auth-file" in result.output
    assert ui.is_loopback("127.0.0.1") and ui.is_loopback("localhost") and ui.is_loopback("::1")
    assert not ui.is_loopback("0.0.0.0")


# --- the chat, polished (issue 10, part 4) ---------------------------------------------------

SCREENSHOTS = os.environ.get("ASSISTANT_SCREENSHOT_DIR")  # e.g. docs/screenshots; else each test's tmp_path


def _shot(page, tmp_path, name: str, full_page: bool = True) -> None:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)
    print(f"\nscreenshot: {folder / f'{name}.png'}")


def _luminance(rgb: str) -> float:
    channels = [int(x) / 255 for x in re.findall(r"\d+", rgb)[:3]]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(fg: str, bg: str) -> float:
    """WCAG 2 contrast ratio of two opaque CSS colours ``rgb(r, g, b)``."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _colors(locator) -> tuple[str, str]:
    """The element's text colour and the background it is drawn on (the nearest ancestor's that is opaque)."""
    return locator.evaluate(
        """(e) => { let el = e, bg = 'rgb(255, 255, 255)';
                    for (; el; el = el.parentElement) {
                      const c = getComputedStyle(el).backgroundColor;
                      if (c && c !== 'transparent' && !c.startsWith('rgba(0, 0, 0, 0')) { bg = c; break; } }
                    return [getComputedStyle(e).color, bg]; }"""
    )


def _new_page(browser, server, tmp_path, *, dark: bool = False, width: int = 1400, height: int = 1000):
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server + ("?__theme=dark" if dark else ""))
    page.locator("#ea-question textarea").wait_for()
    return context, page


@pytest.mark.integration
def test_browser_copy_gives_plain_text_and_messages_read_without_tags(page, server, assistant):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.rstrip("/"))
    expected = assistant.answer(JAPAN_Q)
    _ask(page, JAPAN_Q)
    _answers(page).first.wait_for()
    page.locator("#ea-chat .ea-copy").first.click()
    page.locator("#ea-chat .ea-copy.ea-copied").wait_for(state="attached")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == ui.plain_answer(expected)
    assert "<" not in copied and "[1]" in copied and "\n\nSources:\n[1] " in copied
    # Screen readers: each message's aria-label is its plain text, never HTML.
    page.wait_for_function(
        """() => { const ls = [...document.querySelectorAll('#ea-chat [aria-label*="message: "]')]
                   .map((e) => e.getAttribute('aria-label'));
                   return ls.length >= 2 && ls.every((l) => !l.includes('<')); }"""
    )
    labels = page.eval_on_selector_all(
        '#ea-chat [aria-label*="message: "]', "els => els.map((e) => e.getAttribute('aria-label'))"
    )
    assert f"user's message: {JAPAN_Q}" in labels
    assert any(label.startswith(f"bot's message: {expected.answer[:60]}") for label in labels)
    # The plain-text copy inside each answer is not displayed, so it is not read twice.
    assert page.locator("#ea-chat .ea-copytext").first.evaluate("e => getComputedStyle(e).display") == "none"


@pytest.mark.integration
def test_browser_math_and_markdown_shown_as_typed(page):
    typed = r"$$x^2 + \frac{a}{b}$$ and *stars* # not a heading `code` [link](http://example.com) $5 or $6"
    _ask(page, typed)
    _answers(page).first.wait_for()
    assert page.locator("#ea-chat .ea-question").first.inner_text() == typed
    assert page.locator("#ea-chat .katex, #ea-chat em, #ea-chat code, #ea-chat h1, #ea-chat a").count() == 0


@pytest.mark.integration
def test_browser_highlight_readable_in_light_and_dark_mode(browser, server, assistant, tmp_path):
    expected = assistant.answer(JAPAN_Q)
    for dark in (False, True):
        context, page = _new_page(browser, server, tmp_path, dark=dark)
        try:
            _ask(page, JAPAN_Q)
            _answers(page).first.wait_for()
            page.locator(f"#ea-chat p .ea-marker.ea-k-1-{expected.citations[0].n}").click()
            mark = page.locator("#ea-source mark.ea-hl:visible")
            mark.wait_for()
            assert page.evaluate("document.body.classList.contains('dark')") is dark
            ratio = _contrast(*_colors(mark))
            print(f"\n{'dark' if dark else 'light'} mode: highlight contrast {ratio:.1f}:1")
            assert ratio >= 7  # WCAG AAA for body text
            _shot(page, tmp_path, "chat-dark" if dark else "chat-light")
            _ask(page, "How do I bake sourdough bread?")  # declined: its notice must be readable too
            _answers(page).nth(1).wait_for()
            declined = page.locator("#ea-evidence .ea-declined")
            declined.wait_for()
            assert _contrast(*_colors(declined)) >= 7
            for small in ("#ea-evidence .ea-meta", "#ea-overview .ea-meta"):  # the grey notes: AA at least
                assert _contrast(*_colors(page.locator(small).first)) >= 4.5, small
        finally:
            context.close()


@pytest.mark.integration
def test_browser_evidence_for_a_reader_and_phone_width(browser, server, assistant, tmp_path):
    expected = assistant.answer(JAPAN_Q)
    for dark in (False, True):
        context, page = _new_page(browser, server, tmp_path, dark=dark, width=390, height=844)
        try:
            _ask(page, JAPAN_Q)
            _answers(page).first.wait_for()
            evidence = page.locator("#ea-evidence")
            first = evidence.locator("li.ea-ev").first
            cited = expected.citations[0]
            assert first.locator(".ea-ev-sentence").inner_text().startswith(cited.quote[:50])
            assert f"Quoted in the answer as [{cited.n}]" in first.locator(".ea-ev-why").inner_text()
            details = first.locator("details")
            assert not details.locator("dl").is_visible()  # scores are behind the toggle
            details.locator("summary").click()
            details.locator("dl").wait_for()
            assert "rerank" in details.inner_text() and expected.passages[0].passage.id in details.inner_text()
            # Nothing wider than the phone: neither the page nor the panels scroll sideways.
            overflow = page.evaluate(
                """() => [document.documentElement.scrollWidth - window.innerWidth,
                          ...['#ea-evidence', '#ea-source', '#ea-chat'].map((s) => {
                              const e = document.querySelector(s); return e.scrollWidth - e.clientWidth; })]"""
            )
            assert all(x <= 1 for x in overflow), overflow
            _shot(page, tmp_path, "phone-dark" if dark else "phone-light")
        finally:
            context.close()


@pytest.mark.integration
def test_browser_conversation_survives_a_reload_until_new_conversation(page):
    _ask(page, "Why was Huawei banned?")
    _answers(page).nth(0).wait_for()
    _ask(page, "When did Japan do that?")
    _answers(page).nth(1).wait_for()
    page.reload()
    _answers(page).nth(1).wait_for()  # replayed from the browser's storage
    assert page.locator("#ea-chat .ea-question").first.inner_text() == "Why was Huawei banned?"
    assert "December 2018" in _answers(page).nth(1).inner_text()
    page.locator("#ea-chat .ea-answer.ea-turn-2 p .ea-marker").first.click()  # markers work after a reload
    page.locator("#ea-source mark.ea-hl:visible").wait_for()

    stored = page.evaluate(f"localStorage.getItem('{ui.STORAGE_KEY}')")
    page.locator("#ea-clear").click()
    _answers(page).first.wait_for(state="detached")
    page.wait_for_function(f"(before) => localStorage.getItem('{ui.STORAGE_KEY}') !== before", arg=stored)
    page.reload()
    page.locator("#ea-question textarea").wait_for()
    _ask(page, "Who wrote the essay?")
    _answers(page).first.wait_for()
    assert page.locator("#ea-chat .ea-question").all_inner_texts() == ["Who wrote the essay?"]


@pytest.mark.integration
def test_browser_read_the_essay(page, assistant, tmp_path):
    expected = assistant.answer(JAPAN_Q)
    _ask(page, JAPAN_Q)
    _answers(page).first.wait_for()
    page.get_by_role("tab", name="Read the essay").click()
    essay = page.locator("#ea-essay")
    marks = essay.locator("mark.ea-hl")
    marks.first.wait_for()
    assert marks.count() == len(expected.citations)
    for mark, c in zip(marks.all(), sorted(expected.citations, key=lambda c: c.start), strict=True):
        assert mark.inner_text() == f"[{c.n}]{c.quote}"
    marks.first.scroll_into_view_if_needed()
    _shot(page, tmp_path, "read-the-essay", full_page=False)
    text = essay.inner_text()
    assert "U.S. Technology Controls" in text and "Paths Forward" in text and "References" in text
    footnote = essay.locator('a.ea-fn[href="#ea-ref-9"]').first
    footnote.click()
    page.wait_for_function("() => document.querySelector('#ea-ref-9').matches(':target')")
    assert essay.locator("#ea-ref-9").is_visible()
    assert "Nikkei" in essay.locator("#ea-ref-9").inner_text()
    _shot(page, tmp_path, "read-the-essay-footnote", full_page=False)


@pytest.mark.integration
def test_browser_non_english_question_gets_one_line(page):
    _ask(page, "¿Por qué Japón evita nombrar a China en sus controles de exportación?")
    _answers(page).first.wait_for()
    text = _answers(page).first.locator(".ea-text").inner_text()
    assert text.startswith("This question looks like Spanish; I understand questions in English only")
    assert page.locator("#ea-chat .ea-marker").count() == 0


@pytest.mark.integration
def test_server_writes_no_files_and_leaves_none_after_ctrl_c(assistant, tmp_path):
    """Ctrl+C with clients still connected (as a browser tab is) stops the server itself, then the process.

    Every page and gradio_client keeps a ``/heartbeat`` stream open. Gradio's own Ctrl+C handling
    left those open, the server never finished stopping and Python exited around its still
    running thread (which sometimes hung): the stream then broke off instead of being ended.
    """
    import httpx
    from gradio_client import Client

    temp, gradio_temp = tmp_path / "tmp", tmp_path / "gradio"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(gradio_temp), "PYTHONPATH": str(REPO_ROOT)}
    port = free_port()
    cmd = [sys.executable, "-m", "assistant.cli", "--index-dir", str(assistant.settings.index_dir)]
    proc = subprocess.Popen(
        [*cmd, "chat", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A shell without job control starts background commands with SIGINT ignored, and Python
        # then installs no Ctrl+C handler: restore the terminal's default, as in a foreground run.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    output: list[str] = []
    up = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            output.append(line)
            if "Running on local URL" in line:
                up.set()
        up.set()  # the server ended

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    interrupted = False
    try:
        assert up.wait(timeout=300) and proc.poll() is None, "".join(output)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)  # left open: its heartbeat stream too
        for question in ["Who wrote the essay?", JAPAN_Q, "When did Japan do that?", "What is the capital of France?"]:
            client.predict(question, api_name="/chat")
        written = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert written == []  # no export or other file per answer
        url = f"http://127.0.0.1:{port}/gradio_api/heartbeat/ctrl-c-test"
        # The read timeout only bounds a failure: the server writes to this stream every 15 s.
        with httpx.stream("GET", url, timeout=httpx.Timeout(30, read=60)) as heartbeat:
            lines = heartbeat.iter_lines()
            assert next(lines) == "data: ALIVE"
            proc.send_signal(signal.SIGINT)  # Ctrl+C, with this stream and the client's open
            interrupted = True
            # Ended by the server; an abrupt close raises httpx.RemoteProtocolError. The server writes a
            # line every 15 s while it runs: four more mean it went on serving after Ctrl+C.
            assert len(list(itertools.islice(lines, 4))) < 4, "".join(output)
    finally:
        if not interrupted:
            proc.send_signal(signal.SIGINT)  # Ctrl+C
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()  # leave no server behind a failure
            raise
    reader.join(timeout=60)  # the rest of its output
    assert proc.returncode == 0
    assert [p for p in tmp_path.rglob("*") if p != temp] == []  # no file, nor the empty folders Gradio makes
    assert "Traceback" not in "".join(output)
    assert "stopping the server" in "".join(output)


@pytest.mark.integration
def test_browser_follow_up_buttons_and_answer_length(page, assistant):
    _ask(page, "When did Japan ban Huawei equipment?")
    _answers(page).nth(0).wait_for()
    buttons = page.locator("#ea-follow-ups button.ea-follow-up:visible")
    buttons.nth(2).wait_for()  # three suggestions, each checked not to be declined
    labels = [buttons.nth(i).inner_text() for i in range(buttons.count())]
    first = assistant.answer("When did Japan ban Huawei equipment?")
    assert labels == assistant.follow_ups(first)
    page.get_by_role("button", name="Tell me more").click()
    _answers(page).nth(1).wait_for()
    more = _answers(page).nth(1).inner_text()
    assert "December 2018" not in more and "[1]" in more  # evidence not quoted before

    page.locator("#ea-length").get_by_text("short", exact=True).click()
    _ask(page, "What did Japan do in March 2023?")
    _answers(page).nth(2).wait_for()
    short = _answers(page).nth(2).inner_text()
    assert "[1]" in short and "[2]" not in short


@pytest.mark.unit
def test_answer_says_which_backend_wrote_it():
    from assistant.types import Answer

    llm = Answer("q", "Japan banned it in 2018. [1]", False, [], [], backend="openai")
    assert "Written by the openai LLM; every sentence checked against the essay." in ui.render_answer(llm, 1)
    fell_back = Answer("q", "In December 2018, … [1]", False, [], [], fallback="no sentence was supported")
    html = ui.render_answer(fell_back, 1)
    assert "The LLM’s answer was not used (no sentence was supported)" in html
    assert "ea-note" not in ui.render_answer(Answer("q", "x [1]", False, [], []), 1)
