"""Dropout: a random half-network each batch, the whole one at prediction."""

from __future__ import annotations

from typing import Any

import numpy as np

from numeral.nn.constraints import check
from numeral.nn.layers.base import Buffers, Layer, exact, out_buffer


class Dropout(Layer):
    """``dropout P``: while training, each value is dropped with probability P (inverted
    dropout, so nothing changes at prediction):

    forward     m = [u >= P] / (1 - P),  u ~ U(0, 1) per value     y = x * m
    backward    dL/dx = dL/dy * m

    Active only in a training pass given a random generator; otherwise y = x.
    """

    name = "dropout"
    arguments = (("p",), ())

    def export(self) -> dict[str, Any]:
        return {"type": self.name, "p": self.p}  # nothing to do at prediction

    def __init__(self, p: float) -> None:
        super().__init__()
        check("dropout", p)
        self.p = float(p)

    def spec(self) -> str:
        return f"dropout {exact(self.p)}"

    def buffers(self, n: int, train: bool) -> Buffers:
        if not train or not self.p:
            return {}
        return {"mask": out_buffer(self, n), "out": out_buffer(self, n)}

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        buf["active"] = train and rng is not None and self.p > 0
        if not buf["active"]:
            return x
        assert rng is not None
        mask = buf["mask"]
        rng.random(out=mask, dtype=self.dtype.type)
        np.greater_equal(mask, self.p, out=mask)  # 1 where kept, else 0
        mask *= 1.0 / (1.0 - self.p)
        return np.multiply(x, mask, out=buf["out"])

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        if buf["active"]:
            grad *= buf["mask"]
        return grad
