"""Prediction from a saved model directory with NumPy alone.

Neither torch, gensim, scikit-learn nor pandas is imported here: a cold ``sentiment predict`` pays for NumPy
and safetensors only. Text -> ids, ids -> features and features -> probabilities are the very objects training
fitted (``TextEncoder``, ``Features``, ``MLPWeights``), loaded by ``sentiment.modeldir``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment import modeldir
from sentiment.parallel import PARALLEL_MIN_TEXTS, can_fork, cpu_count, fork_map, split_ranges
from sentiment.text import TokenBags

if TYPE_CHECKING:
    from sentiment.kernels import CompiledEncoder


@dataclass
class Prediction:
    text: str
    label: str
    probability: float  # binary: of the positive class; multiclass: of the predicted label
    known_words: int
    probabilities: dict[str, float]  # every label's
    labels: list[str] | None = None  # label sets: every label at or above its threshold

    @property
    def no_known_words(self) -> bool:
        return self.known_words == 0

    def top(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable labels with their probabilities, most probable first."""
        return sorted(self.probabilities.items(), key=lambda item: -item[1])[:k]

    def to_dict(self, top_k: int | None = None) -> dict[str, Any]:
        out = {
            "text": self.text,
            "label": self.label,
            "probability": round(self.probability, 6),
            "probabilities": {label: round(p, 6) for label, p in self.probabilities.items()},
            "known_words": self.known_words,
            "no_known_words": self.no_known_words,
        }
        if self.labels is not None:
            out["labels"] = self.labels
        if top_k:
            out["top"] = [{"label": label, "probability": round(p, 6)} for label, p in self.top(top_k)]
        return out


