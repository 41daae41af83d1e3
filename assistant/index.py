"""The persistent vector index: build, rebuild, status and open.

Layout of ``Settings.index_dir``::

    CURRENT                 name of the build being served (replaced atomically)
    PREVIOUS                name of the build served before it
    builds/<name>/          one complete build: Chroma files + manifest.json + .readers
    .lock                   serialises builds across processes

A build is written into a new folder and becomes visible only when ``CURRENT`` is
replaced, so a crash mid-build leaves the previous build serving and a rebuild never
duplicates passages. The manifest records what made the build; a build whose corpus,
model or chunking differs from the current settings is *stale* and is rebuilt, never served.

Readers never lose a build under them: a process serving a build holds a shared
``flock`` on its ``.readers`` file (:class:`BuildLease`) for as long as it uses it, and a
builder deletes an old build only when it can take that lock exclusively; a build still
in use is left for a later build to delete. Builders never write into a build that
readers use, so readers never wait on SQLite locks.

With ``Settings.chroma_url`` set, the builds live on a Chroma server instead (see
:mod:`assistant.chroma_server`); the lock file still serialises builds started on this
machine.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant import chroma_server
from assistant.chunking import Passage, chunk_corpus
from assistant.config import Settings
from assistant.corpus import Span, load_corpus
from assistant.embeddings import Embedder, get_embedder
from assistant.errors import IndexStoreError
from assistant.lexicon import LEXICON_VERSION, Lexicon

if TYPE_CHECKING:
    import numpy as np
    from langchain_chroma import Chroma

log = logging.getLogger(__name__)

PASSAGES = "passages"
SENTENCES = "sentences"
CHUNKER_VERSION = 3  # bump when chunking.py changes what it produces
READERS = ".readers"  # in each build folder: readers hold a shared flock on it
_BATCH = 32

try:  # POSIX; elsewhere old builds are deleted without checking for readers
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def package_version() -> str:
    """Installed version of this package (``"0+unknown"`` when not installed)."""
    try:
        return version("essay-assistant")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class IndexStatus:
    """What ``index status`` reports.

    Attributes:
        state: ``"fresh"``, ``"stale"`` or ``"missing"``.
        reasons: Why it is stale or missing (empty when fresh).
        path: The build folder served (``None`` when missing or on a Chroma server).
        manifest: The build's manifest (``{}`` when missing).
        build: Name of the build served (``None`` when missing).
        location: Where it lives, for messages: the folder, or the server URL and build.

    """

    state: str
    reasons: list[str] = field(default_factory=list)
    path: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    build: str | None = None
    location: str = ""


def _chroma_settings():
    import chromadb.config

    return chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)


def _store(path: Path, name: str, embedder: Embedder | None) -> Chroma:
    from langchain_chroma import Chroma

    return Chroma(
        collection_name=name,
        embedding_function=embedder,
        persist_directory=str(path),
        client_settings=_chroma_settings(),
        collection_configuration={"hnsw": {"space": "cosine"}},
    )


def _server_store(settings: Settings, build: str, kind: str, embedder: Embedder | None) -> Chroma:
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


def expected_manifest(settings: Settings, embedder: Embedder, corpus_sha256: str) -> dict[str, Any]:
    """The manifest fields a fresh build for ``settings`` must match.

    ``model_identity`` is the digest of everything that shapes a vector
    (:func:`assistant.embeddings.model_identity`): weights, every module's config and files in
    ``modules.json`` order, tokenizer files, max sequence length. A model folder with the same
    name and weights but another module (e.g. a ``Dense`` projection) or setting is another model.
    """
    return {
        "model": embedder.model_name,
        "model_sha256": embedder.weights_sha256,
        "model_identity": embedder.identity["digest"],
        "corpus_file": settings.corpus_file,
        "corpus_sha256": corpus_sha256,
        "chunking": {"chunk_tokens": settings.chunk_tokens, "chunker_version": CHUNKER_VERSION},
        "lexicon_version": LEXICON_VERSION,
    }


def current_build(index_dir: Path) -> Path | None:
    """The build folder ``CURRENT`` names, or ``None`` if there is none."""
    try:
        name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    path = index_dir / "builds" / name
    return path if name and path.is_dir() else None


def read_manifest(build: Path) -> dict[str, Any]:
    """The manifest of a build folder (``{}`` if absent or unreadable)."""
    try:
        return json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def served_build(settings: Settings) -> str | None:
    """Name of the build being served, or ``None``: one small read, done before each question.

    Raises:
        IndexStoreError: If the Chroma server (``chroma_url``) cannot be reached.

    """
    if settings.chroma_url:
        return chroma_server.read_pointer(settings)["current"] or None
    build = current_build(settings.index_dir)
    return build.name if build is not None else None


def status(settings: Settings) -> IndexStatus:
    """Compare the served build with what ``settings`` would build. Does not load torch.

    Raises:
        CorpusError, ModelError: If the corpus file or model folder is missing.
        IndexStoreError: If the Chroma server (``chroma_url``) cannot be reached.

    """
    if settings.chroma_url:
        pointer = chroma_server.read_pointer(settings)
        name, path, manifest = pointer["current"] or None, None, pointer["manifest"]
        where = chroma_server.describe(settings)
        location = f"{where}, build {name}" if name else where
    else:
        path = current_build(settings.index_dir)
        name = path.name if path is not None else None
        manifest = read_manifest(path) if path is not None else {}
        location = str(path) if path is not None else str(settings.index_dir)
    if name is None:
        return IndexStatus("missing", [f"no index in {location}"], location=location)
    if not manifest:
        return IndexStatus("stale", ["manifest.json is missing or unreadable"], path, build=name, location=location)
    corpus = load_corpus(settings.corpus_path)
    wanted = expected_manifest(settings, get_embedder(settings), corpus.sha256)
    reasons = [
        f"{key} changed ({manifest.get(key)!r} -> {value!r})"
        for key, value in wanted.items()
        if manifest.get(key) != value
    ]
    return IndexStatus("stale" if reasons else "fresh", reasons, path, manifest, name, location)


def _lock(settings: Settings):
    from filelock import FileLock

    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(settings.index_dir / ".lock"), timeout=settings.rebuild_lock_timeout_s)


def build(settings: Settings, *, force: bool = False, progress: bool = True) -> IndexStatus:
    """Build the index unless it is fresh (``force=True`` always rebuilds).

    The new build is written to its own folder (or collections, on a Chroma server) and
    swapped in atomically; builds older than the previous one are deleted unless a reader
    still uses them.

    Raises:
        IndexStoreError: If another process holds the build lock longer than
            ``rebuild_lock_timeout_s`` or the index folder is not writable.
        CorpusError, ModelError: If the corpus or model is missing.

    """
    from filelock import Timeout

    try:
        with _lock(settings):
            current = status(settings)
            if current.state == "fresh" and not force:
                log.info("index is fresh (%s passages); nothing to do", current.manifest.get("passage_count"))
                return current
            if settings.chroma_url:
                return _build_server_locked(settings, progress=progress)
            return _build_locked(settings, progress=progress)
    except Timeout:
        raise IndexStoreError(
            f"another process is building the index in {settings.index_dir} (it holds "
            f"{settings.index_dir / '.lock'}); wait for it to finish, then run `essay-assistant index build`"
        ) from None
    except OSError as exc:
        if not isinstance(exc, PermissionError) and exc.errno not in (errno.EROFS, errno.ENOTDIR, errno.EEXIST):
            raise
        raise IndexStoreError(
            f"cannot write the index in {settings.index_dir} ({exc.strerror or exc}); "
            "set ASSISTANT_INDEX_DIR (or --index-dir) to a writable folder"
        ) from exc


def _new_build_name() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ").lower() + f"-{os.getpid()}"


def _fill(settings: Settings, store: Chroma, sentence_store: Chroma, *, progress: bool) -> dict[str, Any]:
    """Embed and write every passage and sentence; return the manifest (without ``build_s``)."""
    from tqdm.auto import tqdm

    corpus = load_corpus(settings.corpus_path)
    embedder = get_embedder(settings)
    passages = chunk_corpus(corpus, embedder.count_tokens, settings.chunk_tokens)
    sentences = [(p, s) for p in passages for s in p.sentences]
    bar = tqdm(total=len(passages) + len(sentences), desc="Embedding", unit="text", disable=not progress)
    for i in range(0, len(passages), _BATCH):
        batch = passages[i : i + _BATCH]
        store.add_texts([p.text for p in batch], [p.metadata() for p in batch], ids=[p.id for p in batch])
        bar.update(len(batch))
    for i in range(0, len(sentences), _BATCH):
        batch = sentences[i : i + _BATCH]
        sentence_store.add_texts(
            [corpus.text[s.start : s.end] for _, s in batch],
            [{"passage_id": p.id, "start": s.start, "end": s.end} for p, s in batch],
            ids=[f"{p.id}@{s.start}" for p, s in batch],
        )
        bar.update(len(batch))
    bar.close()
    return expected_manifest(settings, embedder, corpus.sha256) | {
        "model_modules": embedder.identity["modules"],
        "dimension": embedder.dimension,
        "passage_count": len(passages),
        "sentence_count": len(sentences),
        "lexicon": Lexicon.from_corpus(corpus.text).to_dict(),
        "package_version": package_version(),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _build_locked(settings: Settings, *, progress: bool) -> IndexStatus:
    started = time.perf_counter()
    embedder = get_embedder(settings)
    embedder.dimension  # noqa: B018 - loads the model: one that cannot run fails before anything is written
    name = _new_build_name()
    builds = settings.index_dir / "builds"
    staging = builds / f".tmp-{name}"
    staging.mkdir(parents=True)
    try:
        (staging / READERS).touch()
        store = _store(staging, PASSAGES, embedder)
        sentence_store = _store(staging, SENTENCES, embedder)
        manifest = _fill(settings, store, sentence_store, progress=progress)
        manifest["build_s"] = round(time.perf_counter() - started, 2)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        close_store(store)
        close_store(sentence_store)
        final = builds / name
        staging.rename(final)
        _swap_current(settings.index_dir, name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _remove_old_builds(builds, keep={name, _previous_name(settings.index_dir)})
    log.info(
        "index built: %d passages, %d sentences in %.1f s",
        manifest["passage_count"],
        manifest["sentence_count"],
        manifest["build_s"],
    )
    return IndexStatus("fresh", [], final, manifest, name, str(final))


def _build_server_locked(settings: Settings, *, progress: bool) -> IndexStatus:
    """Build into new collections on the Chroma server, then swap the pointer."""
    started = time.perf_counter()
    embedder = get_embedder(settings)
    embedder.dimension  # noqa: B018 - loads the model: one that cannot run fails before anything is written
    name = _new_build_name()
    try:
        store = _server_store(settings, name, PASSAGES, embedder)
        sentence_store = _server_store(settings, name, SENTENCES, embedder)
        manifest = _fill(settings, store, sentence_store, progress=progress)
        manifest["build_s"] = round(time.perf_counter() - started, 2)
        previous = chroma_server.read_pointer(settings)["current"]
        chroma_server.write_pointer(settings, name, previous, manifest)
    except BaseException:
        chroma_server.delete_build(settings, name)
        raise
    # Names sort by creation time: delete only builds older than the previous one, never one
    # that a builder on another machine may still be writing.
    for old in chroma_server.builds(settings):
        if previous and old < previous:
            chroma_server.delete_build(settings, old)
    location = f"{chroma_server.describe(settings)}, build {name}"
    log.info("index built on %s in %.1f s", location, manifest["build_s"])
    return IndexStatus("fresh", [], None, manifest, name, location)


def _swap_current(index_dir: Path, name: str) -> None:
    """Point ``CURRENT`` at build ``name`` atomically, remembering the old one in ``PREVIOUS``."""
    old = current_build(index_dir)
    if old is not None:
        _write_atomic(index_dir / "PREVIOUS", old.name)
    _write_atomic(index_dir / "CURRENT", name)


def _previous_name(index_dir: Path) -> str:
    try:
        return (index_dir / "PREVIOUS").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _remove_old_builds(builds: Path, keep: set[str]) -> None:
    """Delete builds not in ``keep`` and not leased by a reader, and leftovers of killed builds.

    Runs under the build lock, so a ``.tmp-*`` folder is a dead builder's. A build is first
    renamed to ``.trash-*`` while its ``.readers`` lock is held exclusively, so a reader
    either leased it before (and it is kept) or finds it gone and reads ``CURRENT`` again.
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


