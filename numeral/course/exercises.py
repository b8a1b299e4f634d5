"""The course's exercises, one :class:`Exercise` each: what the learner writes, how to make
random problems, the right answer from numeral's fast code, finite differences where a
gradient is asked for, and the typical mistakes to recognise.

A mistake is written as the wrong function a learner would write; ``check`` recognises it
when the learner's output equals the mistake's (and not the right one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from numeral.course import solutions as sol
from numeral.course import stats
from numeral.course.harness import (
    Failure,
    Inputs,
    Outputs,
    layer_dx,
    numeric_grads,
    optimiser_steps,
    run_layer,
    run_steps,
)
from numeral.nn import reference as ref
from numeral.nn.layers import BatchNorm, Conv2D, Dense, Dropout, MaxPool2D, ReLU, Sigmoid, Tanh
from numeral.nn.layers.norm import BN_EPS
from numeral.nn.losses import softmax, softmax_cross_entropy_
from numeral.nn.regularizers import add_penalty_grad_, penalty

Fn = Callable[..., Any]


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer (a function with the learner's signature), and what to say."""

    key: str
    fn: Fn
    what: str
    hint: str


@dataclass(frozen=True)
class Exercise:
    name: str
    description: str
    signature: str
    outputs: tuple[str, ...]  # the returned values' names, in order
    make: Callable[[np.random.Generator, int], Inputs]  # problem i: the arguments, in order
    answer: Callable[[Inputs], Outputs]  # the right outputs, from numeral's fast code
    compared_with: str  # "numeral's Dense.backward"
    hints: dict[str, str]  # per output: its formula and shape
    numeric: Callable[[Inputs], list[np.ndarray | None]] | None = None  # finite differences
    mistakes: tuple[Mistake, ...] = ()
    upstream: str | None = None  # the input holding the upstream gradient g, if any
    counts: Callable[[Inputs], dict[str, int]] | None = None  # for "1/n missing" diagnoses
    run: Callable[[Fn, Inputs], Outputs] | None = None  # default: fn(*inputs) unpacked
    judge: Callable[[Fn, Inputs], Failure | None] | None = None  # a statistical check instead
    order: tuple[int, ...] | None = None  # the order outputs are diagnosed in
    nan_hint: str = ""
    unit: str = "random shapes"


def pick(table: list[Any], i: int) -> Any:
    return table[i % len(table)]


def ones_like_g(inputs: Inputs) -> Inputs:
    return {k: (np.ones_like(v) if k == "g" else v) for k, v in inputs.items()}


# ------------------------------------------------------------------------- the loss
def _softmax_make(rng: np.random.Generator, i: int) -> Inputs:
    n, k = pick([(4, 5), (3, 10), (6, 3), (1, 4), (5, 7)], i)
    z = rng.normal(0.0, 2.0, (n, k))
    if i == 1:
        z += 1000.0  # exp(z) overflows unless each row's max is subtracted first
    return {"z": z, "y": rng.integers(0, k, n)}


def _softmax_answer(inputs: Inputs) -> Outputs:
    dz = inputs["z"].copy()
    return [np.asarray(softmax_cross_entropy_(dz, inputs["y"])), dz]


def _softmax_numeric(inputs: Inputs) -> list[np.ndarray | None]:
    y = inputs["y"]
    return [None, *numeric_grads(lambda d: ref.softmax_cross_entropy(d["z"], y)[0],
                                 {"z": inputs["z"].copy()}, ["z"])]


def _loss(z: np.ndarray, y: np.ndarray) -> float:
    return sol.softmax_cross_entropy(z, y)[0]


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[y]


SOFTMAX = Exercise(
    "softmax_cross_entropy", "mean cross-entropy of softmax(z) and its gradient",
    "fn(z (n,k), y (n,) int) -> (loss, dz (n,k))", ("loss", "dz"),
    _softmax_make, _softmax_answer, "numeral.nn.losses.softmax_cross_entropy_",
    {"loss": "loss = mean over the rows of -log softmax(z)[i, y_i]: one number",
     "dz": "dz = (softmax(z) - onehot(y)) / n, shape (n, k) like z"},
    numeric=_softmax_numeric, counts=lambda d: {"n": len(d["y"])},
    nan_hint="exp(z) overflows for large logits: subtract each row's max first "
             "(z - z.max(axis=1, keepdims=True)); softmax does not change",
    mistakes=(
        Mistake("no_onehot", lambda z, y: (_loss(z, y), softmax(z) / len(y)),
                "dz is softmax(z) / n: onehot(y) is not subtracted",
                "dz = (softmax(z) - onehot(y)) / n: the right class's probability minus 1"),
        Mistake("no_softmax",
                lambda z, y: (_loss(z, y), (z - _onehot(y, z.shape[1])) / len(y)),
                "dz uses the logits z where softmax(z) belongs",
                "dz = (softmax(z) - onehot(y)) / n"),
    ))


