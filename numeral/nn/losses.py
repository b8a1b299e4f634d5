"""Softmax output fused with cross-entropy, numerically stable.

For logits z (n, K) and labels y, with optional label smoothing e and
target distribution q = (1 - e) onehot(y) + e / K:

    p   = softmax(z)           = exp(z - max z) / sum exp(z - max z)
    L_i = -sum_k q_k log p_k   = logsumexp(z_i) - sum_k q_k z_ik
    dL_i/dz_i = p_i - q_i

Subtracting max z before exp means no overflow for logits of any size, and
log p is never computed as log(0).
"""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy_(
    logits: np.ndarray,
    y: np.ndarray,
    *,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> float:
    """Return the cross-entropy loss and overwrite ``logits`` with dL/dz.

    ``reduction`` is ``"mean"`` (loss and gradient divided by n) or ``"sum"``.
    """
    n, k = logits.shape
    rows = np.arange(n)
    logits -= logits.max(axis=1, keepdims=True)  # z - max z <= 0: exp cannot overflow
    if label_smoothing:
        target_dot_z = (1.0 - label_smoothing) * logits[rows, y] + (
            label_smoothing / k
        ) * logits.sum(axis=1)
    else:
        target_dot_z = logits[rows, y].copy()
    np.exp(logits, out=logits)
    total = logits.sum(axis=1, keepdims=True)  # >= 1: the max term is exp(0)
    loss = float(np.sum(np.log(total[:, 0]) - target_dot_z))
    logits /= total  # now p = softmax(z)
    if label_smoothing:
        logits -= label_smoothing / k
        logits[rows, y] -= 1.0 - label_smoothing
    else:
        logits[rows, y] -= 1.0  # p - onehot(y)
    if reduction == "mean":
        logits *= 1.0 / n
        loss /= n
    return loss


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax p_k = exp(z_k - max z) / sum_j exp(z_j - max z), as a new array."""
    p = logits - logits.max(axis=1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p
