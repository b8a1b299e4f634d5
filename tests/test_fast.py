"""The fast paths of the core equal the plain ones: the convolution's two layouts, max
pooling's tiled path, and any number of threads (bit for bit)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from numeral.nn import Network, parallel
from numeral.nn import network as network_module
from numeral.nn.layers import Conv2D, MaxPool2D
from numeral.train.cores import numeral_threads

# float64: the layouts sum the same products in another order, so they agree to rounding,
# ~1e-13 relative for these sizes; a wrong column or a dropped offset is O(1).
RTOL = 1e-10


def _conv(out: int, c: int, side: int, padding: int | str, stride: int, n: int = 6):
    layer = Conv2D(out, 3, stride=stride, padding=padding)
    layer.build((c, side, side), np.dtype(np.float64))
    rng = np.random.default_rng(0)
    layer.params = [rng.standard_normal((out, c, 3, 3)), rng.standard_normal(out)]
    layer.grads = [np.empty_like(p) for p in layer.params]
    x = rng.standard_normal((n, c, side, side))
    g = rng.standard_normal((n, *layer.out_shape))
    buf = layer.buffers(n, True)
    y = layer.forward(x, buf, True, None).copy()
    dx = layer.backward(g.copy(), buf, True)
    assert dx is not None
    return [y, dx.copy(), *(gr.copy() for gr in layer.grads)]


@pytest.mark.parametrize("out,c,side,padding,stride", [
    (4, 1, 9, 0, 1), (5, 8, 7, 1, 1), (3, 8, 8, "same", 2), (6, 9, 6, 2, 1)])
def test_both_convolution_layouts_agree(monkeypatch, out, c, side, padding, stride):
    results = []
    for whole in (False, True):
        def layout(_: Conv2D, w: bool = whole) -> bool:
            return w

        monkeypatch.setattr(Conv2D, "whole_batch", property(layout))
        results.append(_conv(out, c, side, padding, stride))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.abs(a).max())


def test_tiled_max_pooling_gives_the_first_maximum_its_gradient():
    rng = np.random.default_rng(1)
    x = np.maximum(rng.standard_normal((5, 3, 9, 9)), 0.0)  # ReLU's zeros: many ties
    x[:, :, :8:2, :8:2] = x[:, :, 1::2, 1::2]  # more ties between offsets
    g = rng.standard_normal((5, 3, 4, 4))
    layer = MaxPool2D(2)
    layer.build((3, 9, 9), np.dtype(np.float64))
    buf = layer.buffers(5, True)
    y = layer.forward(x, buf, True, None).copy()
    dx = layer.backward(g.copy(), buf, True)
    plain_y, plain_dx = _plain_maxpool(x, g)
    np.testing.assert_array_equal(y, plain_y)
    np.testing.assert_array_equal(dx, plain_dx)


def _plain_maxpool(x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pooling by loops: the first offset (row-major) of the maximum gets g."""
    n, c, h, w = x.shape
    h, w = h // 2 * 2, w // 2 * 2  # the last odd row and column are in no window
    y = np.empty((n, c, h // 2, w // 2))
    dx = np.zeros_like(x)
    for i, ch, r, s in np.ndindex(n, c, h // 2, w // 2):
        window = x[i, ch, 2 * r : 2 * r + 2, 2 * s : 2 * s + 2].reshape(-1)
        a = int(np.argmax(window))  # first of ties
        y[i, ch, r, s] = window[a]
        dx[i, ch, 2 * r + a // 2, 2 * s + a % 2] = g[i, ch, r, s]
    return y, dx


def test_results_do_not_depend_on_the_thread_count(monkeypatch):
    """With the cores numeral's (BLAS on one thread), the element-wise parts and the matrix
    products run on any number of threads; each sample's values (each product's element)
    are the same operations, so a whole training step is bit for bit the same."""
    layers = ["conv 8 3", "relu", "maxpool 2", "conv 16 3", "relu", "maxpool 2", "flatten",
              "dense 32", "relu", "dense 10"]
    rng = np.random.default_rng(0)
    X = rng.random((96, 784), dtype=np.float32)
    y = rng.integers(0, 10, 96)
    grads = []
    cuts: list[int] = []
    run = parallel._run

    def counted(count: int, n: int, fn) -> None:
        cuts.append(count)
        run(count, n, fn)

    monkeypatch.setattr(parallel, "_run", counted)
    monkeypatch.setattr(parallel, "MIN_PART", 1)  # cut even these small arrays
    monkeypatch.setattr(parallel, "MIN_PRODUCT", 1)
    with threadpool_limits(1, user_api="blas"):
        parallel.set_own_cores(True)
        try:
            for count in (1, 2, 3):
                parallel.set_threads(count)
                net = Network.from_layers(layers, input_shape=(1, 28, 28), seed=0)
                loss = net.compute_gradients_(X, y)
                grads.append((loss, net.grad_flat.copy()))
        finally:
            parallel.set_threads(None)
            parallel.set_own_cores(False)
    # the 3-thread step's cuts: 15 element-wise, 11 products (the per-image convolution's 2,
    # no dx for the first layer; the whole batch's 3; 3 for each dense layer)
    assert cuts.count(3) == 26
    cuts.clear()
    net.compute_gradients_(X, y)  # the cores BLAS's again: nothing cut
    assert set(cuts) == {1}
    for loss, grad in grads[1:]:
        assert loss == grads[0][0]
        np.testing.assert_array_equal(grad, grads[0][1])


def test_numeral_threads_cut_the_products_on_one_blas_thread():
    """numeral_threads(): BLAS on one thread and the products cut while inside, as before
    after; the gradients equal those of BLAS's own threads (float32 rounding of one
    product, ~1e-7 relative: a reordered sum, not a changed one)."""
    layers = ["conv 8 3", "relu", "maxpool 2", "flatten", "dense 10"]
    rng = np.random.default_rng(1)
    X = rng.random((64, 784), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    net = Network.from_layers(layers, input_shape=(1, 28, 28), seed=0)
    net.compute_gradients_(X, y)
    plain = net.grad_flat.copy()
    before = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    parallel.set_threads(2)
    try:
        with numeral_threads(net):
            assert parallel.owns_cores()
            assert all(info["num_threads"] == 1 for info in threadpool_info()
                       if info["user_api"] == "blas")
            net.compute_gradients_(X, y)
    finally:
        parallel.set_threads(None)
    assert not parallel.owns_cores()
    assert [info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas"] == before
    with numeral_threads(Network([784, 16, 10])):  # no image layers: BLAS keeps its threads
        assert not parallel.owns_cores()
    np.testing.assert_allclose(net.grad_flat, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_relu_then_max_pooling_runs_as_pooling_then_relu_bit_for_bit(monkeypatch, dtype):
    """The network runs ``relu, maxpool`` as ``maxpool, relu`` (running_order); loss,
    gradients and logits are the plain order's bit for bit, on images with flat regions
    (ties in every window) and negative windows; the layer list and the model stay as
    written."""
    layers = ["conv 4 3", "relu", "maxpool 2", "conv 8 3", "relu", "maxpool 2 stride=1",
              "flatten", "dense 10"]
    rng = np.random.default_rng(2)
    X = rng.random((32, 784))
    X[:, :300] = 0.0  # flat: the first convolution's outputs tie there
    X[::3, 400:] = 1.0
    y = rng.integers(0, 10, 32)
    net = Network.from_layers(layers, input_shape=(1, 28, 28), seed=0, dtype=dtype)
    net.flat[:32] -= 0.3  # some windows wholly negative before the ReLU
    order = network_module.running_order(net.body, net.dtype)
    assert [layer.spec() for layer in order] == [
        "conv 4 3", "maxpool 2", "relu", "conv 8 3", "maxpool 2 stride=1", "relu", "flatten",
        "dense 10"]
    loss = net.compute_gradients_(X.astype(dtype), y)
    grads, logits = net.grad_flat.copy(), net.logits(X)
    plain = Network.from_layers(layers, input_shape=(1, 28, 28), seed=0, dtype=dtype)
    plain.flat[:] = net.flat
    monkeypatch.setattr(network_module, "running_order", lambda body, dtype: body)
    assert plain.compute_gradients_(X.astype(dtype), y) == loss
    np.testing.assert_array_equal(plain.grad_flat, grads)
    np.testing.assert_array_equal(plain.logits(X), logits)
    assert net.architecture == plain.architecture == ", ".join(layers)
