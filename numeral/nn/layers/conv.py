"""2-D convolution by im2col: every receptive field becomes a column, and the convolution
one matrix product per image.

Samples are (channels, rows, columns), as in PyTorch, so weights compare one to one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from numeral.nn.errors import InputError
from numeral.nn.init import init_weights
from numeral.nn.layers.base import Buffers, Layer, Shape, out_buffer


def conv_output_side(side: int, kernel: int, stride: int, padding: int) -> int:
    """How many positions a kernel takes along a side: floor((side + 2p - k) / s) + 1."""
    return (side + 2 * padding - kernel) // stride + 1


def windows(xp: np.ndarray, kernel: int, stride: int, out_hw: tuple[int, int]) -> np.ndarray:
    """A view (n, C, kernel, kernel, Ho, Wo) of every receptive field of xp (n, C, H, W):
    element [i, c, u, v, r, s] is xp[i, c, r*stride + u, s*stride + v]. No copy."""
    sn, sc, sh, sw = xp.strides
    n, c = xp.shape[:2]
    return as_strided(xp, shape=(n, c, kernel, kernel, *out_hw),
                      strides=(sn, sc, sh, sw, sh * stride, sw * stride), writeable=False)


class Conv2D(Layer):
    """``conv OUT K [stride=S] [padding=P|same|valid]``: OUT filters of K x K over all input
    channels (cross-correlation, as every deep-learning library computes it).

    With x padded by P zeros on each side, and cols[i] the (C K K, Ho Wo) matrix whose column
    (r, s) is the receptive field of output pixel (r, s) of image i (im2col):

    forward     y[i] = W cols[i] + b                  W as (OUT, C K K), y[i] as (OUT, Ho Wo)
    backward    dL/dW = sum_i g[i] cols[i]^T          g = dL/dy
                dL/db = sum over images and pixels of g
                dcols[i] = W^T g[i];  dL/dx = col2im(dcols): each column's values added back
                onto the pixels it was read from (a loop over the K x K kernel offsets)

    ``same`` padding is K // 2 on each side (the output keeps the input's size at stride 1
    for odd K); ``valid`` is 0.
    """

    name = "conv"
    param_names = ("W", "b")
    needs_image = True

    def __init__(self, out_channels: int, kernel: int, stride: int = 1,
                 padding: int | str = 0) -> None:
        super().__init__()
        if out_channels < 1 or kernel < 1 or stride < 1:
            raise InputError(f"conv needs OUT, K and stride >= 1, got {out_channels}, {kernel}, "
                             f"stride={stride}")
        if padding == "same":
            pad = kernel // 2
        elif padding == "valid":
            pad = 0
        elif isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
            pad = padding
        else:
            raise InputError(f"conv padding must be an int >= 0, 'same' or 'valid', got "
                             f"{padding!r}")
        self.out_channels, self.kernel, self.stride = int(out_channels), int(kernel), int(stride)
        self.padding_arg = padding
        self.pad = pad

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 3:
            raise InputError(f"{self.spec()} reads images (channels, height, width), but gets "
                             f"samples of shape {in_shape}: set input_shape, e.g. (1, 28, 28)")
        _, h, w = in_shape
        ho, wo = (conv_output_side(s, self.kernel, self.stride, self.pad) for s in (h, w))
        if ho < 1 or wo < 1:
            raise InputError(f"{self.spec()} does not fit in a {h}x{w} input: a {self.kernel}x"
                             f"{self.kernel} kernel needs padding or a larger image")
        return (self.out_channels, ho, wo)

    def param_shapes(self) -> list[Shape]:
        c = self.in_shape[0]
        return [(self.out_channels, c, self.kernel, self.kernel), (self.out_channels,)]

    def decayed(self) -> list[bool]:
        return [True, False]

    def init_params(self, rng: np.random.Generator, init: str) -> None:
        area = self.kernel * self.kernel
        init_weights(init, self.params[0], rng,
                     fans=(self.in_shape[0] * area, self.out_channels * area))

    def spec(self) -> str:
        extra = f" stride={self.stride}" if self.stride != 1 else ""
        if self.padding_arg != 0:
            extra += f" padding={self.padding_arg}"
        return f"conv {self.out_channels} {self.kernel}{extra}"

    # ------------------------------------------------------------------ passes
    def buffers(self, n: int, train: bool) -> Buffers:
        c, h, w = self.in_shape
        _, ho, wo = self.out_shape
        ckk = c * self.kernel * self.kernel
        dt = self.dtype
        buf: dict[str, Any] = {
            "out": out_buffer(self, n),
            "cols": np.empty((n, ckk, ho * wo), dt),
        }
        if self.pad:  # the border stays zero; the interior is written each batch
            buf["xp"] = np.zeros((n, c, h + 2 * self.pad, w + 2 * self.pad), dt)
        if train:
            buf["gW_each"] = np.empty((n, self.out_channels, ckk), dt)
            buf["dcols"] = np.empty((n, ckk, ho * wo), dt)
            buf["dxp"] = np.empty((n, c, h + 2 * self.pad, w + 2 * self.pad), dt)
        return buf

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        W, b = self.params
        n = len(x)
        _, ho, wo = self.out_shape
        p = self.pad
        if p:
            xp = buf["xp"]
            xp[:, :, p:-p, p:-p] = x
        else:
            xp = x
        cols = buf["cols"]
        k = self.kernel
        cols.reshape(n, -1, k, k, ho, wo)[...] = windows(xp, k, self.stride, (ho, wo))  # im2col
        y = buf["out"].reshape(n, self.out_channels, ho * wo)
        np.matmul(W.reshape(self.out_channels, -1), cols, out=y)  # y[i] = W cols[i]
        y += b[:, None]  #                                                 + b
        return buf["out"]

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        W = self.params[0]
        gW, gb = self.grads
        n = len(grad)
        c, h, w = self.in_shape
        _, ho, wo = self.out_shape
        g = grad.reshape(n, self.out_channels, ho * wo)
        np.sum(g, axis=(0, 2), out=gb)  # dL/db = sum of g
        cols = buf["cols"]
        gW_each = np.matmul(g, cols.transpose(0, 2, 1), out=buf["gW_each"])  # g[i] cols[i]^T
        np.sum(gW_each, axis=0, out=gW.reshape(self.out_channels, -1))  # dL/dW = sum_i
        if not need_dx:
            return None
        dcols = np.matmul(W.reshape(self.out_channels, -1).T, g, out=buf["dcols"])  # W^T g[i]
        dxp = buf["dxp"]
        dxp[...] = 0.0
        k, s = self.kernel, self.stride
        fields = dcols.reshape(n, c, k, k, ho, wo)
        for u in range(k):  # col2im: every column back onto the pixels it was read from
            for v in range(k):
                dxp[:, :, u : u + s * ho : s, v : v + s * wo : s] += fields[:, :, u, v]
        p = self.pad
        return dxp[:, :, p : p + h, p : p + w] if p else dxp
