"""Opening the served build for answering: :func:`open_index` and :class:`LoadedIndex`.

The served build is leased (:func:`assistant.index.store.lease_build`) before it is read, so
no builder deletes it while a question uses it; a build swapped out between reading
``CURRENT`` and leasing it is skipped for the new one. A missing or stale build is built
first (``auto_rebuild``), or refused with a one-line message naming what to run.
"""

from __future__ import annotations

import logging
import os
import shutil
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.chunking import Passage
from assistant.config import Settings
from assistant.corpus import Span
from assistant.embeddings import get_embedder
from assistant.errors import IndexStoreError
from assistant.index.builder import build
from assistant.index.manifest import IndexStatus, status
from assistant.index.store import (
    PASSAGES,
    READERS,
    SENTENCES,
    BuildGone,
    BuildLease,
    chroma_store,
    close_store,
    lease_build,
    server_store,
)
from assistant.index.table import SentenceTable

if TYPE_CHECKING:
    from langchain_chroma import Chroma

log = logging.getLogger(__name__)


@dataclass
class LoadedIndex:
    """A served build, loaded for answering.

    Attributes:
        path: The build folder (``None`` on a Chroma server).
        manifest: Its manifest.
        store: The passages collection (LangChain ``Chroma``), for dense search.
        passages: Every passage, keyed by id, in corpus order.
        sentences: The sentence rows (:class:`~assistant.index.table.SentenceTable`): each
            sentence's passage, span and ``(dim,)`` vector, and how rows relate.
        build: The build's name (what :func:`assistant.index.served_build` returns while it is served).
        lease: The reader lease keeping the build folder from deletion (``None`` on a server).

    """

    path: Path | None
    manifest: dict[str, Any]
    store: Chroma
    passages: dict[str, Passage]
    sentences: SentenceTable
    build: str = ""
    lease: BuildLease | None = None


def open_index(settings: Settings, *, progress: bool = True) -> LoadedIndex:
    """Open the served build, building or rebuilding it first if missing or stale.

    Raises:
        IndexStoreError: If the build cannot be read (e.g. a corrupted database), or it is
            missing or stale and ``settings.auto_rebuild`` is off; the message says what to run.

    """
    for _attempt in range(5):
        state = status(settings)
        if state.state != "fresh" and not settings.auto_rebuild:
            raise IndexStoreError(not_rebuilt_message(state))
        if state.state != "fresh":
            log.warning("index %s (%s): building it now", state.state, "; ".join(state.reasons))
            state = build(settings, progress=progress)
        try:
            return _open_build(settings, state)
        except BuildGone:
            log.info("build %s was replaced while opening it; opening the current one", state.build)
    raise IndexStoreError(
        f"the index in {settings.index_dir} changed 5 times while opening it; try again when rebuilds have finished"
    )


def not_rebuilt_message(state: IndexStatus) -> str:
    """One line for an index that is not fresh while rebuilding is off (``auto_rebuild=False``)."""
    if state.state == "missing":
        return (
            f"there is no index in {state.location} (ASSISTANT_AUTO_REBUILD is off): run `essay-assistant index build`"
        )
    if any(reason.startswith("corpus_sha256 changed") for reason in state.reasons):
        return f"the essay changed since the index in {state.location} was built: run `essay-assistant index rebuild`"
    return (
        f"the index in {state.location} is stale ({'; '.join(r.split(' (')[0] for r in state.reasons)}): "
        "run `essay-assistant index rebuild`"
    )


