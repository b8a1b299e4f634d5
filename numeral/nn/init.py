"""Weight initialisers. Each fills W (fan_in, fan_out); biases start at zero.

===========  ===========================================================
``zeros``    W = 0. Every hidden unit of a layer computes the same thing
             and receives the same gradient, forever: the symmetry problem.
             Kept on purpose because the original study used it.
``uniform``  W ~ U(-a, a), a = 1 / sqrt(fan_in)            (LeCun)
``xavier``   W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)
``he``       W ~ N(0, 2 / fan_in)                           (He et al. 2015)
===========  ===========================================================
"""

from __future__ import annotations

import numpy as np

from numeral.nn.errors import InputError

INITIALISERS = ("zeros", "uniform", "xavier", "he")


def init_weights(name: str, W: np.ndarray, rng: np.random.Generator) -> None:
    """Fill the weight matrix W (fan_in, fan_out) in place by the rule called ``name``."""
    fan_in, fan_out = W.shape
    if name == "zeros":
        W[...] = 0.0
    elif name == "uniform":
        a = 1.0 / np.sqrt(fan_in)
        W[...] = rng.uniform(-a, a, size=W.shape)
    elif name == "xavier":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        W[...] = rng.uniform(-a, a, size=W.shape)
    elif name == "he":
        W[...] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=W.shape)
    else:
        raise InputError(f"unknown init {name!r}; choose one of: {', '.join(INITIALISERS)}")
