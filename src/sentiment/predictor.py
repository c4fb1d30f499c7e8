"""Prediction from a saved model directory with NumPy alone.

Neither torch, gensim, scikit-learn nor pandas is imported here: a cold ``sentiment predict`` pays for NumPy
and safetensors only. The forward pass mirrors ``sentiment.model`` (a test checks agreement with torch).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentiment.errors import ModelDirError
from sentiment.modeldir import check_model_dir, load_tensors, load_vocab
from sentiment.ngrams import SEPARATOR as NGRAM_SEPARATOR
from sentiment.ngrams import add_ngrams
from sentiment.parallel import PARALLEL_MIN_TEXTS, can_fork, cpu_count, fork_map, split_ranges
from sentiment.phrases import apply_phrases
from sentiment.pooling import POOLINGS, TokenBags, encode_texts, pool
from sentiment.tokenizer import TokenizerSettings, tokenize


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "gelu": _gelu_tanh,
}


def mlp_layers(
    tensors: dict[str, np.ndarray], prefix: str = "mlp.net."
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of each Linear layer of a saved SimpleMLP, in order."""
    indices = sorted({int(k[len(prefix) :].split(".")[0]) for k in tensors if k.startswith(prefix)})
    layers = []
    for i in indices:
        if f"{prefix}{i}.weight" in tensors:
            layers.append((tensors[f"{prefix}{i}.weight"], tensors[f"{prefix}{i}.bias"]))
    return layers


def mlp_forward(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], activation: str) -> np.ndarray:
    """Probability of the positive class for each row of ``x`` (float64 for accuracy)."""
    act = ACTIVATIONS[activation]
    h = x.astype(np.float64, copy=False)
    for i, (weight, bias) in enumerate(layers):
        h = h @ weight.T.astype(np.float64) + bias.astype(np.float64)
        if i < len(layers) - 1:
            h = act(h)
    z = h[:, 0]
    # numerically stable sigmoid
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


@dataclass
class Prediction:
    text: str
    label: str
    probability: float
    known_words: int

    @property
    def no_known_words(self) -> bool:
        return self.known_words == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "probability": round(self.probability, 6),
            "known_words": self.known_words,
            "no_known_words": self.no_known_words,
        }


class Predictor:
    """A loaded model: ``Predictor.load(dir).predict(["great film"])``."""

    def __init__(
        self, model_dir: Path, meta: dict[str, Any], vocab: list[str], tensors: dict[str, np.ndarray]
    ) -> None:
        self.model_dir = model_dir
        self.meta = meta
        self.vocab = vocab
        self.index = {w: i for i, w in enumerate(vocab)}
        self.tokenizer = TokenizerSettings.from_dict(meta["tokenizer"])
        self.phrases = frozenset(meta.get("phrases") or ())
        self.ngrams = int(meta.get("ngrams") or 1)
        # The vocabulary lists the words first, then the n-grams (which alone contain the separator).
        self.n_words = next((i for i, w in enumerate(vocab) if NGRAM_SEPARATOR in w), len(vocab))
        self.pooling = meta["pooling"]
        self.activation = meta["activation"]
        self.threshold = float(meta["threshold"])
        self.labels = (meta["labels"]["negative"], meta["labels"]["positive"])
        self.embeddings = tensors["embeddings"]
        self.word_weights = tensors.get("word_weights")
        self.feature_mean = tensors.get("feature_mean")
        self.feature_std = tensors.get("feature_std")
        self.layers = mlp_layers(tensors)
        self._check()

    def _check(self) -> None:
        where = self.model_dir / "model.safetensors"
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != len(self.vocab):
            raise ModelDirError(f"{where}: embeddings do not match vocab.json ({len(self.vocab)} words)")
        if not self.layers:
            raise ModelDirError(f"{where}: no MLP weights found")
        if self.activation not in ACTIVATIONS or self.pooling not in POOLINGS:
            raise ModelDirError(f"{self.model_dir}/meta.json: unknown activation or pooling")
        expected = self.layers[0][0].shape[1]
        dim = self.embeddings.shape[1] * (2 if self.pooling == "mean_max" else 1)
        if expected != dim:
            raise ModelDirError(f"{where}: MLP input size {expected} does not match features of size {dim}")

    @classmethod
    def load(cls, model_dir: str | Path) -> Predictor:
        model_dir = Path(model_dir)
        meta = check_model_dir(model_dir)
        try:
            return cls(model_dir, meta, load_vocab(model_dir), load_tensors(model_dir))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelDirError(f"{model_dir}: inconsistent model files ({exc}); retrain the model") from None

    def tokenize(self, text: str) -> list[str]:
        tokens = tokenize(text, self.tokenizer)
        tokens = apply_phrases(tokens, self.phrases) if self.phrases else tokens
        # the vocabulary holds the training n-grams: unknown ones are dropped by encode, as in training
        return add_ngrams(tokens, self.ngrams) if self.ngrams > 1 else tokens

    def encode(self, texts: Sequence[str]) -> TokenBags:
        return encode_texts(texts, self.tokenize, self.index)

    def features(self, bags: TokenBags) -> np.ndarray:
        x = pool(bags, self.embeddings, self.pooling, self.word_weights)
        if self.feature_mean is not None and self.feature_std is not None:
            x = (x - self.feature_mean) / self.feature_std
        return x

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 512, workers: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """(probability of the positive class, number of known words) for each text.

        ``workers`` > 1 (0: every core) spreads a large input over forked processes: tokenising is pure
        Python and holds the GIL, so threads would not help.
        """
        workers = workers or cpu_count()
        if workers > 1 and len(texts) >= PARALLEL_MIN_TEXTS and can_fork():
            ranges = split_ranges(len(texts), workers * 2)
            parts = fork_map(
                [functools.partial(self._predict, texts[a:b], batch_size) for a, b in ranges], workers
            )
            return np.concatenate([p for p, _ in parts]), np.concatenate([k for _, k in parts])
        return self._predict(texts, batch_size)

    def _predict(self, texts: Sequence[str], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        probs, known = [], []
        for start in range(0, len(texts), batch_size):
            bags = self.encode(texts[start : start + batch_size])
            probs.append(mlp_forward(self.features(bags), self.layers, self.activation))
            known.append(self._known_words(bags))
        if not probs:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        return np.concatenate(probs), np.concatenate(known)

    def _known_words(self, bags: TokenBags) -> np.ndarray:
        """Known words per text: the bag's ids below ``n_words`` (its n-gram tokens are not words)."""
        if self.n_words == len(self.vocab):
            return bags.lengths
        doc = np.repeat(np.arange(len(bags), dtype=np.int64), bags.lengths)
        return np.bincount(doc[bags.ids < self.n_words], minlength=len(bags))

    def predict(self, texts: Sequence[str], workers: int = 1) -> list[Prediction]:
        probs, known = self.predict_proba(texts, workers=workers)
        return [
            Prediction(text, self.labels[int(p >= self.threshold)], float(p), int(k))
            for text, p, k in zip(texts, probs, known, strict=True)
        ]
