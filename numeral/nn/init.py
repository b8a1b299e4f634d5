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


def init_weights(name: str, W: np.ndarray, rng: np.random.Generator,
                 fans: tuple[int, int] | None = None) -> None:
    """Fill the weights W in place by the rule called ``name``. ``fans`` = (fan_in, fan_out),
    the inputs and outputs each weight connects (default W's shape, for a (fan_in, fan_out)
    matrix; a convolution's are in_channels x kernel area and out_channels x kernel area)."""
    fan_in, fan_out = fans if fans is not None else W.shape
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


# Units whose weights differ by less than this many rounding units (of the dtype) of the
# weights' size count as identical: matrix-product kernels sum a product's columns in an
# order that depends on the CPU, so identical units end up a few rounding units apart
# (about 1e-6 of the weights in float32 on the seed study), while any real asymmetry,
# even a random initialisation's smallest, is many orders of magnitude larger.
SYMMETRY_ROUNDING_UNITS = 1e3


def unit_spread(W: np.ndarray) -> float:
    """How far the units (columns) of W (fan_in, fan_out) are from identical, relative to the
    weights' size: max over inputs of (largest - smallest weight from that input) / max |W|.
    0 for identical units (and for W = 0)."""
    scale = float(np.abs(W).max()) if W.size else 0.0
    if scale == 0.0 or W.shape[1] < 2:
        return 0.0
    return float(np.ptp(W, axis=1).max()) / scale


def identical_units(W: np.ndarray) -> bool:
    """Whether every unit of W has the same incoming weights, up to rounding
    (:data:`SYMMETRY_ROUNDING_UNITS` rounding units of W's dtype, relative to max |W|)."""
    return unit_spread(W) <= SYMMETRY_ROUNDING_UNITS * float(np.finfo(W.dtype).eps)
