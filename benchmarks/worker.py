"""In-process measurements, run in a fresh subprocess per call so each system's memory is its own.

``python -m benchmarks.worker TASK SYSTEM STORE CORPUS_DIR ARG`` prints one JSON line:

* ``warm``: load, answer the first dev question untimed, then ``ARG`` rounds over the 40 dev questions;
  per answer, milliseconds ``retrieve``/``answer``/``total`` (ours: ``Answer.timings_ms``; the
  baseline retrieves only, so ``retrieve == total``) and ``wall`` (around the call).
* ``rebuild``: one untimed build (model load), then ``ARG`` full rebuilds, seconds each.

SYSTEM is ``ours`` (the ``assistant`` package on ``sys.path``: this tree, or an older one put first
on ``PYTHONPATH`` by the benchmark) or ``baseline`` (:mod:`benchmarks.baseline`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

DEV = Path(__file__).resolve().parents[1] / "tests" / "data" / "dev.jsonl"


def dev_questions() -> list[str]:
    """The 40 dev questions, in file order."""
    lines = DEV.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def _settings(store: str, corpus_dir: str):
    from assistant.config import Settings

    return Settings(index_dir=Path(store), corpus_dir=Path(corpus_dir))


def warm(system: str, store: str, corpus_dir: str, rounds: int) -> dict:
    """Warm answer latency samples (ms) after an untimed first answer."""
    questions = dev_questions()
    started = time.perf_counter()
    samples = []
    if system == "ours":
        from assistant.api import Assistant

        assistant = Assistant(_settings(store, corpus_dir))
        assistant.answer(questions[0])
        load_s = time.perf_counter() - started
        for _ in range(rounds):
            for q in questions:
                t0 = time.perf_counter()
                timings = assistant.answer(q).timings_ms
                samples.append({**timings, "wall": (time.perf_counter() - t0) * 1e3})
    else:
        from benchmarks import baseline

        db = baseline.open_store(Path(store))
        baseline.search(db, questions[0])
        load_s = time.perf_counter() - started
        for _ in range(rounds):
            for q in questions:
                t0 = time.perf_counter()
                baseline.search(db, q)
                ms = (time.perf_counter() - t0) * 1e3
                samples.append({"retrieve": ms, "answer": 0.0, "total": ms, "wall": ms})
    return {"load_s": load_s, "samples": samples}


def rebuild(system: str, store: str, corpus_dir: str, runs: int) -> dict:
    """Full rebuild times (s) with the model already loaded, and what each build holds."""
    times, sizes = [], {}
    for run in range(runs + 1):
        if system == "ours":
            from assistant import index

            t0 = time.perf_counter()
            state = index.build(_settings(store, corpus_dir), force=True, progress=False)
            elapsed = time.perf_counter() - t0
            sizes = {"passages": state.manifest["passage_count"], "sentences": state.manifest["sentence_count"]}
            sizes["texts"] = sizes["passages"] + sizes["sentences"]
        else:
            from assistant.config import Settings
            from benchmarks import baseline

            corpus = Path(corpus_dir) / Settings().corpus_file
            t0 = time.perf_counter()
            result = baseline.build(Path(store) / f"run-{run}", corpus)
            elapsed = time.perf_counter() - t0
            sizes = {"passages": result["chunks"], "texts": result["chunks"]}
        if run:  # run 0 loads the model
            times.append(elapsed)
    return {"times_s": times, **sizes}


def main(argv: list[str]) -> int:
    """Entry point: ``TASK SYSTEM STORE CORPUS_DIR ARG``; prints the result as one JSON line."""
    task, system, store, corpus_dir, arg = argv
    result = {"warm": warm, "rebuild": rebuild}[task](system, store, corpus_dir, int(arg))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
