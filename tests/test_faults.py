"""Index faults and rebuilds while serving, with real processes, real Chroma files and real locks.

Each fault must end in a correct answer or a one-line message naming what to run, within seconds.
Complements tests/test_index.py (garbage database, edited corpus hash, killed-before-swap build).
The faults that need the CLI or the real model are integration tests on a copy of the session's
real index; the unwritable folder and the held build lock are unit tests on the fake model.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant import index
from assistant.api import Assistant
from assistant.errors import IndexStoreError
from assistant.index import store
from tests.helpers import HUAWEI, TINY_QUESTION, poll_until, run_cli, wait_for

QUESTIONS = [HUAWEI, "Who wrote the essay?", "Why does Japan avoid naming China in its export controls?"]


@pytest.mark.unit
def test_index_folder_under_a_file_is_a_clear_error(tmp_path, fake_settings):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    own = fake_settings.model_copy(update={"index_dir": blocker / "idx"})
    with pytest.raises(IndexStoreError, match="writable folder"):
        Assistant(own).answer(HUAWEI)


@pytest.mark.integration
def test_truncated_database_names_the_fix(own_index):
    own = own_index
    db = next(index.current_build(own.index_dir).glob("*.sqlite3"))
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 3])
    with pytest.raises(IndexStoreError, match="run `essay-assistant index rebuild`"):
        Assistant(own).answer(HUAWEI)
    result = run_cli("ask", HUAWEI, index_dir=own.index_dir)
    assert result.returncode == 1 and "index rebuild" in result.stderr and "Traceback" not in result.stderr
    index.build(own, force=True, progress=False)  # what the message says to run
    assert "December 2018" in Assistant(own).answer(HUAWEI).answer


@pytest.mark.integration
def test_deleted_build_folder_is_missing_not_a_crash(own_index):
    own = own_index
    shutil.rmtree(own.index_dir / "builds")
    state = index.status(own)
    assert state.state == "missing"
    result = run_cli("index", "status", index_dir=own.index_dir)
    assert result.returncode == 1 and "index build" in result.stdout


@pytest.mark.integration
def test_manifest_from_another_model_is_stale_and_rebuilt(own_index):
    own = own_index
    manifest_path = index.current_build(own.index_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest |= {"model": "some-other-model", "model_sha256": "f" * 64}
    manifest_path.write_text(json.dumps(manifest))
    state = index.status(own)
    assert state.state == "stale" and any(r.startswith("model changed") for r in state.reasons)
    result = run_cli("index", "status", index_dir=own.index_dir)
    assert result.returncode == 1 and "model changed" in result.stdout and "index build" in result.stdout


@pytest.fixture
def immutable(tmp_path):
    """Make folders read-only even for root: ``chattr +i`` (ext4). Undone after the test."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not available")
    marked: list[Path] = []

    def mark(path: Path) -> None:
        result = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"chattr +i unsupported here: {result.stderr.strip()}")
        marked.append(path)

    yield mark
    for path in reversed(marked):
        subprocess.run(["chattr", "-i", str(path)], check=False)


@pytest.mark.integration
def test_read_only_index_still_answers_and_rebuild_says_what_to_do(own_index, immutable):
    own = own_index
    own.index_dir.joinpath(".lock").touch()
    build_dir = index.current_build(own.index_dir)
    for path in [*build_dir.rglob("*"), build_dir, build_dir.parent, own.index_dir]:
        immutable(path)  # nothing in the index can be created, renamed, deleted or written
    assert "December 2018" in Assistant(own).answer(HUAWEI).answer
    started = time.perf_counter()
    result = run_cli("index", "rebuild", index_dir=own.index_dir)
    assert result.returncode == 1, result.stderr
    assert "writable folder" in result.stderr and "Traceback" not in result.stderr
    print(f"\nread-only index: rebuild refused in {time.perf_counter() - started:.2f} s (incl. start-up)")


def _hold_lock(index_dir: Path) -> subprocess.Popen:
    """Another process holding the build lock, as a running rebuild does, until its stdin is closed."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom filelock import FileLock\n"
            f"lock = FileLock({str(index_dir / '.lock')!r})\nlock.acquire()\n"
            "print('held', flush=True)\nsys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.unit
def test_concurrent_rebuild_gets_a_clear_message_within_seconds(tiny_index):
    own = tiny_index.model_copy(update={"rebuild_lock_timeout_s": 0.5})
    before = Assistant(own).answer(TINY_QUESTION)
    holder = _hold_lock(own.index_dir)
    try:
        # Bounded by rebuild_lock_timeout_s (0.5 s here); how long it takes belongs in the benchmark.
        with pytest.raises(IndexStoreError, match="another process is building"):
            index.build(own, force=True, progress=False)
        # A fresh index keeps answering while someone else rebuilds: readers never take the lock.
        during = Assistant(own).answer(TINY_QUESTION)
        assert (during.answer, during.build) == (before.answer, before.build) and "2018" in during.answer
        # A missing index cannot be built meanwhile: the message says so.
        shutil.rmtree(own.index_dir / "builds")
        with pytest.raises(IndexStoreError, match="another process is building .*`essay-assistant index build`"):
            Assistant(own).answer(TINY_QUESTION)
    finally:
        holder.stdin.close()  # the holder exits and its lock goes with it
        holder.wait(timeout=60)


def _open_files() -> list[str]:
    """What this process has open (paths, pipes, sockets), from /proc."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed meanwhile (e.g. listdir's own descriptor)
            pass
    return found


