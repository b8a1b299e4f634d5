"""How sure a model says it is, made to match how often it is right: temperature scaling.

A network trained with label smoothing never says more than about 0.9; one trained without
says 0.999 of images it misreads. Temperature scaling (Guo et al., 2017, "On calibration of
modern neural networks") fixes both with one number T fitted on validation data:

    p_T(k) = p(k) ** (1/T) / sum_j p(j) ** (1/T)       (softmax(z / T) for one network's z)

T > 1 makes the model less sure, T < 1 surer; the class it picks never changes. T is the one
that minimises the negative log-likelihood of the validation labels (convex in 1/T, so one
minimum in log T: golden-section search). Validation data read all right (or all wrong) have
no such minimum (the NLL falls on towards T = 0, or T = infinity): then T stays 1, and the
model file says why. How well it worked is told by the expected
calibration error (ECE): the top probabilities put in BINS equal-width bins, and the
distance between each bin's mean confidence and its accuracy, weighted by its share:

    ECE = sum_b |B_b| / n * | accuracy(B_b) - confidence(B_b) |
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numeral.nn.errors import ModelFileError
from numeral.nn.losses import softmax

BINS = 15  # bins of the reliability diagram and the ECE (Guo et al.'s)
T_RANGE = (0.05, 20.0)  # temperatures searched
FLOOR = 1e-12  # probabilities are clipped here before their log


def tempered(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities (n, classes) at ``temperature``: p ** (1/T), each row summing to 1."""
    if temperature == 1.0:
        return proba
    out = softmax(np.log(np.clip(proba, FLOOR, None)) / temperature)
    return out.astype(proba.dtype, copy=False)


def nll(proba: np.ndarray, y: np.ndarray) -> float:
    """The mean negative log-likelihood of the labels ``y`` under ``proba``."""
    picked = proba[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(picked, FLOOR, None))))


def fit_temperature(proba: np.ndarray, y: np.ndarray, steps: int = 60) -> float:
    """The temperature whose tempered probabilities give ``y`` the least NLL (golden-section
    search over log T in T_RANGE; the NLL is convex in 1/T, so unimodal in log T)."""
    if len(y) == 0:
        raise ValueError("calibration needs labelled images: got none")
    logp = np.log(np.clip(proba.astype(np.float64), FLOOR, None))

    def loss(log_t: float) -> float:
        z = logp / math.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))

    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(steps):  # the bracket shrinks by 0.618 a step: 60 steps, to ~1e-12
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return round(math.exp((lo + hi) / 2), 4)


def reliability(proba: np.ndarray, y: np.ndarray, bins: int = BINS
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin of top probability (BINS equal widths over 0-1): the mean confidence, the
    accuracy, and the number of images (bins with none: confidence and accuracy NaN)."""
    confidence = proba.max(axis=1).astype(np.float64)
    right = (proba.argmax(axis=1) == y).astype(np.float64)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, confidence, minlength=bins) / count
        accuracy = np.bincount(which, right, minlength=bins) / count
    return mean_conf, accuracy, count.astype(np.int64)


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    """ECE (see the module): 0 for a model exactly as sure as it is right."""
    mean_conf, accuracy, count = reliability(proba, y, bins)
    seen = count > 0
    return float(np.sum(count[seen] * np.abs(accuracy[seen] - mean_conf[seen])) / count.sum())


def calibration(proba: np.ndarray, y: np.ndarray, fitted_on: str) -> dict[str, Any]:
    """The temperature fitted on (``proba``, ``y``), with the ECE and NLL before and after,
    as a model file's ``meta["calibration"]`` records it. A fit at the end of T_RANGE (data
    read all right or all wrong: no minimum) is not used: T = 1, and ``fitted_on`` says so."""
    temperature = fit_temperature(proba, y)
    if not T_RANGE[0] * 1.01 < temperature < T_RANGE[1] / 1.01:
        wrong = int(np.sum(proba.argmax(axis=1) != y))
        fitted_on += (f" (not fitted: {wrong} of {len(y)} misread, so the likelihood has no "
                      f"minimum; temperature left at 1)")
        temperature = 1.0
    after = tempered(proba, temperature)
    return {
        "temperature": temperature,
        "fitted_on": fitted_on,
        "images": len(y),
        "ece_before": round(expected_calibration_error(proba, y), 5),
        "ece_after": round(expected_calibration_error(after, y), 5),
        "nll_before": round(nll(proba, y), 5),
        "nll_after": round(nll(after, y), 5),
    }


def temperature_of(meta: dict) -> float:
    """The temperature a model file's metadata records (1.0: none fitted); one that is not a
    positive number is refused (0 divides by zero, a negative one reverses the classes)."""
    value = (meta.get("calibration") or {}).get("temperature", 1.0)
    try:
        temperature = float(value)
    except (TypeError, ValueError):
        temperature = math.nan
    if not (math.isfinite(temperature) and temperature > 0):
        raise ModelFileError(f"the model file's calibration temperature is {value!r}, not a "
                             f"positive number: fit it again (train with val_fraction > 0)")
    return temperature
