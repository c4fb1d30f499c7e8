"""Re-evaluation of a saved model: on the test rows it recorded, or on another labelled file."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment import modeldir
from sentiment.errors import ModelDirError

if TYPE_CHECKING:
    from sentiment.predictor import Predictor

log = logging.getLogger(__name__)


def evaluate_model(
    model_dir: str | Path, data: str | Path | None = None, threshold: float | None = None
) -> dict[str, Any]:
    """Metrics of a saved model on its recorded test split, or on ``data`` (same column settings)."""
    from sentiment.data import labelled_from_frame, read_table
    from sentiment.metrics import compute_metrics
    from sentiment.predictor import Predictor

    model_dir = Path(model_dir)
    start = time.perf_counter()
    if data is None:
        predictor, (texts, labelled) = _model_and_test_rows(model_dir)
    else:
        predictor = Predictor.load(model_dir)
    names = predictor.labels
    if data is None:
        sets = [row if isinstance(row, list) else [row] for row in labelled]
        unknown = sorted({name for row in sets for name in row} - set(names))
        if unknown:
            raise ModelDirError(f"{model_dir}/{modeldir.TEST_ROWS}: unknown labels {unknown[:5]}")
        index = {name: i for i, name in enumerate(names)}
        if predictor.multilabel:  # label sets: a rows x labels matrix
            labels = np.zeros((len(sets), len(names)), dtype=np.int64)
            for row, names_of_row in enumerate(sets):
                labels[row, [index[n] for n in names_of_row]] = 1
        else:
            labels = np.array([index[row[0]] for row in sets], dtype=np.int64)
        source = f"{model_dir}/{modeldir.TEST_ROWS}"
    else:
        config = modeldir.load_config(model_dir)
        frame = read_table(data, [config.data.text_column, config.data.label_column])
        rows, _ = labelled_from_frame(frame, config.data, str(data), label_names=names)
        for message in rows.warnings:
            log.warning("%s", message)
        texts, labels, source = rows.texts, rows.labels, str(data)
    probs, known = predictor.predict_proba(texts, workers=0)
    cut = predictor.thresholds or predictor.threshold
    metrics = compute_metrics(labels, probs, cut if threshold is None else threshold, names)
    metrics["no_known_words"] = int((known == 0).sum())
    metrics["source"] = source
    metrics["model"] = str(model_dir)
    metrics["labels"] = {"negative": names[0], "positive": names[1]} if probs.ndim == 1 else names
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    return metrics


def _model_and_test_rows(model_dir: Path) -> tuple[Predictor, tuple[list[str], list[Any]]]:
    """The model and its recorded test rows, both of one training run: a ``train`` that swaps a new model
    into ``model_dir`` between the two reads (the directory is then another one) makes us read both again,
    where the old model would be scored on the new model's test rows."""
    from sentiment.predictor import Predictor

    for _ in range(5):
        before = _identity(model_dir)
        predictor = Predictor.load(model_dir)
        rows = modeldir.read_test_rows(model_dir)
        if _identity(model_dir) == before:
            break
    return predictor, rows


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
