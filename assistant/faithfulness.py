"""The faithfulness set: labelled generated-style sentences for the citation check.

``tests/data/faithfulness_tune.jsonl`` (tune: thresholds are calibrated on it) and
``tests/data/faithfulness_test.jsonl`` (test: frozen, read-only, its SHA-256 below; only
aggregate figures are computed on it). Each line: ``{"id", "sentence", "cited": [1-2 verbatim
essay sentences or reference entries], "label": "supported"|"unsupported", "category"}``,
written by writers who had not read ``assistant/verification.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant.config import REPO_ROOT

TUNE_PATH = REPO_ROOT / "tests" / "data" / "faithfulness_tune.jsonl"
TEST_PATH = REPO_ROOT / "tests" / "data" / "faithfulness_test.jsonl"
# Recorded when the test split was frozen, before anything was measured on it.
TEST_SHA256 = "40559624ee2cbca4c0b8e535da0b5987b5b8cc7f90959be1982e8ceaf09e2aef"

SUPPORTED = ("paraphrase", "joint", "number_words", "reordered", "pronoun")
UNSUPPORTED = (
    "date_swap",
    "number_swap",
    "actor_swap",
    "country_swap",
    "negation",
    "unsupported_cause",
    "overgeneralisation",
    "outside_knowledge",
    "wrong_citation",
)
MAX_WRONG_KEPT = 0.025  # calibration: at most this share of wrong tune sentences kept (the 3 % target less a margin)
THRESHOLDS = [round(0.30 + 0.01 * i, 2) for i in range(51)]  # support thresholds swept, 0.30..0.80
PAIR_PENALTIES = (0.0, 0.05, 0.10, 0.15)


def load(path: Path) -> list[dict[str, Any]]:
    """The items of a faithfulness split (JSON lines)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_frozen(path: Path = TEST_PATH) -> None:
    """Raise if the frozen test split was changed since its hash was recorded."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != TEST_SHA256:
        raise RuntimeError(f"{path} changed: SHA-256 {digest}, recorded {TEST_SHA256}")


def _squash(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


class Mapper:
    """Maps each ``cited`` string of an item to the index's corpus sentences and passages."""

    def __init__(self, index: Any, corpus: Any) -> None:
        self.index = index
        self.texts = [_squash(corpus.text[s.start : s.end]) for s in index.sentences.spans]
        self.passage_of_row = [index.sentences.passage(row) for row in range(len(index.sentences))]

    def rows(self, cited: str) -> list[int]:
        """Corpus sentence rows making up ``cited`` (equal, inside it, or holding it; else the closest)."""
        want = _squash(cited)
        found = [i for i, t in enumerate(self.texts) if t == want or want in t or (len(t) > 20 and t in want)]
        if found:
            return found
        words = set(re.findall(r"\w+", want.lower()))
        best = max(range(len(self.texts)), key=lambda i: len(words & set(re.findall(r"\w+", self.texts[i].lower()))))
        return [best]

    def passages(self, item: dict[str, Any], *, whole: bool) -> list[Any]:
        """The passages an item cites, in order: whole passages, or only the cited sentences of each."""
        rows = list(dict.fromkeys(r for c in item["cited"] for r in self.rows(c)))
        by_passage: dict[str, list[int]] = {}
        for r in rows:
            by_passage.setdefault(self.passage_of_row[r].id, []).append(r)
        out = []
        for pid, mine in by_passage.items():
            passage = self.index.passages[pid]
            if not whole:
                passage = replace(passage, sentences=tuple(self.index.sentences.spans[r] for r in sorted(mine)))
            out.append(passage)
        return out


def _checker_class(ref: str | None) -> Any:
    """``CitationChecker`` of the working tree, or of ``assistant/verification.py`` at git ``ref``."""
    if ref is None:
        from assistant.verification import CitationChecker

        return CitationChecker
    source = subprocess.run(
        ["git", "show", f"{ref}:assistant/verification.py"], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    ).stdout
    path = Path(tempfile.mkdtemp()) / "verification_at_ref.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("verification_at_ref", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.CitationChecker


class _RememberingEmbedder:
    """An embedder that encodes each text once (sweeps check the same claims many times)."""

    vectors: dict[str, Any] = {}

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder

    def encode(self, texts: list[str]) -> Any:
        import numpy as np

        new = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if new:
            self.vectors.update(zip(new, self.embedder.encode(new), strict=True))
        return np.stack([self.vectors[t] for t in texts])


def score_items(
    items: list[dict[str, Any]],
    *,
    ref: str | None = None,
    whole: bool = False,
    settings: Any = None,
    remember: bool = False,
):
    """``(item, support, kept_at_default_threshold, problem)`` per item, and the check times (ms).

    ``remember``: encode each claim once across calls (calibration and ablation sweeps; the times
    are then not check times).
    """
    from assistant.api import Assistant
    from assistant.config import Settings
    from assistant.embeddings import get_embedder

    assistant = Assistant(settings or Settings())
    loaded = assistant._load()
    embedder = get_embedder(assistant.settings)
    embedder = _RememberingEmbedder(embedder) if remember else embedder
    checker = _checker_class(ref)(loaded.answerer.reranker, embedder, assistant.settings)
    mapper = Mapper(loaded.index, loaded.answerer.corpus)
    out, times = [], []
    for item in items:
        passages = mapper.passages(item, whole=whole)
        started = time.perf_counter()
        result = checker.check([(item["sentence"], tuple(range(1, len(passages) + 1)))], passages)
        times.append((time.perf_counter() - started) * 1e3)
        (verdict,) = result.sentences
        out.append((item, verdict.support if verdict.markers else 0.0, verdict.kept, verdict.reason))
    return out, times


