"""Normalisation: values rescaled by statistics, learned (BatchNorm) or fixed (Standardize)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numeral.nn.errors import InputError
from numeral.nn.layers.base import Buffers, Layer, Shape, out_buffer

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


class BatchNorm(Layer):
    """``batchnorm``: each feature (each channel, for images) normalised over the batch, then
    scaled and shifted (Ioffe & Szegedy 2015). With N values per feature in the batch (n, or
    n H W for images), training mode:

    forward     mu = mean x,   var = mean (x - mu)^2   (biased),   xhat = (x - mu) / sqrt(var + eps)
                y = gamma xhat + beta
    backward    dL/dbeta = sum g,   dL/dgamma = sum g xhat
                dL/dx = gamma / (N sqrt(var + eps)) (N g - dL/dbeta - xhat dL/dgamma)

    and the running statistics move towards the batch's: r <- (1 - 0.1) r + 0.1 batch value
    (the variance unbiased, N / (N - 1) var, as PyTorch keeps it). Evaluation mode normalises
    with the running statistics instead: y = gamma (x - r_mean) / sqrt(r_var + eps) + beta.
    eps = 1e-5. The running statistics are saved with the model but are not parameters.
    """

    name = "batchnorm"
    param_names = ("gamma", "beta")

    def export(self) -> dict[str, Any]:
        """Evaluation mode: the scale and shift, and the running statistics."""
        gamma, beta = self.params
        return {"type": self.name, "eps": BN_EPS,
                "arrays": {"gamma": gamma, "beta": beta, "mean": self.running_mean,
                           "var": self.running_var}}

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) not in (1, 3):
            raise InputError(f"batchnorm reads vectors or images, not samples of shape "
                             f"{in_shape}")
        return in_shape

    @property
    def features(self) -> int:
        return self.in_shape[0]

    @property
    def axes(self) -> tuple[int, ...]:
        """The axes a feature's statistics run over: the batch, and for images the pixels."""
        return (0,) if len(self.in_shape) == 1 else (0, 2, 3)

    def per_feature(self, v: np.ndarray) -> np.ndarray:
        """A (C,) vector as a view that broadcasts over (n, C) or (n, C, H, W)."""
        return v.reshape((1, -1) + (1,) * (len(self.in_shape) - 1))

    def build(self, in_shape: Shape, dtype: np.dtype[Any]) -> Shape:
        out = super().build(in_shape, dtype)
        self.running_mean = np.zeros(self.features, self.dtype)
        self.running_var = np.ones(self.features, self.dtype)
        return out

    def param_shapes(self) -> list[Shape]:
        return [(self.features,), (self.features,)]

    def init_params(self, rng: np.random.Generator, init: str) -> None:
        self.params[0][...] = 1.0  # gamma = 1, beta = 0: starts as plain normalisation

    def state(self) -> dict[str, np.ndarray]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def buffers(self, n: int, train: bool) -> Buffers:
        f = self.features
        buf = {"out": out_buffer(self, n), "mu": np.empty(f, self.dtype),
               "var": np.empty(f, self.dtype), "inv_std": np.empty(f, self.dtype)}
        if train:
            buf["xhat"] = out_buffer(self, n)
            buf["tmp"] = out_buffer(self, n)
        return buf

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        gamma, beta = (self.per_feature(p) for p in self.params)
        out, mu, var, inv_std = buf["out"], buf["mu"], buf["var"], buf["inv_std"]
        b = self.per_feature
        if not train:  # y = gamma (x - r_mean) / sqrt(r_var + eps) + beta
            np.add(self.running_var, BN_EPS, out=inv_std)
            np.sqrt(inv_std, out=inv_std)
            np.divide(self.params[0], inv_std, out=inv_std)  # gamma / sqrt(r_var + eps)
            np.subtract(x, b(self.running_mean), out=out)
            out *= b(inv_std)
            out += beta
            return out
        xhat = buf["xhat"]
        np.mean(x, axis=self.axes, out=mu)
        np.subtract(x, b(mu), out=xhat)  # x - mu
        np.multiply(xhat, xhat, out=out)
        np.mean(out, axis=self.axes, out=var)  # biased variance
        np.add(var, BN_EPS, out=inv_std)
        np.sqrt(inv_std, out=inv_std)
        np.divide(1.0, inv_std, out=inv_std)
        xhat *= b(inv_std)  # xhat = (x - mu) / sqrt(var + eps)
        np.multiply(xhat, gamma, out=out)
        out += beta  # y = gamma xhat + beta
        count = x.size // self.features
        unbias = count / max(count - 1, 1)
        self.running_mean *= 1.0 - BN_MOMENTUM
        self.running_mean += BN_MOMENTUM * mu
        self.running_var *= 1.0 - BN_MOMENTUM
        self.running_var += (BN_MOMENTUM * unbias) * var
        return out

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        g_gamma, g_beta = self.grads
        xhat, tmp, inv_std = buf["xhat"], buf["tmp"], buf["inv_std"]
        b = self.per_feature
        np.sum(grad, axis=self.axes, out=g_beta)  # dL/dbeta = sum g
        np.multiply(grad, xhat, out=tmp)
        np.sum(tmp, axis=self.axes, out=g_gamma)  # dL/dgamma = sum g xhat
        if not need_dx:
            return None
        count = grad.size // self.features
        np.multiply(xhat, b(g_gamma), out=tmp)  # xhat dL/dgamma
        grad *= count
        grad -= b(g_beta)
        grad -= tmp  # N g - dL/dbeta - xhat dL/dgamma
        grad *= b(self.params[0] * inv_std / count)  # times gamma / (N sqrt(var + eps))
        return grad


class Standardize(Layer):
    """``standardize``: x' = (x - mean) * scale per input value, with the mean and 1 / std
    of the training data stored in the model (``Network.set_standardization``); not trained.

    forward     y = (x - mean) scale          backward    dL/dx = dL/dy scale
    """

    name = "standardize"

    def export(self) -> dict[str, Any]:
        return {"type": self.name, "arrays": {"mean": self.mean.reshape(self.in_shape),
                                              "scale": self.scale.reshape(self.in_shape)}}

    def build(self, in_shape: Shape, dtype: np.dtype[Any]) -> Shape:
        out = super().build(in_shape, dtype)
        self.mean = np.zeros(math.prod(in_shape), self.dtype).reshape(in_shape)
        self.scale = np.ones(math.prod(in_shape), self.dtype).reshape(in_shape)
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale}

    def buffers(self, n: int, train: bool) -> Buffers:
        return {"out": out_buffer(self, n)}

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        out = np.subtract(x, self.mean, out=buf["out"])
        out *= self.scale
        return out

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        if not need_dx:
            return None
        grad *= self.scale
        return grad
