"""The evaluator: accuracy, precision, recall, F1 and the confusion matrix (scikit-learn) at a threshold."""

from __future__ import annotations

from typing import Any

import numpy as np


def compute_metrics(y_true: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Metrics of positive-class probabilities against 0/1 labels; positive when ``prob >= threshold``."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y_true = np.asarray(y_true).astype(np.int64)
    y_pred = (np.asarray(probs) >= threshold).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="binary", pos_label=1, zero_division=0
    )
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    both = len(np.unique(y_true)) == 2
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": float(roc_auc_score(y_true, probs)) if both else None,
        "n": len(y_true),
        "threshold": float(threshold),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def best_threshold(y_true: np.ndarray, probs: np.ndarray, metric: str = "accuracy") -> float:
    """The threshold maximising ``metric`` (accuracy or f1) on (validation) data; midway between neighbouring
    scores."""
    order = np.argsort(probs)
    p, y = np.asarray(probs)[order], np.asarray(y_true)[order]
    # Threshold just above the first k rows (k = 0..n): those are negative, the rest positive.
    neg_cum = np.concatenate([[0], np.cumsum(1 - y)])  # true negatives of each cut
    pos_cum = np.concatenate([[0], np.cumsum(y)])  # false negatives
    tp, fp = y.sum() - pos_cum, (len(y) - y.sum()) - neg_cum
    if metric == "accuracy":
        score = tp + neg_cum
    elif metric == "f1":
        score = np.divide(
            2 * tp, 2 * tp + fp + pos_cum, out=np.zeros(len(tp)), where=(2 * tp + fp + pos_cum) > 0
        )
    else:
        raise ValueError(f"unknown threshold metric '{metric}'")
    best = int(np.argmax(score))
    if best == 0:
        return float(min(max(p[0] / 2, 1e-6), 1 - 1e-6))
    upper = p[best] if best < len(p) else 1.0
    return float(min(max((p[best - 1] + upper) / 2, 1e-6), 1 - 1e-6))
