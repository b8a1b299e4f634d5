"""What both exporters read: a network as descriptions, ``{"type", hyperparameters...,
"arrays": {name: array}}``, one per step, in the order numeral applies them.

The learning layers describe themselves (their class's ``export()``, read through
:func:`numeral.nn.layers.describe`); the input transforms are read in one place,
:func:`input_descriptions`, which both exporters call. The ONNX graph (``onnx.BUILDERS``) and
numeral.js (``FORWARD``) each hold one forward pass per type and nothing else about layers.
"""

from __future__ import annotations

import math
from typing import Any

from numeral.errors import NumeralError
from numeral.nn import Network
from numeral.nn.layers import describe
from numeral.nn.layers.transforms import Deskew, Gamma, OrientationPlanes

Description = dict[str, Any]


class ExportError(NumeralError):
    """A model the exporter cannot write faithfully."""


def input_descriptions(net: Network) -> list[Description]:
    """The network's input transforms (gamma, deskew, orientation planes), each with what its
    forward pass needs: the one place the exporters read them. Today they are the first
    ``net.n_input`` layers and declare no ``export()``; once they move to ``net.inputs``, this
    function reads that object and nothing else changes."""
    described = []
    for layer in net.layers[: net.n_input]:
        side = math.isqrt(math.prod(layer.in_shape))
        if hasattr(layer, "export"):
            described.append(describe(layer))
        elif isinstance(layer, Gamma):
            described.append({"type": "gamma", "gamma": layer.gamma, "arrays": {}})
        elif isinstance(layer, Deskew):
            described.append({"type": "deskew", "side": side, "arrays": {}})
        elif isinstance(layer, OrientationPlanes):
            described.append({"type": "orientation", "side": side,
                              "out_shape": list(layer.out_shape), "arrays": {}})
        else:
            raise ExportError(f"the input transform {layer.spec()!r} has no exported form yet")
    return described