# ------------------------------------------------------------------------ dense
def _dense_make(rng: np.random.Generator, i: int) -> Inputs:
    n, fan_in, units = pick([(4, 5, 3), (3, 3, 3), (6, 2, 4), (1, 4, 2), (5, 7, 6)], i)
    return {"x": rng.normal(size=(n, fan_in)), "W": rng.normal(size=(fan_in, units)),
            "b": rng.normal(size=units)}


def _dense_backward_make(rng: np.random.Generator, i: int) -> Inputs:
    x, W, _ = _dense_make(rng, i).values()
    return {"g": rng.normal(size=(len(x), W.shape[1])), "x": x, "W": W}


def _dense_backward_answer(d: Inputs) -> Outputs:
    _, dx, grads = run_layer(Dense(d["W"].shape[1]), d["x"], [d["W"], np.zeros(d["W"].shape[1])],
                             d["g"])
    assert dx is not None
    return [dx, *grads]


def _dense_numeric(d: Inputs) -> list[np.ndarray | None]:
    g = d["g"]
    point = {"x": d["x"].copy(), "W": d["W"].copy(), "b": np.zeros(d["W"].shape[1])}
    return list(numeric_grads(lambda p: float(np.sum(g * (p["x"] @ p["W"] + p["b"]))),
                              point, ["x", "W", "b"]))


DENSE_FORWARD = Exercise(
    "dense_forward", "a dense layer's output z = x W + b",
    "fn(x (n,i), W (i,o), b (o,)) -> z (n,o)", ("z",), _dense_make,
    lambda d: [run_layer(Dense(d["W"].shape[1]), d["x"], [d["W"], d["b"]])[0]],
    "numeral's Dense.forward", {"z": "z = x @ W + b has shape (n, units): one row per sample"},
    mistakes=(Mistake("no_bias", lambda x, W, b: x @ W, "z is x W: the bias b is not added",
                      "z = x @ W + b (b broadcasts over the rows)"),))

DENSE_BACKWARD = Exercise(
    "dense_backward", "the gradients of a dense layer",
    "fn(g (n,o), x (n,i), W (i,o)) -> (dx (n,i), dW (i,o), db (o,))", ("dx", "dW", "db"),
    _dense_backward_make, _dense_backward_answer, "numeral's Dense.backward",
    {"dx": "dL/dx = g W^T has shape (n, inputs) like x.",
     "dW": "dL/dW = x^T g has shape (inputs, units) like W.",
     "db": "dL/db = g summed over the rows (axis 0) has shape (units,) like b: the loss "
           "already averaged over the batch, so each row's gradient adds."},
    numeric=_dense_numeric, upstream="g", counts=lambda d: {"n": len(d["x"])})


# ------------------------------------------------------------------- activations
def _activation_make(rng: np.random.Generator, i: int) -> tuple[np.ndarray, np.ndarray]:
    shape = pick([(4, 5), (3, 2, 6), (7, 3), (1, 8), (2, 3, 4)], i)
    return rng.normal(size=shape), rng.normal(0.0, 2.0, shape)


def _backward_from_output(layer: Any, g: np.ndarray, a: np.ndarray) -> np.ndarray:
    """An activation's fast backward, given its output a (as its forward would keep it)."""
    layer.build(a.shape[1:], np.dtype(np.float64))
    buf = layer.buffers(len(a), train=True)
    buf["out"][...] = a
    return np.array(layer.backward(g.copy(), buf, True))


def _activation_numeric(name: str, to_z: Callable[[np.ndarray], np.ndarray]) -> Callable[
        [Inputs], list[np.ndarray | None]]:
    def numeric(d: Inputs) -> list[np.ndarray | None]:
        g, second = d.values()
        return list(numeric_grads(
            lambda p: float(np.sum(g * ref.activation_forward(p["z"], name)[0])),
            {"z": to_z(second).copy()}, ["z"]))
    return numeric


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-z)))


def _sigmoid_make(rng: np.random.Generator, i: int) -> Inputs:
    g, z = _activation_make(rng, i)
    return {"g": g, "a": run_layer(Sigmoid(), z, [])[0]}


