"""A NumPy forward pass for BERT-style sentence-transformers models (mean pooling, L2-normalised).

Importing ``sentence_transformers`` pulls in torch, transformers, scikit-learn and SciPy:
about 4 s of a fresh process on an idle 2-core machine, and most of the cold start (see
``docs/benchmarks.md``). all-MiniLM-L6-v2 is a 6-layer BERT encoder of 22 M parameters,
so its forward pass is a few matrix products that NumPy runs as fast as torch does on a CPU.
This module reads the same ``model.safetensors`` and ``tokenizer.json`` and computes the
same vectors (cosine > 0.99999 against ``SentenceTransformer.encode``, checked in
``tests/test_index.py``) while importing only NumPy, ``safetensors`` and ``tokenizers``.

Only the architecture of all-MiniLM-L6-v2 is supported: a ``BertModel`` with absolute
positions and GELU, followed by mean pooling and normalisation. :func:`supports` says
whether a model folder qualifies; others go through sentence-transformers.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_MODULES = [
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def unsupported(model_dir: Path) -> str | None:
    """Why :class:`NumpyBertEncoder` would not compute sentence-transformers' vectors for ``model_dir``, or None.

    It runs exactly ``Transformer`` (a BERT with absolute positions and exact GELU, no lower-casing
    of its own) -> ``Pooling`` (mean of the tokens only) -> ``Normalize``, with no default prompt.
    Any other module (``Dense``, ``LayerNorm``, ...), pooling mode or prompt gives a reason here,
    so the model runs in sentence-transformers (or, with ``embedding_backend="numpy"``, is
    refused) and never yields different vectors silently.
    """
    modules = _read_json(model_dir / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        return "it has no readable modules.json"
    types = [str(m.get("type", "?")) for m in modules]
    if types != _MODULES:
        names = " -> ".join(t.rsplit(".", 1)[-1] for t in types)
        return f"its modules are {names}; only Transformer -> Pooling -> Normalize is implemented"
    config = _read_json(model_dir / "config.json")
    if config.get("model_type") != "bert":
        return f"its model_type is {config.get('model_type')!r}, not 'bert'"
    if config.get("hidden_act") != "gelu":
        return f"its activation is {config.get('hidden_act')!r}, not 'gelu'"
    if config.get("position_embedding_type", "absolute") != "absolute":
        return "it uses relative position embeddings"
    pooling = _read_json(model_dir / str(modules[1].get("path") or "") / "config.json")
    modes = sorted(k for k in pooling if k.startswith("pooling_mode_") and pooling.get(k))
    if modes != ["pooling_mode_mean_tokens"]:
        return f"its pooling is {', '.join(modes) or 'unset'}; only pooling_mode_mean_tokens is implemented"
    if _read_json(model_dir / "sentence_bert_config.json").get("do_lower_case"):
        return "it sets do_lower_case in sentence_bert_config.json"
    if _read_json(model_dir / "config_sentence_transformers.json").get("default_prompt_name"):
        return "it sets a default prompt in config_sentence_transformers.json"
    for name in ("model.safetensors", "tokenizer.json"):
        if not (model_dir / name).is_file():
            return f"it has no {name}"
    return None


def supports(model_dir: Path) -> bool:
    """Whether :class:`NumpyBertEncoder` computes the same vectors as sentence-transformers for ``model_dir``."""
    return unsupported(model_dir) is None


_ERFC_COEFFS = (
    0.17087277,
    -0.82215223,
    1.48851587,
    -1.13520398,
    0.27886807,
    -0.18628806,
    0.09678418,
    0.37409196,
    1.00002368,
    -1.26551223,
)


def _erf(x: np.ndarray) -> np.ndarray:
    """Error function, elementwise, in the dtype of ``x``; absolute error < 1.2e-7 (Numerical Recipes ``erfcc``)."""
    z = np.abs(x)
    t = 0.5 * z
    t += 1.0
    np.reciprocal(t, out=t)
    poly = np.full_like(t, _ERFC_COEFFS[0])
    for c in _ERFC_COEFFS[1:]:  # Horner, in place: no temporaries per step
        poly *= t
        poly += c
    z *= z
    poly -= z
    np.exp(poly, out=poly)
    poly *= t  # erfc(|x|)
    return np.where(x >= 0, 1.0 - poly, poly - 1.0)


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT's ``hidden_act="gelu"``."""
    e = _erf(x * np.float32(1.0 / math.sqrt(2.0)))
    e += 1.0
    e *= x
    e *= 0.5
    return e


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class NumpyBertEncoder:
    """all-MiniLM-L6-v2 (or any BERT + mean-pooling + normalise model) in NumPy.

    Args:
        model_dir: A sentence-transformers model folder for which :func:`supports` is true.

    """

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = _read_json(model_dir / "config.json")
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        bert_config = _read_json(model_dir / "sentence_bert_config.json")
        self.max_tokens = int(bert_config.get("max_seq_length") or config.get("max_position_embeddings", 512))
        weights = load_file(str(model_dir / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v for k, v in weights.items()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()
        log.info("loaded %s (%d layers) for the NumPy encoder", model_dir.name, self.layers)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Hidden states (batch, tokens, dim) for token ``ids`` (batch, tokens) under ``mask`` (1 = real token)."""
        w = self.w
        positions = np.arange(ids.shape[1])
        h = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        batch, tokens, dim = h.shape
        head_dim = dim // self.heads
        # Padded keys get a large negative score, so softmax gives them zero weight.
        key_bias = ((1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def linear(x: np.ndarray, name: str, p: str = p) -> np.ndarray:
                # One (batch * tokens, in) x (in, out) product: NumPy does not fuse a 3-D @ 2-D into one GEMM.
                flat = x.reshape(-1, x.shape[-1]) @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                return flat.reshape(*x.shape[:-1], flat.shape[-1])

            def split(x: np.ndarray) -> np.ndarray:
                return x.reshape(batch, tokens, self.heads, head_dim).transpose(0, 2, 1, 3)

            q = split(linear(h, "attention.self.query"))
            k = split(linear(h, "attention.self.key"))
            v = split(linear(h, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(head_dim)) + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, tokens, dim)
            h = _layer_norm(
                linear(context, "attention.output.dense") + h,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            ffn = linear(_gelu(linear(h, "intermediate.dense")), "output.dense")
            h = _layer_norm(ffn + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        return h

    def encode(self, texts: list[str], batch_size: int = 8) -> np.ndarray:
        """Embed ``texts``: float32 array (len(texts), dim), rows L2-normalised.

        Texts are sorted by length and run ``batch_size`` at a time, so little of the work is
        on padding: with the index's calls of 32 texts, batches of 8 compute 12.2k token slots
        for the essay's 10.5k real tokens, against 18.3k with batches of 32 (and attention is
        quadratic in the padded length). Each text keeps at most ``max_tokens`` word pieces,
        as in sentence-transformers.
        """
        dim = self.w["embeddings.word_embeddings.weight"].shape[1]
        out = np.zeros((len(texts), dim), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts)) if texts else []
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.float32)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1.0
            hidden = self._forward(ids, mask)
            pooled = (hidden * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
            norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled / norms
        return out
