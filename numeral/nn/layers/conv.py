"""2-D convolution by im2col: every receptive field becomes a column, and the convolution
one matrix product for the whole batch.

Samples are (channels, rows, columns), as in PyTorch, so weights compare one to one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from numeral.nn.errors import InputError
from numeral.nn.init import init_weights
from numeral.nn.layers.base import Buffers, Layer, Shape, out_buffer
from numeral.nn.parallel import matmul, parts


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

    With x padded by P zeros on each side (xp), and cols[i] the (C K K, Ho Wo) matrix whose
    column (r, s) is the receptive field of output pixel (r, s) of image i (im2col):

    forward     y[i] = W cols[i] + b                  W as (OUT, C K K), y[i] as (OUT, Ho Wo)
    backward    dL/dW = sum_i g[i] cols[i]^T          g = dL/dy
                dL/db = sum over images and pixels of g
                dcols[i] = W^T g[i];  dL/dx = col2im(dcols): each column's values added back
                onto the pixels it was read from (a loop over the K x K kernel offsets)

    ``same`` padding is K // 2 on each side (the output keeps the input's size at stride 1
    for odd K); ``valid`` is 0.

    Two ways to lay the same products out, chosen by the layer's shape (:attr:`whole_batch`):

    - per image (``forward`` / ``backward`` below): n products W cols[i], written straight
      into y. Best when each image's product is large, or C K K is so small that the layer
      only moves memory (a first layer on grey images).
    - the whole batch (``forward_whole_batch`` / ``backward_whole_batch``): every image's
      columns side by side, cols = [cols[0] ... cols[n-1]], so Y = W cols, dL/dW = G cols^T
      and dcols = W^T G are three large matrix products, which BLAS runs near the machine's
      peak, where n small ones do not (G: g laid out as Y). At stride 1 cols also reads whole
      rows: Wp columns per output row, the padded width, not Wo, so the pixels of one kernel
      offset are a single run of the padded image (its rows follow one another in memory)
      and im2col and col2im move runs of Ho Wp values instead of Ho runs of Wo. The Wp - Wo
      extra columns read past a row's end: their outputs are dropped, their gradients are
      zero, so they add nothing (each padded channel has K spare values at its end for them).

    Both give the same values to rounding (tests/test_fast.py); the per-sample copies run on
    every core (:func:`numeral.nn.parallel.parts`).
    """

    name = "conv"
    arguments = (("out_channels", "kernel"), ("stride", "padding"))
    param_names = ("W", "b")
    needs_image = True

    def export(self) -> dict[str, Any]:
        """The padding as P zeros on each side, whichever way it was written."""
        return {"type": self.name, "out_channels": self.out_channels, "kernel": self.kernel,
                "stride": self.stride, "pad": self.pad,
                "arrays": {"W": self.params[0], "b": self.params[1]}}

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
    @property
    def whole_batch(self) -> bool:
        """Whether the batch is one matrix product: when each image's own product is small
        (under 256 columns) but C K K is not. A first choice from single-layer timings on a
        2-core AMD EPYC (docs/performance.md); to be settled by benchmarks/bench_core.py."""
        c, k = self.in_shape[0], self.kernel
        return c * k * k >= 64 and self.out_shape[1] * self._geometry()[2] < 256

    def buffers(self, n: int, train: bool) -> Buffers:
        if self.whole_batch:
            return self.buffers_whole_batch(n, train)
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
        if self.whole_batch:
            return self.forward_whole_batch(x, buf)
        W, b = self.params
        n, (c, h, w), (o, ho, wo) = len(x), self.in_shape, self.out_shape
        p, k = self.pad, self.kernel
        xp = buf["xp"] if p else x
        cols = buf["cols"].reshape(n, c, k, k, ho, wo)

        def im2col(part: slice) -> None:
            if p:
                xp[part, :, p:-p, p:-p] = x[part]
            cols[part] = windows(xp[part], k, self.stride, (ho, wo))

        parts(n, im2col, c * h * w * k * k)
        y = buf["out"].reshape(n, o, ho * wo)
        matmul(W.reshape(o, -1), buf["cols"], y, "stack")  # y[i] = W cols[i]
        y += b[:, None]  #                                        + b
        return buf["out"]

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        if self.whole_batch:
            return self.backward_whole_batch(grad, buf, need_dx)
        W = self.params[0]
        gW, gb = self.grads
        n, (c, h, w), (o, ho, wo) = len(grad), self.in_shape, self.out_shape
        g = grad.reshape(n, o, ho * wo)
        np.sum(g, axis=(0, 2), out=gb)  # dL/db = sum of g
        cols = buf["cols"]
        gW_each = matmul(g, cols.transpose(0, 2, 1), buf["gW_each"], "stack")  # g[i] cols[i]^T
        np.sum(gW_each, axis=0, out=gW.reshape(o, -1))  # dL/dW = sum_i
        if not need_dx:
            return None
        dcols = matmul(W.reshape(o, -1).T, g, buf["dcols"], "stack")  # dcols[i] = W^T g[i]
        dxp = buf["dxp"]
        k, s, p = self.kernel, self.stride, self.pad
        fields = dcols.reshape(n, c, k, k, ho, wo)

        def col2im(part: slice) -> None:  # every column back onto the pixels it was read from
            dxp[part] = 0.0
            for u in range(k):
                for v in range(k):
                    dxp[part, :, u : u + s * ho : s, v : v + s * wo : s] += fields[part, :, u, v]

        parts(n, col2im, c * h * w * k * k)
        return dxp[:, :, p : p + h, p : p + w] if p else dxp

    # ------------------------------------------------ the same, the whole batch at once
    def _geometry(self) -> tuple[int, int, int, int]:
        """(Hp, Wp, Wq, plane): the padded image's sides, the columns per output row in cols,
        and the values between one padded image channel and the next (Hp Wp + K spare)."""
        _, h, w = self.in_shape
        hp, wp = h + 2 * self.pad, w + 2 * self.pad
        wq = wp if self.stride == 1 else self.out_shape[2]
        return hp, wp, wq, hp * wp + self.kernel

    def _padded(self, flat: np.ndarray) -> np.ndarray:
        """The (n, C, Hp, Wp) images inside a buffer of (n, C, plane) values."""
        hp, wp, _, _ = self._geometry()
        return flat[:, :, : hp * wp].reshape(*flat.shape[:2], hp, wp)

    def _fields(self, flat: np.ndarray, u: int | None = None, v: int | None = None,
                writeable: bool = False) -> np.ndarray:
        """A view of every receptive field in a (n, C, plane) buffer, in cols' order:
        (C, K, K, n, Ho, Wq), element [c, u, v, i, r, q] = xp[i, c, r S + u, q S + v]; with
        u and v, the (n, C, Ho, Wq) values that kernel offset reads. No copy."""
        _, wp, wq, _ = self._geometry()
        ho, s = self.out_shape[1], self.stride
        sn, sc, e = flat.strides
        if u is None or v is None:
            return as_strided(flat, (self.in_shape[0], self.kernel, self.kernel, len(flat), ho,
                                     wq), (sc, wp * e, e, sn, s * wp * e, s * e),
                              writeable=False)
        start = flat.reshape(-1)[u * wp + v :]
        return as_strided(start, (len(flat), self.in_shape[0], ho, wq),
                          (sn, sc, s * wp * e, s * e), writeable=writeable)

    def buffers_whole_batch(self, n: int, train: bool) -> Buffers:
        c = self.in_shape[0]
        _, _, wq, plane = self._geometry()
        ho = self.out_shape[1]
        ckk = c * self.kernel * self.kernel
        dt = self.dtype
        buf: dict[str, Any] = {
            "out": out_buffer(self, n),
            "xp": np.zeros((n, c, plane), dt),  # the border stays zero; the image is copied in
            "cols": np.empty((ckk, n * ho * wq), dt),
            "Y": np.empty((self.out_channels, n * ho * wq), dt),
        }
        if train:
            buf["G"] = np.zeros((self.out_channels, n * ho * wq), dt)  # extra columns stay 0
            buf["dcols"] = np.empty((ckk, n * ho * wq), dt)
            buf["dxp"] = np.empty((n, c, plane), dt)
        return buf

    def forward_whole_batch(self, x: np.ndarray, buf: Buffers) -> np.ndarray:
        """Y = W cols + b, cols = [cols[0] ... cols[n-1]] (whole rows at stride 1)."""
        W, b = self.params
        n, (c, h, w), (o, ho, wo) = len(x), self.in_shape, self.out_shape
        p, k, wq = self.pad, self.kernel, self._geometry()[2]
        xp, out = self._padded(buf["xp"]), buf["out"]
        fields = self._fields(buf["xp"])
        cols = buf["cols"].reshape(c, k, k, n, ho, wq)
        Y = buf["Y"].reshape(o, n, ho, wq)

        def im2col(part: slice) -> None:
            xp[part, :, p : p + h, p : p + w] = x[part]
            cols[:, :, :, part] = fields[:, :, :, part]

        def add_bias(part: slice) -> None:  # back to (n, OUT, Ho, Wo), the extra columns dropped
            np.add(Y[:, part, :, :wo].transpose(1, 0, 2, 3), b[:, None, None], out=out[part])

        parts(n, im2col, c * h * w * k * k)
        matmul(W.reshape(o, -1), buf["cols"], buf["Y"], "columns")  # Y = W cols
        parts(n, add_bias, o * ho * wo)  #                               + b
        return out

    def backward_whole_batch(self, grad: np.ndarray, buf: Buffers,
                             need_dx: bool) -> np.ndarray | None:
        """dL/dW = G cols^T, dL/db = sum of G, dcols = W^T G, then col2im."""
        W = self.params[0]
        gW, gb = self.grads
        n, (c, h, w), (o, ho, wo) = len(grad), self.in_shape, self.out_shape
        p, k, wq = self.pad, self.kernel, self._geometry()[2]
        G = buf["G"].reshape(o, n, ho, wq)

        def lay_out(part: slice) -> None:
            G[:, part, :, :wo] = grad[part].transpose(1, 0, 2, 3)

        parts(n, lay_out, o * ho * wo)
        np.sum(buf["G"], axis=1, out=gb)  # dL/db = sum of G
        matmul(buf["G"], buf["cols"].T, gW.reshape(o, -1), "columns")  # dL/dW = G cols^T
        if not need_dx:
            return None
        matmul(W.reshape(o, -1).T, buf["G"], buf["dcols"], "columns")  # dcols = W^T G
        dcols = buf["dcols"].reshape(c, k, k, n, ho, wq)
        dxp = buf["dxp"]

        def col2im(part: slice) -> None:  # every column back onto the pixels it was read from
            dxp[part] = 0.0
            for u in range(k):
                for v in range(k):
                    self._fields(dxp[part], u, v, writeable=True)[...] += (
                        dcols[:, u, v, part].transpose(1, 0, 2, 3))

        parts(n, col2im, c * h * w * k * k)
        return self._padded(dxp)[:, :, p : p + h, p : p + w]
