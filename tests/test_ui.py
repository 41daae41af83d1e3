"""The chat UI, driven for real: the app served on loopback, Debian's Chromium via Playwright, gradio_client.

Waits are on conditions (generous timeouts for a busy 2-core machine), never fixed sleeps.
"""

from __future__ import annotations

import re
import time

from typer.testing import CliRunner

from assistant import ui
from assistant.cli import app as cli_app
from assistant.text import strip_footnotes

JAPAN_Q = "Why does Japan avoid naming China in its export controls?"


def _ask(page, question: str) -> None:
    box = page.locator("#ea-question textarea")
    box.fill(question)
    box.press("Enter")


def _answers(page):
    return page.locator("#ea-chat .ea-answer")


def test_browser_cited_answer_and_source_panel(page, assistant, tmp_path):
    expected = assistant.answer(JAPAN_Q)
    # The citation whose sentence has footnoted references, so the panel's reference list is checked too.
    china = next((c for c in expected.citations if c.references), expected.citations[0])

    started = time.perf_counter()
    _ask(page, JAPAN_Q)
    page.locator("#ea-chat .ea-streaming, #ea-chat .ea-answer").first.wait_for()
    first_token_s = time.perf_counter() - started
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

    evidence = page.locator("#ea-evidence").inner_text()
    assert f"Searched as: {JAPAN_Q}" in evidence
    for r in expected.passages:
        assert r.passage.id in evidence

    shot = tmp_path / "chat.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")
    print(f"Enter -> first streamed token: {first_token_s:.2f} s; -> full answer: {full_s:.2f} s")


def test_browser_follow_up_is_made_standalone(page, assistant):
    _ask(page, "Why was Huawei banned?")
    _answers(page).nth(0).wait_for()
    _ask(page, "When did Japan do that?")
    _answers(page).nth(1).wait_for()
    expected = assistant.answer("When did Japan do that?", history=["Why was Huawei banned?"])
    assert expected.standalone_question != expected.question
    assert f"Searched as: {expected.standalone_question}" in page.locator("#ea-evidence").inner_text()
    assert "December 2018" in _answers(page).nth(1).inner_text()


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


def test_browser_suggestion_asks_and_export(page, tmp_path):
    page.get_by_role("button", name="Who wrote the essay?").click()
    _answers(page).first.wait_for()
    assert "Ian Wong" in _answers(page).first.inner_text()
    export = page.locator("#ea-export")
    with page.expect_download() as download:
        export.click()
    path = tmp_path / "conversation.md"
    download.value.save_as(path)
    markdown = path.read_text(encoding="utf-8")
    assert "## 1. Who wrote the essay?" in markdown
    assert "[1]" in markdown and "> Ian Wong" in markdown


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


def test_rendering_escapes_everything(assistant):
    result = assistant.answer(JAPAN_Q)
    html = ui.render_answer(result, 1)
    assert html.count('class="ea-marker') == 2 * len(result.citations)
    assert "<script" not in ui.render_question("<script>alert(1)</script>")
    markdown = ui.conversation_markdown(
        ui.build_overview(__import__("assistant.corpus").corpus.load_corpus(assistant.settings.corpus_path)), [result]
    )
    for c in result.citations:
        assert f"> {c.quote}" in markdown


def test_chat_command_refuses_remote_host_without_flag():
    result = CliRunner().invoke(cli_app, ["chat", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--allow-remote" in result.output
    assert ui.is_loopback("127.0.0.1") and ui.is_loopback("localhost") and ui.is_loopback("::1")
    assert not ui.is_loopback("0.0.0.0")
