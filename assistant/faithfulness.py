"""The faithfulness set: labelled generated-style sentences for the citation check.

``tests/data/faithfulness_tune.jsonl`` (tune: thresholds are calibrated on it) and
``tests/data/faithfulness_test.jsonl`` (test: frozen, read-only, its SHA-256 below; only
aggregate figures are computed on it). Each line: ``{"id", "sentence", "cited": [1-2 verbatim
essay sentences or reference entries], "label": "supported"|"unsupported", "category"}``,
written by writers who had not read ``assistant/verification.py``.
"""

from __future__ import annotations

from assistant.config import REPO_ROOT

TUNE_PATH = REPO_ROOT / "tests" / "data" / "faithfulness_tune.jsonl"
TEST_PATH = REPO_ROOT / "tests" / "data" / "faithfulness_test.jsonl"
# Recorded when the test split was frozen, before anything was measured on it.
TEST_SHA256 = "40559624ee2cbca4c0b8e535da0b5987b5b8cc7f90959be1982e8ceaf09e2aef"
