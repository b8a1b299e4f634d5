"""What the checks run: the learner's function, numeral's fast layers in float64, finite
differences and optimiser steps. The exercise table (``exercises.py``) is written with these."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from numeral.nn.layers import Layer
from numeral.nn.optim import Optimizer

Inputs = dict[str, Any]  # one problem: the learner's arguments by name, in the signature's order
Outputs = list[np.ndarray]

FD_STEP = 1e-5  # central differences: truncation ~ h^2, rounding ~ 1e-16 / h, both ~1e-10


@dataclass(frozen=True)
class Failure:
    """Why a check failed: a short code (``kind``), what is wrong, and a hint."""

    kind: str
    what: str
    hint: str


class Raised(Exception):
    """The learner's function raised ``error`` (at optimiser step ``step``, if any)."""

    def __init__(self, error: Exception, step: int | None = None) -> None:
        super().__init__(str(error))
        self.error, self.step = error, step


class WrongReturn(Exception):
    """The learner's function returned something that is not the outputs asked for."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.what)
        self.failure = failure


def shape_text(shape: tuple[int, ...]) -> str:
    return str(tuple(int(n) for n in shape))


def describe(value: Any) -> str:
    """A value as a learner reads it: arrays by shape, the rest as written."""
    if isinstance(value, np.ndarray):
        return shape_text(value.shape)
    if isinstance(value, np.random.Generator):
        return "a seeded Generator"
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return f"{len(value)} steps of {shape_text(value[0].shape)}"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


def call(fn: Callable[..., Any], args: Sequence[Any], step: int | None = None) -> Any:
    """fn(*args), copies of the arrays given (a learner may change them in place)."""
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    try:
        return fn(*args)
    except Exception as error:
        raise Raised(error, step) from error


def unpack(value: Any, labels: tuple[str, ...]) -> Outputs:
    """The returned value as float64 arrays, one per label; WrongReturn when it is not."""
    k = len(labels)
    names = ", ".join(labels)
    if value is None:
        raise WrongReturn(Failure("none", "your function returned None",
                                  f"end it with `return {names}`"))
    if k == 1 and isinstance(value, tuple):
        raise WrongReturn(Failure("count", f"your function returned {len(value)} values, "
                                  f"expected one ({labels[0]})",
                                  f"return {labels[0]} itself, not a tuple"))
    if k > 1 and not isinstance(value, tuple | list):
        raise WrongReturn(Failure("count", f"your function returned one value, expected {k}",
                                  f"return {names}"))
    values = [value] if k == 1 else list(value)
    if len(values) != k:
        raise WrongReturn(Failure("count", f"your function returned {len(values)} values, "
                                  f"expected {k}", f"return {names}, in this order"))
    arrays = []
    for label, v in zip(labels, values, strict=True):
        if v is None:
            raise WrongReturn(Failure("none", f"{label} is None", f"return {names}"))
        if getattr(v, "dtype", None) in (np.float32, np.float16):
            raise WrongReturn(Failure("dtype", f"{label} is {v.dtype}", "compute in float64, "
                                      "as the inputs are: float32 rounds away the 8th digit"))
        try:
            arrays.append(np.asarray(v, dtype=np.float64))
        except (TypeError, ValueError):
            raise WrongReturn(Failure("type", f"{label} is a {type(v).__name__}, not numbers",
                                      f"return {label} as a NumPy array (or a number)")) from None
    return arrays


def run_plain(fn: Callable[..., Any], inputs: Inputs, labels: tuple[str, ...]) -> Outputs:
    return unpack(call(fn, list(inputs.values())), labels)


# ----------------------------------------------------------------- fast layers
def run_layer(layer: Layer, x: np.ndarray, params: Sequence[np.ndarray],
              g: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, Outputs]:
    """numeral's own layer in float64: forward on x (training mode), then backward of g.
    Returns y, dL/dx and the parameters' gradients."""
    layer.build(x.shape[1:], np.dtype(np.float64))
    layer.params = [np.array(p, dtype=np.float64) for p in params]
    layer.grads = [np.zeros(s) for s in layer.param_shapes()]
    buf = layer.buffers(len(x), train=True)
    y = layer.forward(x.copy(), buf, True, None).copy()
    if g is None:
        return y, None, []
    dx = layer.backward(np.array(g, dtype=np.float64), buf, True)
    return y, None if dx is None else dx.copy(), [grad.copy() for grad in layer.grads]


def layer_dx(layer: Layer, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """dL/dx of a layer without parameters (an activation, a pooling)."""
    dx = run_layer(layer, x, [], g)[1]
    assert dx is not None
    return dx


def numeric_grads(loss: Callable[[Inputs], float], point: Inputs,
                  names: Sequence[str]) -> Outputs:
    """Central differences (L(v + h) - L(v - h)) / 2h of loss(point), for every value of
    each named array of ``point`` (changed in place and restored)."""
    grads = []
    for name in names:
        a = point[name]
        grad = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            saved = a[i]
            a[i] = saved + FD_STEP
            up = loss(point)
            a[i] = saved - FD_STEP
            down = loss(point)
            a[i] = saved
            grad[i] = (up - down) / (2 * FD_STEP)
        grads.append(grad)
    return grads


# -------------------------------------------------------------------- optimisers
def run_steps(fn: Callable[..., Any], inputs: Inputs, state: tuple[str, ...],
              adam: bool) -> Outputs:
    """The learner's step function over the problem's gradients, fed its own state back:
    returns the steps p_new - p and each state after each step, stacked (steps, *shape)."""
    p = inputs["p"]
    states = [np.zeros_like(p) for _ in state]
    labels = ("p_new", *(f"{s}_new" for s in state))
    steps: list[Outputs] = []
    for t, g in enumerate(inputs["grads"], start=1):
        settings = list(inputs.values())[2:]
        args = [p, g, *states, *([t] if adam else []), *settings]
        new = unpack(call(fn, args, step=t), labels)
        for label, value, old in zip(labels, new, [p, *states], strict=True):
            if value.shape != old.shape:
                raise WrongReturn(Failure("shape", f"at step {t}, {label} has shape "
                                          f"{shape_text(value.shape)}, expected "
                                          f"{shape_text(old.shape)}",
                                          f"{label} has the shape of {label[:-4]}"))
        steps.append([new[0] - p, *new[1:]])
        p, states = new[0], new[1:]
    return [np.stack(column) for column in zip(*steps, strict=True)]


def optimiser_steps(inputs: Inputs, name: str, **settings: float) -> Outputs:
    """numeral's Optimizer over the same gradients, in the same form as :func:`run_steps`
    (Adam's moments unscaled: numeral keeps m / (1 - b1) and v / (1 - b2))."""
    p = inputs["p"].reshape(-1).copy()
    lr = settings.pop("lr")
    opt = Optimizer(name, p.size, np.dtype(np.float64), np.ones(p.size), **settings)
    rows = []
    for g in inputs["grads"]:
        old = p.copy()
        opt.step(p, g.reshape(-1).copy(), lr)
        if name == "adam":
            state = [(1 - opt.beta1) * opt.m, (1 - opt.beta2) * opt.v]
        else:
            state = [opt.m.copy()]
        rows.append([(p - old).reshape(inputs["p"].shape),
                     *(s.reshape(inputs["p"].shape) for s in state)])
    return [np.stack(column) for column in zip(*rows, strict=True)]
