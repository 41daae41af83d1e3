"""Model identity (issue 12, part 1): a model is everything that shapes its vectors, not its folder name.

A copy of the bundled model under the same folder name, with a 384 -> 128 ``Dense`` module added
(or its pooling, max_seq_length, tokenizer or modules changed), used to be reported ``fresh`` and
then fail every question with an 80-line Chroma traceback. Now such an index is stale and rebuilt,
and an index whose vectors have another dimension than the model's is refused in one line.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant import encoder, index
from assistant.api import Assistant
from assistant.config import BUNDLED_MODEL
from assistant.embeddings import Embedder, model_identity, resolve_model_dir
from assistant.errors import IndexStoreError, ModelError
from tests.helpers import HUAWEI, run_cli

pytestmark = pytest.mark.integration


def copy_model(bundled: Path, target_parent: Path) -> Path:
    """The bundled model folder under its own name in ``target_parent`` (weights symlinked: 90 MB)."""
    target = target_parent / BUNDLED_MODEL
    shutil.copytree(bundled, target, ignore=shutil.ignore_patterns("model.safetensors"))
    os.symlink(bundled / "model.safetensors", target / "model.safetensors")
    return target


def add_dense(model: Path, out_features: int = 128) -> None:
    """Insert a Dense 384 -> ``out_features`` module before Normalize (fixed random weights)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(12)
    dense = model / "2_Dense"
    dense.mkdir()
    (dense / "config.json").write_text(
        json.dumps(
            {
                "in_features": 384,
                "out_features": out_features,
                "bias": True,
                "activation_function": "torch.nn.modules.linear.Identity",
            }
        )
    )
    save_file(
        {
            "linear.weight": (rng.standard_normal((out_features, 384)) / np.sqrt(384)).astype(np.float32),
            "linear.bias": np.zeros(out_features, dtype=np.float32),
        },
        str(dense / "model.safetensors"),
    )
    modules = json.loads((model / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    modules[3] |= {"idx": 3, "name": "3", "path": "3_Normalize"}
    (model / "modules.json").write_text(json.dumps(modules, indent=2))


@pytest.fixture(scope="module")
def bundled(settings) -> Path:
    return resolve_model_dir(settings)


@pytest.fixture(scope="module")
def dense_model(tmp_path_factory, bundled) -> Path:
    model = copy_model(bundled, tmp_path_factory.mktemp("dense"))
    add_dense(model)
    return model


def _cli(settings, *args: str, env: dict | None = None):
    """The CLI in a subprocess with ``settings``' index folder and embedding model."""
    model = {"ASSISTANT_EMBEDDING_MODEL": str(settings.embedding_model)}
    return run_cli(*args, index_dir=settings.index_dir, env=model | (env or {}), timeout=600)


def test_identity_ignores_the_folder_and_json_layout(tmp_path, bundled, settings):
    same = copy_model(bundled, tmp_path)
    config = same / "1_Pooling" / "config.json"
    config.write_text(json.dumps(json.loads(config.read_text()), indent=4, sort_keys=True))  # layout only
    ours = model_identity(same, settings.model_cache_dir)
    assert ours == model_identity(bundled, settings.model_cache_dir)
    assert ours["modules"] == ["Transformer", "Pooling", "Normalize"] and ours["max_seq_length"] == 256
    assert len(ours["digest"]) == 64


def _pooling_cls(model: Path) -> None:
    config = model / "1_Pooling" / "config.json"
    data = json.loads(config.read_text())
    config.write_text(json.dumps(data | {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))


def _max_seq_length(model: Path) -> None:
    (model / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))


def _tokenizer(model: Path) -> None:
    path = model / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["normalizer"]["lowercase"] = False
    path.write_text(json.dumps(data), encoding="utf-8")


def _no_normalize(model: Path) -> None:
    modules = json.loads((model / "modules.json").read_text())
    (model / "modules.json").write_text(json.dumps(modules[:2]))


def _prompt(model: Path) -> None:
    path = model / "config_sentence_transformers.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data | {"prompts": {"query": "query: "}, "default_prompt_name": "query"}))


@pytest.mark.parametrize(
    "edit",
    [add_dense, _pooling_cls, _max_seq_length, _tokenizer, _no_normalize, _prompt],
    ids=["dense", "pooling", "max_seq_length", "tokenizer", "no-normalize", "prompt"],
)
def test_same_name_other_model_makes_the_index_stale(own_index, tmp_path, bundled, edit):
    model = copy_model(bundled, tmp_path / "models")
    edit(model)
    own = own_index.model_copy(update={"embedding_model": str(model)})
    state = index.status(own)
    assert state.state == "stale", state
    assert [r for r in state.reasons if r.startswith("model_identity changed")]
    assert not [r for r in state.reasons if r.startswith(("model changed", "model_sha256"))]  # same name and weights
    # The NumPy encoder reads max_seq_length and tokenizer.json as sentence-transformers does; the
    # other changes it does not implement, so it must not be chosen for them.
    assert (encoder.unsupported(model) is None) == (edit in (_max_seq_length, _tokenizer))


def test_dense_model_under_the_same_name_is_rebuilt_and_answers(own_index, dense_model):
    own = own_index.model_copy(update={"embedding_model": str(dense_model)})
    result = _cli(own, "index", "status")
    assert result.returncode == 1 and "index: stale" in result.stdout and "model_identity changed" in result.stdout
    answer = Assistant(own).answer(HUAWEI)  # rebuilds first: never served from the 384-d vectors
    text = own.corpus_path.read_text(encoding="utf-8")
    assert answer.citations and all(text[c.start : c.end] == c.quote for c in answer.citations)
    state = index.status(own)
    assert state.state == "fresh"
    assert state.manifest["dimension"] == 128
    assert state.manifest["model_modules"] == ["Transformer", "Pooling", "Dense", "Normalize"]


def test_index_of_another_dimension_is_refused_in_one_line(own_index, dense_model):
    """Even when its manifest claims the model's identity, 384-d vectors are never queried with 128-d ones."""
    own = own_index.model_copy(update={"embedding_model": str(dense_model)})
    manifest_path = index.current_build(own.index_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model_identity"] = Embedder(own).identity["digest"]
    manifest_path.write_text(json.dumps(manifest))
    assert index.status(own).state == "fresh"
    with pytest.raises(IndexStoreError) as info:
        Assistant(own).answer(HUAWEI)
    message = str(info.value)
    assert "holds 384-dimensional vectors" in message and "makes 128-dimensional" in message
    assert "index rebuild" in message and "\n" not in message
    result = _cli(own, "ask", HUAWEI)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: the index in ") and "384-dimensional" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_numpy_backend_refuses_a_dense_model_in_one_line(own_index, dense_model):
    own = own_index.model_copy(update={"embedding_model": str(dense_model), "embedding_backend": "numpy"})
    with pytest.raises(ModelError, match="Transformer -> Pooling -> Dense -> Normalize"):
        Embedder(own).encode(["Huawei"])
    result = _cli(own, "ask", HUAWEI, env={"ASSISTANT_EMBEDDING_BACKEND": "numpy"})
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    # The index is stale for this model, so a warning says it is being rebuilt; then the one-line error.
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [result.stderr.strip().splitlines()[-1]]
    assert "Dense" in errors[0] and "sentence-transformers" in errors[0]
    assert not list((own.index_dir / "builds").glob(".tmp-*"))  # nothing half-written left
