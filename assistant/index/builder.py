"""Building the index: chunk the essay, embed every passage and sentence, swap the build in.

A build is written into a new folder (``builds/.tmp-<name>``), renamed to ``builds/<name>``
when complete, and becomes visible only when ``CURRENT`` is replaced, so a crash mid-build
leaves the previous build serving and a rebuild never duplicates passages. A file lock
(``.lock``) serialises builders across processes. With ``Settings.chroma_url`` set, the build
is written to new collections on the Chroma server and its pointer is swapped instead (see
:mod:`assistant.chroma_server`); the lock file still serialises builds started on this machine.

Texts are embedded through sentence-transformers (:func:`assistant.embeddings.get_build_embedder`)
whatever runs the questions; the NumPy query encoder gives the same vectors.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from assistant import chroma_server
from assistant.chunking import chunk_corpus
from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.embeddings import get_build_embedder, get_embedder
from assistant.errors import IndexStoreError
from assistant.index.manifest import IndexStatus, expected_manifest, package_version, status
from assistant.index.store import (
    PASSAGES,
    READERS,
    SENTENCES,
    chroma_store,
    close_store,
    previous_name,
    remove_old_builds,
    server_store,
    swap_current,
)
from assistant.lexicon import Lexicon

if TYPE_CHECKING:
    from langchain_chroma import Chroma

    from assistant.embeddings import Embedder
    from assistant.types import Span

log = logging.getLogger(__name__)

_BATCH = 32  # passages or sentences per write to Chroma
# Texts per embedding call, shortest first. On the shared 2-core machine (load 5-7), embedding the
# essay's 193 texts took 10.6 s in reading order in batches of 32, 8.4 s shortest first in 32s,
# 7.1 s in 16s and 7.0 s in 8s (one process, model loaded, alternating runs).
_EMBED_BATCH = 16


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


def _load_embedders(settings: Settings):
    """Load the model for questions and for the build: one that cannot run fails before anything is written.

    Returns the build's :class:`~assistant.embeddings.Embedder` (sentence-transformers).
    """
    get_embedder(settings).dimension  # noqa: B018 - an index that no question could search is not built
    embedder = get_build_embedder(settings)
    embedder.dimension  # noqa: B018
    return embedder


def _new_build_name() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ").lower() + f"-{os.getpid()}"


class _Embedded:
    """The corpus's passages and sentences, each embedded once, served to Chroma as LangChain embeddings.

    Texts are embedded shortest first, ``_EMBED_BATCH`` at a time, so each batch pads its texts
    to lengths alike (sentence-transformers sorts by length only within one call): on this essay
    that takes about a third less time than embedding in reading order.
    """

    def __init__(self, settings: Settings, embedder: Embedder, *, progress: bool) -> None:
        import numpy as np
        from tqdm.auto import tqdm

        self.corpus = load_corpus(settings.corpus_path)
        self.passages = chunk_corpus(self.corpus, embedder.count_tokens, settings.chunk_tokens)
        self.sentences = [(p, s) for p in self.passages for s in p.sentences]
        texts = [p.text for p in self.passages] + [self.sentence_text(s) for _, s in self.sentences]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
        with tqdm(total=len(texts), desc="Embedding", unit="text", disable=not progress) as bar:
            for start in range(0, len(order), _EMBED_BATCH):
                batch = order[start : start + _EMBED_BATCH]
                vectors[batch] = embedder.encode([texts[i] for i in batch])
                bar.update(len(batch))
        self._vectors = dict(zip(texts, vectors.tolist(), strict=True))

    def sentence_text(self, sentence: Span) -> str:
        """The corpus text of ``sentence``."""
        return self.corpus.text[sentence.start : sentence.end]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: the vectors of ``texts`` (each one of the corpus's passages or sentences)."""
        return [self._vectors[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface; a store being built is never searched."""
        raise NotImplementedError("a store being built is never searched")


def _fill(
    settings: Settings, embedder: Embedder, embedded: _Embedded, store: Chroma, sentence_store: Chroma
) -> dict[str, Any]:
    """Write every passage and sentence with its vector; return the manifest (without ``build_s``)."""
    passages, sentences = embedded.passages, embedded.sentences
    for i in range(0, len(passages), _BATCH):
        batch = passages[i : i + _BATCH]
        store.add_texts([p.text for p in batch], [p.metadata() for p in batch], ids=[p.id for p in batch])
    for i in range(0, len(sentences), _BATCH):
        batch = sentences[i : i + _BATCH]
        sentence_store.add_texts(
            [embedded.sentence_text(s) for _, s in batch],
            [{"passage_id": p.id, "start": s.start, "end": s.end} for p, s in batch],
            ids=[f"{p.id}@{s.start}" for p, s in batch],
        )
    return expected_manifest(settings, embedder, embedded.corpus.sha256) | {
        "model_modules": embedder.identity["modules"],
        "dimension": embedder.dimension,
        "passage_count": len(passages),
        "sentence_count": len(sentences),
        "lexicon": Lexicon.from_corpus(embedded.corpus.text).to_dict(),
        "package_version": package_version(),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _build_locked(settings: Settings, *, progress: bool) -> IndexStatus:
    started = time.perf_counter()
    embedder = _load_embedders(settings)
    embedded = _Embedded(settings, embedder, progress=progress)
    name = _new_build_name()
    builds = settings.index_dir / "builds"
    staging = builds / f".tmp-{name}"
    staging.mkdir(parents=True)
    try:
        (staging / READERS).touch()
        store = chroma_store(staging, PASSAGES, embedded)
        sentence_store = chroma_store(staging, SENTENCES, embedded)
        manifest = _fill(settings, embedder, embedded, store, sentence_store)
        manifest["build_s"] = round(time.perf_counter() - started, 2)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        close_store(store)
        close_store(sentence_store)
        final = builds / name
        staging.rename(final)
        swap_current(settings.index_dir, name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    remove_old_builds(builds, keep={name, previous_name(settings.index_dir)})
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
    embedder = _load_embedders(settings)
    embedded = _Embedded(settings, embedder, progress=progress)
    name = _new_build_name()
    try:
        store = server_store(settings, name, PASSAGES, embedded)
        sentence_store = server_store(settings, name, SENTENCES, embedded)
        manifest = _fill(settings, embedder, embedded, store, sentence_store)
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
