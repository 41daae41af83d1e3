"""Invisible and compatibility Unicode in questions (issue 12, part 3), on every entry point.

A question pasted with zero-width spaces, soft hyphens, bidi marks or a BOM, typed in full-width
letters, or written with decomposed (combining-mark) letters gets the same answer as the plain
question: it is NFKC-normalised and its format characters (category Cf) are removed before
validation and search, while the answer keeps the text as written for display.

Entry points: Python ``Assistant.answer`` and ``answer()``, CLI ``ask`` (text and ``--json``),
CLI ``ask --jsonl`` (a real process), and the HTTP API of the chat app (``/answer``, ``/chat``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata

import pytest
from typer.testing import CliRunner

from assistant.cli import app as cli_app
from assistant.errors import InvalidQuestionError
from assistant.question import normalise_question, validate

HUAWEI = "When did Japan ban Huawei equipment from its ministries?"
SHORT = "When did Japan ban Huawei?"
TOKYO = "Why did Tōkyō ban Huawei equipment from its ministries?"  # ō: one code point (NFC)


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


# (case id, variant as pasted, the plain question it must answer as)
VARIANTS = [
    ("zero-width-space", "When did Ja\u200bpan ban Hua\u200bwei?", SHORT),
    ("zero-width-joiners", "When did Japan\u200d ban\u200c Huawei\u2060 equipment from its ministries?", HUAWEI),
    ("soft-hyphen", "When did Japan ban Hua\u00adwei equip\u00adment from its minis\u00adtries?", HUAWEI),
    ("bidi-and-bom", "\ufeff\u202aWhen did \u200eJapan ban Huawei equipment from its ministries?\u202c\u200f", HUAWEI),
    ("full-width", _full_width(HUAWEI), HUAWEI),
    ("combining-marks", unicodedata.normalize("NFD", TOKYO), TOKYO),
]
IDS = [v[0] for v in VARIANTS]


def _same(data: dict, plain: dict) -> None:
    """Same answer, citations and passages as the plain question."""
    assert data["answer"] == plain["answer"]
    assert data["refused"] == plain["refused"]
    assert data["citations"] == plain["citations"]
    assert [p["passage_id"] for p in data["passages"]] == [p["passage_id"] for p in plain["passages"]]


@pytest.fixture(scope="module")
def plain_answers(assistant) -> dict[str, dict]:
    return {q: assistant.answer(q).to_dict() for q in {v[2] for v in VARIANTS}}


def test_normalisation_of_each_variant():
    for _, variant, plain in VARIANTS:
        assert normalise_question(variant) == plain
    assert normalise_question("  ＡＰＥＣ\u3000summit\u00ad?  ") == "APEC summit?"
    # Kept as written for display (whitespace collapsed), checked in its normalised form.
    assert validate("When did Ja\u200bpan  ban Huawei?", 100) == "When did Ja\u200bpan ban Huawei?"
    with pytest.raises(InvalidQuestionError, match="empty"):
        validate("\u200b\u200d\ufeff \u00ad", 100)
    with pytest.raises(InvalidQuestionError, match="18 characters long; the limit is 10"):
        validate("ﷺ", 10)  # one code point, 18 characters once normalised
    with pytest.raises(InvalidQuestionError, match="control characters"):
        validate("When\u200b did\x07 Japan ban Huawei?", 100)


@pytest.mark.parametrize(("case", "variant", "plain"), VARIANTS, ids=IDS)
def test_python_answer(assistant, plain_answers, case, variant, plain):
    result = assistant.answer(variant)
    _same(result.to_dict(), plain_answers[plain])
    assert result.question == " ".join(variant.split())  # as written, for display
    assert result.standalone_question == plain  # as searched
    if plain != TOKYO:
        assert "December 2018" in result.answer and not result.refused


def test_module_level_answer_function(assistant, plain_answers):
    from assistant.api import answer

    result = answer(VARIANTS[0][1], settings=assistant.settings)
    _same(result.to_dict(), plain_answers[SHORT])


def test_followup_history_is_normalised_too(assistant):
    result = assistant.answer("When did Japan do that?", history=["Why was Hua\u200bwei ban\u00adned?"])
    assert result.standalone_question == "When did Japan do that? (Huawei banned)"


@pytest.mark.parametrize(("case", "variant", "plain"), VARIANTS, ids=IDS)
def test_cli_ask_json(assistant, plain_answers, case, variant, plain):
    runner = CliRunner()
    result = runner.invoke(cli_app, ["--index-dir", str(assistant.settings.index_dir), "ask", "--json", variant])
    assert result.exit_code == 0, result.output
    _same(json.loads(result.stdout), plain_answers[plain])


def test_cli_ask_text_in_a_real_process(assistant):
    args = [sys.executable, "-m", "assistant.cli", "--index-dir", str(assistant.settings.index_dir), "ask"]
    pasted = subprocess.run([*args, VARIANTS[0][1]], capture_output=True, text=True, timeout=300)
    plain = subprocess.run([*args, SHORT], capture_output=True, text=True, timeout=300)
    assert pasted.returncode == 0 and pasted.stderr == ""
    assert pasted.stdout == plain.stdout and "December 2018" in pasted.stdout


def test_cli_jsonl_batch(assistant, plain_answers):
    lines = [json.dumps({"id": case, "question": variant}) for case, variant, _ in VARIANTS]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant.cli",
            "--index-dir",
            str(assistant.settings.index_dir),
            "ask",
            "--jsonl",
            "-",
        ],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == IDS
    for row, (_, _, plain) in zip(rows, VARIANTS, strict=True):
        _same(row, plain_answers[plain])


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


@pytest.mark.parametrize(("case", "variant", "plain"), VARIANTS, ids=IDS)
def test_http_api_answer(client, plain_answers, case, variant, plain):
    _same(client.predict(variant, [], api_name="/answer"), plain_answers[plain])


def test_http_api_chat(client):
    outputs = client.predict(VARIANTS[0][1], api_name="/chat")
    assert outputs[-2] == ""  # no notice
    assert "December 2018" in json.dumps(outputs[0], ensure_ascii=False)
