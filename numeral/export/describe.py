"""What both exporters read: a network as descriptions, ``{"type", hyperparameters...,
"arrays": {name: array}}``, one per step, in the order numeral applies them.

The learning layers describe themselves (their class's ``export()``, read through
:func:`numeral.nn.layers.describe`); the input transforms are read in one place,
:func:`input_descriptions`, which both exporters call. The ONNX graph (``onnx.BUILDERS``) and
numeral.js (``FORWARD``) each hold one forward pass per type and nothing else about layers.
"""

from __future__ import annotations

from typing import Any, cast

from numeral.errors import NumeralError
from numeral.nn import Network
from numeral.nn.layers import Layer, describe

Description = dict[str, Any]


class ExportError(NumeralError):
    """A model the exporter cannot write faithfully."""


def input_descriptions(net: Network) -> list[Description]:
    """The network's input transforms (``net.inputs``: gamma, deskew, orientation planes),
    each as it describes itself, with what its forward pass needs: the one place the
    exporters read them."""
    return [describe(cast(Layer, layer)) for layer in net.inputs.transforms]
