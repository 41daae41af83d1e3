"""Shared fixtures: one real index (real embedding model, real Chroma) built per test session."""

from __future__ import annotations

import json
import socket
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(assistant):
    """The real chat app, served on a free loopback port for the whole session."""
    from assistant import ui

    port = free_port()
    app = ui.launch(assistant, port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 90_000


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does this)")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server)
    page.locator("#ea-question textarea").wait_for()
    yield page
    context.close()
