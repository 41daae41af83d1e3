"""Cold-start properties: what a fresh process imports, and the NumPy encoder's fidelity."""

import json
import subprocess
import sys

import numpy as np
import pytest

from assistant.embeddings import get_embedder

pytestmark = pytest.mark.integration

HEAVY = ("torch", "sentence_transformers", "transformers", "chromadb", "langchain_chroma", "gradio")

_PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from assistant.cli import app
heavy = json.loads(sys.argv[2])
sys.argv = ["essay-assistant", *json.loads(sys.argv[1])]
with redirect_stdout(io.StringIO()):
    try:
        app()
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def _imported_by(*args: str, heavy=HEAVY) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args)), json.dumps(list(heavy))],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_help_imports_nothing_heavy():
    assert _imported_by("--help") == []


def test_index_status_imports_no_torch(assistant):
    imported = _imported_by("--index-dir", str(assistant.settings.index_dir), "index", "status")
    assert not [m for m in imported if m.split(".")[0] in ("torch", "sentence_transformers", "transformers")]


def test_ask_with_the_bundled_model_imports_no_torch(assistant):
    imported = _imported_by(
        "--index-dir", str(assistant.settings.index_dir), "ask", "When did Japan ban Huawei?", heavy=("torch",)
    )
    assert imported == []


@pytest.mark.slow
def test_numpy_encoder_matches_sentence_transformers(settings):
    texts = [
        "When did Japan ban Huawei equipment from its ministries?",
        "Japan",
        "The small yard and high fence policy restricts advanced semiconductor exports to China. " * 12,
    ]
    ours = get_embedder(settings)
    assert ours.uses_numpy
    reference = get_embedder(settings.model_copy(update={"embedding_backend": "sentence-transformers"}))
    assert not reference.uses_numpy
    a, b = ours.encode(texts), reference.encode(texts)
    assert a.dtype == np.float32 and a.shape == b.shape == (3, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.99999


def test_embedder_is_created_once_per_settings(settings):
    assert get_embedder(settings) is get_embedder(settings.model_copy())
