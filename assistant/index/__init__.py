"""The persistent vector index: build, rebuild, status and open.

One package, five modules, each importing only the ones above it:

* :mod:`~assistant.index.store`: where builds live and who reads them: the folder layout
  (``CURRENT``, ``PREVIOUS``, ``builds/<name>/``), Chroma collections, read leases, and the
  deletion of old builds that no reader holds.
* :mod:`~assistant.index.manifest`: what made a build, and whether the served one is
  ``fresh``, ``stale`` or ``missing`` (:func:`status`).
* :mod:`~assistant.index.builder`: chunking, embedding and writing a build in a staging
  folder, then the atomic swap (:func:`build`).
* :mod:`~assistant.index.table`: the sentence rows of a loaded build (:class:`SentenceTable`):
  their passages, spans, vectors and terms, neighbours, paragraph groups, and the passage ↔
  footnote ↔ reference links; the only module that knows how rows are laid out.
* :mod:`~assistant.index.loader`: opening the served build for answering (:func:`open_index`),
  building it first when missing or stale.

With ``Settings.chroma_url`` set, the builds live on a Chroma server instead (see
:mod:`assistant.chroma_server`). Importing this package loads neither torch nor Chroma.
"""

from assistant.index.builder import build
from assistant.index.loader import LoadedIndex, not_rebuilt_message, open_index
from assistant.index.manifest import (
    CHUNKER_VERSION,
    IndexStatus,
    expected_manifest,
    package_version,
    read_manifest,
    served_build,
    status,
)
from assistant.index.store import PASSAGES, READERS, SENTENCES, BuildLease, close_store, current_build, lease_build
from assistant.index.table import SentenceTable

__all__ = [
    "CHUNKER_VERSION",
    "PASSAGES",
    "READERS",
    "SENTENCES",
    "SentenceTable",
    "BuildLease",
    "IndexStatus",
    "LoadedIndex",
    "build",
    "close_store",
    "current_build",
    "expected_manifest",
    "lease_build",
    "not_rebuilt_message",
    "open_index",
    "package_version",
    "read_manifest",
    "served_build",
    "status",
]
