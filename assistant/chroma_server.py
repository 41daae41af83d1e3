"""The index on a shared Chroma server (``ASSISTANT_CHROMA_URL``), for several app replicas.

Layout on the server, for ``Settings.chroma_prefix`` = ``P``::

    P-pointer                   tiny collection; its metadata names the served build:
                                {"current": B, "previous": A, "manifest": "<json>"}
    P-<build>-passages          one complete build: the passages collection ...
    P-<build>-sentences         ... and its sentences

A build writes two new collections, then replaces the pointer's metadata in one request
(one SQLite transaction on the server), so every replica sees either the old build or the
new one, never a mix. Replicas read the pointer before each question and switch to a new
build on their next question. The build before the current one is kept for replicas still
answering from it; older ones are deleted.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from assistant.config import Settings
from assistant.errors import IndexStoreError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

log = logging.getLogger(__name__)

_clients: dict[str, ClientAPI] = {}


def describe(settings: Settings) -> str:
    """Where the index lives, for messages: ``"Chroma server http://host:port"``."""
    return f"Chroma server {settings.chroma_url}"


def client(settings: Settings) -> ClientAPI:
    """A (cached) ``chromadb.HttpClient`` for ``settings.chroma_url``.

    Raises:
        IndexStoreError: If the URL is malformed or the server does not answer within
            ``chroma_timeout_s`` (the message names the URL and what to run).

    """
    url = settings.chroma_url or ""
    cached = _clients.get(url)
    if cached is not None:
        return cached
    import chromadb
    import chromadb.config

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise IndexStoreError(f"ASSISTANT_CHROMA_URL={url!r} is not an http(s)://host:port URL")
    port = parts.port or (443 if parts.scheme == "https" else 8000)
    try:
        made = chromadb.HttpClient(
            host=parts.hostname,
            port=port,
            ssl=parts.scheme == "https",
            settings=chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False),
        )
        _set_timeout(made, settings.chroma_timeout_s)
        made.heartbeat()
    except Exception as exc:  # noqa: BLE001 - connection errors come in many types
        raise IndexStoreError(
            f"cannot reach the {describe(settings)} ({type(exc).__name__}: {exc}); start it with "
            "`chroma run --path DIR --host 127.0.0.1 --port N` or fix ASSISTANT_CHROMA_URL"
        ) from None
    _clients[url] = made
    return made


def _set_timeout(api: ClientAPI, seconds: float) -> None:
    """Bound every request of ``api``: chromadb's HTTP client waits forever by default."""
    import httpx

    session = getattr(getattr(api, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(seconds)
    else:  # pragma: no cover - another chromadb layout
        log.warning("cannot set a timeout on the Chroma client; a hung server may block questions")


def pointer_name(settings: Settings) -> str:
    """Name of the pointer collection."""
    return f"{settings.chroma_prefix}-pointer"


def collection_name(settings: Settings, build: str, kind: str) -> str:
    """Name of collection ``kind`` (``passages`` or ``sentences``) of build ``build``."""
    return f"{settings.chroma_prefix}-{build}-{kind}"


def read_pointer(settings: Settings) -> dict[str, Any]:
    """The pointer: ``{"current": build | "", "previous": build | "", "manifest": dict}``.

    An absent pointer reads as no build (``current == ""``).

    Raises:
        IndexStoreError: If the server cannot be reached.

    """
    api = client(settings)
    try:
        metadata = api.get_collection(pointer_name(settings)).metadata or {}
    except Exception as exc:  # noqa: BLE001 - chromadb raises NotFoundError, ValueError, ... by version
        if "does not exist" in str(exc) or type(exc).__name__ in ("NotFoundError", "InvalidCollectionException"):
            return {"current": "", "previous": "", "manifest": {}}
        raise IndexStoreError(f"cannot read the index pointer on the {describe(settings)} ({exc})") from None
    try:
        manifest = json.loads(metadata.get("manifest") or "{}")
    except ValueError:
        manifest = {}
    return {"current": metadata.get("current", ""), "previous": metadata.get("previous", ""), "manifest": manifest}


def write_pointer(settings: Settings, current: str, previous: str, manifest: dict[str, Any]) -> None:
    """Point every replica at build ``current`` in one request."""
    api = client(settings)
    metadata = {"current": current, "previous": previous, "manifest": json.dumps(manifest)}
    collection = api.get_or_create_collection(pointer_name(settings), metadata=metadata)
    if (collection.metadata or {}).get("current") != current:
        collection.modify(metadata=metadata)


def builds(settings: Settings) -> set[str]:
    """Names of the builds with collections on the server."""
    prefix = f"{settings.chroma_prefix}-"
    names = set()
    for item in client(settings).list_collections():
        name = item if isinstance(item, str) else item.name
        for kind in ("-passages", "-sentences"):
            if name.startswith(prefix) and name.endswith(kind):
                names.add(name[len(prefix) : -len(kind)])
    return names


def delete_build(settings: Settings, build: str) -> None:
    """Delete both collections of ``build`` (missing ones are ignored)."""
    api = client(settings)
    for kind in ("passages", "sentences"):
        try:
            api.delete_collection(collection_name(settings, build, kind))
        except Exception as exc:  # noqa: BLE001 - already gone
            log.debug("cannot delete %s: %s", collection_name(settings, build, kind), exc)
