"""numeral.course.check: every reference solution passes; typical wrong answers fail with
the right diagnosis, and nothing raises out of check()."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from numeral.course import CheckResult, check, exercises, solution
from numeral.course.exercises import EXERCISES

SPEC = ["softmax_cross_entropy", "dense_forward", "dense_backward", "sigmoid_backward",
        "tanh_backward", "relu_backward", "xavier_init", "he_init", "l2_penalty", "l1_penalty",
        "dropout_backward", "sgd_momentum_step", "adam_step", "conv_forward", "conv_backward",
        "maxpool_backward", "batchnorm_backward"]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def onehot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[y]


def run(name: str, fn: Callable[..., Any]) -> CheckResult:
    result = check(name, fn, verbose=False)
    assert isinstance(result, CheckResult)
    return result


def test_exercises_are_the_specified_ones() -> None:
    names = [name for name, _, _ in exercises()]
    assert names == SPEC
    assert all(isinstance(d, str) and d and s.startswith("fn(") for _, d, s in exercises())


@pytest.mark.parametrize("name", SPEC)
def test_the_reference_solution_passes(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = check(name, solution(name))
    assert result.passed and result.kind == "ok" and bool(result), result.message
    assert result.message.startswith(f"✓ {name}: matches ")
    assert capsys.readouterr().out == result.message + "\n"  # one line


def test_a_right_but_different_draw_passes_the_statistical_checks() -> None:
    def xavier(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        a = np.sqrt(6 / (fan_in + fan_out))
        return np.asarray(a * (2 * rng.random((fan_in, fan_out)) - 1))

    def he(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in))

    assert run("xavier_init", xavier).passed
    assert run("he_init", he).passed


def _mean_loss(z: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(softmax(z)[np.arange(len(y)), y]).mean())


def _naive_softmax_ce(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return float(-np.log(p[np.arange(len(y)), y]).mean()), (p - onehot(y, z.shape[1])) / len(y)


def _adam(bias: bool = True, eps_inside: bool = False) -> Callable[..., Any]:
    def step(p: Any, g: Any, m: Any, v: Any, t: int, lr: float, b1: float, b2: float,
             eps: float) -> tuple[Any, Any, Any]:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mh, vh = (m / (1 - b1**t), v / (1 - b2**t)) if bias else (m, v)
        return p - lr * mh / (np.sqrt(vh + eps) if eps_inside else np.sqrt(vh) + eps), m, v
    return step


def _bn_constant_stats(g: Any, x: Any, gamma: Any, eps: float) -> tuple[Any, Any, Any]:
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    var = x.var(axis=axes, keepdims=True)
    xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(var + eps)
    return (g * gamma.reshape(shape) / np.sqrt(var + eps), (g * xhat).sum(axis=axes),
            g.sum(axis=axes))


def _maxpool_every_cell(g: Any, x: Any, k: int) -> Any:
    return np.kron(g, np.ones((k, k)))


def _maxpool_all_ties(g: Any, x: Any, k: int) -> Any:
    top = np.kron(x.reshape(*x.shape[:2], x.shape[2] // k, k, x.shape[3] // k, k)
                  .max(axis=(3, 5)), np.ones((k, k)))
    return np.kron(g, np.ones((k, k))) * (x == top)


def _raises(*args: Any) -> Any:
    raise ValueError("my bug")


def _placeholder(*args: Any) -> Any:
    raise NotImplementedError


# (exercise, wrong function, expected kind, words the message must contain)
WRONG: list[tuple[str, Callable[..., Any], str, str]] = [
    ("dense_backward", lambda g, x, W: (g @ W.T, g.T @ x, g.sum(axis=0)), "transposed",
     "dW is the transpose of the right answer. Hint: dL/dW = x^T g"),
    ("dense_backward", lambda g, x, W: (g @ W.T, x.T @ g, g.mean(axis=0)), "factor_1/n",
     "db is 1/n = 1/4 of the right answer"),
    ("dense_backward", lambda g, x, W: (g @ W.T, x.T @ g, g.sum(axis=1)), "shape",
     "db has shape (4,), expected (3,)"),
    ("dense_backward", lambda g, x, W: (g @ W, x.T @ g, g.sum(axis=0)), "exception",
     "raised ValueError: matmul"),
    ("dense_backward", lambda g, x, W: (-(g @ W.T), -(x.T @ g), -g.sum(axis=0)), "sign",
     "dx has the wrong sign"),
    ("dense_backward", lambda g, x, W: (g @ W.T, x.T @ g), "count",
     "returned 2 values, expected 3"),
    ("dense_backward", lambda g, x, W: g @ W.T, "count", "returned one value, expected 3"),
    ("dense_forward", lambda x, W, b: x @ W, "no_bias", "the bias b is not added"),
    ("dense_forward", lambda x, W, b: (x @ W + b).T, "transposed", "z is the transpose"),
    ("softmax_cross_entropy",
     lambda z, y: (_mean_loss(z, y), softmax(z) - onehot(y, z.shape[1])), "factor_n",
     "dz is n = 4 times the right answer: the 1/n is missing"),
    ("softmax_cross_entropy",
     lambda z, y: (len(y) * _mean_loss(z, y), (softmax(z) - onehot(y, z.shape[1])) / len(y)),
     "factor_n", "loss is n = 4 times the right answer"),
    ("softmax_cross_entropy",
     lambda z, y: (_mean_loss(z, y), (onehot(y, z.shape[1]) - softmax(z)) / len(y)), "sign",
     "dz has the wrong sign"),
    ("softmax_cross_entropy", lambda z, y: (_mean_loss(z, y), softmax(z) / len(y)), "no_onehot",
     "onehot(y) is not subtracted"),
    ("softmax_cross_entropy", _naive_softmax_ce, "nan", "subtract each row's max"),
    ("sigmoid_backward", lambda g, a: a * (1 - a), "no_upstream",
     "dz is not multiplied by the upstream gradient g"),
    ("sigmoid_backward", lambda g, a: -g * a * (1 - a), "sign", "dz has the wrong sign"),
    ("sigmoid_backward", lambda g, a: g / (1 + np.exp(-a)) * (1 - 1 / (1 + np.exp(-a))),
     "a_as_z", "applies the sigmoid to a again"),
    ("sigmoid_backward", _raises, "exception", "your function raised ValueError: my bug"),
    ("sigmoid_backward", _placeholder, "exception", "NotImplementedError"),
    ("sigmoid_backward", lambda g, a: None, "none", "returned None"),
    ("sigmoid_backward", lambda g, a: "dz", "type", "dz is a str"),
    ("tanh_backward", lambda g, a: g * (1 - a), "no_square", "dz is g (1 - a)"),
    ("tanh_backward", lambda g, a: 1 - a**2, "no_upstream", "upstream gradient g"),
    ("relu_backward", lambda g, z: (z > 0) * 1.0, "no_upstream", "upstream gradient g"),
    ("relu_backward", lambda g, z: g * np.maximum(z, 0), "times_relu", "not g times its slope"),
    ("xavier_init", lambda fi, fo, rng: rng.uniform(-np.sqrt(6 / fi), np.sqrt(6 / fi), (fi, fo)),
     "bound", "= sqrt(6 / fan_in), but the bound is a = sqrt(6 / (fan_in + fan_out))"),
    ("xavier_init", lambda fi, fo, rng: rng.normal(0, np.sqrt(2 / (fi + fo)), (fi, fo)),
     "distribution", "not spread evenly"),
    ("xavier_init", lambda fi, fo, rng: np.zeros((fi, fo)), "constant", "every weight is 0"),
    ("xavier_init", lambda fi, fo, rng: solution("xavier_init")(fo, fi, rng), "transposed",
     "expected (fan_in, fan_out)"),
    ("xavier_init", lambda fi, fo, rng: np.random.default_rng().uniform(-1, 1, (fi, fo)), "rng",
     "the rng you are given"),
    ("xavier_init", lambda fi, fo, rng: rng.uniform(0, np.sqrt(6 / (fi + fo)), (fi, fo)), "mean",
     "mean is"),
    ("he_init", lambda fi, fo, rng: rng.normal(0, 2 / fi, (fi, fo)), "std",
     "= 2 / fan_in (the variance), but He's is sqrt(2 / fan_in)"),
    ("he_init", solution("xavier_init"), "distribution", "a normal distribution puts 4.6%"),
    ("l2_penalty", lambda W, l2: (l2 * np.sum(W**2), l2 * W), "factor",
     "R is twice the right answer"),
    ("l1_penalty", lambda W, l1: (l1 * np.abs(W).sum(), l1 * W), "no_sign", "dR is l1 W"),
    ("dropout_backward", lambda g, mask: g * (mask > 0), "unscaled", "1 / (1 - p)"),
    ("dropout_backward", lambda g, mask: mask, "no_upstream", "upstream gradient g"),
    ("sgd_momentum_step", lambda p, g, v, lr, mu: (p + v, mu * v - lr * g), "old_v",
     "the old velocity"),
    ("sgd_momentum_step", lambda p, g, v, lr, mu: (p - (mu * v + lr * g), mu * v + lr * g),
     "sign", "v_new has the wrong sign"),
    ("adam_step", _adam(bias=False), "no_bias_correction", "without the bias correction"),
    ("adam_step", _adam(eps_inside=True), "eps_inside", "eps is inside the square root"),
    ("conv_forward", lambda x, W, b, s, p: solution("conv_forward")(x, W[:, :, ::-1, ::-1], b, s,
                                                                    p),
     "flipped", "flips the kernel"),
    ("conv_forward", lambda x, W, b, s, p: solution("conv_forward")(x, W, b, s, p)
     .transpose(0, 2, 3, 1), "axes", "axes in another order"),
    ("conv_backward", lambda g, x, W, s, p: (*solution("conv_backward")(g, x, W, s, p)[:2],
                                             g.mean(axis=(0, 2, 3))),
     "factor_1/n", "db is 1/(n·ho·wo) = 1/24 of the right answer"),
    ("maxpool_backward", _maxpool_every_cell, "every_cell", "g to every cell of each window"),
    ("maxpool_backward", _maxpool_all_ties, "all_ties", "every tied maximum"),
    ("batchnorm_backward", _bn_constant_stats, "constant_stats",
     "treats the batch mean and variance as constants"),
    ("batchnorm_backward", lambda g, x, gamma, eps: solution("batchnorm_backward")(g, x, gamma, 0),
     "precision", "off by 1e-05 of its size"),
    ("batchnorm_backward", lambda g, x, gamma, eps: (0 * x, 0 * gamma, 0 * gamma), "zeros",
     "dx is all zeros"),
    ("dense_backward", lambda g, x, W: [a.astype(np.float32)
                                        for a in solution("dense_backward")(g, x, W)],
     "dtype", "dx is float32"),
    ("conv_backward", lambda g, x, W, s, p: solution("conv_backward")(g, x, W, s, p)[::-1],
     "order", "dx is where db belongs. Hint: return dx, dW, db, in this order"),
    ("adam_step", lambda p, g, m, v, t, lr, b1, b2, eps: (p, m, None), "none", "v_new is None"),
]


@pytest.mark.parametrize(("name", "fn", "kind", "words"), WRONG,
                         ids=[f"{w[0]}-{w[2]}-{i}" for i, w in enumerate(WRONG)])
def test_a_typical_mistake_fails_with_its_hint(name: str, fn: Callable[..., Any], kind: str,
                                               words: str) -> None:
    result = run(name, fn)
    assert not result.passed and not result
    assert result.kind == kind, result.message
    assert words in result.message, result.message
    assert result.message.startswith(f"✗ {name}: ") and "Hint: " in result.message
    assert "\n" not in result.message


def test_every_listed_mistake_is_recognised() -> None:
    """Each mistake of the table, run as a learner's function, is diagnosed as itself."""
    for ex in EXERCISES.values():
        for mistake in ex.mistakes:
            result = run(ex.name, mistake.fn)
            assert result.kind == mistake.key, (ex.name, result.message)