def figures(scored: list[tuple[dict[str, Any], float, bool, str]], threshold: float | None = None) -> dict[str, Any]:
    """Share kept of supported and of unsupported sentences, overall and per category.

    ``threshold`` None: the checker's own decision; else ``support >= threshold``.
    """

    def kept(row: tuple[dict[str, Any], float, bool, str]) -> bool:
        return row[2] if threshold is None else row[1] >= threshold

    good = [r for r in scored if r[0]["label"] == "supported"]
    bad = [r for r in scored if r[0]["label"] != "supported"]
    per_category = {}
    for category in SUPPORTED + UNSUPPORTED:
        rows = [r for r in scored if r[0]["category"] == category]
        if rows:
            per_category[category] = {"n": len(rows), "kept_pct": round(100 * sum(map(kept, rows)) / len(rows), 1)}
    tp, fp = sum(map(kept, good)), sum(map(kept, bad))
    return {
        "supported": len(good),
        "unsupported": len(bad),
        "correct_kept_pct": round(100 * tp / len(good), 1) if good else None,
        "wrong_kept_pct": round(100 * fp / len(bad), 1) if bad else None,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / len(good), 3) if good else None,
        "per_category": per_category,
    }


def calibrate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Choose ``support_threshold`` and ``PAIR_PENALTY`` on tune items (see the module docstring).

    For each pair penalty the tune set is checked once and every threshold swept; the pair with
    the most correct sentences kept while at most :data:`MAX_WRONG_KEPT` of wrong ones are wins
    (ties: the higher threshold, then the smaller penalty). A penalty must earn its place: with
    none, a claim that merges two sentences is cited by both rather than by the one that happens to
    score higher alone.
    """
    import assistant.verification as verification

    default = verification.PAIR_PENALTY
    table = []
    try:
        for penalty in PAIR_PENALTIES:
            verification.PAIR_PENALTY = penalty
            scored, _ = score_items(items, remember=True)
            for t in THRESHOLDS:
                f = figures(scored, t)
                table.append(
                    {
                        "pair_penalty": penalty,
                        "threshold": t,
                        **{k: f[k] for k in ("correct_kept_pct", "wrong_kept_pct")},
                    }
                )
    finally:
        verification.PAIR_PENALTY = default
    allowed = [r for r in table if r["wrong_kept_pct"] <= 100 * MAX_WRONG_KEPT]
    best = max(allowed, key=lambda r: (r["correct_kept_pct"], r["threshold"], -r["pair_penalty"]))
    return {"chosen": best, "table": table}


def ablate(splits: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Figures with every mechanism of :data:`assistant.verification.MECHANISMS` on, then without each.

    Only aggregate figures per split (correct and wrong kept), so the frozen test split can take part.
    """
    import assistant.verification as verification

    def run() -> dict[str, Any]:
        out = {}
        for split, items in splits.items():
            f = figures(score_items(items, remember=True)[0])
            out[split] = {k: f[k] for k in ("correct_kept_pct", "wrong_kept_pct")}
        return out

    report = {"all on": run()}
    for name in verification.MECHANISMS:
        on = getattr(verification, name)
        setattr(verification, name, False)
        try:
            report[f"without {name}"] = run()
        finally:
            setattr(verification, name, on)
    return report


def main() -> None:
    """Command line: ``eval`` (figures per split), ``calibrate`` (on tune only) or ``ablate``."""
    parser = argparse.ArgumentParser(prog="python -m assistant.faithfulness")
    parser.add_argument("command", choices=["eval", "calibrate", "ablate"])
    parser.add_argument("--split", choices=["tune", "test"], action="append", help="Default: both (eval).")
    parser.add_argument("--ref", help="Evaluate assistant/verification.py as of this git commit (the 'before').")
    parser.add_argument("--whole", action="store_true", help="Give the checker whole cited passages.")
    parser.add_argument("--out", type=Path, help="Write the figures here (JSON).")
    parser.add_argument("--errors", action="store_true", help="Print the tune items decided wrongly.")
    args = parser.parse_args()
    if args.command == "calibrate":
        result = calibrate(load(TUNE_PATH))
        print(json.dumps(result["chosen"]))
        if args.out:
            args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return
    check_frozen()
    if args.command == "ablate":
        splits = {s: load(TUNE_PATH if s == "tune" else TEST_PATH) for s in args.split or ["tune", "test"]}
        report = ablate(splits)
        for name, row in report.items():
            print(f"{name:<24}", json.dumps(row))
        if args.out:
            args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        return
    report = {}
    for split in args.split or ["tune", "test"]:
        scored, times = score_items(load(TUNE_PATH if split == "tune" else TEST_PATH), ref=args.ref, whole=args.whole)
        report[split] = figures(scored) | {"check_ms_mean": round(sum(times) / len(times), 2)}
        print(split, json.dumps(report[split]))
        if args.errors and split == "tune":  # never for the test split: its items are not read
            for item, support, kept, reason in scored:
                if kept != (item["label"] == "supported"):
                    print(f"  {item['category']:<18} {support:.2f} {reason[:90]} | {item['sentence']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