class _BuildGone(Exception):
    """The build named by CURRENT was deleted before it could be leased."""


def lease_build(build: Path) -> BuildLease | None:
    """Take a shared lock on ``build`` (``None`` where flock or writing is unavailable).

    Raises:
        _BuildGone: If the build was deleted meanwhile (read ``CURRENT`` again).

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
        raise _BuildGone(str(build)) from None
    except OSError as exc:  # read-only index: then no builder can delete it either
        log.debug("serving %s without a reader lease: %s", build, exc)
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a builder renames this build away
    lease = BuildLease(fd)
    if not (build / "manifest.json").exists():
        lease.release()
        raise _BuildGone(str(build))
    return lease


@dataclass
class LoadedIndex:
    """A served build, loaded for answering.

    Attributes:
        path: The build folder (``None`` on a Chroma server).
        manifest: Its manifest.
        store: The passages collection (LangChain ``Chroma``), for dense search.
        passages: Every passage, keyed by id, in corpus order.
        sentence_ids: Passage id of each sentence row.
        sentence_spans: Corpus span of each sentence row.
        sentence_vectors: Array (n_sentences, dim) of L2-normalised sentence embeddings.
        build: The build's name (what :func:`served_build` returns while it is served).
        lease: The reader lease keeping the build folder from deletion (``None`` on a server).

    """

    path: Path | None
    manifest: dict[str, Any]
    store: Chroma
    passages: dict[str, Passage]
    sentence_ids: list[str]
    sentence_spans: list[Span]
    sentence_vectors: np.ndarray
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
        except _BuildGone:
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
            store = _store(folder, PASSAGES, embedder)
            sentence_store = _store(folder, SENTENCES, None)
        else:
            store = _server_store(settings, state.build or "", PASSAGES, embedder)
            sentence_store = _server_store(settings, state.build or "", SENTENCES, None)
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
    order = sorted(range(len(sentence_rows["ids"])), key=lambda i: sentence_rows["metadatas"][i]["start"])
    metas = [sentence_rows["metadatas"][i] for i in order]
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
            sentences=tuple(spans_of.get(pid, ())),
        )
    if len(passages) != state.manifest.get("passage_count") or len(metas) != state.manifest.get("sentence_count"):
        raise IndexStoreError(
            f"the index in {state.location} holds {len(passages)} passages and {len(metas)} sentences, its "
            f"manifest says {state.manifest.get('passage_count')} and {state.manifest.get('sentence_count')}; "
            "run `essay-assistant index rebuild`"
        )
    loaded = LoadedIndex(
        path=state.path,
        manifest=state.manifest,
        store=store,
        passages=dict(sorted(passages.items(), key=lambda kv: kv[1].start)),
        sentence_ids=[m["passage_id"] for m in metas],
        sentence_spans=[Span(m["start"], m["end"]) for m in metas],
        sentence_vectors=vectors[order] if len(vectors) else vectors,
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