def _tanh_make(rng: np.random.Generator, i: int) -> Inputs:
    g, z = _activation_make(rng, i)
    return {"g": g, "a": run_layer(Tanh(), z, [])[0]}


def _relu_make(rng: np.random.Generator, i: int) -> Inputs:
    g, z = _activation_make(rng, i)
    return {"g": g, "z": np.sign(z) * (0.1 + np.abs(z))}  # |z| >= 0.1: no kink within reach


A_IS_OUTPUT = "a is already the output sigmoid(z): the slope is a (1 - a), with no new sigmoid"

SIGMOID_BACKWARD = Exercise(
    "sigmoid_backward", "dz from da, given a = sigmoid(z)", "fn(g, a) -> dz", ("dz",),
    _sigmoid_make, lambda d: [_backward_from_output(Sigmoid(), d["g"], d["a"])],
    "numeral's Sigmoid.backward", {"dz": "dz = g * a * (1 - a), shape like a"},
    numeric=_activation_numeric("sigmoid", lambda a: np.log(a) - np.log1p(-a)), upstream="g",
    mistakes=(Mistake("a_as_z", lambda g, a: g * _sigmoid(a) * (1 - _sigmoid(a)),
                      "dz applies the sigmoid to a again", A_IS_OUTPUT),
              Mistake("one_minus_a", lambda g, a: g * (1 - a), "dz is g (1 - a)",
                      "the sigmoid's slope is a (1 - a): dz = g * a * (1 - a)")))

TANH_BACKWARD = Exercise(
    "tanh_backward", "dz from da, given a = tanh(z)", "fn(g, a) -> dz", ("dz",),
    _tanh_make, lambda d: [_backward_from_output(Tanh(), d["g"], d["a"])],
    "numeral's Tanh.backward", {"dz": "dz = g * (1 - a^2), shape like a"},
    numeric=_activation_numeric("tanh", np.arctanh), upstream="g",
    mistakes=(Mistake("a_as_z", lambda g, a: g * (1 - np.tanh(a) ** 2),
                      "dz applies tanh to a again",
                      "a is already tanh(z): the slope is 1 - a^2, with no new tanh"),
              Mistake("no_square", lambda g, a: g * (1 - a), "dz is g (1 - a)",
                      "the slope of tanh is 1 - tanh(z)^2 = 1 - a^2")))

RELU_BACKWARD = Exercise(
    "relu_backward", "dz from da, given z", "fn(g, z) -> dz", ("dz",), _relu_make,
    lambda d: [layer_dx(ReLU(), d["z"], d["g"])], "numeral's ReLU.backward",
    {"dz": "dz = g where z > 0, else 0: g * (z > 0), shape like z"},
    numeric=_activation_numeric("relu", lambda z: z), upstream="g",
    mistakes=(Mistake("times_relu", lambda g, z: g * np.maximum(z, 0),
                      "dz is g times relu(z), not g times its slope",
                      "the slope of max(z, 0) is 1 where z > 0 and 0 elsewhere: g * (z > 0)"),
              Mistake("wrong_side", lambda g, z: g * (z < 0),
                      "dz lets g through where z < 0 instead of z > 0",
                      "relu passes the positive side: g * (z > 0)")))


# ------------------------------------------------------------------ initialisation
def _init_make(rng: np.random.Generator, i: int) -> Inputs:
    fan_in, fan_out = pick([(300, 100), (64, 500), (784, 30), (120, 84), (50, 200)], i)
    return {"fan_in": fan_in, "fan_out": fan_out,
            "rng": np.random.default_rng(int(rng.integers(2**32)))}


XAVIER = Exercise(
    "xavier_init", "Glorot uniform initialisation",
    "fn(fan_in, fan_out, rng) -> W (fan_in, fan_out)",
    ("W",), _init_make, lambda d: [], "Glorot uniform (numeral.nn.init)", {},
    judge=stats.judge_xavier,
    unit="random layer sizes: shape, mean 0, evenness, range ±a, variance a^2/3")

HE = Exercise(
    "he_init", "He (Kaiming) normal initialisation",
    "fn(fan_in, fan_out, rng) -> W (fan_in, fan_out)",
    ("W",), _init_make, lambda d: [], "He normal (numeral.nn.init)", {}, judge=stats.judge_he,
    unit="random layer sizes: shape, mean 0, normality, variance 2 / fan_in")


# ----------------------------------------------------------------- regularisation
PENALTY_SHAPES = [(4, 3), (5,), (2, 3, 4), (6, 6), (3, 1)]
STRENGTHS = [0.1, 0.01, 0.3, 1.0, 0.05]


