"""The mathematics of every layer, written plainly: to read beside the fast code.

Each layer is a pair of functions, ``*_forward`` returning its output and a cache, and
``*_backward`` taking the gradient of that output and returning the gradient of its input
(and of its parameters). No buffers, no in-place tricks, and loops where a loop is clearer
than an index trick; the tests check that these give the same gradients as
:mod:`numeral.nn.layers` (``test_reference.py``). :func:`loss_and_grads` runs a
:class:`~numeral.nn.Network`'s layers through them, in the forward order, then backward in
the reverse order, as Nielsen's ``network2.py`` and Karpathy's ``llm.c`` do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Cache = Any


# --------------------------------------------------------------------------- dense
def dense_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    """z = x W + b."""
    return x @ W + b, x


def dense_backward(g: np.ndarray, x: Cache, W: np.ndarray) -> tuple[np.ndarray, ...]:
    """dL/dx = g W^T,  dL/dW = x^T g,  dL/db = sum over rows of g."""
    return g @ W.T, x.T @ g, g.sum(axis=0)


# --------------------------------------------------------------------- activations
def activation_forward(z: np.ndarray, name: str) -> tuple[np.ndarray, Cache]:
    a = {"sigmoid": lambda: 1 / (1 + np.exp(-z)), "tanh": lambda: np.tanh(z),
         "relu": lambda: np.maximum(z, 0), "leaky_relu": lambda: np.where(z > 0, z, 0.01 * z),
         "identity": lambda: z}[name]()
    return a, (a, name)


def activation_backward(g: np.ndarray, cache: Cache) -> np.ndarray:
    """dL/dz = dL/da * f'(z), with f' written in terms of a = f(z)."""
    a, name = cache
    slope = {"sigmoid": lambda: a * (1 - a), "tanh": lambda: 1 - a * a,
             "relu": lambda: (a > 0) * 1.0, "leaky_relu": lambda: np.where(a > 0, 1.0, 0.01),
             "identity": lambda: np.ones_like(a)}[name]()
    return g * slope


# ------------------------------------------------------------------------- dropout
def dropout_forward(x: np.ndarray, p: float,
                    rng: np.random.Generator | None) -> tuple[np.ndarray, Cache]:
    """y = x * mask, mask = [u >= p] / (1 - p) with u ~ U(0, 1); y = x without rng."""
    if rng is None or p == 0:
        return x, None
    mask = (rng.random(x.shape, dtype=x.dtype) >= p) / (1 - p)
    return x * mask, mask


def dropout_backward(g: np.ndarray, mask: Cache) -> np.ndarray:
    return g if mask is None else g * mask


# ------------------------------------------------------------------------ conv 2-D
def conv_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int,
                 pad: int) -> tuple[np.ndarray, Cache]:
    """y[i, o, r, s] = b[o] + sum_{c, u, v} W[o, c, u, v] xp[i, c, r*stride + u, s*stride + v],
    xp the input padded with ``pad`` zeros on each side."""
    n, _, h, w = x.shape
    out_c, _, k, _ = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    y = np.zeros((n, out_c, ho, wo)) + b[None, :, None, None]
    for u in range(k):
        for v in range(k):  # the input pixels every output pixel reads at kernel offset (u, v)
            patch = xp[:, :, u : u + stride * ho : stride, v : v + stride * wo : stride]
            y += np.einsum("icrs,oc->iors", patch, W[:, :, u, v])
    return y, (xp, W, stride, pad, x.shape)


def conv_backward(g: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """The same sums read the other way: each weight collects g times the pixels it met;
    each pixel collects g times the weights that met it."""
    xp, W, stride, pad, shape = cache
    _, _, k, _ = W.shape
    _, _, ho, wo = g.shape
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for u in range(k):
        for v in range(k):
            window = (slice(None), slice(None), slice(u, u + stride * ho, stride),
                      slice(v, v + stride * wo, stride))
            dW[:, :, u, v] = np.einsum("iors,icrs->oc", g, xp[window])
            dxp[window] += np.einsum("iors,oc->icrs", g, W[:, :, u, v])
    h, w = shape[2:]
    return dxp[:, :, pad : pad + h, pad : pad + w], dW, g.sum(axis=(0, 2, 3))


# ------------------------------------------------------------------------ pooling
def pool_forward(x: np.ndarray, k: int, stride: int, kind: str) -> tuple[np.ndarray, Cache]:
    """y[i, c, r, s] = max (kind "max") or mean (kind "mean") of the window
    x[i, c, r*stride : r*stride + k, s*stride : s*stride + k]."""
    if kind not in ("max", "mean"):
        raise ValueError(f"pool kind must be 'max' or 'mean', got {kind!r}")
    n, c, h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    y = np.zeros((n, c, ho, wo))
    for r in range(ho):
        for s in range(wo):
            window = x[:, :, r * stride : r * stride + k, s * stride : s * stride + k]
            y[:, :, r, s] = window.max(axis=(2, 3)) if kind == "max" else window.mean(axis=(2, 3))
    return y, (x, k, stride, kind)


def pool_backward(g: np.ndarray, cache: Cache) -> np.ndarray:
    """max: all of g to the window's (first) largest input; mean: g / k^2 to each input."""
    x, k, stride, kind = cache
    dx = np.zeros_like(x)
    n, c, ho, wo = g.shape
    for r in range(ho):
        for s in range(wo):
            rows, cols = slice(r * stride, r * stride + k), slice(s * stride, s * stride + k)
            if kind == "mean":
                dx[:, :, rows, cols] += g[:, :, r, s, None, None] / (k * k)
                continue
            window = x[:, :, rows, cols].reshape(n, c, k * k)
            first = window.argmax(axis=2)
            for i in range(n):
                for ch in range(c):
                    u, v = divmod(first[i, ch], k)
                    dx[i, ch, r * stride + u, s * stride + v] += g[i, ch, r, s]
    return dx


