"""Classification metrics from labels and predictions (NumPy)."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """C[i, j] = number of samples of class i predicted as class j."""
    c = np.zeros((k, k), np.int64)
    np.add.at(c, (y_true, y_pred), 1)
    return c


def per_class(c: np.ndarray) -> dict[str, np.ndarray]:
    """precision_j = C_jj / sum_i C_ij, recall_i = C_ii / sum_j C_ij, F1 = 2PR / (P + R)."""
    tp = np.diag(c).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / c.sum(axis=0))
        recall = np.nan_to_num(tp / c.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return {"precision": precision, "recall": recall, "f1": f1, "support": c.sum(axis=1)}


def cross_entropy(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean of -log p_y (probabilities clipped away from 0)."""
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0))))


def evaluation(
    proba: np.ndarray, y: np.ndarray, class_names: list[str], names: np.ndarray | None = None
) -> dict[str, Any]:
    """Accuracy, loss, per-class precision/recall/F1, the confusion matrix, the misclassified."""
    k = proba.shape[1]
    pred = np.argmax(proba, axis=1)
    c = confusion_matrix(y, pred, k)
    pc = per_class(c)
    wrong = np.flatnonzero(pred != y)
    return {
        "n": len(y),
        "accuracy": float(np.mean(pred == y)) if len(y) else 0.0,
        "loss": cross_entropy(proba, y) if len(y) else 0.0,
        "per_class": [
            {
                "class": class_names[i] if i < len(class_names) else str(i),
                "precision": round(float(pc["precision"][i]), 4),
                "recall": round(float(pc["recall"][i]), 4),
                "f1": round(float(pc["f1"][i]), 4),
                "support": int(pc["support"][i]),
            }
            for i in range(k)
        ],
        "confusion_matrix": c.tolist(),
        "misclassified": [
            {
                "index": int(i),
                "name": str(names[i]) if names is not None else str(i),
                "true": int(y[i]),
                "predicted": int(pred[i]),
                "confidence": round(float(proba[i, pred[i]]), 4),
            }
            for i in wrong
        ],
    }