def _same(got: dict, want: dict, key: str) -> bool:
    """``got[key] == want[key]``, except that passage scores may differ by up to 1e-4.

    Compared at the answer's 6 decimal places, 1 of about 1,600 answers had "different passages"
    (CI, twice) with the same answer and citations; not reproduced here (builds are bitwise equal),
    so a last-digit flip of a score is the likely cause, not a proven one.
    """
    if key != "passages":
        return got[key] == want[key]
    return len(got[key]) == len(want[key]) and all(
        {**g, "score": 0} == {**w, "score": 0} and abs(g["score"] - w["score"]) <= 1e-4
        for g, w in zip(got[key], want[key], strict=True)
    )


@pytest.mark.integration
def test_rebuilds_while_serving_never_fail_a_question(own_index):
    """Two `index rebuild` processes run back to back while two threads keep asking questions."""
    own = own_index
    served = Assistant(own)
    expected = {q: served.answer(q).to_dict() for q in QUESTIONS}
    first_build = served._loaded.index.build
    fds_before = len(_open_files())
    held = index.open_index(own)  # a slow question still reading the first build
    failures: list[str] = []
    answered: list[str] = []
    builds_seen: set[str] = set()
    stop = threading.Event()

    def ask_forever(offset: int) -> None:
        i = offset
        while not stop.is_set():
            question = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            try:
                got = served.answer(question).to_dict()
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            builds_seen.add(served._loaded.index.build)
            for key in ("answer", "citations", "passages"):
                if not _same(got, expected[question], key):
                    failures.append(f"different {key} for {question!r}: {got[key]!r} != {expected[question][key]!r}")
            answered.append(question)

    threads = [threading.Thread(target=ask_forever, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        results = [run_cli("index", "rebuild", index_dir=own.index_dir) for _ in range(2)]
    finally:
        # Let the askers switch to the newest build: poll for an answer from it (bounded), then stop. Not
        # wait_for: a failure here would hide the rebuild's own; the asserts below name what went wrong.
        newest = index.served_build(own)
        poll_until(lambda: newest in builds_seen, 60)
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    print(f"\nrebuild while serving: {len(answered)} questions answered, {len(failures)} failed")
    assert failures == []
    assert len(answered) > 10
    final = index.served_build(own)
    assert served.answer(HUAWEI).to_dict()["answer"] == expected[HUAWEI]["answer"]
    assert served._loaded.index.build == final != first_build
    builds = own.index_dir / "builds"
    assert (builds / first_build / "manifest.json").is_file()
    # Old builds' SQLite connections are closed once no question uses them: no descriptor leak.
    del held
    gc.collect()
    open_files = _open_files()
    in_builds = {Path(f).relative_to(builds).parts[0] for f in open_files if f.startswith(str(builds))}
    assert in_builds <= {final}, in_builds
    assert len(open_files) - fds_before < 10
    # The first build was kept while a reader still held it, and goes once released.
    assert (builds / first_build / "manifest.json").is_file()
    store.remove_old_builds(builds, keep={final, store.previous_name(own.index_dir)})
    assert not (builds / first_build).exists()


@pytest.mark.integration
def test_sigkilled_rebuild_leaves_old_index_serving(own_index):
    own = own_index
    served = Assistant(own)
    before = served.answer(HUAWEI).answer
    old = index.current_build(own.index_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "--index-dir", str(own.index_dir), "index", "rebuild"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    builds = own.index_dir / "builds"

    def writing() -> bool:  # midway: a staging folder exists and its Chroma store has been created in it
        try:
            return any(p.name.startswith(".tmp-") and any(p.glob("*.sqlite3")) for p in builds.iterdir())
        except OSError:  # a folder renamed while it was read
            return False

    try:
        wait_for(writing, 240, "the rebuild writing its staging store")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert any(p.name.startswith(".tmp-") for p in builds.iterdir())  # it died mid-build
    assert index.current_build(own.index_dir) == old
    assert served.answer(HUAWEI).answer == before
    assert Assistant(own).answer(HUAWEI).answer == before  # a new process too
    index.build(own, force=True, progress=False)  # the dead builder's lock is free at once
    assert index.current_build(own.index_dir) != old
    assert not any(p.name.startswith(".tmp-") for p in builds.iterdir())  # its leftovers are gone
    assert served.answer(HUAWEI).answer == before
