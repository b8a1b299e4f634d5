"""Pooling: each output pixel summarises a K x K window of its channel (no parameters)."""

from __future__ import annotations

from typing import Any

import numpy as np

from numeral.nn.errors import InputError
from numeral.nn.layers.base import Buffers, Layer, Shape, out_buffer
from numeral.nn.layers.conv import conv_output_side, windows
from numeral.nn.parallel import parts


class _Pool2D(Layer):
    """Windows of ``kernel`` x ``kernel`` every ``stride`` pixels (default: the kernel, so
    windows do not overlap); rows and columns that do not fill a window are left out."""

    arguments = (("kernel",), ("stride",))
    needs_image = True

    def export(self) -> dict[str, Any]:
        return {"type": self.name, "kernel": self.kernel, "stride": self.stride}

    def __init__(self, kernel: int, stride: int | None = None) -> None:
        super().__init__()
        stride = kernel if stride is None else stride
        if kernel < 1 or stride < 1:
            raise InputError(f"{self.name} needs K and stride >= 1, got {kernel}, {stride}")
        self.kernel, self.stride = int(kernel), int(stride)

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 3:
            raise InputError(f"{self.spec()} reads images (channels, height, width), but gets "
                             f"samples of shape {in_shape}")
        c, h, w = in_shape
        ho, wo = (conv_output_side(s, self.kernel, self.stride, 0) for s in (h, w))
        if ho < 1 or wo < 1:
            raise InputError(f"{self.spec()} does not fit in a {h}x{w} input")
        return (c, ho, wo)

    def spec(self) -> str:
        stride = f" stride={self.stride}" if self.stride != self.kernel else ""
        return f"{self.name} {self.kernel}{stride}"

    def view(self, x: np.ndarray) -> np.ndarray:
        """(n, C, K, K, Ho, Wo): every window of x, no copy."""
        return windows(x, self.kernel, self.stride, (self.out_shape[1], self.out_shape[2]))

    def at(self, x: np.ndarray, u: int, v: int) -> np.ndarray:
        """(n, C, Ho, Wo): the pixel at kernel offset (u, v) of every window (a view)."""
        _, ho, wo = self.out_shape
        s = self.stride
        return x[:, :, u : u + s * ho : s, v : v + s * wo : s]


def take_where(target: np.ndarray, value: np.ndarray | int, mask: np.ndarray,
               scratch: np.ndarray) -> None:
    """target = value where mask, in place: target += (value - target) * mask. (Arithmetic:
    ``np.copyto(target, value, where=mask)`` measured ten times slower here.)"""
    np.subtract(value, target, out=scratch)
    scratch *= mask
    target += scratch


