"""The fixed input transforms (the mathematics is in :mod:`numeral.nn.inputs`). A network
holds them in its :class:`~numeral.nn.inputs.Inputs`, in front of its layers; in a layer list
(``["gamma 0.3", "deskew", "conv 8 3", ...]``, a model file) they are written first. Each has
a ``stage``: ``"image"`` for those whose output is still an image (gamma, deskew), which run
before training's distortions, ``"feature"`` for those that turn the distorted image into
other features (orientation planes), which run after them. Nothing is back-propagated through
them. Like every layer they declare their settings (``arguments``) and what the exporters
write (``export()``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from numeral.nn.constraints import check
from numeral.nn.errors import InputError
from numeral.nn.inputs import deskew, image_side, orientation_planes
from numeral.nn.layers.base import Buffers, Layer, Shape, exact


class InputTransform(Layer):
    """A fixed function of the (flattened) image, applied to whole batches."""

    stage: ClassVar[str] = "image"  # or "feature": see the module

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

    def export(self) -> dict[str, Any]:
        """What the exporters need: the type and the side of the square images it reads."""
        return {"type": self.name, "side": math.isqrt(math.prod(self.in_shape)), "arrays": {}}

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
    arguments = (("gamma",), ())

    def __init__(self, gamma: float) -> None:
        super().__init__()
        check("input_gamma", gamma)
        self.gamma = float(gamma)

    def spec(self) -> str:
        return f"gamma {exact(self.gamma)}"

    def export(self) -> dict[str, Any]:
        return {"type": self.name, "gamma": self.gamma, "arrays": {}}

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

    def export(self) -> dict[str, Any]:
        return {"type": self.name, "side": math.isqrt(math.prod(self.in_shape)),
                "out_shape": list(self.out_shape), "arrays": {}}

    def output_shape(self, in_shape: Shape) -> Shape:
        half = self.side(in_shape) // 2
        return (4, half, half)

    def apply(self, flat: np.ndarray) -> np.ndarray:
        return orientation_planes(flat)
