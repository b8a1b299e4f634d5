"""Back-propagation against central finite differences, every combination."""

from __future__ import annotations

import numpy as np
import pytest

from numeral.cli import main
from numeral.nn import ACTIVATIONS, Network, gradcheck
from numeral.nn.gradcheck import LAYER_NETWORKS, check_layer_network
from numeral.nn.layers import Sigmoid, parse_layer

REGULARISERS = {"none": (0.0, 0.0), "l1": (1e-2, 0.0), "l2": (0.0, 1e-1), "l1+l2": (1e-2, 1e-1)}


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("regulariser", list(REGULARISERS))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_backprop_matches_finite_differences(activation: str, regulariser: str,
                                             depth: int) -> None:
    rng = np.random.default_rng(depth)
    X, y = rng.normal(size=(5, 6)), rng.integers(0, 3, 5)
    widths = [5, 4, 6, 3][:depth]
    net = Network([6, *widths, 3], activation=activation, init="xavier", seed=depth,
                  dtype="float64")
    for b in net.biases:  # non-zero biases so their gradients are tested too
        b[...] = rng.normal(scale=0.1, size=b.shape)
    l1, l2 = REGULARISERS[regulariser]
    assert gradcheck(net, X, y, l1=l1, l2=l2).max_error < 1e-7


@pytest.mark.parametrize("extra", [{"label_smoothing": 0.1}, {"dropout_seed": 7}])
def test_backprop_with_label_smoothing_and_a_fixed_dropout_mask(extra: dict) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 5)), rng.integers(0, 4, 6)
    net = Network([5, 7, 6, 4], activation="tanh", init="xavier", seed=0, dtype="float64",
                  dropout=0.3)
    assert gradcheck(net, X, y, **extra).max_error < 1e-7


def test_standardised_inputs_backprop() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(5, 4)), rng.integers(0, 3, 5)
    net = Network([4, 5, 3], activation="sigmoid", init="xavier", dtype="float64")
    net.set_standardization(X.mean(axis=0), X.std(axis=0))
    assert gradcheck(net, X, y).max_error < 1e-7


def test_gradcheck_catches_a_wrong_backward_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sigmoid, "f_prime", lambda self, a, out: out.fill(1.0))  # drops f'
    rng = np.random.default_rng(0)
    net = Network([4, 5, 3], activation="sigmoid", init="xavier", dtype="float64")
    assert gradcheck(net, rng.normal(size=(5, 4)), rng.integers(0, 3, 5)).max_error > 1e-2


def test_gradcheck_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gradcheck", "--hidden", "4,3"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok") == len(ACTIVATIONS) + len(LAYER_NETWORKS) and "FAILED" not in out
    assert "conv-stride2-batchnorm" in out


CNNS = LAYER_NETWORKS


@pytest.mark.parametrize("regulariser", ["none", "l1+l2"])
@pytest.mark.parametrize("name", list(CNNS))
def test_every_layer_type_backprop_matches_finite_differences(name: str,
                                                               regulariser: str) -> None:
    result = check_layer_network(name, *REGULARISERS[regulariser])
    assert result.max_error < 1e-7, result.errors


@pytest.mark.parametrize(("layer", "shape"), [
    ("maxpool 2", (3, 6, 6)), ("maxpool 3 stride=2", (2, 7, 7)), ("maxpool 2", (1, 5, 5)),
    ("avgpool 3 stride=2", (2, 7, 7)), ("globalavgpool", (2, 3, 4)),
])
def test_pooling_backward_is_the_derivative_of_its_forward(layer: str,
                                                           shape: tuple[int, ...]) -> None:
    """d/dx of sum(w * pool(x)) against finite differences, on inputs without ties."""
    pool = parse_layer(layer)
    pool.build(shape, np.dtype("float64"))
    rng = np.random.default_rng(0)
    n = 2
    x = rng.permutation(n * int(np.prod(shape))).reshape(n, *shape) / 10.0  # distinct values
    w = rng.standard_normal((n, *pool.out_shape))

    def f(x: np.ndarray) -> float:
        return float((pool.forward(x, pool.buffers(n, True), True, None) * w).sum())

    buf = pool.buffers(n, True)
    pool.forward(x, buf, True, None)
    dx = pool.backward(w.copy(), buf, True)
    assert dx is not None
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = 1e-6
        numeric[i] = (f(x + step) - f(x - step)) / 2e-6
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-7)
