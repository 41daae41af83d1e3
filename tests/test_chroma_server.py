"""The index on a real Chroma server (``chroma run`` from the chromadb package), shared by replicas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from assistant import chroma_server, index
from assistant.api import Assistant
from assistant.errors import IndexStoreError
from tests.helpers import HUAWEI, free_port, run_cli, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    """A Chroma server on a free loopback port, data in a temp folder; stopped after the module."""
    exe = Path(sys.executable).with_name("chroma")
    if not exe.exists():
        exe = Path(shutil.which("chroma") or "chroma")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log = (data.parent / "chroma-server.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"chroma run exited with {proc.returncode}; see {log.name}")
        try:
            return httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, f"chroma run answering on {url} (log: {log.name})", interval=0.2)
    except BaseException:
        proc.kill()
        raise
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def remote(chroma_url, settings, tmp_path_factory):
    own = settings.model_copy(
        update={"chroma_url": chroma_url, "index_dir": tmp_path_factory.mktemp("remote-lock"), "chroma_prefix": "t1"}
    )
    assert index.status(own).state == "missing"
    index.build(own, progress=False)
    return own


def test_build_status_and_answers_match_the_folder_index(remote, assistant):
    state = index.status(remote)
    assert state.state == "fresh" and state.path is None
    assert state.manifest["passage_count"] == index.status(assistant.settings).manifest["passage_count"]
    assert remote.chroma_url in state.location
    # Nothing is written to the local folder but the lock.
    assert not (remote.index_dir / "builds").exists() and not (remote.index_dir / "CURRENT").exists()
    replica = Assistant(remote)
    for question in (HUAWEI, "Who wrote the essay?", "What is the capital of France?"):
        got, want = replica.answer(question).to_dict(), assistant.answer(question).to_dict()
        for key in ("answer", "refused", "citations"):
            assert got[key] == want[key], (question, key)


def test_replicas_switch_together_after_a_rebuild_by_the_cli(remote):
    replicas = [Assistant(remote), Assistant(remote)]
    before = {r.answer(HUAWEI).answer for r in replicas}
    old = index.served_build(remote)
    result = run_cli(
        "index",
        "rebuild",
        env={
            "ASSISTANT_CHROMA_URL": remote.chroma_url,
            "ASSISTANT_CHROMA_PREFIX": remote.chroma_prefix,
            "ASSISTANT_INDEX_DIR": str(remote.index_dir),
        },
    )
    assert result.returncode == 0, result.stderr
    assert remote.chroma_url in result.stdout
    new = index.served_build(remote)
    assert new != old
    assert {r.answer(HUAWEI).answer for r in replicas} == before
    assert {r._loaded.index.build for r in replicas} == {new}
    # Only the served build and the one before it stay on the server.
    assert chroma_server.builds(remote) == {new, old}
    index.build(remote, force=True, progress=False)
    assert old not in chroma_server.builds(remote)


def test_unreachable_server_is_a_clear_error_within_seconds(settings, tmp_path):
    own = settings.model_copy(
        update={"chroma_url": f"http://127.0.0.1:{free_port()}", "index_dir": tmp_path, "chroma_timeout_s": 2.0}
    )
    # Bounded by chroma_timeout_s (the time it takes belongs in the benchmark, not here).
    with pytest.raises(IndexStoreError, match="cannot reach the Chroma server .*chroma run"):
        Assistant(own).answer(HUAWEI)
    bad = settings.model_copy(update={"chroma_url": "not a url", "index_dir": tmp_path})
    with pytest.raises(IndexStoreError, match="not an http"):
        index.status(bad)
