"""How far apart two machines' probabilities may be: a tolerance measured, not guessed.

A model's probabilities computed on another machine (a fixture, a number stored in a model file)
or by another implementation (onnxruntime, numeral.js) differ from this machine's by rounding:
another CPU's BLAS kernel sums in another order and rounds each product and sum its own way. How
much that moves the output depends on the dtype and on the computation (its depth, its input
transforms, how flat its softmax is), so the tolerance is measured on the model and images at
hand, on the machine running the test:

- the rows permuted, and the batch split into chunks of 5 (another blocking of the products);
- every parameter multiplied by 1 + r·eps, r drawn from {-1, 0, 1} (one rounding of every weight,
  the size of the rounding another summation order makes), three draws;

the largest change of any probability is the spread, and the tolerance is SAFETY times it (at
least SAFETY units of the dtype's eps). Measured on the six fixture models of numeral 0.1, saved
on an Intel machine and loaded on an AMD EPYC (Zen 4): the two machines differ by 0.9-2.2 times
this machine's spread, so SAFETY = 6 leaves room for kernels that round worse, while one output
parameter moved by 1e-4 still changes the float32 models' probabilities by 2 to 20 times the
tolerance (tested in tests/test_compat.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAFETY = 6.0
DRAWS = 3


def rounding_spread(model: Any, X: np.ndarray, seed: int = 0) -> float:
    """The largest change of ``model.predict_proba(X)`` under reordering and one-ulp rounding."""
    base = model.predict_proba(X)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    permuted = np.empty_like(base)
    permuted[order] = model.predict_proba(X[order])
    chunked = np.concatenate([model.predict_proba(X[i : i + 5]) for i in range(0, len(X), 5)])
    spread = max(float(np.abs(permuted - base).max()), float(np.abs(chunked - base).max()))
    nets = getattr(model, "members", [model])
    saved = [net.flat.copy() for net in nets]
    try:
        for _ in range(DRAWS):
            for net, flat in zip(nets, saved, strict=True):
                ulps = np.finfo(flat.dtype).eps * rng.integers(-1, 2, flat.shape)
                net.flat[...] = flat * (1 + ulps).astype(flat.dtype)
            spread = max(spread, float(np.abs(model.predict_proba(X) - base).max()))
    finally:
        for net, flat in zip(nets, saved, strict=True):
            net.flat[...] = flat
    return spread


def tolerance(model: Any, X: np.ndarray) -> float:
    """SAFETY times the rounding spread, and at least SAFETY units of the output dtype's eps."""
    eps = float(np.finfo(model.predict_proba(X[:1]).dtype).eps)
    return SAFETY * max(rounding_spread(model, X), eps)


def near_ties(proba: np.ndarray, atol: float) -> int:
    """How many rows' top two probabilities are within 2·atol: the predictions that rounding
    of that size could flip between two machines."""
    top2 = np.sort(proba, axis=1)[:, -2:]
    return int(np.sum(top2[:, 1] - top2[:, 0] <= 2 * atol))
