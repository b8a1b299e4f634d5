"""The fully connected layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from numeral.nn.errors import InputError
from numeral.nn.init import init_weights
from numeral.nn.layers.base import Buffers, Layer, Shape, out_buffer
from numeral.nn.parallel import matmul


class Dense(Layer):
    """``dense N``: every output unit reads every input.

    forward     z = x W + b                  x (n, fan_in), W (fan_in, N), b (N,)
    backward    dL/dW = x^T g                g = dL/dz (n, N)
                dL/db = sum over rows of g
                dL/dx = g W^T
    """

    name = "dense"
    arguments = (("units",), ())
    param_names = ("W", "b")

    def export(self) -> dict[str, Any]:
        return {"type": self.name, "units": self.units,
                "arrays": {"W": self.params[0], "b": self.params[1]}}

    def __init__(self, units: int) -> None:
        super().__init__()
        if units < 1:
            raise InputError(f"dense needs at least 1 unit, got {units}")
        self.units = int(units)

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 1:
            raise InputError(f"dense {self.units} reads flat vectors, but gets samples of shape "
                             f"{in_shape}: put a flatten layer before it")
        return (self.units,)

    def param_shapes(self) -> list[Shape]:
        return [(self.in_shape[0], self.units), (self.units,)]

    def decayed(self) -> list[bool]:
        return [True, False]

    def init_params(self, rng: np.random.Generator, init: str) -> None:
        init_weights(init, self.params[0], rng)

    def spec(self) -> str:
        return f"dense {self.units}"

    def buffers(self, n: int, train: bool) -> Buffers:
        buf: dict[str, Any] = {"out": out_buffer(self, n)}
        if train:
            buf["dx"] = np.empty((n, self.in_shape[0]), self.dtype)
        return buf

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        W, b = self.params
        buf["x"] = x
        z = matmul(x, W, buf["out"], "rows")  # z = x W
        z += b  #                                   + b
        return z

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        W = self.params[0]
        gW, gb = self.grads
        matmul(buf["x"].T, grad, gW, "columns")  # dL/dW = x^T g
        np.sum(grad, axis=0, out=gb)  # dL/db = sum_rows g
        if not need_dx:
            return None
        return matmul(grad, W.T, buf["dx"], "rows")  # dL/dx = g W^T
