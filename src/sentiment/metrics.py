"""The evaluator: accuracy, precision, recall, F1 and the confusion matrix (scikit-learn) at a threshold."""

from __future__ import annotations

from typing import Any

import numpy as np

# metrics.json's headline figures, in the order tables show them (absent ones are skipped)
METRIC_KEYS = ("accuracy", "precision", "recall", "f1", "f1_micro", "f1_weighted", "hamming_loss", "roc_auc")


def compute_metrics(
    y_true: np.ndarray, probs: np.ndarray, threshold: Any = 0.5, labels: list[str] | None = None
) -> dict[str, Any]:
    """Metrics of positive-class probabilities against 0/1 labels; positive when ``prob >= threshold``.
    With one probability per class (rows of ``probs``): multiclass metrics (``multiclass_metrics``)."""
    if np.asarray(y_true).ndim == 2:
        return multilabel_metrics(y_true, probs, threshold, labels)
    if np.asarray(probs).ndim == 2:
        return multiclass_metrics(y_true, probs, labels)
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


def multiclass_metrics(
    y_true: np.ndarray, probs: np.ndarray, labels: list[str] | None = None
) -> dict[str, Any]:
    """The predicted class is the most probable one. ``precision``, ``recall`` and ``f1`` are macro averages
    (every class counts alike), beside micro and weighted F1, per-class figures and the N x N confusion matrix
    (rows: true class, columns: predicted, in class order)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    probs = np.asarray(probs)
    n_classes = probs.shape[1]
    names = labels or [str(i) for i in range(n_classes)]
    y_true = np.asarray(y_true).astype(np.int64)
    y_pred = probs.argmax(axis=1)
    classes = list(range(n_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=0
    )
    macro = {
        key: float(np.mean(values))
        for key, values in (("precision", precision), ("recall", recall), ("f1", f1))
    }
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        **macro,
        "f1_micro": float(f1_score(y_true, y_pred, labels=classes, average="micro", zero_division=0)),
        "f1_weighted": float(f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0)),
        "roc_auc": None,
        "n": len(y_true),
        "threshold": None,
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for name, p, r, f, n in zip(names, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
    }


def multilabel_metrics(
    y_true: np.ndarray, probs: np.ndarray, thresholds: Any = 0.5, labels: list[str] | None = None
) -> dict[str, Any]:
    """Label sets: each label is predicted at or above its own threshold. ``accuracy`` is subset accuracy
    (every label of the text right), ``precision``, ``recall`` and ``f1`` macro averages over the labels,
    beside micro F1, the Hamming loss and per-label figures with their {tn, fp, fn, tp} counts."""
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

    y_true, probs = np.asarray(y_true).astype(np.int64), np.asarray(probs)
    n_labels = y_true.shape[1]
    names = labels or [str(i) for i in range(n_labels)]
    cut = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (n_labels,))
    y_pred = (probs >= cut[None, :]).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, average=None, zero_division=0
    )
    per_label = {}
    for c, name in enumerate(names):
        t, p = y_true[:, c], y_pred[:, c]
        counts = {"tn": int(((t == 0) & (p == 0)).sum()), "fp": int(((t == 0) & (p == 1)).sum())}
        counts |= {"fn": int(((t == 1) & (p == 0)).sum()), "tp": int(((t == 1) & (p == 1)).sum())}
        per_label[name] = {
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "support": int(support[c]),
            "threshold": float(cut[c]),
            **counts,
        }
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(np.mean(precision)),
        "recall": float(np.mean(recall)),
        "f1": float(np.mean(f1)),
        "f1_micro": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
        "roc_auc": None,
        "n": len(y_true),
        "threshold": None,
        "per_class": per_label,
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
