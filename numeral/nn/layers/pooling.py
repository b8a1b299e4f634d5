"""Pooling: each output pixel summarises a K x K window of its channel (no parameters)."""

from __future__ import annotations

import numpy as np

from numeral.nn.errors import InputError
from numeral.nn.layers.base import Buffers, Layer, Shape, out_buffer
from numeral.nn.layers.conv import conv_output_side, windows


class _Pool2D(Layer):
    """Windows of ``kernel`` x ``kernel`` every ``stride`` pixels (default: the kernel, so
    windows do not overlap); rows and columns that do not fill a window are left out."""

    needs_image = True

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
    windows tile the image (stride = K, the default) the forward pass takes the maximum over
    each window's columns first, then over those maxima's rows: 2 (K - 1) steps instead of
    K^2 - 1, over fewer values (measured 4.5x faster for K = 2); and the backward pass writes
    each offset's pixels once instead of adding into zeros (each pixel is in one window).
    """

    name = "maxpool"

    def buffers(self, n: int, train: bool) -> Buffers:
        buf = {"out": out_buffer(self, n)}
        c, ho, wo = self.out_shape
        index = np.int8 if self.kernel < 12 else np.intp  # u K + v: below 128 for K < 12
        if self.stride == self.kernel:  # the maxima of each window's columns, row by row
            buf["colmax"] = np.empty((n, c, ho * self.kernel, wo), self.dtype)
            if train:
                buf["colarg"] = np.empty((n, c, ho * self.kernel, wo), index)
                buf["colbig"] = np.empty((n, c, ho * self.kernel, wo), bool)
                buf["colscratch"] = np.empty((n, c, ho * self.kernel, wo), index)
        if train:
            buf["arg"] = np.empty((n, *self.out_shape), index)
            buf["argscratch"] = np.empty((n, *self.out_shape), index)
            buf["bigger"] = np.empty((n, *self.out_shape), bool)
            buf["pick"] = out_buffer(self, n)
            buf["dx"] = np.empty((n, *self.in_shape), self.dtype)
        return buf

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        if self.stride == self.kernel:
            return self.forward_tiled(x, buf, train)
        out, k = buf["out"], self.kernel
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

    def forward_tiled(self, x: np.ndarray, buf: Buffers, train: bool) -> np.ndarray:
        """The same for windows that tile the image: each window's column maxima (first
        column of ties), then the maximum of those over the window's rows (first row)."""
        out, k = buf["out"], self.kernel
        _, ho, wo = self.out_shape
        covered = x[:, :, : ho * k, : wo * k]
        colmax = buf["colmax"]
        np.copyto(colmax, covered[..., 0::k])
        if train:
            colarg, colbig = buf["colarg"], buf["colbig"]
            colarg[...] = 0
        for v in range(1, k):
            value = covered[..., v::k]
            if train:
                np.greater(value, colmax, out=colbig)
                take_where(colarg, v, colbig, buf["colscratch"])
            np.maximum(colmax, value, out=colmax)
        np.copyto(out, colmax[:, :, 0::k])
        if train:
            arg, bigger, scratch = buf["arg"], buf["bigger"], buf["argscratch"]
            np.copyto(arg, colarg[:, :, 0::k])  # row 0: the offset is the column
        for u in range(1, k):
            value = colmax[:, :, u::k]
            if train:
                np.greater(value, out, out=bigger)
                np.add(colarg[:, :, u::k], u * k, out=scratch)  # offset u K + v
                scratch -= arg
                scratch *= bigger
                arg += scratch  # arg = u K + v where this row's maximum is larger
            np.maximum(out, value, out=out)
        return out

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        if not need_dx:
            return None
        dx, pick, arg = buf["dx"], buf["pick"], buf["arg"]
        k = self.kernel
        if self.stride == self.kernel:  # windows tile: each pixel is in one window at most
            _, ho, wo = self.out_shape
            dx[:, :, ho * k :] = 0.0  # rows and columns no window covers
            dx[:, :, :, wo * k :] = 0.0
            for offset in range(k * k):  # dx at offset (u, v) = g where the max sat there
                np.equal(arg, offset, out=buf["bigger"])
                np.multiply(grad, buf["bigger"], out=self.at(dx, *divmod(offset, k)))
            return dx
        dx[...] = 0.0
        for offset in range(k * k):
            np.equal(arg, offset, out=pick)  # 1 where the max sat at this offset
            pick *= grad
            self.at(dx, *divmod(offset, k))[...] += pick
        return dx


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
