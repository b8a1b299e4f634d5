"""The fast paths of the core equal the plain ones: the convolution's two layouts, max
pooling's tiled path, and any number of threads (bit for bit)."""

from __future__ import annotations

import numpy as np
import pytest

from numeral.nn import Network, parallel
from numeral.nn.layers import Conv2D, MaxPool2D

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


def test_results_do_not_depend_on_the_thread_count():
    """The element-wise parts run on any number of threads; each sample's values are the
    same operations, so a whole training step is bit for bit the same."""
    layers = ["conv 8 3", "relu", "maxpool 2", "conv 16 3", "relu", "maxpool 2", "flatten",
              "dense 10"]
    rng = np.random.default_rng(0)
    X = rng.random((96, 784), dtype=np.float32)
    y = rng.integers(0, 10, 96)
    grads = []
    saved = parallel.MIN_PART
    try:
        parallel.MIN_PART = 1  # cut even these small arrays
        for count in (1, 2, 3):
            parallel.set_threads(count)
            net = Network.from_layers(layers, input_shape=(1, 28, 28), seed=0)
            loss = net.compute_gradients_(X, y)
            grads.append((loss, net.grad_flat.copy()))
    finally:
        parallel.set_threads(None)
        parallel.MIN_PART = saved
    for loss, grad in grads[1:]:
        assert loss == grads[0][0]
        np.testing.assert_array_equal(grad, grads[0][1])
