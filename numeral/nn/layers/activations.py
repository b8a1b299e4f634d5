"""Element-wise nonlinearities, each forward beside its backward.

Every backward is written in terms of the *output* a = f(z), which the forward pass keeps
in its buffer, so nothing else needs to be remembered:

====================  ===================  ==============================
name                  a = f(z)             f'(z) written with a
====================  ===================  ==============================
``sigmoid``           1 / (1 + e^-z)       a (1 - a)
``tanh``              tanh z               1 - a^2
``relu``              max(z, 0)            1 if a > 0 else 0
``leaky_relu``        max(z, s z)          1 if a > 0 else s   (s = 0.01)
``identity``          z                    1
====================  ===================  ==============================

backward: dL/dz = dL/da * f'(z), computed in place over the incoming gradient.

Both run on every core, the batch cut into parts (:func:`numeral.nn.parallel.parts`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numeral.nn.errors import InputError
from numeral.nn.layers.base import Buffers, Layer, exact, out_buffer
from numeral.nn.parallel import parts

LEAKY_SLOPE = 0.01


class Activation(Layer):
    """An element-wise nonlinearity; subclasses implement ``f`` and ``f_prime``."""

    def f(self, z: np.ndarray, out: np.ndarray) -> None:
        """out = f(z)."""
        raise NotImplementedError

    def f_prime(self, a: np.ndarray, out: np.ndarray) -> None:
        """out = f'(z), written with a = f(z)."""
        raise NotImplementedError

    def buffers(self, n: int, train: bool) -> Buffers:
        buf = {"out": out_buffer(self, n)}
        if train:
            buf["slope"] = out_buffer(self, n)
        return buf

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        out = buf["out"]
        parts(len(x), lambda s: self.f(x[s], out[s]), out[0].size)  # a = f(z)
        return out

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        out, slope = buf["out"], buf["slope"]

        def chain(s: slice) -> None:
            self.f_prime(out[s], slope[s])
            grad[s] *= slope[s]  # dL/dz = dL/da * f'(z)

        parts(len(grad), chain, out[0].size)
        return grad


class Sigmoid(Activation):
    name = "sigmoid"

    def f(self, z: np.ndarray, out: np.ndarray) -> None:
        # 1 / (1 + e^-z), computed without overflow as 0.5 * (1 + tanh(z / 2)).
        np.multiply(z, 0.5, out=out)
        np.tanh(out, out=out)
        out += 1.0
        out *= 0.5

    def f_prime(self, a: np.ndarray, out: np.ndarray) -> None:
        np.subtract(1.0, a, out=out)  # 1 - a
        out *= a  # a (1 - a)


class Tanh(Activation):
    name = "tanh"

    def f(self, z: np.ndarray, out: np.ndarray) -> None:
        np.tanh(z, out=out)

    def f_prime(self, a: np.ndarray, out: np.ndarray) -> None:
        np.multiply(a, a, out=out)
        np.subtract(1.0, out, out=out)  # 1 - a^2


class ReLU(Activation):
    name = "relu"

    def f(self, z: np.ndarray, out: np.ndarray) -> None:
        np.maximum(z, 0.0, out=out)

    def f_prime(self, a: np.ndarray, out: np.ndarray) -> None:
        np.greater(a, 0.0, out=out)  # 1.0 where a > 0, else 0.0


class LeakyReLU(Activation):
    name = "leaky_relu"
    arguments = ((), ("slope",))  # "leaky_relu slope=0.1"

    def export(self) -> dict[str, Any]:
        return {"type": self.name, "slope": float(self.slope)}

    def spec(self) -> str:
        return self.name if self.slope == LEAKY_SLOPE else f"{self.name} slope={exact(self.slope)}"

    def __init__(self, slope: float = LEAKY_SLOPE) -> None:
        super().__init__()
        self.slope = slope

    def f(self, z: np.ndarray, out: np.ndarray) -> None:
        np.multiply(z, self.slope, out=out)
        np.maximum(z, out, out=out)

    def f_prime(self, a: np.ndarray, out: np.ndarray) -> None:
        np.greater(a, 0.0, out=out)  # 1 where a > 0, else 0
        out *= 1.0 - self.slope
        out += self.slope  # 1 where a > 0, else slope


class Identity(Activation):
    """a = z: passes values and gradients through untouched (no copy)."""

    name = "identity"

    def buffers(self, n: int, train: bool) -> Buffers:
        return {}

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        return x

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        return grad


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Sigmoid, Tanh, ReLU, LeakyReLU, Identity)
}


def get_activation(name: str) -> Activation:
    """Return a new activation layer called ``name`` (one of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        choices = ", ".join(sorted(ACTIVATIONS))
        raise InputError(f"unknown activation {name!r}; choose one of: {choices}") from None