def rounded(values: np.ndarray, digits: int = 6) -> list[float]:
    """``[round(v, digits) for v in values]``, the same floats, at NumPy speed: Python's ``round`` of a float
    takes a decimal conversion each (about 0.9 us; a server's answer to 500 texts had 1,000 of them).

    ``rint(v * 10**digits) / 10**digits`` rounds the product, which is off from the exact one by at most
    half a unit in its last place; only where that product lies that close to a half does the rounding of
    the two differ, and those few values (and any that are not finite) go to ``round``. Dividing the
    integer by the exact power of ten gives the float nearest to the decimal, as ``round`` does."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 16:  # NumPy's calls cost more than they save
        return [round(v, digits) for v in values.tolist()]
    scale = 10.0**digits
    scaled = values * scale
    whole = np.rint(scaled)
    out = (whole / scale).tolist()
    # the product's error is at most 2**-53 * |scaled|: a margin of 1e-9 * |scaled| is ample, and sends huge
    # values (where every float is whole) to round too
    with np.errstate(invalid="ignore"):  # inf - inf: not finite, so doubtful
        doubtful = ~(np.abs(scaled - np.floor(scaled) - 0.5) > 1e-9 * np.maximum(np.abs(scaled), 1.0))
    for i in np.flatnonzero(doubtful):
        out[i] = round(float(values[i]), digits)
    return out


class Predictor:
    """A loaded model: ``Predictor.load(dir).predict(["great film"])``. Holds no state beyond the model."""

    def __init__(self, model: modeldir.SavedModel, model_dir: Path | None = None) -> None:
        self.model_dir = model_dir
        self.meta = model.meta
        self.encoder, self.features, self.mlp = model.encoder, model.features, model.mlp
        self.labels = list(model.meta.labels)
        self.threshold = float(model.meta.threshold)
        self.thresholds = model.meta.thresholds  # label sets: one per label, else None
        self.multilabel = model.meta.task == "multilabel"
        if self.multilabel and self.thresholds is None:
            self.thresholds = [self.threshold] * len(self.labels)
        self.text_column = model.meta.text_column
        self._kernels: CompiledEncoder | bool | None = False  # False: not built yet (``expect``)

    @classmethod
    def load(cls, model_dir: str | Path) -> Predictor:
        return cls(modeldir.load(model_dir), Path(model_dir))

    def encode(self, texts: Sequence[str]) -> TokenBags:
        return self.encoder.encode(texts)

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 512, workers: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """(probability of the positive class, number of known words) for each text; multiclass: a row of
        every label's probability per text.

        ``workers`` > 1 (0: every core) spreads a large input over forked processes: tokenising is pure
        Python and holds the GIL, so threads would not help.
        """
        workers = workers or cpu_count()
        self.expect(len(texts))  # built before forking: every worker shares the tables
        if workers > 1 and len(texts) >= PARALLEL_MIN_TEXTS and can_fork():
            ranges = split_ranges(len(texts), workers * 2)
            parts = fork_map(
                [functools.partial(self._predict, texts[a:b], batch_size) for a, b in ranges], workers
            )
            return np.concatenate([p for p, _ in parts]), np.concatenate([k for _, k in parts])
        return self._predict(texts, batch_size)

    def expect(self, n_texts: int) -> None:
        """Get ready to predict about ``n_texts`` texts, in one call or many (a server): past
        ``NGRAM_TABLES_MIN_TEXTS`` the encoder builds its vectorised look-ups, and where numba is installed
        the compiled kernels (``sentiment.kernels``) take over those texts, with the same results. Their
        import and first call (compiling, or loading the compiled code from numba's cache) are paid here."""
        self.encoder.expect(n_texts)
        if self.encoder.__dict__.get("_word_lookup") is None or self._kernels is not False:
            return
        from sentiment import kernels

        self._kernels = None
        if kernels.enabled():
            features, wide = self.features, self.mlp.wide
            compiled = kernels.CompiledEncoder.for_model(
                self.encoder, features.vectors_, features.weights_, features.pooling, wide
            )
            if compiled is not None:
                compiled.features(["Warm up: <b>compile</b>, or load the compiled code! Isn't it?"])
            self._kernels = compiled

    def _predict(self, texts: Sequence[str], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        probs, known = [], []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            if self._kernels:  # at any size: one review 264 us against 872 us, five words 119 against 385
                x, wide_logits, k = self._kernels.features(batch)
                z = self.mlp.logits_with(self.features.scale(x), wide_logits)
                probs.append(self.mlp.probabilities(z))
                known.append(k)
                continue
            bags = self.encode(batch)
            probs.append(self.mlp.forward(self.features.transform(bags), bags))
            known.append(self.encoder.known_words(bags))
        if not probs:
            shape = (0, self.mlp.outputs) if self.mlp.outputs > 1 else (0,)
            return np.zeros(shape), np.zeros(0, dtype=np.int64)
        return np.concatenate(probs), np.concatenate(known)

    def predict(self, texts: Sequence[str], workers: int = 1) -> list[Prediction]:
        probs, known = self.predict_proba(texts, workers=workers)
        return self.decide(texts, probs, known)

    def predict_dicts(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """``[p.to_dict() for p in predict(texts)]`` (what ``predict --json`` prints and the server answers),
        without making the ``Prediction`` objects for a binary model: a server answering 500 reviews spent a
        tenth of its time there, holding the GIL."""
        probs, known = self.predict_proba(texts)
        if probs.ndim == 2 or self.multilabel:
            return [p.to_dict() for p in self.decide(texts, probs, known)]
        (first, second), threshold = self.labels, self.threshold
        probs = np.asarray(probs, dtype=np.float64)
        rows = []
        for text, p, up, down, k in zip(
            texts, probs.tolist(), rounded(probs), rounded(1.0 - probs), known.tolist(), strict=True
        ):
            rows.append(
                {
                    "text": text,
                    "label": second if p >= threshold else first,
                    "probability": up,
                    "probabilities": {first: down, second: up},
                    "known_words": k,
                    "no_known_words": k == 0,
                }
            )
        return rows

    def decide(self, texts: Sequence[str], probs: np.ndarray, known: np.ndarray) -> list[Prediction]:
        """Predictions from ``predict_proba``'s output (or probabilities computed elsewhere, in the same
        layout): the label(s) each text gets."""
        labels = self.labels
        if self.multilabel:  # every label at or above its threshold
            cuts = np.asarray(self.thresholds)
            return [
                Prediction(
                    text,
                    ", ".join(name for name, on in zip(labels, row >= cuts, strict=True) if on),
                    float(row.max()),
                    int(k),
                    dict(zip(labels, row.tolist(), strict=True)),
                    [name for name, on in zip(labels, row >= cuts, strict=True) if on],
                )
                for text, row, k in zip(texts, probs, known, strict=True)
            ]
        if probs.ndim == 2:  # multiclass: the most probable label
            return [
                Prediction(
                    text,
                    labels[int(row.argmax())],
                    float(row.max()),
                    int(k),
                    dict(zip(labels, row.tolist(), strict=True)),
                )
                for text, row, k in zip(texts, probs, known, strict=True)
            ]
        return [
            Prediction(
                text, labels[int(p >= self.threshold)], float(p), int(k), {labels[0]: 1 - p, labels[1]: p}
            )
            for text, p, k in zip(texts, probs.tolist(), known, strict=True)
        ]
