"""Settings out of range: a one-line error naming the setting and the allowed range (issue 12, part 6)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assistant import index
from assistant.api import Assistant
from assistant.config import load_settings
from assistant.errors import SettingsError

HUAWEI = "When did Japan ban Huawei equipment from its ministries?"


def _one_line(message: str) -> None:
    assert "\n" not in message.strip() and "Traceback" not in message and len(message) < 300, message


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


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ASSISTANT_TOP_K", "21", "allowed 1..20"),
        ("ASSISTANT_TOP_K", "0", "allowed 1..50"),
        ("ASSISTANT_TOP_K", "many", "ASSISTANT_TOP_K='many'"),
        ("ASSISTANT_MAX_ANSWER_SENTENCES", "9", "allowed 1..8"),
        ("ASSISTANT_ANSWER__MAX_CHARS", "5", "allowed 100..900"),
    ],
)
def test_cli_names_the_setting_and_its_range_in_one_line(assistant, variable, value, expected):
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "--index-dir", str(assistant.settings.index_dir), "ask", HUAWEI],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, variable: value},
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: invalid settings: ") and variable in result.stderr
    assert expected in result.stderr
    _one_line(result.stderr)


def test_top_k_above_the_passages_in_the_index_is_refused(tmp_path, settings):
    """A corpus of 3 passages (title, one paragraph, one reference) with top_k 5: a one-line error."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "essay.md").write_text(
        "# A Short Essay\n\nBy Someone\n\nJapan banned Huawei equipment in 2018. (1) It said why.\n\n"
        "## References\n\n(1) “A Source,” Outlet, May 1, 2019, https://example.org/a.\n",
        encoding="utf-8",
    )
    own = settings.model_copy(update={"corpus_dir": corpus, "index_dir": tmp_path / "idx", "top_k": 5})
    index.build(own, progress=False)
    with pytest.raises(SettingsError) as info:
        Assistant(own).answer(HUAWEI)
    _one_line(str(info.value))
    assert "holds only 3 passages" in str(info.value) and "allowed 1..3" in str(info.value)
    assert Assistant(own.model_copy(update={"top_k": 3})).answer(HUAWEI).citations
