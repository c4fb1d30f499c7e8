"""What a training run leaves beside its model: metrics.json, history.csv, the test rows, the plots and
report.html.

``train`` hands ``write`` to ``modeldir.save``, which calls it on the directory while it is still being
written, so the model and its report appear together. ``modeldir`` itself only knows the model's files:
the report needs the predictor and the plots, which sit above it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentiment import html_report
from sentiment.modeldir import TEST_ROWS, SavedModel, json_text
from sentiment.plots import write_plots
from sentiment.predictor import Predictor


@dataclass
class RunReport:
    """What a training run leaves beside the model: metrics, history, test rows and plots."""

    metrics: dict[str, Any]  # {"test": ..., "validation": ..., "threshold": ...}
    history: list[dict[str, Any]]
    test_labels: np.ndarray  # class index of each test row
    test_probs: np.ndarray
    write_test_rows: Any  # callable(path): writes TEST_ROWS (from the data or the prepared-data cache)


def write(staging: Path, *, model: SavedModel, report: RunReport, shown_as: Path) -> None:
    """Write the run's files into the model directory ``staging`` (to be renamed ``shown_as``), after the
    model's own files: report.html comes last, as it reads the others back (as ``sentiment report`` does)."""
    (staging / "metrics.json").write_text(json_text(report.metrics), encoding="utf-8")
    (staging / "history.csv").write_text(_history_csv(report.history), encoding="utf-8")
    report.write_test_rows(staging / TEST_ROWS)
    write_plots(
        staging,
        report.history,
        report.test_labels,
        report.test_probs,
        report.metrics["test"],
        best_epoch=model.meta.best_epoch,
        labels=tuple(model.meta.labels),
    )
    html_report.write(staging, Predictor(model, staging), shown_as=shown_as, test_probs=report.test_probs)


def _history_csv(history: list[dict[str, Any]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(history[0]) if history else ["epoch"])
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()
