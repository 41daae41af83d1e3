"""The benchmark's own pieces that need no model: the scaled corpus and the percentile helper.

No test here (or anywhere) asserts a wall-clock time.
"""

import pytest

from assistant.config import REPO_ROOT
from assistant.corpus import load_corpus, parse_corpus
from benchmarks.__main__ import pct
from benchmarks.synth import scaled_corpus, write_scaled_corpus

pytestmark = pytest.mark.unit


def test_scaled_corpus_keeps_the_essay_format(tmp_path):
    essay = load_corpus(REPO_ROOT / "corpus" / "essay.md")
    path = write_scaled_corpus(REPO_ROOT / "corpus" / "essay.md", tmp_path, 10)
    big = load_corpus(path)
    assert 9 * len(essay.text) < len(big.text) < 11 * len(essay.text)
    assert big.title == essay.title and big.author_line == essay.author_line
    assert big.references.keys() == essay.references.keys()
    assert [r.text for r in big.references.values()] == [r.text for r in essay.references.values()]
    assert len(big.paragraphs) > 5 * len(essay.paragraphs)
    assert any(p.section.startswith("Synthetic Section") for p in big.paragraphs)
    assert big.cited_numbers() == essay.cited_numbers()  # synthetic text cites nothing


def test_scaled_corpus_is_deterministic():
    text = (REPO_ROOT / "corpus" / "essay.md").read_text(encoding="utf-8")
    assert scaled_corpus(text, 3) == scaled_corpus(text, 3)
    assert parse_corpus(scaled_corpus(text, 1), REPO_ROOT / "x.md").text.startswith("# Bonding Over Bans")


def test_percentile_interpolates():
    assert pct([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert pct([10.0, 20.0], 95) == 19.5
    assert pct([7.0], 95) == 7.0


def _results(factor: int | None, load: float = 4.0) -> dict:
    def warm(ms: float) -> dict:
        t = {"p50": ms, "p95": ms}
        return {"retrieve": t, "answer": {"p50": 0.0, "p95": 0.0}, "total": t, "n": 80, "peak_rss_mb": 300.0}

    rebuild = {"fresh_process_s": 30.0, "model_loaded_s": 20.0, "passages": 65, "texts_embedded": 200}
    results = {
        "machine": {
            "cpus": 2,
            "python": "3.11",
            "platform": "x",
            "commit": "abc",
            "before": "",
            "loadavg_start": [load],
        }
        | {"loadavg_end": [load]},
        "systems": ["ours", "baseline"],
        "rebuild": {"ours": rebuild | {"passages_per_s": 3.0}, "baseline": rebuild | {"passages_per_s": 8.0}},
        "cli": {"ours": {"help_s": 0.1, "status_s": 0.5}},
        "cold_start": {
            "ours": {"median_s": 1.5, "peak_rss_mb": 300.0},
            "baseline": {"median_s": 9.0, "peak_rss_mb": 900.0},
        },
        "warm": {"ours": warm(40.0), "baseline": warm(30.0)},
    }
    if factor:
        big = {
            "fresh_process_s": 100.0,
            "build_s": 90.0,
            "passages": 650,
            "texts_embedded": 2000,
            "passages_per_s": 7.0,
        }
        results["scaling"] = {
            "factor": factor,
            "corpus_chars": 1000,
            "rebuild": {"ours": big, "baseline": big},
            "warm": {"ours": warm(60.0), "baseline": warm(35.0)},
        }
    return results


def test_report_marks_the_cold_start_ratio_and_an_unrun_100x_corpus():
    from benchmarks.report import render_markdown, targets

    marks = {name: (value, ok) for name, value, ok in targets(_results(10))}
    assert marks["cold start ≤ 0.3× the tutorial recipe's"][1] is True  # 1.5 s / 9.0 s = 0.17×
    value, ok = marks["answer p95 at 100× corpus ≤ 2× the 1× figure"]
    assert ok is None and "not run at 100×" in value  # a 10× figure is not the 100× target
    md = render_markdown(_results(10))
    assert "## The 100× corpus was not run" in md and "45 ms per text" in md  # 90 s / 2000 texts
    assert "not an idle machine" in md
    assert "HuggingFaceEmbeddings" in md


def test_report_judges_the_100x_corpus_when_run():
    from benchmarks.report import render_markdown, targets

    marks = {name: ok for name, _, ok in targets(_results(100, load=0.1))}
    assert marks["answer p95 at 100× corpus ≤ 2× the 1× figure"] is True  # 60 / 40 = 1.5×
    md = render_markdown(_results(100, load=0.1))
    assert "was not run" not in md and "not an idle machine" not in md
