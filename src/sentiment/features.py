"""Fitted features, scikit-learn style: ``Features(...).fit`` learns from the training texts, ``transform``
turns any texts' token bags into the classifier's input.

What it learns: one weight per token (tf-idf, SIF or NB weighting of the mean) and, for frozen features, the
training mean and standard deviation used to standardise them. It also holds the token vectors it pools,
replaced by the fine-tuned ones after training. Training and the predictor both use it. NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment.arrays import release_pages
from sentiment.pooling import POOLINGS, output_dim, pool
from sentiment.text import distinct_tokens

if TYPE_CHECKING:
    from sentiment.config import FeaturesConfig
    from sentiment.text import TokenBags

# Tensor names in model.safetensors.
EMBEDDINGS, WORD_WEIGHTS, FEATURE_MEAN, FEATURE_STD = (
    "embeddings",
    "word_weights",
    "feature_mean",
    "feature_std",
)


def idf_weights(bags: TokenBags, vocab_size: int) -> np.ndarray:
    """Smoothed inverse document frequency of every token over the given texts (scikit-learn's formula)."""
    df = np.zeros(vocab_size, dtype=np.int64)
    for _, part in bags.chunks():  # a chunk of texts at a time: the ids may be a file larger than memory
        _, tokens = distinct_tokens(part, vocab_size)
        df += np.bincount(tokens, minlength=vocab_size)
    return (np.log((1 + len(bags)) / (1 + df)) + 1).astype(np.float32)


def sif_weights(counts: np.ndarray, a: float) -> np.ndarray:
    """Smooth inverse frequency a / (a + p(w)) (Arora et al. 2017)."""
    p = counts / max(int(counts.sum()), 1)
    return (a / (a + p)).astype(np.float32)


def nb_ratios(bags: TokenBags, labels: np.ndarray, vocab_size: int, alpha: float) -> np.ndarray:
    """(vocabulary, outputs) signed Naive Bayes log-count ratio of every token (Wang & Manning 2012): binary,
    one column (class 1 against class 0); more classes, one per class against the rest; label sets, one per
    label (its texts against those without it).

    The ratio compares the share of the class's training texts that contain the token with the share of the
    other texts, each count smoothed by ``alpha``.
    """
    labels = np.asarray(labels)
    multilabel = labels.ndim == 2
    if multilabel:
        classes = range(labels.shape[1])
    elif int(np.max(labels, initial=0)) <= 1:
        classes = range(1, 2)
    else:
        classes = range(int(np.max(labels)) + 1)
    pos = np.zeros((len(classes), vocab_size), dtype=np.int64)
    neg = np.zeros((len(classes), vocab_size), dtype=np.int64)
    for first, part in bags.chunks():  # a chunk of texts at a time: the ids may be a file larger than memory
        rows, words = distinct_tokens(part, vocab_size)  # a token counts once per text, as in NBSVM
        row_labels = labels[first + rows]
        for column, c in enumerate(classes):
            positive = row_labels[:, c] == 1 if multilabel else row_labels == c
            pos[column] += np.bincount(words[positive], minlength=vocab_size)
            neg[column] += np.bincount(words[~positive], minlength=vocab_size)
    out = np.zeros((vocab_size, len(classes)))  # float64: nb_weights rounds once, at its end
    for column in range(len(classes)):
        p, n = pos[column] + alpha, neg[column] + alpha
        out[:, column] = np.log(p / p.sum()) - np.log(n / n.sum())
    return out


def nb_weights(
    bags: TokenBags,
    labels: np.ndarray,
    vocab_size: int,
    alpha: float,
    floor: float,
    ratios: np.ndarray | None = None,
) -> np.ndarray:
    """|log-count ratio| + ``floor`` of every token: how strongly it leans to one class; with more than two
    classes (or label sets), the strongest of its one-vs-rest leans. Tokens saying little about the label
    (ratio near 0) then count little in the mean. ``ratios``: ``nb_ratios``' result, when already computed."""
    if ratios is None:
        ratios = nb_ratios(bags, labels, vocab_size, alpha)
    return (np.abs(ratios).max(axis=1) + floor).astype(np.float32)


STATS_ROWS = 65536  # rows at a time through a feature matrix on disk


def _column_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and standard deviation (+ 1e-6), float32. A matrix on disk (out-of-core data) is
    read a block of rows at a time, in float64 and two passes: equal to NumPy's in-memory figures up to
    float32 rounding, not bit for bit."""
    if not isinstance(x, np.memmap):
        return x.mean(axis=0).astype(np.float32), (x.std(axis=0) + 1e-6).astype(np.float32)
    n = max(len(x), 1)
    total = np.zeros(x.shape[1])
    for lo in range(0, len(x), STATS_ROWS):
        total += x[lo : lo + STATS_ROWS].sum(axis=0, dtype=np.float64)
        release_pages(x)
    mean, squares = total / n, np.zeros(x.shape[1])
    for lo in range(0, len(x), STATS_ROWS):
        squares += ((x[lo : lo + STATS_ROWS] - mean) ** 2).sum(axis=0)
        release_pages(x)
    return mean.astype(np.float32), (np.sqrt(squares / n) + 1e-6).astype(np.float32)


def _standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std: a new array, or in place a block at a time for a matrix on disk."""
    if not isinstance(x, np.memmap):
        return (x - mean) / std
    for lo in range(0, len(x), STATS_ROWS):
        x[lo : lo + STATS_ROWS] = (x[lo : lo + STATS_ROWS] - mean) / std
        release_pages(x)
    return x


@dataclass
class Features:
    """Pooling settings (``__init__``) and what ``fit`` learns (the attributes ending in ``_``)."""

    pooling: str = "mean"
    sif_a: float = 1e-3
    nb_alpha: float = 1.0
    nb_floor: float = 0.1
    normalize: bool = False
    vectors_: np.ndarray | None = None  # (vocab, dim) token vectors that are pooled
    weights_: np.ndarray | None = None  # (vocab,) weight of each token in the mean, or None: plain mean
    mean_: np.ndarray | None = None  # (dim,) standardisation, when normalize
    std_: np.ndarray | None = None
    # (vocab, outputs) signed NB ratios for the wide part (model.wide); training only, not saved
    ratios_: np.ndarray | None = None

    @classmethod
    def from_config(cls, config: FeaturesConfig) -> Features:
        return cls(config.pooling, config.sif_a, config.nb_alpha, config.nb_floor, config.normalize)

    @property
    def dim(self) -> int:
        """Width of the feature rows ``transform`` returns."""
        self._check_fitted()
        return output_dim(self.pooling, self.vectors_.shape[1])

    def fit(
        self,
        bags: TokenBags,
        labels: np.ndarray,
        vectors: np.ndarray,
        counts: np.ndarray,
        *,
        ratios: bool = False,
        out: np.ndarray | None = None,
    ) -> Features:
        """Learn from the training texts; ``ratios``: also their signed NB ratios (``ratios_``); ``out``:
        where the rows go when the scaling needs them (``fit_transform``)."""
        self.fit_transform(bags, labels, vectors, counts, transform=False, ratios=ratios, out=out)
        return self

    def fit_transform(
        self,
        bags: TokenBags,
        labels: np.ndarray,
        vectors: np.ndarray,
        counts: np.ndarray,
        *,
        transform: bool = True,
        ratios: bool = False,
        out: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Learn token weights (and scaling) from the training texts; their features when ``transform``
        (into ``out`` when given, as ``transform``); ``ratios``: also their signed NB ratios (``ratios_``,
        computed once for the nb weights too)."""
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling '{self.pooling}' is not one of {', '.join(POOLINGS)}")
        vocab_size = len(vectors)
        self.vectors_, self.mean_, self.std_ = vectors, None, None
        self.ratios_ = nb_ratios(bags, labels, vocab_size, self.nb_alpha) if ratios else None
        self.weights_ = {
            "tfidf": lambda: idf_weights(bags, vocab_size),
            "sif": lambda: sif_weights(counts, self.sif_a),
            "nb": lambda: nb_weights(bags, labels, vocab_size, self.nb_alpha, self.nb_floor, self.ratios_),
        }.get(self.pooling, lambda: None)()
        if not (transform or self.normalize):
            return None
        x = pool(bags, vectors, self.pooling, self.weights_, out=out)
        if self.normalize:
            self.mean_, self.std_ = _column_stats(x)
            x = _standardise(x, self.mean_, self.std_)
        return x

    def transform(self, bags: TokenBags, out: np.ndarray | None = None) -> np.ndarray:
        """One float32 row per text: the (weighted) pooled vectors, standardised when fitted so. ``out``: a
        zero-filled array to fill instead of a new one (on disk, for data larger than memory)."""
        self._check_fitted()
        return self.scale(pool(bags, self.vectors_, self.pooling, self.weights_, out=out))

    def scale(self, x: np.ndarray) -> np.ndarray:
        """Pooled rows standardised when fitted so (``normalize``), else as they are."""
        if self.mean_ is not None and self.std_ is not None:
            x = _standardise(x, self.mean_, self.std_)
        return x

    def with_vectors(self, vectors: np.ndarray, **changes: Any) -> Features:
        """The same fitted features over other token vectors (the fine-tuned ones, after training)."""
        return replace(self, vectors_=vectors, **changes)

    def _check_fitted(self) -> None:
        if self.vectors_ is None:
            raise RuntimeError("Features is not fitted: call fit() first")

    # -- the model directory: settings in meta.json, arrays in model.safetensors --

    def to_dict(self) -> dict[str, Any]:
        return {
            "pooling": self.pooling,
            "sif_a": self.sif_a,
            "nb_alpha": self.nb_alpha,
            "nb_floor": self.nb_floor,
            "normalize": self.normalize,
        }

    def to_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        named = {EMBEDDINGS: self.vectors_, WORD_WEIGHTS: self.weights_, FEATURE_MEAN: self.mean_}
        named[FEATURE_STD] = self.std_
        return {name: array for name, array in named.items() if array is not None}

    @classmethod
    def from_saved(cls, raw: dict[str, Any], tensors: dict[str, np.ndarray]) -> Features:
        """``to_dict``'s settings (meta.json's ``features``) with ``to_tensors``' arrays, checked: a missing
        or unknown setting, a value of the wrong type or range, an array missing or left over for these
        settings (token weights for tfidf / sif / nb pooling, the scaling for ``normalize``), of the wrong
        shape or not floating point, or a standard deviation <= 0 is a ValueError that starts with the setting
        or tensor name (``pooling = 'evil': ...``)."""
        from reprlib import repr as short

        from sentiment.errors import check_record_keys
        from sentiment.pooling import WEIGHTED_POOLINGS

        keys = ("pooling", "sif_a", "nb_alpha", "nb_floor", "normalize")
        check_record_keys(raw, "feature settings", keys, keys)
        if raw["pooling"] not in POOLINGS:
            raise ValueError(f"pooling = {short(raw['pooling'])}: must be one of {', '.join(POOLINGS)}")
        for name in ("sif_a", "nb_alpha", "nb_floor"):
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ValueError(f"{name} = {short(value)}: must be a finite number > 0")
        if not isinstance(raw["normalize"], bool):
            raise ValueError(f"normalize = {short(raw['normalize'])}: must be true or false")
        features = cls(**raw)
        vectors = tensors.get(EMBEDDINGS)
        if vectors is None or vectors.ndim != 2 or vectors.shape[1] < 1 or vectors.dtype.kind != "f":
            raise ValueError(f"{EMBEDDINGS}: missing, or not a (vocabulary, vector size) matrix of floats")
        dim = output_dim(features.pooling, vectors.shape[1])
        settings = f"pooling = {features.pooling}, normalize = {str(features.normalize).lower()}"
        expected = {  # the shape of each optional array, or None where these settings have no use for it
            WORD_WEIGHTS: (len(vectors),) if features.pooling in WEIGHTED_POOLINGS else None,
            FEATURE_MEAN: (dim,) if features.normalize else None,
            FEATURE_STD: (dim,) if features.normalize else None,
        }
        for name, shape in expected.items():
            array = tensors.get(name)
            if shape is None and array is not None:
                raise ValueError(f"{name}: saved, but unused with {settings}")
            if shape is not None and array is None:
                raise ValueError(f"{name}: missing ({settings} needs it)")
            if shape is not None and (array.shape != shape or array.dtype.kind != "f"):
                raise ValueError(
                    f"{name}: {array.dtype} of shape {array.shape}, expected floats of shape {shape}"
                )
        if features.normalize and not (tensors[FEATURE_STD] > 0).all():
            raise ValueError(f"{FEATURE_STD}: zero or negative values (the features are divided by it)")
        features.vectors_, features.weights_ = vectors, tensors.get(WORD_WEIGHTS)
        features.mean_, features.std_ = tensors.get(FEATURE_MEAN), tensors.get(FEATURE_STD)
        return features
