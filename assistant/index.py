"""The persistent vector index: build, rebuild, status and open.

Layout of ``Settings.index_dir``::

    CURRENT                 name of the build being served (replaced atomically)
    builds/<name>/          one complete build: Chroma files + manifest.json
    .lock                   serialises builds across processes

A build is written into a new folder and becomes visible only when ``CURRENT`` is
replaced, so a crash mid-build leaves the previous build serving and a rebuild never
duplicates passages. The manifest records what made the build; a build whose corpus,
model or chunking differs from the current settings is *stale* and is rebuilt, never served.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.chunking import Passage, chunk_corpus
from assistant.config import Settings
from assistant.corpus import Span, load_corpus
from assistant.embeddings import Embedder, get_embedder
from assistant.errors import IndexStoreError

if TYPE_CHECKING:
    import numpy as np
    from langchain_chroma import Chroma

log = logging.getLogger(__name__)

PASSAGES = "passages"
SENTENCES = "sentences"
CHUNKER_VERSION = 2  # bump when chunking.py changes what it produces
_BATCH = 32


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
        path: The build folder served (``None`` when missing).
        manifest: The build's manifest (``{}`` when missing).

    """

    state: str
    reasons: list[str] = field(default_factory=list)
    path: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)


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


def expected_manifest(settings: Settings, embedder: Embedder, corpus_sha256: str) -> dict[str, Any]:
    """The manifest fields a fresh build for ``settings`` must match."""
    return {
        "model": embedder.model_name,
        "model_sha256": embedder.weights_sha256,
        "corpus_file": settings.corpus_file,
        "corpus_sha256": corpus_sha256,
        "chunking": {"chunk_tokens": settings.chunk_tokens, "chunker_version": CHUNKER_VERSION},
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


def status(settings: Settings) -> IndexStatus:
    """Compare the served build with what ``settings`` would build. Does not load torch.

    Raises:
        CorpusError, ModelError: If the corpus file or model folder is missing.

    """
    build = current_build(settings.index_dir)
    if build is None:
        return IndexStatus("missing", [f"no index in {settings.index_dir}"])
    manifest = read_manifest(build)
    if not manifest:
        return IndexStatus("stale", ["manifest.json is missing or unreadable"], build)
    corpus = load_corpus(settings.corpus_path)
    wanted = expected_manifest(settings, get_embedder(settings), corpus.sha256)
    reasons = [
        f"{key} changed ({manifest.get(key)!r} -> {value!r})"
        for key, value in wanted.items()
        if manifest.get(key) != value
    ]
    return IndexStatus("stale" if reasons else "fresh", reasons, build, manifest)


def _lock(settings: Settings):
    from filelock import FileLock

    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(settings.index_dir / ".lock"), timeout=settings.rebuild_lock_timeout_s)