def _penalty_make(rng: np.random.Generator, i: int, name: str) -> Inputs:
    W = rng.normal(size=pick(PENALTY_SHAPES, i))
    return {"W": np.sign(W) * (0.1 + np.abs(W)), name: pick(STRENGTHS, i)}  # |w| >= 0.1


def _penalty_answer(W: np.ndarray, l1: float, l2: float) -> Outputs:
    flat, ones, scratch = W.reshape(-1), np.ones(W.size), np.empty(W.size)
    grad = np.zeros(W.size)
    add_penalty_grad_(flat, grad, ones, l1, l2, scratch)
    return [np.asarray(penalty(flat, ones, l1, l2, scratch)), grad.reshape(W.shape)]


def _penalty_numeric(l1: bool) -> Callable[[Inputs], list[np.ndarray | None]]:
    def numeric(d: Inputs) -> list[np.ndarray | None]:
        W, s = d.values()
        return [None, *numeric_grads(lambda p: float(_penalty_answer(
            p["W"], s if l1 else 0.0, 0.0 if l1 else s)[0]), {"W": W.copy()}, ["W"])]
    return numeric


L2 = Exercise(
    "l2_penalty", "the L2 penalty and its gradient", "fn(W, l2) -> (R, dR)", ("R", "dR"),
    lambda rng, i: _penalty_make(rng, i, "l2"), lambda d: _penalty_answer(d["W"], 0.0, d["l2"]),
    "numeral.nn.regularizers", {"R": "R = (l2 / 2) * sum(W^2): one number",
                                "dR": "dR/dW = l2 * W, shape like W"},
    numeric=_penalty_numeric(False),
    mistakes=(Mistake("squared", lambda W, l2: (sol.l2_penalty(W, l2)[0], l2 * W * W),
                      "dR is l2 W^2", "the derivative of (l2 / 2) w^2 is l2 w"),))

L1 = Exercise(
    "l1_penalty", "the L1 penalty and its gradient", "fn(W, l1) -> (R, dR)", ("R", "dR"),
    lambda rng, i: _penalty_make(rng, i, "l1"), lambda d: _penalty_answer(d["W"], d["l1"], 0.0),
    "numeral.nn.regularizers", {"R": "R = l1 * sum(|W|): one number",
                                "dR": "dR/dW = l1 * sign(W), shape like W"},
    numeric=_penalty_numeric(True),
    mistakes=(Mistake("no_sign", lambda W, l1: (sol.l1_penalty(W, l1)[0], l1 * W),
                      "dR is l1 W, as if L2",
                      "the derivative of |w| is sign(w) (+1 or -1), not w: dR = l1 * sign(W)"),
              Mistake("abs", lambda W, l1: (sol.l1_penalty(W, l1)[0], l1 * np.abs(W)),
                      "dR is l1 |W|", "the derivative of |w| is sign(w): -1 for negative weights")))


# ------------------------------------------------------------------------ dropout
def _dropout_make(rng: np.random.Generator, i: int) -> Inputs:
    g, _ = _activation_make(rng, i)
    layer = Dropout(pick([0.5, 0.2, 0.3, 0.6, 0.1], i))
    layer.build(g.shape[1:], np.dtype(np.float64))
    buf = layer.buffers(len(g), train=True)
    layer.forward(np.ones_like(g), buf, True, rng)
    return {"g": g, "mask": buf["mask"].copy()}


def _dropout_answer(d: Inputs) -> Outputs:
    layer = Dropout(0.5)
    return [np.array(layer.backward(d["g"].copy(), {"active": True, "mask": d["mask"]}, True))]


DROPOUT_BACKWARD = Exercise(
    "dropout_backward", "dropout's backward pass, given the mask",
    "fn(g, mask) -> dx   (mask holds the 1/(1-p))", ("dx",), _dropout_make, _dropout_answer,
    "numeral's Dropout.backward", {"dx": "dx = g * mask: the mask already holds the 1 / (1 - p)"},
    numeric=lambda d: list(numeric_grads(lambda p: float(np.sum(d["g"] * p["x"] * d["mask"])),
                                         {"x": np.zeros_like(d["g"])}, ["x"])),
    upstream="g",
    mistakes=(Mistake("unscaled", lambda g, mask: g * (mask > 0),
                      "dx keeps g where the unit was kept but drops the 1 / (1 - p) scaling",
                      "multiply by the mask itself, g * mask: it holds the 1 / (1 - p)"),
              Mistake("inverted", lambda g, mask: g * (mask == 0),
                      "dx lets g through the dropped units instead of the kept ones",
                      "dx = g * mask")))


