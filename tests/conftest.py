"""Shared fixtures: one real index (real embedding model, real Chroma) built per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.api import Assistant
from assistant.config import REPO_ROOT, Settings

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose index lives in a session temp dir (never in the repo's index/)."""
    return Settings(index_dir=tmp_path_factory.mktemp("index"), corpus_dir=REPO_ROOT / "corpus")


@pytest.fixture(scope="session")
def assistant(settings: Settings) -> Assistant:
    """An assistant over a freshly built index."""
    from assistant import index

    index.build(settings, progress=False)
    return Assistant(settings)


@pytest.fixture(scope="session")
def dev_items() -> list[dict]:
    return [json.loads(line) for line in (DATA / "dev.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
