"""Shared by the test modules: the CLI in a process or in-process, bounded polling, index copies, the fake model."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

if TYPE_CHECKING:
    from assistant.config import Settings

DATA = Path(__file__).parent / "data"
HUAWEI = "When did Japan ban Huawei equipment from its ministries?"
FAKE_MODEL = "fake-deterministic"  # the embedding_model name the unit tier's fake model is registered under
# A corpus of 3 passages (the title and byline, one paragraph, one reference) and 5 sentences: a build takes
# a fraction of a second, for tests of the index's own logic.
TINY_ESSAY = (
    "# A Short Essay\n\nBy Someone\n\nJapan banned Huawei equipment in 2018. (1) It said why.\n\n"
    "## References\n\n(1) “A Source,” Outlet, May 1, 2019, https://example.org/a.\n"
)
TINY_QUESTION = "Why did Japan ban Huawei equipment?"  # answered from TINY_ESSAY's paragraph, also by the fake model


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll_until(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass (a bound, not a measure).

    Returns whether it became true.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds (a bound, not a measure)."""
    if not poll_until(condition, timeout, interval):
        raise AssertionError(f"{what}: not so after {timeout:g} s")


def copy_index(settings: Settings, target: Path, **updates: object) -> Settings:
    """``settings`` over a copy of its index folder at ``target`` (no lock or reader-lease files), with ``updates``."""
    shutil.copytree(settings.index_dir, target, ignore=shutil.ignore_patterns(".lock", ".readers"))
    return settings.model_copy(update={"index_dir": target, **updates})


def run_cli(
    *args: str | bytes,
    index_dir: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | bytes | None = None,
    text: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """``python -m assistant.cli [--index-dir INDEX_DIR] ARGS`` in a fresh process (a cold start), output captured.

    ``env`` is added to this process's environment; ``text=False`` passes bytes in and out (e.g. argv or
    ``--jsonl`` input that is not valid UTF-8).
    """
    command: list[str | bytes] = [sys.executable, "-m", "assistant.cli"]
    if index_dir is not None:
        command += ["--index-dir", str(index_dir)]
    return subprocess.run(
        [*command, *args],
        input=stdin,
        capture_output=True,
        text=text,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def invoke_cli(settings: Settings, *args: str, **kwargs: object):
    """The CLI in this process (typer's runner) with ``settings``' index folder and embedding model.

    With ``fake_settings`` it answers from the fake model (registered in this process only). ``kwargs``
    go to ``CliRunner.invoke`` (e.g. ``input``, ``env``). Returns its ``Result``.
    """
    from typer.testing import CliRunner

    from assistant.cli import app

    options = ["--index-dir", str(settings.index_dir), "--embedding-model", settings.embedding_model]
    return CliRunner().invoke(app, [*options, *args], **kwargs)


def jsonl_rows(stdout: str | bytes) -> list[dict]:
    """The JSON objects of ``ask --jsonl`` output, one per line."""
    if isinstance(stdout, bytes):
        stdout = stdout.decode("utf-8")
    return [json.loads(line) for line in stdout.splitlines()]


def load_jsonl(name: str) -> list[dict]:
    """The rows of ``tests/data/NAME``."""
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


class FakeEmbedder(Embeddings):
    """A stand-in for :class:`assistant.embeddings.Embedder` with no model behind it.

    Vectors are langchain-core's ``DeterministicFakeEmbedding`` (normal samples seeded by the text's
    SHA-256), L2-normalised float32 as the real model's are: the same text always gets the same vector,
    different texts unrelated ones, so nothing that depends on retrieval quality can be tested with it.
    Word pieces are approximated by words and punctuation marks, plus [CLS] and [SEP].
    """

    def __init__(self, name: str = FAKE_MODEL, size: int = 32) -> None:
        self._fake = DeterministicFakeEmbedding(size=size)
        self.model_name = name
        self.model_dir = Path(name)
        self.dimension = size
        self.weights_sha256 = hashlib.sha256(f"{name}:{size}".encode()).hexdigest()
        self.identity = {
            "digest": self.weights_sha256,
            "modules": ["DeterministicFakeEmbedding"],
            "max_seq_length": 256,
        }

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text)) + 2

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        vectors = np.asarray(self._fake.embed_documents(list(texts)), dtype=np.float32).reshape(len(texts), -1)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def cpu_limits(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()
