"""Where builds live and who reads them: Chroma collections, CURRENT/PREVIOUS, read leases.

Layout of ``Settings.index_dir``::

    CURRENT                 name of the build being served (replaced atomically)
    PREVIOUS                name of the build served before it
    builds/<name>/          one complete build: Chroma files + manifest.json + .readers
    .lock                   serialises builds across processes

Readers never lose a build under them: a process serving a build holds a shared ``flock``
on its ``.readers`` file (:class:`BuildLease`) for as long as it uses it, and a builder
deletes an old build only when it can take that lock exclusively
(:func:`remove_old_builds`); a build still in use is left for a later build to delete.
Builders never write into a build that readers use, so readers never wait on SQLite locks.

This module is the bottom layer of :mod:`assistant.index`: it imports nothing else of it.
"""

from __future__ import annotations

import logging
import os
import shutil
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from assistant import chroma_server
from assistant.config import Settings

if TYPE_CHECKING:
    from langchain_chroma import Chroma
    from langchain_core.embeddings import Embeddings

log = logging.getLogger(__name__)

PASSAGES = "passages"
SENTENCES = "sentences"
READERS = ".readers"  # in each build folder: readers hold a shared flock on it

try:  # POSIX; elsewhere old builds are deleted without checking for readers
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _chroma_settings():
    import chromadb.config

    return chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)


def chroma_store(path: Path, name: str, embedder: Embeddings | None) -> Chroma:
    """The collection ``name`` (``PASSAGES`` or ``SENTENCES``) of the build folder ``path``, cosine space.

    ``embedder`` embeds what is added or searched (``None``: the collection is only read).
    """
    from langchain_chroma import Chroma

    return Chroma(
        collection_name=name,
        embedding_function=embedder,
        persist_directory=str(path),
        client_settings=_chroma_settings(),
        collection_configuration={"hnsw": {"space": "cosine"}},
    )


def server_store(settings: Settings, build: str, kind: str, embedder: Embeddings | None) -> Chroma:
    """The collection ``kind`` (``PASSAGES`` or ``SENTENCES``) of ``build`` on the Chroma server, cosine space.

    Raises:
        IndexStoreError: If the server (``chroma_url``) cannot be reached.

    """
    from langchain_chroma import Chroma

    return Chroma(
        collection_name=chroma_server.collection_name(settings, build, kind),
        embedding_function=embedder,
        client=chroma_server.client(settings),
        collection_configuration={"hnsw": {"space": "cosine"}},
    )


def close_store(store: Chroma | None) -> None:
    """Close the Chroma client behind ``store``.

    chromadb reference-counts clients of one folder, so a client shared with another store
    of the same folder stays open until both are closed.
    """
    client = getattr(store, "_client", None)
    if client is not None and hasattr(client, "close"):
        try:
            client.close()
        except Exception as exc:  # noqa: BLE001 - best effort
            log.debug("closing a Chroma client: %s", exc)


def current_build(index_dir: Path) -> Path | None:
    """The build folder ``CURRENT`` names, or ``None`` if there is none."""
    try:
        name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    path = index_dir / "builds" / name
    return path if name and path.is_dir() else None


def previous_name(index_dir: Path) -> str:
    """The build name ``PREVIOUS`` holds (``""`` if there is none)."""
    try:
        return (index_dir / "PREVIOUS").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def swap_current(index_dir: Path, name: str) -> None:
    """Point ``CURRENT`` at build ``name`` atomically, remembering the old one in ``PREVIOUS``.

    Raises:
        OSError: If ``index_dir`` is not writable.

    """
    old = current_build(index_dir)
    if old is not None:
        _write_atomic(index_dir / "PREVIOUS", old.name)
    _write_atomic(index_dir / "CURRENT", name)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def remove_old_builds(builds: Path, keep: set[str]) -> None:
    """Delete builds not in ``keep`` and not leased by a reader, and leftovers of killed builds.

    Runs under the build lock, so a ``.tmp-*`` folder is a dead builder's. A build is first
    renamed to ``.trash-*`` while its ``.readers`` lock is held exclusively, so a reader
    either leased it before (and it is kept) or finds it gone and reads ``CURRENT`` again.
    Failures are logged, never raised.
    """
    for child in builds.iterdir():
        if child.name in keep:
            continue
        if child.name.startswith((".tmp-", ".trash-")):
            shutil.rmtree(child, ignore_errors=True)
            continue
        fd = None
        try:
            if fcntl is not None:
                fd = os.open(child / READERS, os.O_RDONLY | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.info("build %s is still in use by a reader; it will be deleted by a later build", child.name)
                    continue
            trash = builds / f".trash-{child.name}"
            child.rename(trash)
        except OSError as exc:
            log.warning("cannot remove old build %s: %s", child, exc)
            continue
        finally:
            if fd is not None:
                os.close(fd)
        shutil.rmtree(trash, ignore_errors=True)


class BuildLease:
    """A reader's shared lock on a build folder: while it is held, no builder deletes the build.

    Released by :meth:`release` or when the lease is garbage-collected (so an in-flight
    question that still references the old index keeps it alive).
    """

    def __init__(self, fd: int) -> None:
        self._finalizer = weakref.finalize(self, os.close, fd)

    def release(self) -> None:
        """Release the lock (idempotent)."""
        self._finalizer()


class BuildGone(Exception):
    """The build named by CURRENT was deleted before it could be leased."""


def lease_build(build: Path) -> BuildLease | None:
    """Take a shared lock on ``build`` (``None`` where flock or writing is unavailable).

    Raises:
        BuildGone: If the build was deleted meanwhile (read ``CURRENT`` again).

    """
    if fcntl is None:
        return None
    try:
        try:
            fd = os.open(build / READERS, os.O_RDONLY)
        except FileNotFoundError:
            if not build.is_dir():
                raise
            fd = os.open(build / READERS, os.O_RDONLY | os.O_CREAT, 0o644)  # a build from an older version
    except FileNotFoundError:
        raise BuildGone(str(build)) from None
    except OSError as exc:  # read-only index: then no builder can delete it either
        log.debug("serving %s without a reader lease: %s", build, exc)
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a builder renames this build away
    lease = BuildLease(fd)
    if not (build / "manifest.json").exists():
        lease.release()
        raise BuildGone(str(build))
    return lease
