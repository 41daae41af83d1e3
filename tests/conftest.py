"""Shared fixtures for the two tiers (markers in pyproject.toml; every test carries exactly one).

``integration``: the real embedding model and one real index (real Chroma files) built per session
(``settings``, ``assistant``), the served app (``server``), Chromium (``browser``, ``page``), Chroma and
LLM servers, the CLI in subprocesses. ``unit`` (``pytest -m "not integration"``, ``make test-unit``):
the deterministic fake model of :class:`tests.helpers.FakeEmbedder`, registered for the session
with :func:`assistant.embeddings.use_embedder`, an index of the essay built with it (``fake_settings``,
``fake_assistant``) and a test's own index of a 3-passage corpus (``tiny_settings``, ``tiny_index``).
Collection fails for a test without exactly one of the two marks, or a unit test that asks for an
integration fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.api import Assistant
from assistant.config import REPO_ROOT, Settings
from tests.helpers import FAKE_MODEL, TINY_ESSAY, FakeEmbedder, copy_index, free_port, load_jsonl

TIERS = {"unit", "integration"}
# What loads the real model or serves something: never a unit test's.
INTEGRATION_FIXTURES = {"settings", "assistant", "server", "browser", "page"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test without exactly one tier marker, or a unit test using an integration fixture."""
    problems = []
    for item in items:
        tiers = {m.name for m in item.iter_markers()} & TIERS
        if len(tiers) != 1:
            problems.append(f"{item.nodeid}: marked {sorted(tiers) or 'with no tier'}; mark it unit or integration")
        elif tiers == {"unit"} and (used := INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ()))):
            problems.append(f"{item.nodeid}: a unit test using {sorted(used)}; use fake_settings / fake_assistant")
    if problems:
        raise pytest.UsageError("\n".join(problems))


# --- integration: the real model -------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose index lives in a session temp dir (never in the repo's index/)."""
    return Settings(index_dir=tmp_path_factory.mktemp("index"), corpus_dir=REPO_ROOT / "corpus")


@pytest.fixture(scope="session")
def assistant(settings: Settings) -> Assistant:
    """An assistant over a freshly built index (the real model). Tests that rebuild use a copy."""
    from assistant import index

    index.build(settings, progress=False)
    return Assistant(settings)


@pytest.fixture
def own_index(assistant: Assistant, tmp_path: Path) -> Settings:
    """A private copy of the session's real index, for a test that damages or rebuilds it."""
    return copy_index(assistant.settings, tmp_path / "idx", rebuild_lock_timeout_s=2.0)


@pytest.fixture(scope="session")
def server(assistant):
    """The real chat app, served on a free loopback port for the whole session."""
    from assistant import ui

    port = free_port()
    app = ui.launch(assistant, port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def client(server):
    """A gradio_client of the session's served app."""
    from gradio_client import Client

    return Client(server, verbose=False)


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


# --- unit: the fake model --------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_embedder():
    """The fake model, served as ``embedding_model=FAKE_MODEL`` for the whole session."""
    from assistant.embeddings import use_embedder

    with use_embedder(FAKE_MODEL, FakeEmbedder(FAKE_MODEL)) as embedder:
        yield embedder


@pytest.fixture(scope="session")
def fake_settings(fake_embedder, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the essay with the fake model; its index (once built) lives in a session temp dir."""
    return Settings(
        index_dir=tmp_path_factory.mktemp("fake-index"), corpus_dir=REPO_ROOT / "corpus", embedding_model=FAKE_MODEL
    )


@pytest.fixture(scope="session")
def fake_assistant(fake_settings: Settings) -> Assistant:
    """An assistant over an index of the essay built with the fake model. Tests that rebuild use a copy."""
    from assistant import index

    index.build(fake_settings, progress=False)
    return Assistant(fake_settings)


@pytest.fixture
def tiny_settings(fake_embedder, tmp_path: Path) -> Settings:
    """Settings for a 3-passage corpus (:data:`tests.helpers.TINY_ESSAY`) and the fake model, no index yet."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "essay.md").write_text(TINY_ESSAY, encoding="utf-8")
    return Settings(
        corpus_dir=corpus, index_dir=tmp_path / "idx", embedding_model=FAKE_MODEL, top_k=3, rebuild_lock_timeout_s=2.0
    )


@pytest.fixture
def tiny_index(tiny_settings: Settings) -> Settings:
    """:func:`tiny_settings` with its index built (a test's own, to damage or rebuild)."""
    from assistant import index

    index.build(tiny_settings, progress=False)
    return tiny_settings


@pytest.fixture(scope="session")
def dev_items() -> list[dict]:
    return load_jsonl("dev.jsonl")
