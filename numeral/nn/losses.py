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

from typing import Any

import numpy as np


class LossBuffers:
    """Scratch for one batch shape, so the loss allocates nothing per batch."""

    def __init__(self, n: int, k: int, dtype: np.dtype[Any] | type) -> None:
        self.row = np.empty((n, 1), dtype)  # max_k z, then sum_k exp(z), then its log
        self.target = np.empty(n, dtype)  # q . z per row, then p_y per row
        self.first = np.arange(n, dtype=np.int64) * k  # flat index of each row's logit 0
        self.index = np.empty(n, np.int64)  # flat index of each row's labelled logit


def softmax_cross_entropy_(
    logits: np.ndarray,
    y: np.ndarray,
    *,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    buffers: LossBuffers | None = None,
) -> float:
    """Return the cross-entropy loss and overwrite ``logits`` (C-contiguous) with dL/dz.

    ``reduction`` is ``"mean"`` (loss and gradient divided by n) or ``"sum"``. ``buffers``
    (for this batch shape) make the call allocate nothing; without them it makes its own.
    """
    n, k = logits.shape
    b = buffers if buffers is not None else LossBuffers(n, k, logits.dtype)
    flat = logits.reshape(-1)  # a view: logits[i, y_i] is flat[i k + y_i]
    np.add(b.first, y, out=b.index)
    np.max(logits, axis=1, keepdims=True, out=b.row)
    logits -= b.row  # z - max z <= 0: exp cannot overflow
    np.take(flat, b.index, out=b.target, mode="clip")  # z_y (labels were checked)
    e = label_smoothing
    if e:  # q . z = (1 - e) z_y + (e / k) sum_k z_k
        b.target *= 1.0 - e
        np.sum(logits, axis=1, keepdims=True, out=b.row)
        b.row *= e / k
        b.target += b.row[:, 0]
    np.exp(logits, out=logits)
    np.sum(logits, axis=1, keepdims=True, out=b.row)  # >= 1: the max term is exp(0)
    logits /= b.row  # now p = softmax(z)
    np.log(b.row, out=b.row)
    loss = float(b.row.sum()) - float(b.target.sum())  # sum_i logsumexp(z_i) - q_i . z_i
    if e:
        logits -= e / k
    np.take(flat, b.index, out=b.target, mode="clip")
    b.target -= 1.0 - e
    np.put(flat, b.index, b.target, mode="clip")  # p - q
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