def _open_build(settings: Settings, state: IndexStatus) -> LoadedIndex:
    import numpy as np

    embedder = get_embedder(settings)
    lease = lease_build(state.path) if state.path is not None else None
    folder = state.path
    if folder is not None and not _writable(folder):
        folder = _read_only_copy(folder)
    try:
        if folder is not None:
            store = chroma_store(folder, PASSAGES, embedder)
            sentence_store = chroma_store(folder, SENTENCES, None)
        else:
            store = server_store(settings, state.build or "", PASSAGES, embedder)
            sentence_store = server_store(settings, state.build or "", SENTENCES, None)
        rows = store.get(include=["documents", "metadatas"])
        sentence_rows = sentence_store.get(include=["embeddings", "metadatas"])
        if state.path is not None:
            close_store(sentence_store)  # its rows are in memory now
    except IndexStoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - chromadb raises many types for a damaged build
        if lease is not None:
            lease.release()
        raise IndexStoreError(
            f"the index in {state.location} cannot be read ({type(exc).__name__}: {str(exc)[:200]}); "
            "run `essay-assistant index rebuild`"
        ) from exc
    vectors = np.asarray(sentence_rows["embeddings"], dtype=np.float32)
    stored = vectors.shape[1] if vectors.ndim == 2 and len(vectors) else state.manifest.get("dimension")
    if stored and stored != embedder.dimension:
        if folder is not None:
            close_store(store)
        if lease is not None:
            lease.release()
        raise IndexStoreError(
            f"the index in {state.location} holds {stored}-dimensional vectors but the model "
            f"{embedder.model_dir} makes {embedder.dimension}-dimensional ones; run `essay-assistant index rebuild`"
        )
    metas = sentence_rows["metadatas"]
    spans_of: dict[str, list[Span]] = {}
    for meta in metas:
        spans_of.setdefault(meta["passage_id"], []).append(Span(meta["start"], meta["end"]))
    passages = {}
    for pid, text, meta in zip(rows["ids"], rows["documents"], rows["metadatas"], strict=True):
        passages[pid] = Passage(
            id=pid,
            kind=meta["kind"],
            section=meta["section"],
            paragraph=meta["paragraph"],
            start=meta["start"],
            end=meta["end"],
            text=text,
            refs=tuple(int(n) for n in meta["refs"].split(",") if n),
            sentences=tuple(sorted(spans_of.get(pid, ()), key=lambda span: span.start)),
        )
    if len(passages) != state.manifest.get("passage_count") or len(metas) != state.manifest.get("sentence_count"):
        raise IndexStoreError(
            f"the index in {state.location} holds {len(passages)} passages and {len(metas)} sentences, its "
            f"manifest says {state.manifest.get('passage_count')} and {state.manifest.get('sentence_count')}; "
            "run `essay-assistant index rebuild`"
        )
    passages = dict(sorted(passages.items(), key=lambda kv: kv[1].start))
    try:
        sentences = SentenceTable(
            passages, [m["passage_id"] for m in metas], [Span(m["start"], m["end"]) for m in metas], vectors
        )
    except (KeyError, ValueError) as exc:
        raise IndexStoreError(
            f"the index in {state.location} holds sentences that do not match its passages ({exc}); "
            "run `essay-assistant index rebuild`"
        ) from exc
    loaded = LoadedIndex(
        path=state.path,
        manifest=state.manifest,
        store=store,
        passages=passages,
        sentences=sentences,
        build=state.build or "",
        lease=lease,
    )
    if folder is not None:  # the folder's SQLite connection closes once no question uses it
        weakref.finalize(loaded, close_store, store)
        if folder != state.path:
            weakref.finalize(loaded, shutil.rmtree, folder.parent, ignore_errors=True)
    return loaded


def _writable(build: Path) -> bool:
    """Whether Chroma can open ``build``: it writes to its SQLite file even to read."""
    return all(os.access(p, os.W_OK) for p in [build, *build.glob("*.sqlite3")])


def _read_only_copy(build: Path) -> Path:
    """Copy a read-only build (e.g. on a read-only mount) to a private temp folder and return it."""
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="essay-assistant-ro-")) / build.name
    log.warning("the index in %s is read-only; serving a private copy in %s", build, target)
    try:
        shutil.copytree(build, target, ignore=shutil.ignore_patterns(READERS))
    except OSError as exc:
        raise IndexStoreError(
            f"the index in {build} is read-only and cannot be copied to {target.parent} ({exc}); "
            "set ASSISTANT_INDEX_DIR to a writable folder and run `essay-assistant index build`"
        ) from exc
    return target