# ------------------------------------------------------------------ batch norm
def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      eps: float = 1e-5) -> tuple[np.ndarray, Cache]:
    """Training mode: normalise each feature (channel) by the batch's mean and biased
    variance, then y = gamma xhat + beta."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu = x.mean(axis=axes).reshape(shape)
    var = ((x - mu) ** 2).mean(axis=axes).reshape(shape)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma.reshape(shape) * xhat + beta.reshape(shape), (xhat, var, gamma, eps, axes)


def batchnorm_backward(g: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """Through xhat, the mean and the variance (each depends on every x of the feature)."""
    xhat, var, gamma, eps, axes = cache
    shape = var.shape
    count = g.size // gamma.size
    dgamma, dbeta = (g * xhat).sum(axis=axes), g.sum(axis=axes)
    dxhat = g * gamma.reshape(shape)
    dx = (count * dxhat - dxhat.sum(axis=axes).reshape(shape)
          - xhat * (dxhat * xhat).sum(axis=axes).reshape(shape)) / (count * np.sqrt(var + eps))
    return dx, dgamma, dbeta


# ------------------------------------------------------------------------- the loss
def softmax_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(z) against labels y, and its gradient (p - onehot) / n."""
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(p[np.arange(n), y]).mean()
    p[np.arange(n), y] -= 1
    return float(loss), p / n


# ------------------------------------------------------------------- a whole network
def loss_and_grads(net: Any, X: np.ndarray, y: np.ndarray, l1: float = 0.0, l2: float = 0.0,
                   dropout_seed: int | None = None) -> tuple[float, list[np.ndarray]]:
    """What ``net.loss_and_grads`` computes, through the functions above (float64)."""
    rng = np.random.default_rng(dropout_seed) if dropout_seed is not None else None
    x = net.inputs(X).astype(np.float64).reshape(len(X), *net.inputs.shape)
    caches = []
    for layer in net.body:  # forward
        params = [p.astype(np.float64) for p in layer.params]
        kind = layer.name
        if kind == "dense":
            x, cache = dense_forward(x, *params)
        elif kind == "conv":
            x, cache = conv_forward(x, params[0], params[1], layer.stride, layer.pad)
        elif kind in ("maxpool", "avgpool"):
            x, cache = pool_forward(x, layer.kernel, layer.stride,
                                    "max" if kind == "maxpool" else "mean")
        elif kind == "globalavgpool":
            x, cache = x.mean(axis=(2, 3)), x.shape
        elif kind == "batchnorm":
            x, cache = batchnorm_forward(x, *params)
        elif kind == "dropout":
            x, cache = dropout_forward(x, layer.p, rng)
        elif kind == "flatten":
            x, cache = x.reshape(len(x), -1), x.shape
        elif kind == "standardize":
            x, cache = (x - layer.mean) * layer.scale, None
        else:
            x, cache = activation_forward(x, kind)
        caches.append((layer, params, cache))
    loss, g = softmax_cross_entropy(x, np.asarray(y))
    grads: list[list[np.ndarray]] = []
    for layer, params, cache in reversed(caches):  # backward, in the reverse order
        kind = layer.name
        own: list[np.ndarray] = []
        if kind == "dense":
            g, *own = dense_backward(g, cache, params[0])
        elif kind == "conv":
            g, *own = conv_backward(g, cache)
        elif kind in ("maxpool", "avgpool"):
            g = pool_backward(g, cache)
        elif kind == "globalavgpool":
            g = np.broadcast_to(g[:, :, None, None], cache) / (cache[2] * cache[3])
        elif kind == "batchnorm":
            g, *own = batchnorm_backward(g, cache)
        elif kind == "dropout":
            g = dropout_backward(g, cache)
        elif kind == "flatten":
            g = g.reshape(cache)
        elif kind == "standardize":
            g = g * layer.scale
        else:
            g = activation_backward(g, cache)
        if kind in ("dense", "conv"):  # the penalties, on weights only
            W = params[0]
            loss += l1 * np.abs(W).sum() + 0.5 * l2 * (W * W).sum()
            own[0] = own[0] + l1 * np.sign(W) + l2 * W
        grads.append(own)
    return float(loss), [grad for own in reversed(grads) for grad in own]
