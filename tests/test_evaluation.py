"""The quality gate: the dev set's metrics, through the same path as answer(), stay above thresholds
a little below what the assistant reaches (docs/eval.md has the figures)."""

import json
import subprocess
import sys

import pytest

from assistant.evaluation import evaluate, key_facts_met, load_items, refusal_sweep
from tests.conftest import DATA


@pytest.fixture(scope="module")
def report(assistant):
    return evaluate(assistant, load_items(DATA / "dev.jsonl"))


def test_dev_set_meets_the_quality_targets(report):
    overall = report["overall"]
    assert overall["evidence_recall@5"] >= 95.0
    assert overall["context_chars@5"] <= 2500
    assert overall["key_fact_accuracy"] >= 88.0
    assert overall["refusal_accuracy"] >= 80.0
    assert overall["false_refusals"] <= 1
    assert overall["citation_validity"] == 100.0
    assert overall["sentences_cited"] == 100.0
    assert overall["answer_chars_median"] <= 350
    assert overall["answer_chars_max"] <= 900


def test_refusal_threshold_in_settings_is_inside_the_calibrated_range(report, assistant):
    low, high = report["refusal_sweep"]["tied_range"]
    assert low <= assistant.settings.refusal_threshold <= high


def test_refusal_sweep_picks_the_middle_of_the_widest_run():
    rows = [
        {"threshold_applies": True, "answerability": a, "should_refuse": r, "answerable": not r}
        for a, r in [(0.10, True), (0.20, True), (0.60, False), (0.70, False)]
    ]
    sweep = refusal_sweep(rows)
    assert sweep["tied_range"] == [0.21, 0.6]
    assert sweep["chosen"] == pytest.approx(0.405, abs=0.006)


def test_key_facts_accept_alternatives():
    from assistant.answering import Answer
    from assistant.evaluation import Item

    item = Item("x", "fact", "q", ("twenty-three|23 types", "march"), ())
    assert key_facts_met(item, Answer("q", "In March 2023, 23 types [1]", False, [], []))
    assert not key_facts_met(item, Answer("q", "In March 2023 [1]", False, [], []))


def test_eval_command_writes_reports_and_gates(assistant, tmp_path):
    subset = tmp_path / "qa.jsonl"
    lines = (DATA / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    subset.write_text("\n".join(lines[:3] + lines[32:34]) + "\n", encoding="utf-8")
    base = [sys.executable, "-m", "assistant.cli", "--index-dir", str(assistant.settings.index_dir), "eval"]
    ok = subprocess.run([*base, str(subset), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report["overall"]["questions"] == 5
    assert (tmp_path / "out" / "eval.png").stat().st_size > 10_000
    assert "## By question type" in (tmp_path / "out" / "eval.md").read_text()
    gated = subprocess.run(
        [*base, str(subset), "--out", str(tmp_path / "o2"), "--min-key-fact-accuracy", "101"],
        capture_output=True,
        text=True,
    )
    assert gated.returncode == 1
    assert "key_fact_accuracy" in gated.stderr