class MaxPool2D(_Pool2D):
    """``maxpool K [stride=S]``: the largest value of each window.

    forward     y = max over the window of x,  a = where in the window it was (first of ties)
    backward    dL/dx = dL/dy at position a of each window, 0 elsewhere

    Both loop over the offsets within a window, each step a whole-batch operation. When the
    windows tile the image (stride = K, the default) each pixel is in one window at most, so
    the forward pass only takes the maxima (K^2 - 1 steps) and keeps its input; the backward
    pass finds a offset by offset, as the first offset whose pixel equals the maximum, and
    writes each offset's pixels once instead of adding into zeros.
    """

    name = "maxpool"

    def buffers(self, n: int, train: bool) -> Buffers:
        buf = {"out": out_buffer(self, n)}
        index = np.int8 if self.kernel < 12 else np.intp  # u K + v: below 128 for K < 12
        if train and self.stride == self.kernel:
            buf["here"] = np.empty((n, *self.out_shape), bool)  # a is this offset
            buf["taken"] = np.empty((n, *self.out_shape), bool)  # a is an earlier offset
        elif train:
            buf["arg"] = np.empty((n, *self.out_shape), index)
            buf["argscratch"] = np.empty((n, *self.out_shape), index)
            buf["bigger"] = np.empty((n, *self.out_shape), bool)
            buf["pick"] = out_buffer(self, n)
        if train:
            buf["dx"] = np.empty((n, *self.in_shape), self.dtype)
        return buf

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        out, k = buf["out"], self.kernel
        if self.stride == self.kernel:
            buf["x"] = x  # the backward pass finds a from x and y
            parts(len(x), lambda part: self.maxima(x[part], out[part]), x[0].size)
            return out
        np.copyto(out, self.at(x, 0, 0))
        if train:
            arg, bigger = buf["arg"], buf["bigger"]
            arg[...] = 0
        for offset in range(1, k * k):
            value = self.at(x, *divmod(offset, k))
            if train:  # a = the first offset holding the maximum
                np.greater(value, out, out=bigger)
                take_where(arg, offset, bigger, buf["argscratch"])
            np.maximum(out, value, out=out)
        return out

    def maxima(self, x: np.ndarray, out: np.ndarray) -> None:
        """out = the maximum of each window of x (windows that tile x)."""
        k = self.kernel
        np.maximum(self.at(x, 0, 0), self.at(x, 0, 1) if k > 1 else self.at(x, 0, 0), out=out)
        for offset in range(2, k * k):
            np.maximum(out, self.at(x, *divmod(offset, k)), out=out)

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        if not need_dx:
            return None
        dx, k = buf["dx"], self.kernel
        if self.stride == self.kernel:
            parts(len(grad), lambda part: self.backward_tiled(grad, buf, part), dx[0].size)
            return dx
        pick, arg = buf["pick"], buf["arg"]
        dx[...] = 0.0
        for offset in range(k * k):
            np.equal(arg, offset, out=pick)  # 1 where the max sat at this offset
            pick *= grad
            self.at(dx, *divmod(offset, k))[...] += pick
        return dx

    def backward_tiled(self, grad: np.ndarray, buf: Buffers, part: slice) -> None:
        """dx at offset (u, v) = g where a = (u, v): where x there equals y and no earlier
        offset did; the last offset takes what is left."""
        x, y, dx = buf["x"][part], buf["out"][part], buf["dx"][part]
        here, taken, g = buf["here"][part], buf["taken"][part], grad[part]
        k = self.kernel
        _, ho, wo = self.out_shape
        dx[:, :, ho * k :] = 0.0  # rows and columns no window covers
        dx[:, :, :, wo * k :] = 0.0
        for offset in range(k * k):
            u, v = divmod(offset, k)
            if offset == k * k - 1:
                np.logical_not(taken, out=here)
            else:
                np.equal(self.at(x, u, v), y, out=here)
                if offset:
                    np.greater(here, taken, out=here)  # here and not taken: first of ties
                    taken |= here
                else:
                    np.copyto(taken, here)
            np.multiply(g, here, out=self.at(dx, u, v))


class AvgPool2D(_Pool2D):
    """``avgpool K [stride=S]``: the mean of each window.

    forward     y = (1 / K^2) sum over the window of x
    backward    dL/dx = (1 / K^2) dL/dy, spread over each window
    """

    name = "avgpool"

    def buffers(self, n: int, train: bool) -> Buffers:
        buf = {"out": out_buffer(self, n)}
        if train:
            buf["share"] = out_buffer(self, n)
            buf["dx"] = np.empty((n, *self.in_shape), self.dtype)
        return buf

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        return np.mean(self.view(x), axis=(2, 3), out=buf["out"])

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        if not need_dx:
            return None
        dx, share = buf["dx"], buf["share"]
        dx[...] = 0.0
        np.multiply(grad, 1.0 / self.kernel**2, out=share)
        for offset in range(self.kernel**2):
            self.at(dx, *divmod(offset, self.kernel))[...] += share
        return dx


class GlobalAvgPool(Layer):
    """``globalavgpool``: each channel's mean over the whole image, (C, H, W) -> (C,).

    forward     y_c = (1 / HW) sum_{r,s} x_{c,r,s}       backward    dL/dx_{c,r,s} = dL/dy_c / HW
    """

    name = "globalavgpool"
    needs_image = True

    def export(self) -> dict[str, Any]:
        return {"type": self.name}

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 3:
            raise InputError(f"globalavgpool reads images (channels, height, width), but gets "
                             f"samples of shape {in_shape}")
        return (in_shape[0],)

    def buffers(self, n: int, train: bool) -> Buffers:
        buf = {"out": out_buffer(self, n)}
        if train:
            buf["dx"] = np.empty((n, *self.in_shape), self.dtype)
        return buf

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        return np.mean(x, axis=(2, 3), out=buf["out"])

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        if not need_dx:
            return None
        dx = buf["dx"]
        _, h, w = self.in_shape
        np.copyto(dx, grad[:, :, None, None])
        dx *= 1.0 / (h * w)
        return dx
