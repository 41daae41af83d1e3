"""16 concurrent chat sessions through the Gradio API against the served app (loopback only, bounded).

Runs ``ASSISTANT_LOAD_SECONDS`` seconds (default 15; the issue's 60-second figure is measured with
``ASSISTANT_LOAD_SECONDS=60 .venv/bin/python -m pytest tests/test_load.py -s``).
"""

from __future__ import annotations

import os
import statistics
import threading
import time

SESSIONS = 16
QUESTIONS = [
    "When did Japan ban Huawei equipment from its ministries?",
    "Why does Japan avoid naming China in its export controls?",
    "Who wrote the essay?",
    "When did Japan do that?",  # a follow-up: uses the session's conversation
    "What is the capital of France?",
]


def test_sixteen_sessions_without_errors(server):
    from gradio_client import Client

    seconds = float(os.environ.get("ASSISTANT_LOAD_SECONDS", "15"))
    clients = [Client(server, verbose=False) for _ in range(SESSIONS)]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(SESSIONS)

    def session(n: int) -> None:
        client = clients[n]
        start.wait()
        deadline = time.monotonic() + seconds
        i = n
        while time.monotonic() < deadline:
            question = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            began = time.perf_counter()
            try:
                if i % 2:
                    outputs = client.predict(question, api_name="/chat")
                    ok = outputs[-2] == "" and "ea-answer" in str(outputs[0][-1])
                else:
                    ok = bool(client.predict(question, [], api_name="/answer")["answer"])
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                latencies.append(time.perf_counter() - began)
                if not ok:
                    errors.append(f"bad output for {question!r}")

    threads = [threading.Thread(target=session, args=(n,)) for n in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    assert not any(t.is_alive() for t in threads)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"\n{SESSIONS} sessions x {seconds:.0f} s: {len(latencies)} answers, {len(errors)} errors, "
        f"median {statistics.median(latencies):.2f} s, p95 {p95:.2f} s, max {max(latencies):.2f} s"
    )
    assert errors == []
    assert len(latencies) >= SESSIONS


def test_app_keeps_answering_while_another_process_rebuilds(server, assistant):
    """A steady stream of API questions while `essay-assistant index rebuild` runs: none fails, the app switches."""
    import subprocess
    import sys

    from gradio_client import Client

    from assistant import index

    question = QUESTIONS[0]
    expected = assistant.answer(question).to_dict()
    before = index.served_build(assistant.settings)
    rebuild = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "--index-dir", str(assistant.settings.index_dir), "index", "rebuild"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[str] = []
    answered = [0]

    def ask() -> None:
        client = Client(server, verbose=False)
        while rebuild.poll() is None:
            try:
                got = client.predict(question, [], api_name="/answer")
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if got["answer"] != expected["answer"] or got["citations"] != expected["citations"]:
                errors.append("a different answer")
            answered[0] += 1

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert rebuild.wait(timeout=300) == 0, rebuild.stderr.read()
    print(f"\napp during a rebuild: {answered[0]} answers, {len(errors)} errors")
    assert errors == [] and answered[0] > 0
    after = index.served_build(assistant.settings)
    assert after != before
    Client(server, verbose=False).predict(question, [], api_name="/answer")
    assert assistant._loaded.index.build == after  # picked up without a restart
