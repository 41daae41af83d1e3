"""Settings out of range: a one-line error naming the setting and the allowed range (issue 12, part 6).

Unit tests, but for the one that starts the CLI in a fresh process with the bad variable set.
"""

from __future__ import annotations

import pytest

from assistant import index
from assistant.api import Assistant
from assistant.config import load_settings
from assistant.errors import SettingsError
from tests.helpers import HUAWEI, TINY_QUESTION, invoke_cli, run_cli


def _one_line(message: str) -> None:
    assert "\n" not in message.strip() and "Traceback" not in message and len(message) < 300, message


@pytest.mark.unit
@pytest.mark.parametrize("top_k", [21, 30, 50])
def test_top_k_above_the_ranked_candidates_is_refused(top_k, monkeypatch):
    """21..50 used to return 20 passages silently (the retriever ranks candidate_k = 20)."""
    monkeypatch.setenv("ASSISTANT_TOP_K", str(top_k))
    with pytest.raises(SettingsError) as info:
        load_settings()
    _one_line(str(info.value))
    assert "ASSISTANT_TOP_K" in str(info.value) and "allowed 1..20" in str(info.value)
    with pytest.raises(SettingsError, match="ASSISTANT_TOP_K"):
        Assistant()  # the default settings come from the environment
    # Raising the candidates makes room for it.
    assert load_settings(candidate_k=top_k).top_k == top_k


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", "--top-k=0: "), ("25", "--top-k (top_k) is 25 but the retriever ranks only ASSISTANT_CANDIDATE_K = 20")],
)
def test_a_bad_flag_is_named_as_the_flag(fake_settings, value, expected):
    result = invoke_cli(fake_settings, "--top-k", value, "ask", HUAWEI)
    assert result.exit_code == 2 and "ASSISTANT_TOP_K" not in result.output
    assert expected in result.output
    _one_line(result.output)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ASSISTANT_TOP_K", "21", "allowed 1..20"),
        ("ASSISTANT_TOP_K", "0", "allowed 1..ASSISTANT_CANDIDATE_K (20 unless set)"),
        ("ASSISTANT_TOP_K", "many", "ASSISTANT_TOP_K='many'"),
        ("ASSISTANT_MAX_ANSWER_SENTENCES", "9", "allowed 1..8"),
        ("ASSISTANT_ANSWER__MAX_CHARS", "5", "allowed 100..900"),
    ],
)
def test_cli_names_the_setting_and_its_range_in_one_line(tmp_path, variable, value, expected):
    result = run_cli("ask", HUAWEI, index_dir=tmp_path / "never-built", env={variable: value})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: invalid settings: ") and variable in result.stderr
    assert expected in result.stderr
    _one_line(result.stderr)
    assert not (tmp_path / "never-built").exists()  # refused before anything is read or built


@pytest.mark.unit
def test_top_k_above_the_passages_in_the_index_is_refused(tiny_index):
    """A corpus of 3 passages (title, one paragraph, one reference) with top_k 5: a one-line error."""
    own = tiny_index.model_copy(update={"top_k": 5})
    assert index.status(own).manifest["passage_count"] == 3
    with pytest.raises(SettingsError) as info:
        Assistant(own).answer(HUAWEI)
    _one_line(str(info.value))
    assert "holds only 3 passages" in str(info.value) and "allowed 1..3" in str(info.value)
    assert Assistant(own.model_copy(update={"top_k": 3})).answer(TINY_QUESTION).citations
