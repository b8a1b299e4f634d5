"""The fixed input transforms as layers without parameters (the mathematics is in
:mod:`numeral.nn.inputs`). They stand first in a network's layer list and run before
training's distortions (gamma, deskew: ``stage = "image"``) or after them (orientation
planes: ``stage = "feature"``); nothing is back-propagated through them.
"""

from __future__ import annotations

import math

import numpy as np

from numeral.nn.constraints import check
from numeral.nn.errors import InputError
from numeral.nn.inputs import deskew, image_side, orientation_planes
from numeral.nn.layers.base import Buffers, Layer, Shape


class InputTransform(Layer):
    """A fixed function of the (flattened) image, applied to whole batches."""

    stage = "image"

    def side(self, in_shape: Shape) -> int:
        if len(in_shape) == 3 and in_shape[0] != 1:
            raise InputError(f"{self.spec()} reads one-channel images, not samples of shape "
                             f"{in_shape}")
        try:
            return image_side(self.name, math.prod(in_shape))
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def apply(self, flat: np.ndarray) -> np.ndarray:
        """(n, pixels) -> (n, values out)."""
        raise NotImplementedError

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        out = self.apply(x.reshape(len(x), -1))
        return out.reshape(len(x), *self.out_shape)

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        raise InputError(f"{self.spec()} is an input transform and must come first: nothing "
                         "can be back-propagated through it")


class Gamma(InputTransform):
    """``gamma G``: x' = max(x, 0)^G per pixel; G < 1 lifts faint strokes."""

    name = "gamma"

    def __init__(self, gamma: float) -> None:
        super().__init__()
        check("input_gamma", gamma)
        self.gamma = float(gamma)

    def spec(self) -> str:
        return f"gamma {self.gamma:g}"

    def apply(self, flat: np.ndarray) -> np.ndarray:
        return np.power(np.maximum(flat, 0), flat.dtype.type(self.gamma))


class Deskew(InputTransform):
    """``deskew``: the shear that makes the image's principal axis vertical."""

    name = "deskew"

    def output_shape(self, in_shape: Shape) -> Shape:
        self.side(in_shape)
        return in_shape

    def apply(self, flat: np.ndarray) -> np.ndarray:
        return deskew(flat)


class OrientationPlanes(InputTransform):
    """``orientation``: an image of side S -> 4 planes (0, 45, 90, 135 degrees) of S/2 x S/2
    cells holding how much edge runs each way."""

    name = "orientation"
    stage = "feature"

    def output_shape(self, in_shape: Shape) -> Shape:
        half = self.side(in_shape) // 2
        return (4, half, half)

    def apply(self, flat: np.ndarray) -> np.ndarray:
        return orientation_planes(flat)
