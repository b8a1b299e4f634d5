"""The initialisers' checks: random weights are judged by their statistics, not value by value.

Each problem draws >= 10,000 weights; a statistic fails when it is more than ``SIGMAS``
standard errors from its expected value (a right answer fails with probability < 1e-8), and
the named wrong formulas are told apart by how far the measured value is from each.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from numeral.course.harness import Failure, Inputs, call, shape_text, unpack
from numeral.nn.init import init_weights

SIGMAS = 6.0

XAVIER_HINT = "a = np.sqrt(6 / (fan_in + fan_out)); W = rng.uniform(-a, a, size=(fan_in, fan_out))"
HE_HINT = ("W = rng.normal(0.0, np.sqrt(2 / fan_in), size=(fan_in, fan_out)): NumPy's normal "
           "takes the standard deviation, the square root of the variance 2 / fan_in")


def _bounds(fan_in: int, fan_out: int) -> dict[str, float]:
    """Formulas learners write instead of the one asked for, by name."""
    total = fan_in + fan_out
    return {"sqrt(6 / fan_in)": np.sqrt(6 / fan_in), "sqrt(6 / fan_out)": np.sqrt(6 / fan_out),
            "1 / sqrt(fan_in)": 1 / np.sqrt(fan_in), "sqrt(2 / (fan_in + fan_out))":
            np.sqrt(2 / total), "sqrt(3 / (fan_in + fan_out))": np.sqrt(3 / total),
            "6 / (fan_in + fan_out)": 6 / total, "sqrt(2 / fan_in)": np.sqrt(2 / fan_in),
            "sqrt(1 / (fan_in + fan_out))": np.sqrt(1 / total), "1": 1.0}


def _named(value: float, candidates: dict[str, float], rtol: float) -> str:
    """' = NAME' for the candidate within rtol of value, else ''."""
    for name, candidate in candidates.items():
        if abs(value / candidate - 1) < rtol:
            return f" = {name}"
    return ""


def _draw(fn: Callable[..., Any], inputs: Inputs) -> np.ndarray:
    fan_in, fan_out, rng = inputs.values()
    return unpack(call(fn, [fan_in, fan_out, copy.deepcopy(rng)]), ("W",))[0]


def _common(fn: Callable[..., Any], inputs: Inputs, rule: str, hint: str,
            W: np.ndarray) -> Failure | None:
    """What every initialiser must do: shape, finite, not constant, reproducible."""
    fan_in, fan_out, _ = inputs.values()
    want = (fan_in, fan_out)
    if W.shape != want:
        kind = "transposed" if W.shape == want[::-1] else "shape"
        return Failure(kind, f"W has shape {shape_text(W.shape)}, expected (fan_in, fan_out) = "
                       f"{shape_text(want)}", "size=(fan_in, fan_out): one row per input")
    if not np.isfinite(W).all():
        return Failure("nan", "W contains nan or inf", hint)
    if np.ptp(W) == 0:
        return Failure("constant", f"every weight is {W.flat[0]:g}", "draw each weight at "
                       "random: equal weights give every unit the same gradient forever")
    if not np.array_equal(W, _draw(fn, inputs)):
        return Failure("rng", "two calls with the same seeded rng gave different weights",
                       f"draw with the rng you are given ({rule}), not np.random")
    return None


def judge_xavier(fn: Callable[..., Any], inputs: Inputs) -> Failure | None:
    """W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)): shape, mean, evenness, range, variance."""
    W = _draw(fn, inputs)
    fan_in, fan_out, rng = inputs.values()
    same = np.zeros((fan_in, fan_out))
    init_weights("xavier", same, copy.deepcopy(rng))
    if W.shape == same.shape and np.array_equal(W, same):
        return None  # numeral's own draw, value for value
    failure = _common(fn, inputs, "rng.uniform", XAVIER_HINT, W)
    if failure:
        return failure
    a, n, b = np.sqrt(6 / (fan_in + fan_out)), W.size, float(np.abs(W).max())
    mean = float(W.mean())
    if abs(mean) > SIGMAS * b / np.sqrt(3 * n):
        return Failure("mean", f"the weights' mean is {mean:.3g}, not 0", "U(-a, a) is centred on "
                       "0: rng.uniform(-a, a, ...), not rng.uniform(0, a) or a * rng.random(...)")
    counts = np.histogram(W, bins=4, range=(-b, b))[0]
    if np.abs(counts - n / 4).max() > SIGMAS * np.sqrt(n * 0.25 * 0.75):
        middle = (counts[1] + counts[2]) / n
        return Failure("distribution", f"the weights are not spread evenly over ±{b:.3g}: "
                       f"{middle:.0%} lie in the middle half (uniform: 50%)",
                       "Glorot uniform draws from U(-a, a), not a normal distribution: "
                       + XAVIER_HINT)
    if not 1 - 0.01 < b / a <= 1 + 1e-12:  # the largest of n >= 1e4 uniform draws: > a (1 - 1e-3)
        wrong = {k: v for k, v in _bounds(fan_in, fan_out).items() if abs(v / a - 1) > 0.02}
        name = _named(b, wrong, 0.01)
        return Failure("bound", f"the weights reach ±{b:.4g}{name}, but the bound is "
                       f"a = sqrt(6 / (fan_in + fan_out)) = {a:.4g}", XAVIER_HINT)
    var = float((W * W).mean())
    if abs(var - a * a / 3) > SIGMAS * np.sqrt(4 / 45) * a * a / np.sqrt(n):
        return Failure("variance", f"the weights' variance is {var:.4g}, expected a^2 / 3 = "
                       f"{a * a / 3:.4g}", XAVIER_HINT)
    return None


def judge_he(fn: Callable[..., Any], inputs: Inputs) -> Failure | None:
    """W ~ N(0, 2 / fan_in): shape, mean, normality, standard deviation."""
    W = _draw(fn, inputs)
    fan_in, fan_out, rng = inputs.values()
    same = np.zeros((fan_in, fan_out))
    init_weights("he", same, copy.deepcopy(rng))
    if W.shape == same.shape and np.array_equal(W, same):
        return None
    failure = _common(fn, inputs, "rng.normal", HE_HINT, W)
    if failure:
        return failure
    s, n = np.sqrt(2 / fan_in), W.size
    mean, sd = float(W.mean()), float(np.sqrt((W * W).mean()))
    if abs(mean) > SIGMAS * sd / np.sqrt(n):
        return Failure("mean", f"the weights' mean is {mean:.3g}, not 0", HE_HINT)
    tails, normal = float((np.abs(W) > 2 * sd).mean()), 0.0455  # P(|N(0, 1)| > 2)
    if abs(tails - normal) > SIGMAS * np.sqrt(normal * (1 - normal) / n):
        return Failure("distribution", f"{tails:.1%} of the weights lie beyond 2 standard "
                       f"deviations; a normal distribution puts 4.6% there (uniform: none)",
                       "He initialisation draws from a normal distribution: " + HE_HINT)
    if abs(sd / s - 1) > SIGMAS / np.sqrt(2 * n):  # the standard error of sd / s
        candidates = {"2 / fan_in (the variance)": 2 / fan_in, **_bounds(fan_in, fan_out)}
        wrong = {k: v for k, v in candidates.items() if abs(v / s - 1) > 0.1}
        name = _named(sd, wrong, 3 / np.sqrt(n))
        return Failure("std", f"the weights' standard deviation is {sd:.4g}{name}, but He's is "
                       f"sqrt(2 / fan_in) = {s:.4g}", HE_HINT)
    return None