def build(settings: Settings, *, force: bool = False, progress: bool = True) -> IndexStatus:
    """Build the index unless it is fresh (``force=True`` always rebuilds).

    The new build is written to its own folder and swapped in atomically; builds older
    than the previous one are deleted.

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
            return _build_locked(settings, progress=progress)
    except Timeout:
        raise IndexStoreError(
            f"another process is building the index in {settings.index_dir}; wait for it to finish, then try again"
        ) from None
    except PermissionError as exc:
        raise IndexStoreError(
            f"cannot write the index in {settings.index_dir} ({exc.strerror}); "
            "set ASSISTANT_INDEX_DIR (or --index-dir) to a writable folder"
        ) from exc


def _build_locked(settings: Settings, *, progress: bool) -> IndexStatus:
    from tqdm.auto import tqdm

    started = time.perf_counter()
    corpus = load_corpus(settings.corpus_path)
    embedder = get_embedder(settings)
    passages = chunk_corpus(corpus, embedder.count_tokens, settings.chunk_tokens)
    sentences = [(p, s) for p in passages for s in p.sentences]
    name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + f"-{os.getpid()}"
    builds = settings.index_dir / "builds"
    staging = builds / f".tmp-{name}"
    staging.mkdir(parents=True)
    try:
        bar = tqdm(total=len(passages) + len(sentences), desc="Embedding", unit="text", disable=not progress)
        store = _store(staging, PASSAGES, embedder)
        for i in range(0, len(passages), _BATCH):
            batch = passages[i : i + _BATCH]
            store.add_texts([p.text for p in batch], [p.metadata() for p in batch], ids=[p.id for p in batch])
            bar.update(len(batch))
        sentence_store = _store(staging, SENTENCES, embedder)
        for i in range(0, len(sentences), _BATCH):
            batch = sentences[i : i + _BATCH]
            sentence_store.add_texts(
                [corpus.text[s.start : s.end] for _, s in batch],
                [{"passage_id": p.id, "start": s.start, "end": s.end} for p, s in batch],
                ids=[f"{p.id}@{s.start}" for p, s in batch],
            )
            bar.update(len(batch))
        bar.close()
        manifest = expected_manifest(settings, embedder, corpus.sha256) | {
            "passage_count": len(passages),
            "sentence_count": len(sentences),
            "package_version": package_version(),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "build_s": round(time.perf_counter() - started, 2),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        del store, sentence_store
        final = builds / name
        staging.rename(final)
        _swap_current(settings.index_dir, name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _remove_old_builds(builds, keep={name, _previous_name(settings.index_dir)})
    log.info("index built: %d passages, %d sentences in %.1f s", len(passages), len(sentences), manifest["build_s"])
    return IndexStatus("fresh", [], final, manifest)


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
    """Delete builds not in ``keep``; the previous build is kept for readers still using it."""
    for child in builds.iterdir():
        if child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)


@dataclass
class LoadedIndex:
    """A served build, loaded for answering.

    Attributes:
        path: The build folder.
        manifest: Its manifest.
        store: The passages collection (LangChain ``Chroma``), for dense search.
        passages: Every passage, keyed by id, in corpus order.
        sentence_ids: Passage id of each sentence row.
        sentence_spans: Corpus span of each sentence row.
        sentence_vectors: Array (n_sentences, dim) of L2-normalised sentence embeddings.

    """

    path: Path
    manifest: dict[str, Any]
    store: Chroma
    passages: dict[str, Passage]
    sentence_ids: list[str]
    sentence_spans: list[Span]
    sentence_vectors: np.ndarray


def open_index(settings: Settings, *, progress: bool = True) -> LoadedIndex:
    """Open the served build, building or rebuilding it first if missing or stale.

    Raises:
        IndexStoreError: If the build cannot be read (e.g. a corrupted database); the
            message says to run ``essay-assistant index rebuild``.

    """
    import numpy as np

    state = status(settings)
    if state.state != "fresh":
        log.warning("index %s (%s): building it now", state.state, "; ".join(state.reasons))
        state = build(settings, progress=progress)
    embedder = get_embedder(settings)
    try:
        store = _store(state.path, PASSAGES, embedder)
        rows = store.get(include=["documents", "metadatas"])
        sentence_rows = _store(state.path, SENTENCES, None).get(include=["embeddings", "metadatas"])
    except Exception as exc:  # noqa: BLE001 - chromadb raises many types for a damaged build
        raise IndexStoreError(
            f"the index in {state.path} cannot be read ({type(exc).__name__}: {exc}); "
            "run `essay-assistant index rebuild`"
        ) from exc
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
    if len(passages) != state.manifest.get("passage_count"):
        raise IndexStoreError(
            f"the index in {state.path} holds {len(passages)} passages, its manifest says "
            f"{state.manifest.get('passage_count')}; run `essay-assistant index rebuild`"
        )
    return LoadedIndex(
        path=state.path,
        manifest=state.manifest,
        store=store,
        passages=dict(sorted(passages.items(), key=lambda kv: kv[1].start)),
        sentence_ids=[m["passage_id"] for m in metas],
        sentence_spans=[Span(m["start"], m["end"]) for m in metas],
        sentence_vectors=np.asarray(sentence_rows["embeddings"], dtype=np.float32)[order],
    )
