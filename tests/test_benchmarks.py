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
