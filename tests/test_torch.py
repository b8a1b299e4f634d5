"""numeral's gradients against PyTorch autograd's, through every fast path: the reference
CNN's layers with both convolution layouts, relu-then-maxpool run reordered, and the products
on BLAS's threads or cut over numeral's (float64, so rounding is ~1e-15 relative; a wrong
path is O(1)). Runs where PyTorch is installed (``pip install torch``; not a dependency)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from numeral.nn import Network, parallel
from numeral.nn.layers import Conv2D

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install torch")

LAYERS = ["conv 8 3", "relu", "maxpool 2", "conv 16 3 padding=same", "relu", "maxpool 2",
          "conv 16 3", "relu", "flatten", "dense 24", "relu", "dense 10"]


def torch_model(net: Network):
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 16, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 24), nn.ReLU(), nn.Linear(24, 10)).double()
    mine = [layer for layer in net.body if layer.params]
    theirs = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for a, b in zip(mine, theirs, strict=True):
            W, bias = a.params
            b.weight.copy_(torch.from_numpy(W if W.ndim == 4 else W.T))
            b.bias.copy_(torch.from_numpy(bias))
    return model, theirs


@pytest.mark.parametrize("cut", [False, True], ids=["blas-threads", "numeral-threads"])
@pytest.mark.parametrize("whole_batch", [False, True], ids=["per-image", "whole-batch"])
def test_gradients_equal_pytorch_autograd(monkeypatch, cut, whole_batch):
    monkeypatch.setattr(Conv2D, "whole_batch", property(lambda self: whole_batch))
    rng = np.random.default_rng(0)
    X = rng.random((12, 784))
    X[:, :200] = 0.0  # a flat band: ties in the max pooling windows
    y = rng.integers(0, 10, 12)
    net = Network.from_layers(LAYERS, input_shape=(1, 28, 28), seed=0, dtype="float64")
    for bias in net.biases:  # positive: the flat band's tied maxima pass the ReLU
        bias[...] = rng.uniform(0.05, 0.2, bias.shape)
    model, theirs = torch_model(net)
    if cut:
        monkeypatch.setattr(parallel, "MIN_PART", 1)
        monkeypatch.setattr(parallel, "MIN_PRODUCT", 1)
        parallel.set_threads(2)
    try:
        with threadpool_limits(1 if cut else None, user_api="blas"):
            parallel.set_own_cores(cut)
            loss = net.compute_gradients_(X, y)
    finally:
        parallel.set_own_cores(False)
        parallel.set_threads(None)
    out = model(torch.from_numpy(X).reshape(-1, 1, 28, 28))
    expected = torch.nn.functional.cross_entropy(out, torch.from_numpy(y))
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    mine = [layer for layer in net.body if layer.params]
    for a, b in zip(mine, theirs, strict=True):
        gW, gb = a.grads
        np.testing.assert_allclose(gW if gW.ndim == 4 else gW.T, b.weight.grad.numpy(),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gb, b.bias.grad.numpy(), rtol=1e-9, atol=1e-12)
