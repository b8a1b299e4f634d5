"""The plain reference implementation (numeral.nn.reference) and the fast layers agree."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from numeral.nn import Network, parallel
from numeral.nn import reference as ref
from tests.test_gradcheck import CNNS


@pytest.fixture(params=["blas-threads", "cut-products"])
def products(request, monkeypatch):
    """Both ways of running the products: on BLAS's threads, or cut over numeral's two
    threads with BLAS on one (numeral_threads), every product and part cut however small."""
    if request.param == "blas-threads":
        yield
        return
    monkeypatch.setattr(parallel, "MIN_PART", 1)
    monkeypatch.setattr(parallel, "MIN_PRODUCT", 1)
    parallel.set_threads(2)
    try:
        with threadpool_limits(1, user_api="blas"):
            parallel.set_own_cores(True)
            yield
    finally:
        parallel.set_own_cores(False)
        parallel.set_threads(None)


@pytest.mark.parametrize("name", list(CNNS))
def test_reference_gives_the_fast_paths_loss_and_gradients(name: str, products) -> None:
    layers, shape = CNNS[name]
    rng = np.random.default_rng(4)
    net = Network.from_layers(layers, input_shape=shape, seed=3, dtype="float64")
    X, y = rng.random((5, int(np.prod(shape)))), rng.integers(0, 5, 5)
    fast_loss, fast = net.loss_and_grads(X, y, l1=1e-3, l2=1e-2, dropout_seed=9)
    slow_loss, slow = ref.loss_and_grads(net, X, y, l1=1e-3, l2=1e-2, dropout_seed=9)
    assert slow_loss == pytest.approx(fast_loss, rel=1e-10)
    assert [g.shape for g in slow] == [p.shape for p in net.params]
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_reference_multi_layer_perceptron_with_standardisation() -> None:
    rng = np.random.default_rng(5)
    X, y = rng.random((6, 16)), rng.integers(0, 3, 6)
    net = Network([16, 7, 5, 3], activation=["sigmoid", "leaky_relu"], dtype="float64",
                  dropout=0.25, init="xavier")
    net.set_standardization(X.mean(axis=0), X.std(axis=0))
    fast_loss, fast = net.loss_and_grads(X, y, dropout_seed=1)
    slow_loss, slow = ref.loss_and_grads(net, X, y, dropout_seed=1)
    assert slow_loss == pytest.approx(fast_loss, rel=1e-10)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