# ------------------------------------------------------------------- optimisers
STEPS = 4


def _momentum_make(rng: np.random.Generator, i: int) -> Inputs:
    shape = pick([(5,), (3, 4), (2, 2, 3), (7,), (4, 2)], i)
    lr, mu = pick([(0.1, 0.9), (0.01, 0.5), (0.5, 0.99), (0.05, 0.7)], i)
    return {"p": rng.normal(size=shape), "grads": [rng.normal(size=shape) for _ in range(STEPS)],
            "lr": lr, "mu": mu}


def _momentum_old_v(p: Any, g: Any, v: Any, lr: float, mu: float) -> tuple[Any, Any]:
    return p + v, mu * v - lr * g


SGD_MOMENTUM = Exercise(
    "sgd_momentum_step", "one step of SGD with momentum", "fn(p, g, v, lr, mu) -> (p_new, v_new)",
    ("p_new - p", "v_new"), _momentum_make,
    lambda d: optimiser_steps(d, "momentum", lr=d["lr"], momentum=d["mu"]),
    "numeral's Optimizer('momentum')",
    {"p_new - p": "p_new = p + v_new: the step is the new velocity",
     "v_new": "v_new = mu * v - lr * g (numeral keeps v as the step itself, so p_new = p + v_new)"},
    run=lambda fn, d: run_steps(fn, d, ("v",), adam=False), order=(1, 0),
    unit=f"random shapes, over {STEPS} steps each",
    mistakes=(Mistake("old_v", _momentum_old_v, "p moves by the old velocity v, not the new one",
                      "first v_new = mu v - lr g, then p_new = p + v_new"),))


def _adam_make(rng: np.random.Generator, i: int) -> Inputs:
    shape, lr, b1, b2, eps, scale = pick([
        ((5,), 1e-3, 0.9, 0.999, 1e-8, 1.0), ((3, 4), 1e-2, 0.8, 0.99, 1e-3, 1e-2),
        ((2, 3), 0.1, 0.9, 0.999, 0.1, 1.0), ((6,), 1e-3, 0.95, 0.9, 1e-8, 10.0),
        ((4, 2), 0.05, 0.5, 0.75, 1e-4, 1e-3)], i)
    return {"p": rng.normal(size=shape),
            "grads": [scale * rng.normal(size=shape) for _ in range(STEPS)],
            "lr": lr, "beta1": b1, "beta2": b2, "eps": eps}


def _adam_variant(bias: bool = True, eps_inside: bool = False, square: bool = True,
                  return_hat: bool = False) -> Fn:
    def step(p: Any, g: Any, m: Any, v: Any, t: int, lr: float, b1: float, b2: float,
             eps: float) -> tuple[Any, Any, Any]:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * (g * g if square else g)
        m_hat, v_hat = (m / (1 - b1**t), v / (1 - b2**t)) if bias else (m, v)
        root = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
        return p - lr * m_hat / root, (m_hat if return_hat else m), v
    return step


ADAM = Exercise(
    "adam_step", "one step of Adam (t counts from 1)",
    "fn(p, g, m, v, t, lr, beta1, beta2, eps) -> (p_new, m_new, v_new)",
    ("p_new - p", "m_new", "v_new"), _adam_make,
    lambda d: optimiser_steps(d, "adam", lr=d["lr"], beta1=d["beta1"], beta2=d["beta2"],
                              eps=d["eps"]),
    "numeral's Optimizer('adam')",
    {"p_new - p": "p_new = p - lr * m_hat / (sqrt(v_hat) + eps), m_hat = m_new / (1 - beta1^t), "
                  "v_hat = v_new / (1 - beta2^t)",
     "m_new": "m_new = beta1 * m + (1 - beta1) * g (kept without the bias correction)",
     "v_new": "v_new = beta2 * v + (1 - beta2) * g^2 (kept without the bias correction)"},
    run=lambda fn, d: run_steps(fn, d, ("m", "v"), adam=True), order=(1, 2, 0),
    unit=f"random shapes, over {STEPS} steps each",
    nan_hint="t counts from 1, so 1 - beta^t is never 0; and v, an average of g^2, is never "
             "negative under the square root",
    mistakes=(
        Mistake("no_bias_correction", _adam_variant(bias=False),
                "the step uses m and v without the bias correction",
                "m and v start at 0, so early on they are too small: divide by 1 - beta1^t and "
                "1 - beta2^t (m_hat, v_hat) before the step"),
        Mistake("eps_inside", _adam_variant(eps_inside=True),
                "eps is inside the square root", "p_new = p - lr * m_hat / (sqrt(v_hat) + eps)"),
        Mistake("g_not_squared", _adam_variant(square=False), "v_new averages g, not g^2",
                "v_new = beta2 * v + (1 - beta2) * g**2"),
        Mistake("returned_hat", _adam_variant(return_hat=True),
                "m_new is the bias-corrected m_hat", "return m itself as the state; the "
                "correction m / (1 - beta1^t) is used only inside the step"),
    ))


