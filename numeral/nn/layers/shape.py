"""Reshaping without arithmetic."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numeral.nn.layers.base import Buffers, Layer, Shape


class Flatten(Layer):
    """``flatten``: (channels, rows, columns) samples -> vectors, in that order (C order, as
    PyTorch's ``flatten`` does, so weights compare one to one). A view both ways:

    forward     y = x.reshape(n, C*H*W)        backward    dL/dx = dL/dy.reshape(n, C, H, W)
    """

    name = "flatten"

    def export(self) -> dict[str, Any]:
        return {"type": self.name}

    def output_shape(self, in_shape: Shape) -> Shape:
        return (math.prod(in_shape),)

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        return x.reshape(len(x), -1)

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        return grad.reshape(len(grad), *self.in_shape)
