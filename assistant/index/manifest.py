"""What made a build, and whether the served build is still what the settings would build.

Each build records a manifest (``manifest.json`` in its folder, or the pointer's metadata on a
Chroma server): the model and its identity digest, the corpus hash, the chunking and the
lexicon version, plus counts and provenance. A build whose manifest differs from
:func:`expected_manifest` for the current settings is *stale*: it is rebuilt, never served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from assistant import chroma_server
from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.embeddings import Embedder, get_embedder
from assistant.index.store import current_build
from assistant.lexicon import LEXICON_VERSION
from assistant.types import IndexState

CHUNKER_VERSION = 4  # bump when chunking.py changes what it produces (4: sentence boundaries from nupunkt)


def _version_of(distribution: str, missing: str = "unknown") -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return missing


def package_version() -> str:
    """Installed version of this package (``"0+unknown"`` when not installed)."""
    return _version_of("essay-assistant", "0+unknown")


@dataclass(frozen=True)
class IndexStatus:
    """What ``index status`` reports.

    Attributes:
        state: ``"fresh"``, ``"stale"`` or ``"missing"`` (:data:`~assistant.types.IndexState`).
        reasons: Why it is stale or missing (empty when fresh).
        path: The build folder served (``None`` when missing or on a Chroma server).
        manifest: The build's manifest (``{}`` when missing).
        build: Name of the build served (``None`` when missing).
        location: Where it lives, for messages: the folder, or the server URL and build.

    """

    state: IndexState
    reasons: list[str] = field(default_factory=list)
    path: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    build: str | None = None
    location: str = ""


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
        "chunking": {
            "chunk_tokens": settings.chunk_tokens,
            "chunker_version": CHUNKER_VERSION,
            # The sentence splitter's model decides the boundaries (assistant/corpus.py): another is another index.
            "sentence_splitter": f"nupunkt {_version_of('nupunkt')}",
        },
        "lexicon_version": LEXICON_VERSION,
    }


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