# ------------------------------------------------------------------ convolution
CONV_SHAPES = [(2, 3, 6, 5, 4, 3, 1, 0), (1, 2, 7, 7, 3, 3, 2, 1), (3, 1, 5, 5, 2, 2, 1, 1),
               (2, 2, 8, 6, 3, 4, 2, 2), (1, 3, 4, 4, 2, 1, 1, 0)]  # n, c, h, w, out, k, s, pad


def _conv_make(rng: np.random.Generator, i: int) -> Inputs:
    n, c, h, w, out, k, stride, pad = pick(CONV_SHAPES, i)
    return {"x": rng.normal(size=(n, c, h, w)), "W": rng.normal(size=(out, c, k, k)),
            "b": rng.normal(size=out), "stride": stride, "pad": pad}


def _conv_layer(W: np.ndarray, stride: int, pad: int) -> Conv2D:
    return Conv2D(W.shape[0], W.shape[2], stride=stride, padding=pad)


def _conv_backward_make(rng: np.random.Generator, i: int) -> Inputs:
    x, W, _, stride, pad = _conv_make(rng, i).values()
    ho, wo = ((side + 2 * pad - W.shape[2]) // stride + 1 for side in x.shape[2:])
    return {"g": rng.normal(size=(len(x), W.shape[0], ho, wo)), "x": x, "W": W,
            "stride": stride, "pad": pad}


def _conv_backward_answer(d: Inputs) -> Outputs:
    g, x, W, stride, pad = d.values()
    _, dx, grads = run_layer(_conv_layer(W, stride, pad), x, [W, np.zeros(len(W))], g)
    assert dx is not None
    return [dx, *grads]


def _conv_numeric(d: Inputs) -> list[np.ndarray | None]:
    g, x, W, stride, pad = d.values()
    point = {"x": x.copy(), "W": W.copy(), "b": np.zeros(len(W))}
    return list(numeric_grads(
        lambda p: float(np.sum(g * ref.conv_forward(p["x"], p["W"], p["b"], stride, pad)[0])),
        point, ["x", "W", "b"]))


def _flipped(W: np.ndarray) -> np.ndarray:
    return W[:, :, ::-1, ::-1]


CONV_FORWARD = Exercise(
    "conv_forward", "a 2-D convolution (cross-correlation) with stride and zero padding",
    "fn(x (n,c,h,w), W (o,c,k,k), b (o,), stride, pad) -> y (n,o,ho,wo)", ("y",), _conv_make,
    lambda d: [run_layer(_conv_layer(d["W"], d["stride"], d["pad"]), d["x"],
                         [d["W"], d["b"]])[0]],
    "numeral's Conv2D.forward",
    {"y": "y[i, o, r, s] = b[o] + sum over c, u, v of W[o, c, u, v] * xp[i, c, r*stride + u, "
          "s*stride + v], xp = x with pad zeros on each side; shape (n, out, ho, wo), "
          "ho = (h + 2 pad - k) // stride + 1"},
    mistakes=(Mistake("flipped", lambda x, W, b, s, p: sol.conv_forward(x, _flipped(W), b, s, p),
                      "y flips the kernel (a true convolution)",
                      "deep-learning layers compute a cross-correlation: W[o, c, u, v] meets "
                      "xp[i, c, r*stride + u, s*stride + v], not flipped"),
              Mistake("no_bias", lambda x, W, b, s, p: sol.conv_forward(x, W, 0 * b, s, p),
                      "y is missing the bias b", "add b[o] to every pixel of output channel o")))

CONV_BACKWARD = Exercise(
    "conv_backward", "the gradients of a 2-D convolution",
    "fn(g (n,o,ho,wo), x, W, stride, pad) -> (dx, dW, db)", ("dx", "dW", "db"),
    _conv_backward_make, _conv_backward_answer, "numeral's Conv2D.backward",
    {"dx": "dx has the shape of x: each input pixel collects g times each weight that read it "
           "(then crop the padding off)",
     "dW": "dW[o, c, u, v] = sum over i, r, s of g[i, o, r, s] * xp[i, c, r*stride + u, "
           "s*stride + v], shape like W",
     "db": "db[o] = g summed over images and pixels (axes 0, 2, 3), shape (out,)"},
    numeric=_conv_numeric, upstream="g",
    counts=lambda d: {"n": len(d["x"]), "n·ho·wo": d["g"].size // d["g"].shape[1],
                      "ho·wo": d["g"].shape[2] * d["g"].shape[3]},
    mistakes=(Mistake("dx_flipped",
                      lambda g, x, W, s, p: sol.conv_backward(g, x, _flipped(W), s, p),
                      "dx uses the kernel flipped",
                      "each input pixel xp[i, c, r*stride + u, s*stride + v] collects "
                      "g[i, o, r, s] * W[o, c, u, v]: the same offsets as the forward pass"),))


# ------------------------------------------------------------------------ pooling
def _maxpool_make(rng: np.random.Generator, i: int) -> Inputs:
    n, c, h, w, k = pick([(2, 3, 4, 6, 2), (1, 2, 6, 6, 3), (3, 1, 4, 4, 2), (2, 2, 6, 4, 2),
                          (1, 1, 8, 8, 4)], i)
    if i == 3:  # ties: few distinct values
        x = rng.integers(0, 3, (n, c, h, w)).astype(np.float64)
    else:  # distinct values 0.01 apart: finite differences never cross a tie
        x = rng.permutation(n * c * h * w).reshape(n, c, h, w) * 0.01
    return {"g": rng.normal(size=(n, c, h // k, w // k)), "x": x, "k": k}


def _maxpool_numeric(d: Inputs) -> list[np.ndarray | None]:
    g, x, k = d.values()
    if len(np.unique(x)) < x.size:
        return [None]  # not differentiable at a tie
    return list(numeric_grads(lambda p: float(np.sum(g * ref.pool_forward(p["x"], k, k, "max")[0])),
                              {"x": x.copy()}, ["x"]))


def _spread(g: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(g, k, axis=2), k, axis=3)


def _all_ties(g: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    n, c, h, w = x.shape
    top = _spread(x.reshape(n, c, h // k, k, w // k, k).max(axis=(3, 5)), k)
    return np.asarray(_spread(g, k) * (x == top))


MAXPOOL_BACKWARD = Exercise(
    "maxpool_backward", "max pooling's backward pass (stride k)",
    "fn(g (n,c,h/k,w/k), x (n,c,h,w), k) -> dx", ("dx",), _maxpool_make,
    lambda d: [layer_dx(MaxPool2D(d["k"]), d["x"], d["g"])],
    "numeral's MaxPool2D.backward",
    {"dx": "dx is 0 except at each window's largest input (the first, if tied), which gets "
           "that window's g; shape like x"},
    numeric=_maxpool_numeric, upstream="g",
    mistakes=(Mistake("every_cell", lambda g, x, k: _spread(g, k),
                      "dx sends g to every cell of each window",
                      "only the window's largest input reached the output: it alone gets g, "
                      "the others 0"),
              Mistake("average", lambda g, x, k: _spread(g, k) / k**2,
                      "dx spreads g / k^2 over each window (average pooling's gradient)",
                      "max pooling sends all of g to the window's largest input"),
              Mistake("all_ties", _all_ties, "dx sends g to every tied maximum of a window",
                      "numeral (like PyTorch) sends g to the first largest only (np.argmax of "
                      "the window's values, row by row)")))


# ------------------------------------------------------------------- batch norm
def _batchnorm_make(rng: np.random.Generator, i: int) -> Inputs:
    shape = pick([(6, 4), (2, 3, 3, 4), (4, 3), (3, 2, 2, 2), (8, 5)], i)
    f = shape[1]
    per_feature = (1, f) + (1,) * (len(shape) - 2)
    x = rng.normal(rng.normal(0, 2, f).reshape(per_feature), rng.uniform(0.5, 2, f).reshape(
        per_feature), size=shape)
    return {"g": rng.normal(size=shape), "x": x, "gamma": rng.uniform(0.5, 2.0, f),
            "eps": BN_EPS}


def _batchnorm_answer(d: Inputs) -> Outputs:
    g, x, gamma, _ = d.values()
    _, dx, grads = run_layer(BatchNorm(), x, [gamma, np.zeros_like(gamma)], g)
    assert dx is not None
    return [dx, *grads]


def _batchnorm_numeric(d: Inputs) -> list[np.ndarray | None]:
    g, x, gamma, eps = d.values()
    point = {"x": x.copy(), "gamma": gamma.copy(), "beta": np.zeros_like(gamma)}
    return list(numeric_grads(lambda p: float(np.sum(g * ref.batchnorm_forward(
        p["x"], p["gamma"], p["beta"], eps)[0])), point, ["x", "gamma", "beta"]))


def _bn_variant(dx_of: Callable[..., np.ndarray], axes_of: Callable[[np.ndarray], tuple[int, ...]]
                = lambda x: (0,) if x.ndim == 2 else (0, 2, 3), ddof: int = 0) -> Fn:
    """A batch-norm backward whose dx is dx_of(g, xhat, scale, mean) with scale = gamma /
    sqrt(var + eps) and mean(v) the per-feature mean (dgamma and dbeta right)."""
    def backward(g: Any, x: Any, gamma: Any, eps: float) -> tuple[Any, Any, Any]:
        axes = axes_of(x)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        count = x.size // np.prod([x.shape[a] for a in range(x.ndim) if a not in axes])
        var = x.var(axis=axes, keepdims=True) * count / (count - ddof)
        xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(var + eps)
        scale = gamma.reshape(shape) / np.sqrt(var + eps)
        dx = dx_of(g, xhat, scale, lambda v: v.mean(axis=axes, keepdims=True))
        _, dgamma, dbeta = sol.batchnorm_backward(g, x, gamma, eps)
        return dx, dgamma, dbeta
    return backward


def _bn_no_gamma(g: Any, x: Any, gamma: Any, eps: float) -> tuple[Any, Any, Any]:
    _, dgamma, dbeta = sol.batchnorm_backward(g, x, gamma, eps)
    return sol.batchnorm_backward(g, x, np.ones_like(gamma), eps)[0], dgamma, dbeta


BN_FULL = ("dx = gamma / (N sqrt(var + eps)) (N g - sum g - xhat sum(g xhat)), the sums per "
           "feature over its N values")

BATCHNORM_BACKWARD = Exercise(
    "batchnorm_backward", "batch norm's backward pass (training mode)",
    "fn(g, x, gamma, eps) -> (dx, dgamma, dbeta)", ("dx", "dgamma", "dbeta"),
    _batchnorm_make, _batchnorm_answer, "numeral's BatchNorm.backward",
    {"dx": BN_FULL + "; shape like x",
     "dgamma": "dgamma = sum of g * xhat over the batch (axis 0, or 0, 2, 3 for images), "
               "shape like gamma",
     "dbeta": "dbeta = sum of g over the batch (axis 0, or 0, 2, 3 for images), shape like "
              "gamma"},
    numeric=_batchnorm_numeric, upstream="g",
    counts=lambda d: {"N": d["x"].size // d["gamma"].size, "n": len(d["x"])},
    mistakes=(
        Mistake("constant_stats", _bn_variant(lambda g, xh, s, mean: g * s),
                "dx treats the batch mean and variance as constants",
                "both depend on every x of the feature: " + BN_FULL),
        Mistake("constant_var", _bn_variant(lambda g, xh, s, mean: s * (g - mean(g))),
                "dx follows the mean's dependence on x but not the variance's", BN_FULL),
        Mistake("constant_mean",
                _bn_variant(lambda g, xh, s, mean: s * (g - xh * mean(g * xh))),
                "dx follows the variance's dependence on x but not the mean's", BN_FULL),
        Mistake("no_gamma", _bn_no_gamma, "dx is missing the factor gamma", BN_FULL),
        Mistake("unbiased", _bn_variant(lambda g, xh, s, mean: s * (g - mean(g) - xh * mean(
            g * xh)), ddof=1), "dx uses the unbiased variance (N - 1)",
                "training-mode batch norm divides by N: var = mean((x - mu)^2)"),
        Mistake("batch_axis_only", _bn_variant(
            lambda g, xh, s, mean: s * (g - mean(g) - xh * mean(g * xh)), lambda x: (0,)),
                "dx takes each feature's statistics over the batch axis only",
                "for images the statistics run over axes 0, 2 and 3: every pixel of a channel "
                "in every image"),
    ))


EXERCISES: dict[str, Exercise] = {ex.name: ex for ex in (
    SOFTMAX, DENSE_FORWARD, DENSE_BACKWARD, SIGMOID_BACKWARD, TANH_BACKWARD, RELU_BACKWARD,
    XAVIER, HE, L2, L1, DROPOUT_BACKWARD, SGD_MOMENTUM, ADAM, CONV_FORWARD, CONV_BACKWARD,
    MAXPOOL_BACKWARD, BATCHNORM_BACKWARD)}
