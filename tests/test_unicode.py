"""Invisible and compatibility Unicode in questions (issue 12, part 3), on every entry point.

A question pasted with zero-width spaces, soft hyphens, bidi marks or a BOM, typed in full-width
letters, or written with decomposed (combining-mark) letters gets the same answer as the plain
question: it is NFKC-normalised and its format characters (category Cf) are removed before
validation and search, while the answer keeps the text as written for display.

Entry points: Python ``Assistant.answer`` and ``answer()``, CLI ``ask`` (text and ``--json``),
CLI ``ask --jsonl`` (a real process), and the HTTP API of the chat app (``/answer``, ``/chat``).
The normalisation and the in-process entry points are unit tests (the fake model gives the plain and
the pasted question the same answer exactly when they are normalised alike); CLI processes and the
HTTP API answer with the real model (integration).
"""

from __future__ import annotations

import json
import unicodedata

import pytest

from assistant.errors import InvalidQuestionError
from assistant.question import normalise_question, validate
from tests.helpers import HUAWEI, invoke_cli, jsonl_rows, run_cli

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


def _plain(assistant) -> dict[str, dict]:
    return {q: assistant.answer(q).to_dict() for q in {v[2] for v in VARIANTS}}


@pytest.fixture(scope="module")
def plain_answers(assistant) -> dict[str, dict]:
    """The real model's answers to the plain questions."""
    return _plain(assistant)


@pytest.fixture(scope="module")
def fake_plain_answers(fake_assistant) -> dict[str, dict]:
    """The fake model's answers to the plain questions."""
    return _plain(fake_assistant)


@pytest.mark.unit
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


@pytest.mark.unit
@pytest.mark.parametrize(("case", "variant", "plain"), VARIANTS, ids=IDS)
def test_python_answer(fake_assistant, fake_plain_answers, case, variant, plain):
    result = fake_assistant.answer(variant)
    _same(result.to_dict(), fake_plain_answers[plain])
    assert result.question == " ".join(variant.split())  # as written, for display
    assert result.standalone_question == plain  # as searched


@pytest.mark.unit
def test_module_level_answer_function(fake_assistant, fake_plain_answers):
    from assistant.api import answer

    result = answer(VARIANTS[0][1], settings=fake_assistant.settings)
    _same(result.to_dict(), fake_plain_answers[SHORT])


@pytest.mark.unit
def test_followup_history_is_normalised_too(fake_assistant):
    result = fake_assistant.answer("When did Japan do that?", history=["Why was Hua\u200bwei ban\u00adned?"])
    assert result.standalone_question == "When did Japan do that? (Huawei banned)"


@pytest.mark.unit
@pytest.mark.parametrize(("case", "variant", "plain"), VARIANTS, ids=IDS)
def test_cli_ask_json(fake_assistant, fake_plain_answers, case, variant, plain):
    result = invoke_cli(fake_assistant.settings, "ask", "--json", variant)
    assert result.exit_code == 0, result.output
    _same(json.loads(result.stdout), fake_plain_answers[plain])


@pytest.mark.integration
def test_cli_ask_text_in_a_real_process(assistant):
    pasted = run_cli("ask", VARIANTS[0][1], index_dir=assistant.settings.index_dir)
    plain = run_cli("ask", SHORT, index_dir=assistant.settings.index_dir)
    assert pasted.returncode == 0 and pasted.stderr == ""
    assert pasted.stdout == plain.stdout and "December 2018" in pasted.stdout


@pytest.mark.integration
def test_cli_jsonl_batch(assistant, plain_answers):
    lines = [json.dumps({"id": case, "question": variant}) for case, variant, _ in VARIANTS]
    result = run_cli("ask", "--jsonl", "-", index_dir=assistant.settings.index_dir, stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    rows = jsonl_rows(result.stdout)
    assert [r["id"] for r in rows] == IDS
    for row, (_, _, plain) in zip(rows, VARIANTS, strict=True):
        _same(row, plain_answers[plain])


@pytest.mark.integration
@pytest.mark.parametrize(("case", "variant", "plain"), VARIANTS, ids=IDS)
def test_http_api_answer(client, plain_answers, case, variant, plain):
    data = client.predict(variant, [], api_name="/answer")
    _same(data, plain_answers[plain])
    assert data["question"] == " ".join(variant.split())  # as written, for display
    if plain != TOKYO:
        assert "December 2018" in data["answer"] and not data["refused"]


@pytest.mark.integration
def test_http_api_chat(client):
    outputs = client.predict(VARIANTS[0][1], api_name="/chat")
    assert outputs[-2] == ""  # no notice
    assert "December 2018" in json.dumps(outputs[0], ensure_ascii=False)
