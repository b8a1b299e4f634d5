"""Penalty terms on the weight matrices (never the biases).

    R(W)     = l1 * sum |W|  +  (l2 / 2) * sum W^2
    dR/dW    = l1 * sign(W)  +  l2 * W

L1 pushes small weights to exactly zero (a sparse network); L2 shrinks every
weight in proportion to its size ("weight decay").
"""

from __future__ import annotations

import numpy as np


def penalty(weights: list[np.ndarray], l1: float, l2: float) -> float:
    """R = l1 * sum|W| + (l2/2) * sum W^2 over all weight matrices."""
    total = 0.0
    for W in weights:
        if l1:
            total += l1 * float(np.abs(W).sum())
        if l2:
            total += 0.5 * l2 * float(np.vdot(W, W))
    return total


def add_penalty_grad_(
    weights: list[np.ndarray], grads: list[np.ndarray], l1: float, l2: float
) -> None:
    """grad_W += l1 * sign(W) + l2 * W, in place, for each weight matrix."""
    for W, G in zip(weights, grads, strict=True):
        if l1:
            G += l1 * np.sign(W)
        if l2:
            G += l2 * W