def test_a_printed_result_is_not_displayed_twice(capsys: pytest.CaptureFixture[str]) -> None:
    shown = check("dense_forward", solution("dense_forward"))
    shown._ipython_display_()
    quiet = check("dense_forward", solution("dense_forward"), verbose=False)
    quiet._ipython_display_()
    assert capsys.readouterr().out == 2 * (shown.message + "\n")


def test_the_failing_problem_is_described() -> None:
    result = run("dense_backward", lambda g, x, W: (g @ W.T, g.T @ x, g.sum(axis=0)))
    assert result.details == "(problem 1 of 5: g (4, 3), x (4, 5), W (5, 3))"


def test_an_exception_names_the_line_and_the_shapes() -> None:
    def mine(g: np.ndarray, x: np.ndarray, W: np.ndarray) -> Any:
        dx = g @ W  # wrong: W^T
        return dx, x.T @ g, g.sum(axis=0)

    result = run("dense_backward", mine)
    assert "(line " in result.message and "dx = g @ W  # wrong: W^T" in result.message
    assert "the inputs were g (4, 3), x (4, 5), W (5, 3)" in result.message


def test_check_never_raises() -> None:
    assert run("no_such_exercise", solution("dense_forward")).kind == "unknown"
    assert run("dense_forward", 3).kind == "not_callable"  # type: ignore[arg-type]
    assert run("dense_forward", lambda: 0).kind == "exception"
    assert run("conv_backward", lambda *a: (1, 2, 3)).kind == "shape"
    assert run("adam_step", lambda *a: a).kind == "count"


def test_inputs_changed_in_place_do_not_corrupt_the_check() -> None:
    def in_place(g: np.ndarray, a: np.ndarray) -> np.ndarray:
        g *= a * (1 - a)
        return g

    assert run("sigmoid_backward", in_place).passed


def test_importing_the_course_is_cheap_and_nn_does_not_need_it() -> None:
    code = ("import sys, numeral.nn; assert 'numeral.course' not in sys.modules; "
            "import numeral.course; assert 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
