"""Hidden-unit activation functions, each forward beside its backward.

Every backward is written in terms of the *output* a = f(z), so the forward
pass can overwrite z with a in place and nothing else needs to be kept:

====================  ===================  ==============================
name                  a = f(z)             f'(z) written with a
====================  ===================  ==============================
``sigmoid``           1 / (1 + e^-z)       a (1 - a)
``tanh``              tanh z               1 - a^2
``relu``              max(z, 0)            1 if a > 0 else 0
``leaky_relu``        max(z, s z)          1 if a > 0 else s   (s = 0.01)
``identity``          z                    1
====================  ===================  ==============================
"""

from __future__ import annotations

import numpy as np

from numeral.nn.errors import InputError

LEAKY_SLOPE = 0.01


class Activation:
    """An element-wise nonlinearity; subclasses implement ``forward_`` and ``backward_``."""

    name = "base"

    def forward_(self, z: np.ndarray, scratch: np.ndarray) -> None:
        """Overwrite z with a = f(z). ``scratch``, of z's shape and dtype, may be overwritten."""
        raise NotImplementedError

    def backward_(self, a: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> None:
        """Overwrite grad (dL/da) with dL/dz = dL/da * f'(z), f' written with a = f(z).

        ``scratch`` is a buffer of a's shape and dtype that may be overwritten.
        """
        raise NotImplementedError


class Sigmoid(Activation):
    name = "sigmoid"

    def forward_(self, z: np.ndarray, scratch: np.ndarray) -> None:
        # 1 / (1 + e^-z), computed without overflow as 0.5 * (1 + tanh(z / 2)).
        z *= 0.5
        np.tanh(z, out=z)
        z += 1.0
        z *= 0.5

    def backward_(self, a: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> None:
        np.subtract(1.0, a, out=scratch)  # 1 - a
        scratch *= a  # a (1 - a)
        grad *= scratch


class Tanh(Activation):
    name = "tanh"

    def forward_(self, z: np.ndarray, scratch: np.ndarray) -> None:
        np.tanh(z, out=z)

    def backward_(self, a: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> None:
        np.multiply(a, a, out=scratch)
        np.subtract(1.0, scratch, out=scratch)  # 1 - a^2
        grad *= scratch


class ReLU(Activation):
    name = "relu"

    def forward_(self, z: np.ndarray, scratch: np.ndarray) -> None:
        np.maximum(z, 0.0, out=z)

    def backward_(self, a: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> None:
        np.greater(a, 0.0, out=scratch)  # 1.0 where a > 0, else 0.0
        grad *= scratch


class LeakyReLU(Activation):
    name = "leaky_relu"

    def __init__(self, slope: float = LEAKY_SLOPE) -> None:
        self.slope = slope

    def forward_(self, z: np.ndarray, scratch: np.ndarray) -> None:
        np.multiply(z, self.slope, out=scratch)
        np.maximum(z, scratch, out=z)

    def backward_(self, a: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> None:
        np.greater(a, 0.0, out=scratch)  # 1 where a > 0, else 0
        scratch *= 1.0 - self.slope
        scratch += self.slope  # 1 where a > 0, else slope
        grad *= scratch


class Identity(Activation):
    name = "identity"

    def forward_(self, z: np.ndarray, scratch: np.ndarray) -> None:
        pass

    def backward_(self, a: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> None:
        pass


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Sigmoid, Tanh, ReLU, LeakyReLU, Identity)
}


def get_activation(name: str) -> Activation:
    """Return the activation called ``name`` (one of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        choices = ", ".join(sorted(ACTIVATIONS))
        raise InputError(f"unknown activation {name!r}; choose one of: {choices}") from None
