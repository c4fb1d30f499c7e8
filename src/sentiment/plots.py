"""PNG plots of a run (matplotlib, no display needed): learning curves, confusion matrix, precision-recall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

PLOT_FILES = ("loss.png", "accuracy.png", "confusion_matrix.png", "precision_recall.png")


def write_plots(
    directory: Path,
    history: list[dict[str, Any]],
    y_true: np.ndarray,
    probs: np.ndarray,
    metrics: dict[str, Any],
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve

    written = []
    epochs = [h["epoch"] for h in history]

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="training")
    if any(h["val_loss"] is not None for h in history):
        ax.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation")
    ax.set(xlabel="epoch", ylabel="BCE loss", title="Loss per epoch")
    ax.legend()
    ax.grid(alpha=0.3)
    written.append(_save(fig, directory / "loss.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    if any(h["val_accuracy"] is not None for h in history):
        ax.plot(epochs, [h["val_accuracy"] for h in history], marker="o", label="validation accuracy")
        ax.plot(epochs, [h["val_f1"] for h in history], marker="s", label="validation F1")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no validation split (data.val_size = 0)", ha="center", va="center")
    ax.axhline(metrics["accuracy"], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="epoch", ylabel="score", title=f"Validation per epoch (test accuracy {metrics['accuracy']:.3f})")
    ax.grid(alpha=0.3)
    written.append(_save(fig, directory / "accuracy.png"))

    cm = metrics["confusion_matrix"]
    grid = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(grid, cmap="Blues")
    for (i, j), value in np.ndenumerate(grid):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > grid.max() / 2 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["negative", "positive"], yticklabels=["negative", "positive"],
           xlabel="predicted", ylabel="true", title="Confusion matrix (test)")
    written.append(_save(fig, directory / "confusion_matrix.png"))

    fig, ax = plt.subplots(figsize=(5, 4))
    if len(np.unique(y_true)) == 2:
        precision, recall, _ = precision_recall_curve(y_true, probs)
        ap = average_precision_score(y_true, probs)
        ax.plot(recall, precision, label=f"AP = {ap:.3f}")
        ax.legend()
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)", xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    written.append(_save(fig, directory / "precision_recall.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
