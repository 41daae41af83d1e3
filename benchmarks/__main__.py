"""``python -m benchmarks``: one run, ours beside the LangChain tutorial baseline (and optionally an older commit).

Every figure comes from fresh subprocesses, interleaved (ours, baseline, before, ours, ...), so
background load hits all systems alike and the ratios hold on a busy machine. Writes
``OUT/benchmarks.json`` and ``OUT/benchmarks.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from benchmarks.report import render_markdown, render_table
from benchmarks.synth import write_scaled_corpus

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUESTION = "When did Japan ban Huawei equipment from its ministries?"
log = logging.getLogger("benchmarks")


def run(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` to completion; returns wall seconds, its own peak RSS (MB, from ``wait4``) and stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env or os.environ.copy(), stdout=out, stderr=err, text=True)
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max over every child so far).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-2000:]}")
    return {"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}


def _env() -> dict[str, str]:
    env = os.environ.copy()
    env.pop("PYTHONPATH", None)
    return env


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise(samples: list[dict]) -> dict:
    """p50/p95 (ms) of each timing key over ``samples``."""
    keys = samples[0].keys() if samples else []
    return {k: {"p50": pct([s[k] for s in samples], 50), "p95": pct([s[k] for s in samples], 95)} for k in keys}


class Bench:
    """The systems under test and how to launch each."""

    def __init__(self, tmp: Path, before: str | None) -> None:
        self.tmp = tmp
        self.systems = ["ours", "baseline"]
        self.before_src: Path | None = None
        if before:
            self.before_src = tmp / "before-src"
            self.before_src.mkdir()
            archive = subprocess.run(["git", "archive", before, "assistant"], cwd=ROOT, capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(self.before_src)], input=archive.stdout, check=True)
            # The older Settings find corpus/ next to their package: point it at this tree's corpus.
            (self.before_src / "corpus").symlink_to(ROOT / "corpus")
            self.systems.append("before")

    def env(self, system: str) -> dict[str, str]:
        """Environment for ``system`` (``PYTHONPATH`` cleared)."""
        return _env()

    def module(self, system: str, module: str, *args: str) -> list[str]:
        """Command line running ``module`` as ``__main__``; for ``before``, with the older ``assistant`` first.

        ``-m`` would put the working directory (this tree) ahead of ``PYTHONPATH``, so the older
        tree is put first on ``sys.path`` by a one-line launcher instead.
        """
        if system != "before":
            return [sys.executable, "-m", module, *args]
        launcher = (
            "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); mod = sys.argv.pop(1); "
            "runpy.run_module(mod, run_name='__main__', alter_sys=True)"
        )
        return [sys.executable, "-c", launcher, str(self.before_src), module, *args]

    def cli(self, system: str, *args: str) -> list[str]:
        """The ``essay-assistant`` command line for ``system`` (the baseline has none)."""
        return self.module(system, "assistant.cli", *args)

    def worker(self, task: str, system: str, store: Path, corpus_dir: Path, arg: int) -> dict:
        """Run :mod:`benchmarks.worker` for ``system``; its JSON result plus wall time and peak RSS."""
        kind = "baseline" if system == "baseline" else "ours"
        result = run(
            self.module(system, "benchmarks.worker", task, kind, str(store), str(corpus_dir), str(arg)),
            self.env(system),
        )
        return json.loads(result["stdout"].strip().splitlines()[-1]) | {
            "wall_s": result["wall_s"],
            "rss_mb": result["rss_mb"],
        }


def measure(args: argparse.Namespace, tmp: Path) -> dict:
    """Run every measurement; returns the results dictionary written to JSON."""
    bench = Bench(tmp, args.before)
    corpus_dir = ROOT / "corpus"
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg(),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
            "before": args.before,
        },
        "systems": bench.systems,
    }
    ours_idx, base_idx, before_idx = tmp / "ours-index", tmp / "baseline-store", tmp / "before-index"
    steps = tqdm(total=7, desc="benchmark", unit="step")

    # 1. Full rebuild from a fresh process (start-up + model load + embedding), interleaved.
    fresh: dict[str, list[float]] = {"ours": [], "baseline": []}
    for i in range(args.build_runs):
        fresh["ours"].append(run(bench.cli("ours", "--index-dir", str(ours_idx), "index", "rebuild"))["wall_s"])
        cmd = [sys.executable, "-m", "benchmarks.baseline", "build", str(base_idx / f"fresh-{i}")]
        fresh["baseline"].append(run(cmd)["wall_s"])
    shutil.copytree(ours_idx, before_idx)  # same manifest and layout: the older code serves it as fresh
    steps.update()

    # 2. Rebuild with the model loaded (what `index rebuild` costs beyond start-up), interleaved.
    warm_build = {
        "ours": bench.worker("rebuild", "ours", tmp / "ours-rebuild", corpus_dir, args.build_runs),
        "baseline": bench.worker("rebuild", "baseline", tmp / "baseline-rebuild", corpus_dir, args.build_runs),
    }
    results["rebuild"] = {
        s: {
            "fresh_process_s": statistics.median(fresh[s]),
            "fresh_process_runs_s": fresh[s],
            "model_loaded_s": statistics.median(warm_build[s]["times_s"]),
            "model_loaded_runs_s": warm_build[s]["times_s"],
            "passages": warm_build[s]["passages"],
            "texts_embedded": warm_build[s]["texts"],
            "passages_per_s": warm_build[s]["passages"] / statistics.median(warm_build[s]["times_s"]),
        }
        for s in fresh
    }
    steps.update()

    # 3. `--help` and `index status` (fresh processes): ours and before.
    cli_systems = [s for s in bench.systems if s != "baseline"]
    small: dict = {s: {"help": [], "status": []} for s in cli_systems}
    for _ in range(args.cold_runs):
        for s in cli_systems:
            small[s]["help"].append(run(bench.cli(s, "--help"), bench.env(s))["wall_s"])
            idx = ours_idx if s == "ours" else before_idx
            small[s]["status"].append(
                run(bench.cli(s, "--index-dir", str(idx), "index", "status"), bench.env(s))["wall_s"]
            )
    results["cli"] = {
        s: {"help_s": statistics.median(v["help"]), "status_s": statistics.median(v["status"]), "runs": v}
        for s, v in small.items()
    }
    steps.update()

    # 4. Cold start: a fresh process from launch to its first answer (exit), interleaved.
    cold: dict = {s: [] for s in bench.systems}
    for _ in tqdm(range(args.cold_runs), desc="cold start", leave=False):
        for s in bench.systems:
            if s == "baseline":
                cmd = [sys.executable, "-m", "benchmarks.baseline", "ask", str(base_idx / "fresh-0"), QUESTION]
            else:
                idx = ours_idx if s == "ours" else before_idx
                cmd = bench.cli(s, "--index-dir", str(idx), "ask", QUESTION)
            cold[s].append(run(cmd, bench.env(s)))
    results["cold_start"] = {
        s: {
            "median_s": statistics.median(r["wall_s"] for r in runs),
            "runs_s": [r["wall_s"] for r in runs],
            "peak_rss_mb": max(r["rss_mb"] for r in runs),
        }
        for s, runs in cold.items()
    }
    steps.update()

    # 5. Warm latency over the dev questions (and peak RSS of the answering process), interleaved.
    warm: dict = {s: {"samples": [], "rss_mb": 0.0} for s in bench.systems}
    for r in range(args.rounds):
        for s in bench.systems:
            if s == "before" and r:
                continue  # one round of the older code is enough to see the difference
            store = {"ours": ours_idx, "baseline": base_idx / "fresh-0", "before": before_idx}[s]
            out = bench.worker("warm", s, store, corpus_dir, 1)
            warm[s]["samples"] += out["samples"]
            warm[s]["rss_mb"] = max(warm[s]["rss_mb"], out["rss_mb"])
    results["warm"] = {
        s: summarise(v["samples"]) | {"n": len(v["samples"]), "peak_rss_mb": v["rss_mb"]} for s, v in warm.items()
    }
    steps.update()

    # 6. Scaling: a corpus `scale` times the essay, ours and baseline; rebuild and warm latency.
    if args.scale > 1:
        big_dir = tmp / f"corpus-x{args.scale}"
        big = write_scaled_corpus(corpus_dir / "essay.md", big_dir, args.scale)
        scaled: dict = {"factor": args.scale, "corpus_chars": len(big.read_text(encoding="utf-8"))}
        ours_big, base_big = tmp / "ours-index-big", tmp / "baseline-store-big"
        build_ours = run(
            bench.cli("ours", "--corpus-dir", str(big_dir), "--index-dir", str(ours_big), "index", "build")
        )
        manifest = json.loads(
            (ours_big / "builds" / (ours_big / "CURRENT").read_text().strip() / "manifest.json").read_text()
        )
        build_base = run([sys.executable, "-m", "benchmarks.baseline", "build", str(base_big), "--corpus", str(big)])
        scaled["rebuild"] = {
            "ours": {
                "fresh_process_s": build_ours["wall_s"],
                "build_s": manifest["build_s"],
                "passages": manifest["passage_count"],
                "texts_embedded": manifest["passage_count"] + manifest["sentence_count"],
                "passages_per_s": manifest["passage_count"] / manifest["build_s"],
            },
            "baseline": {
                "fresh_process_s": build_base["wall_s"],
                "build_s": float(build_base["stdout"].split(" in ")[1].split()[0]),
                "passages": int(build_base["stdout"].split()[0]),
            },
        }
        scaled["rebuild"]["baseline"]["passages_per_s"] = (
            scaled["rebuild"]["baseline"]["passages"] / scaled["rebuild"]["baseline"]["build_s"]
        )
        big_warm = {
            "ours": bench.worker("warm", "ours", ours_big, big_dir, 1),
            "baseline": bench.worker("warm", "baseline", base_big, big_dir, 1),
        }
        scaled["warm"] = {
            s: summarise(v["samples"]) | {"n": len(v["samples"]), "peak_rss_mb": v["rss_mb"]}
            for s, v in big_warm.items()
        }
        results["scaling"] = scaled
    steps.update()
    results["machine"]["loadavg_end"] = os.getloadavg()
    steps.update()
    steps.close()
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the benchmark, print the table and write JSON + Markdown."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for benchmarks.json and .md")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh-process runs per system (median)")
    parser.add_argument("--build-runs", type=int, default=3, help="rebuilds per system (median)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the 40 dev questions per system")
    parser.add_argument("--scale", type=int, default=100, help="corpus growth factor for scaling (1 = skip)")
    parser.add_argument(
        "--before", default="e84c3d3", help="git revision whose assistant/ runs as 'before' ('' to skip)"
    )
    parser.add_argument("--render-only", type=Path, help="re-render the table and Markdown from this JSON and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.render_only:
        results = json.loads(args.render_only.read_text(encoding="utf-8"))
        (args.out / "benchmarks.md").write_text(render_markdown(results), encoding="utf-8")
        print(render_table(results))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="essay-bench-"))
    try:
        results = measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (args.out / "benchmarks.md").write_text(render_markdown(results), encoding="utf-8")
    print(render_table(results))
    print(f"wrote {args.out / 'benchmarks.json'} and {args.out / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
