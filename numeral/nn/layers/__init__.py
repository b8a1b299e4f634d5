"""numeral.nn.layers — the layers a network is made of, each a forward/backward pair.

Read :mod:`~numeral.nn.layers.base` (the protocol) first, then any layer:

==================  ===========================================  =====================
layer string        class                                        file
==================  ===========================================  =====================
``dense N``         :class:`Dense`                               ``dense.py``
``sigmoid`` ...     :class:`Sigmoid`, ``Tanh``, ``ReLU``,        ``activations.py``
                    ``LeakyReLU``, ``Identity``
``dropout P``       :class:`Dropout`                             ``dropout.py``
``flatten``         :class:`Flatten`                             ``shape.py``
``conv OUT K``      :class:`Conv2D` (``stride=S``, ``padding=``) ``conv.py``
``maxpool K``       :class:`MaxPool2D`, ``AvgPool2D``,           ``pooling.py``
``avgpool K``       ``GlobalAvgPool`` (``globalavgpool``)
``batchnorm``       :class:`BatchNorm`, ``Standardize``          ``norm.py``
``gamma G``         :class:`Gamma`, ``Deskew``,                  ``transforms.py``
``deskew``          ``OrientationPlanes`` (``orientation``)
==================  ===========================================  =====================

A layer string is ``name [args] [key=value ...]``, e.g. ``"conv 4 3 stride=2 padding=0"``.

Each layer class describes itself, once, and everything outside the core reads that:

- ``arguments``: its positional and keyword settings, e.g. ``(("out_channels", "kernel"),
  ("stride", "padding"))`` for ``conv``; :func:`parse_layer` reads layer strings by it.
- ``export()``: ``{"type": name, hyperparameter: value, ..., "arrays": {name: array}}``, what
  the layer computes in evaluation mode (:func:`describe`). The ONNX export builds its nodes
  from it (a builder per type, ``numeral.export.onnx.BUILDERS``); the web export writes it
  into model.js as it is (arrays as base64), and numeral.js runs it (``FORWARD``, by type).

Adding a layer type
-------------------
1. Its file here: the class with ``name``, ``arguments``, ``export()`` beside its forward and
   backward pass, and its entry in ``_CLASSES`` below.
2. Its tests: its forward and backward (tests/test_layers.py, tests/test_gradcheck.py) and one
   use in ``every_layer_networks()`` (tests/test_export.py), which runs it through onnxruntime
   and node against ``predict_proba``.
3. Its forward pass outside Python: a function in ``FORWARD`` in
   numeral/export/static/numeral.js, and its nodes in ``BUILDERS`` in numeral/export/onnx.py,
   both keyed by the type ``export()`` declares.

Nothing else: the parser, the layer table the config checks use, the web export and model
files follow from the class. The tests fail while a type in :data:`LAYERS` lacks its
arguments (tests/test_layers.py), its description, an ONNX builder or a forward pass in
numeral.js (tests/test_export.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from numeral.nn.errors import InputError
from numeral.nn.layers.activations import (
    ACTIVATIONS,
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Tanh,
    get_activation,
)
from numeral.nn.layers.base import Layer
from numeral.nn.layers.conv import Conv2D
from numeral.nn.layers.dense import Dense
from numeral.nn.layers.dropout import Dropout
from numeral.nn.layers.norm import BatchNorm, Standardize
from numeral.nn.layers.pooling import AvgPool2D, GlobalAvgPool, MaxPool2D
from numeral.nn.layers.shape import Flatten
from numeral.nn.layers.transforms import Deskew, Gamma, InputTransform, OrientationPlanes

if TYPE_CHECKING:
    from numeral.nn.inputs import Transform

# every layer type, registered by its class when defined (Layer.__init_subclass__): a new
# layer in one of the files above needs nothing here; in a file of its own, one import line
LAYERS: dict[str, type[Layer]] = Layer.types
Arguments = tuple[tuple[str, ...], tuple[str, ...]]


def layer_arguments(cls: type[Layer]) -> Arguments:
    """The settings a layer string of ``cls`` takes: positional names, then keyword names."""
    return cls.arguments


def describe(layer: Layer | Transform) -> dict[str, Any]:
    """What ``layer`` computes in evaluation mode, as its class's ``export()`` declares it:
    ``{"type", hyperparameters..., "arrays": {name: array}}`` (``arrays`` always present).
    Needs a built layer (the arrays exist after :meth:`Layer.build`)."""
    description = dict(layer.export())
    description.setdefault("arrays", {})
    return description


# the settings each layer string takes (read from the classes; kept for older callers)
ARGUMENTS: dict[str, Arguments] = {
    name: layer_arguments(cls) for name, cls in LAYERS.items() if layer_arguments(cls) != ((), ())}


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_layer(text: str) -> Layer:
    """``"conv 6 3 stride=2"`` -> ``Conv2D(6, 3, stride=2)``; a clear error for anything else."""
    words = text.split()
    if not words:
        raise InputError("an empty layer string; write e.g. 'dense 128' or 'relu'")
    name, rest = words[0].lower(), words[1:]
    if name not in LAYERS:
        raise InputError(f"unknown layer {name!r} in {text!r}; layers: {', '.join(LAYERS)}")
    positional, keywords = layer_arguments(LAYERS[name])
    args = [w for w in rest if "=" not in w]
    kwargs = dict(w.split("=", 1) for w in rest if "=" in w)
    usage = " ".join([name, *(p.upper() for p in positional),
                      *(f"[{k}=...]" for k in keywords)])
    if len(args) != len(positional) or set(kwargs) - set(keywords):
        raise InputError(f"layer {text!r} does not fit its form: {usage}")
    try:
        return LAYERS[name](*map(_value, args), **{k: _value(v) for k, v in kwargs.items()})
    except TypeError as exc:
        raise InputError(f"layer {text!r}: {exc}; its form is {usage}") from None


def as_layer(item: str | Layer) -> Layer:
    """A layer object, from itself or its string."""
    return item if isinstance(item, Layer) else parse_layer(item)


__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "Activation",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Deskew",
    "Dropout",
    "Flatten",
    "Gamma",
    "GlobalAvgPool",
    "Identity",
    "InputTransform",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "OrientationPlanes",
    "ReLU",
    "Sigmoid",
    "Standardize",
    "Tanh",
    "as_layer",
    "describe",
    "get_activation",
    "layer_arguments",
    "parse_layer",
]
