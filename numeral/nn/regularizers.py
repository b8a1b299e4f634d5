"""Penalty terms on the weights (never the biases).

    R(W)     = l1 * sum |W|  +  (l2 / 2) * sum W^2
    dR/dW    = l1 * sign(W)  +  l2 * W

L1 pushes small weights to exactly zero (a sparse network); L2 shrinks every
weight in proportion to its size ("weight decay"). Both work on the network's one
flat parameter vector p with its ``mask`` (1 on weights, 0 on biases), in a
preallocated ``scratch`` of p's size, so a training step allocates nothing.
"""

from __future__ import annotations

import numpy as np


def penalty(p: np.ndarray, mask: np.ndarray, l1: float, l2: float, scratch: np.ndarray) -> float:
    """R = l1 * sum|W| + (l2/2) * sum W^2 over the weights (where mask is 1)."""
    total = 0.0
    if l1:
        np.abs(p, out=scratch)
        total += l1 * float(np.dot(scratch, mask))
    if l2:
        np.multiply(p, mask, out=scratch)
        total += 0.5 * l2 * float(np.dot(scratch, scratch))
    return total


def add_penalty_grad_(
    p: np.ndarray, grad: np.ndarray, mask: np.ndarray, l1: float, l2: float, scratch: np.ndarray
) -> None:
    """grad += (l1 * sign(W) + l2 * W) on the weights, in place."""
    if l1:
        np.sign(p, out=scratch)
        scratch *= mask
        scratch *= l1
        grad += scratch
    if l2:
        np.multiply(p, mask, out=scratch)
        scratch *= l2
        grad += scratch
