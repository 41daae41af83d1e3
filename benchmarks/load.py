"""``python -m benchmarks.load``: concurrent chat sessions against the real served chat app.

Starts ``essay-assistant chat`` on a free loopback port in a subprocess (the index must be
built), then, for each session count (16 and 64 by default), runs that many chat sessions at
once for ``--seconds``: each session asks a question through the chat's API (``/chat``, the
same event as the browser's Enter, with the conversation kept per session), waits for the
finished answer, pauses about ``--think`` seconds (0 by default: every session asks again at
once; otherwise a pause drawn uniformly from 0.5-1.5 times it, and each session starts at a
random point of its first pause, so sessions do not ask in lockstep), and asks the next one.
The clients are plain asyncio HTTP (Gradio's ``/gradio_api/call/chat`` route and its event
stream), so they cost the 2-core machine little next to the server. :func:`run_level` is also the
driver of ``tests/test_load.py``, which alternates ``/chat`` with the stateless ``/answer`` route.

Prints, and writes to ``--out`` (``docs/load.json`` / ``docs/load.md``), per session count:
answers, errors, answers per second, and latency from sending the question to the finished
answer, p50/p95/max. Loopback only; every loop is bounded in time. Not a test: nothing here
asserts a duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.__main__ import pct

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "When did Japan ban Huawei equipment from its ministries?",
    "Why does Japan avoid naming China in its export controls?",
    "Who wrote the essay?",
    "When did Japan do that?",  # a follow-up: uses the session's conversation
    "What is the capital of France?",  # declined
    "What is the small yard and high fence policy?",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: Path) -> subprocess.Popen:
    """``essay-assistant chat`` on 127.0.0.1:``port``, its output to ``log_path``; returns once it answers."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "chat", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the chat server exited {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)  # polling a starting server, not synchronising a test
    proc.terminate()
    raise RuntimeError("the chat server did not start within 300 s")


def _bad_output(api: str, question: str, data: list) -> str | None:
    """What is wrong with a finished ``/chat`` or ``/answer`` result (``None``: an answer)."""
    if api == "answer":
        return None if data and data[0].get("answer") else f"bad output for {question!r}: no answer"
    messages, notice = data[0], data[-2]
    last = messages[-1]["content"] if messages else ""
    if notice or "ea-answer" not in json.dumps(last):
        return f"bad output for {question!r}: {str(notice)[:200]}"
    return None


async def ask(http: httpx.AsyncClient, session: str, question: str, api: str = "chat") -> str | None:
    """One turn through ``/gradio_api/call/{api}``; ``None`` when it succeeded, else the error.

    ``api`` is ``chat`` (the session keeps the conversation) or ``answer`` (no history).
    """
    data = [question] if api == "chat" else [question, []]
    response = await http.post(f"/gradio_api/call/{api}", json={"data": data, "session_hash": session})
    if response.status_code != 200:
        return f"join: HTTP {response.status_code} {response.text[:200]}"
    event_id = response.json()["event_id"]
    event = None
    async with http.stream("GET", f"/gradio_api/call/{api}/{event_id}") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in ("complete", "error"):
                if event == "error":
                    return f"error event: {line[6:200]}"
                return _bad_output(api, question, json.loads(line[6:]))
    return f"stream ended without a result ({event})"


async def run_level(base: str, sessions: int, seconds: float, think: float, apis: tuple[str, ...] = ("chat",)) -> dict:
    """``sessions`` concurrent sessions for ``seconds``, each turn through the next of ``apis``; returns the figures."""
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=2 * sessions + 8, max_keepalive_connections=2 * sessions + 8)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        started = time.monotonic()
        deadline = started + seconds

        async def session(n: int) -> None:
            sid = uuid.uuid4().hex[:12]
            pauses = random.Random(n)  # the same pauses on every run
            if think:
                await asyncio.sleep(pauses.uniform(0, think))  # staggered starts
            i = n
            while time.monotonic() < deadline:
                # Every question through each api in turn (a whole round of questions per api).
                question, api = QUESTIONS[i % len(QUESTIONS)], apis[i // len(QUESTIONS) % len(apis)]
                i += 1
                began = time.perf_counter()
                try:
                    error = await ask(http, sid, question, api)
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - began
                if error:
                    errors.append(error)
                else:
                    latencies.append(elapsed)
                if think:
                    await asyncio.sleep(pauses.uniform(0.5, 1.5) * think)  # reading the answer

        await asyncio.gather(*(session(n) for n in range(sessions)))
        wall = time.monotonic() - started
    return {
        "sessions": sessions,
        "seconds": round(wall, 1),
        "think_s": think,
        "answers": len(latencies),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "answers_per_s": round(len(latencies) / wall, 1),
        "p50_s": round(pct(latencies, 50), 3),
        "p95_s": round(pct(latencies, 95), 3),
        "max_s": round(max(latencies, default=float("nan")), 3),
    }


def render(results: list[dict], label: str) -> str:
    """A Markdown table of ``results``."""
    lines = [
        f"### {label}",
        "",
        "| sessions | think (s) | answers | errors | answers/s | p50 | p95 | max |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['sessions']} | {r['think_s']:g} | {r['answers']} | {r['errors']} | {r['answers_per_s']} | "
            f"{r['p50_s']:.2f} s | {r['p95_s']:.2f} s | {r['max_s']:.2f} s |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the load benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[16, 64], help="session counts (default 16 64)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per session count (default 30)")
    parser.add_argument("--think", type=float, default=0.0, help="pause after each answer, seconds (default 0)")
    parser.add_argument("--label", default="this tree", help="heading of this run in the Markdown output")
    parser.add_argument("--out", type=Path, default=None, help="append the table to OUT/load.md and OUT/load.json")
    parser.add_argument("--url", default=None, help="use this already running chat app instead of starting one")
    args = parser.parse_args(argv)

    proc = None
    base = args.url
    if base is None:
        port = _free_port()
        proc = start_server(port, Path(os.environ.get("TMPDIR", "/tmp")) / f"essay-assistant-load-{port}.log")
        base = f"http://127.0.0.1:{port}"
    try:
        results = []
        for sessions in args.sessions:
            result = asyncio.run(run_level(base, sessions, args.seconds, args.think))
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
    table = render(results, f"{args.label} ({platform.node()}, {os.cpu_count()} cores)")
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / "load.md").open("a", encoding="utf-8") as f:
            f.write(table + "\n")
        runs = json.loads((args.out / "load.json").read_text()) if (args.out / "load.json").exists() else []
        runs.append({"label": args.label, "results": results})
        (args.out / "load.json").write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
