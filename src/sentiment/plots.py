"""PNG plots of a run (matplotlib, no display needed): learning curves, confusion matrix, precision-recall."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PLOT_FILES = ("loss.png", "accuracy.png", "confusion_matrix.png", "precision_recall.png")
# Markers help read a short run; on a long one they merge into a thick line.
_MARKER_LIMIT = 25


def _series(history: list[dict[str, Any]], key: str) -> list[float] | None:
    """A history column, or None when the run did not record it (no validation split, an older model)."""
    values = [h.get(key) for h in history]
    if not values or any(v is None or v == "" for v in values):
        return None
    return [float(v) for v in values]


def write_plots(
    directory: Path,
    history: list[dict[str, Any]],
    y_true: np.ndarray,
    probs: np.ndarray,
    metrics: dict[str, Any],
    *,
    best_epoch: int | None = None,
    labels: Sequence[str] = ("negative", "positive"),
) -> list[Path]:
    """Write the four PNGs of ``PLOT_FILES`` into ``directory``; returns their paths.

    ``history`` rows with ``phase`` "refit" (a fresh model on training + validation, the one kept) are drawn
    as their own training-loss curve beside the first fit's curves.
    """
    # The object-oriented API without pyplot: no global figure registry, no GUI backend, a faster import.
    from matplotlib.figure import Figure

    first = [h for h in history if h.get("phase", "fit") != "refit"]
    refit = [h for h in history if h.get("phase") == "refit"]
    epochs = [int(h["epoch"]) for h in first]
    has_val = _series(first, "val_loss") is not None
    if not has_val:
        best_epoch = None  # without validation the "best" epoch is just the last one: nothing to mark
    marker = {"marker": "o", "markersize": 4} if len(epochs) <= _MARKER_LIMIT else {}
    kept = " (the kept model: the refit)" if refit else ""

    def learning_curve(
        title: str, ylabel: str, curves: list[tuple[str, list[int], list[float] | None]]
    ) -> Any:
        # constrained layout with the legend outside the axes: it never hides a curve
        fig = Figure(figsize=(6.4, 4.6), layout="constrained")
        ax = fig.subplots()
        for label, xs, values in curves:
            if values is not None and xs:
                ax.plot(xs, values, label=label, **marker)
        if best_epoch and len(epochs) > 1:
            ax.axvline(
                best_epoch, color="grey", linestyle=":", linewidth=1, label=f"best epoch ({best_epoch})"
            )
        ax.set(xlabel="epoch", ylabel=ylabel, title=title)
        shown = epochs + [int(h["epoch"]) for h in refit]
        if shown:
            ax.set_xlim(min(shown) - 0.5, max(shown) + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        return fig, ax

    refit_epochs = [int(h["epoch"]) for h in refit]
    fig, ax = learning_curve(
        "Loss per epoch",
        "cross-entropy",
        [
            ("training", epochs, _series(first, "train_loss")),
            ("validation", epochs, _series(first, "val_loss")),
            ("refit: training + validation rows", refit_epochs, _series(refit, "train_loss")),
        ],
    )
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    written = [_save(fig, directory / "loss.png")]

    fig, ax = learning_curve(
        "Accuracy per epoch" + ("" if has_val else " (no validation split)"),
        "accuracy / F1" if has_val else "accuracy",
        [
            ("training", epochs, _series(first, "train_accuracy")),
            ("validation", epochs, _series(first, "val_accuracy")),
            ("validation F1", epochs, _series(first, "val_f1")),
        ],
    )
    ax.axhline(
        metrics["accuracy"],
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"test accuracy ({metrics['accuracy']:.3f}){kept}",
    )
    fig.legend(loc="outside lower center", ncols=3, fontsize="small")
    written.append(_save(fig, directory / "accuracy.png"))

    written.append(_confusion_matrix(Figure, directory / "confusion_matrix.png", metrics, labels))
    written.append(
        _precision_recall(Figure, directory / "precision_recall.png", y_true, probs, metrics, labels)
    )
    return written


def _confusion_matrix(figure: Any, path: Path, metrics: dict[str, Any], labels: Sequence[str]) -> Path:
    if "hamming_loss" in metrics:
        return _label_counts(figure, path, metrics)
    cm = metrics["confusion_matrix"]
    grid = np.array(cm) if isinstance(cm, list) else np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    n = len(grid)
    row_share = grid / np.maximum(grid.sum(axis=1, keepdims=True), 1)
    side = min(4.2 + 0.45 * max(n - 2, 0), 14)  # readable up to 30 labels: the figure grows, the text shrinks
    fig = figure(figsize=(side + 0.6, side), layout="constrained")
    ax = fig.subplots()
    ax.imshow(row_share, cmap="Blues", vmin=0, vmax=1)
    size = 10 if n <= 4 else 8 if n <= 10 else 6
    for (i, j), value in np.ndenumerate(grid):
        colour = "white" if row_share[i, j] > 0.5 else "black"
        text = f"{value}\n({row_share[i, j]:.0%} of row)" if n <= 6 else f"{value}"
        ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=size)
    ax.set(
        xticks=range(n),
        yticks=range(n),
        xticklabels=list(labels),
        yticklabels=list(labels),
        xlabel="predicted",
        ylabel="true",
        title=f"Confusion matrix (test, n = {int(grid.sum())})" + ("; colour: share of row" if n > 6 else ""),
    )
    ax.tick_params(axis="x", labelrotation=45 if n > 4 else 0)
    return _save(fig, path)


def _precision_recall(
    figure: Any,
    path: Path,
    y_true: np.ndarray,
    probs: np.ndarray,
    metrics: dict[str, Any],
    labels: Sequence[str] = ("negative", "positive"),
) -> Path:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y_true = np.asarray(y_true).astype(np.int64)
    probs = np.asarray(probs)
    if probs.ndim == 2:
        return _precision_recall_per_class(figure, path, y_true, probs, labels)
    fig = figure(figsize=(5.2, 4.2))
    ax = fig.subplots()
    if len(np.unique(y_true)) == 2:
        precision, recall, _ = precision_recall_curve(y_true, probs)
        ap = average_precision_score(y_true, probs)
        ax.plot(recall, precision, label=f"model (average precision {ap:.3f})")
        ax.axhline(
            y_true.mean(),
            color="grey",
            linestyle="--",
            linewidth=1,
            label=f"chance (positive rate {y_true.mean():.2f})",
        )
        ax.plot(
            metrics["recall"],
            metrics["precision"],
            "o",
            color="black",
            label=f"threshold {metrics['threshold']:.2f}",
        )
        ax.legend(loc="lower left")
    else:
        ax.text(0.5, 0.5, "needs both classes in the test split", ha="center", va="center", color="grey")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)", xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _label_counts(figure: Any, path: Path, metrics: dict[str, Any]) -> Path:
    """Label sets: per label (rows), its true negatives, false positives, false negatives, true positives."""
    names = list(metrics["per_class"])
    columns = ("tn", "fp", "fn", "tp")
    grid = np.array([[metrics["per_class"][name][c] for c in columns] for name in names])
    share = grid / np.maximum(grid.sum(axis=1, keepdims=True), 1)
    fig = figure(figsize=(5.6, min(2.0 + 0.35 * len(names), 14)), layout="constrained")
    ax = fig.subplots()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
    ax.set(
        xticks=range(4),
        yticks=range(len(names)),
        xticklabels=["true neg", "false pos", "false neg", "true pos"],
        yticklabels=names,
        title=f"Per-label counts (test, n = {metrics['n']})",
    )
    return _save(fig, path)


def _precision_recall_per_class(
    figure: Any, path: Path, y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str]
) -> Path:
    """One-vs-rest precision-recall curve of every class, its average precision in the legend."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    width = 6.4
    fig = figure(figsize=(width, 4.8 + 0.12 * len(labels)), layout="constrained")
    ax = fig.subplots()
    for c, name in enumerate(labels):
        truth = y_true[:, c] if y_true.ndim == 2 else (y_true == c).astype(np.int64)
        if 0 < truth.sum() < len(truth):
            precision, recall, _ = precision_recall_curve(truth, probs[:, c])
            ap = average_precision_score(truth, probs[:, c])
            ax.plot(recall, precision, linewidth=1, label=f"{name} (AP {ap:.3f})")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        title="Precision-recall per class (test)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.grid(alpha=0.3)
    entries = [line.get_label() for line in ax.get_lines()]
    # As many columns as the longest entry leaves room for: x-small text takes about 0.055 in a character,
    # the line sample and padding about 0.6 in (4 columns of 30-character names were cut off at both sides)
    longest = max(map(len, entries), default=0)
    columns = max(1, min(4, len(entries), int(width // (0.055 * longest + 0.6))))
    fig.legend(loc="outside lower center", ncols=columns, fontsize="x-small")
    return _save(fig, path, whole=True)


def _save(fig: Any, path: Path, whole: bool = False) -> Path:
    """Save at 110 dpi; ``whole``: grow the image to whatever sticks out (a legend of very long names)."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight" if whole else None)
    return path
