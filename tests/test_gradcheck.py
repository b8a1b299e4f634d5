"""Back-propagation against central finite differences, every combination."""

from __future__ import annotations

import numpy as np
import pytest

from numeral.cli import main
from numeral.nn import ACTIVATIONS, Network, gradcheck
from numeral.nn.activations import Sigmoid

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
    monkeypatch.setattr(Sigmoid, "backward_", lambda self, a, grad, scratch: None)  # drops f'
    rng = np.random.default_rng(0)
    net = Network([4, 5, 3], activation="sigmoid", init="xavier", dtype="float64")
    assert gradcheck(net, rng.normal(size=(5, 4)), rng.integers(0, 3, 5)).max_error > 1e-2


def test_gradcheck_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gradcheck", "--hidden", "4,3"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok") == len(ACTIVATIONS) and "FAILED" not in out
