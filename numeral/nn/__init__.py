"""numeral.nn — the network core: NumPy and the standard library, nothing else.

Read in this order: ``layers`` (each a forward/backward pair: ``layers/base.py`` first, then
``dense``, ``activations``, ``conv``, ``pooling``, ``norm``, ...) -> ``losses`` -> ``init`` ->
``regularizers`` -> ``network`` (the layers in order, back-propagation over them) -> ``optim``
-> ``schedules`` -> ``files`` / ``serialize`` -> ``gradcheck``; ``reference`` is the same
mathematics written plainly, to read beside the fast code. ``inputs`` holds the fixed input
transforms and :class:`Inputs`, a network's ``net.inputs`` in front of its layers;
``constraints`` says what each setting may be; ``calibration`` makes how sure a trained model
says it is match how often it is right (temperature scaling).
"""

from numeral.nn.ensemble import Ensemble
from numeral.nn.errors import DivergenceError, InputError, ModelFileError, NumeralError
from numeral.nn.gradcheck import GradCheckResult, gradcheck
from numeral.nn.init import INITIALISERS
from numeral.nn.inputs import INPUT_TRANSFORMS, Inputs
from numeral.nn.layers import ACTIVATIONS, LAYERS, Layer, get_activation
from numeral.nn.losses import softmax, softmax_cross_entropy_
from numeral.nn.network import Network
from numeral.nn.optim import OPTIMISERS, Optimizer
from numeral.nn.schedules import SCHEDULES, learning_rate
from numeral.nn.serialize import load_model, save_model

__all__ = [
    "ACTIVATIONS",
    "INITIALISERS",
    "INPUT_TRANSFORMS",
    "LAYERS",
    "OPTIMISERS",
    "SCHEDULES",
    "DivergenceError",
    "Ensemble",
    "GradCheckResult",
    "InputError",
    "Inputs",
    "Layer",
    "ModelFileError",
    "Network",
    "NumeralError",
    "Optimizer",
    "get_activation",
    "gradcheck",
    "learning_rate",
    "load_model",
    "save_model",
    "softmax",
    "softmax_cross_entropy_",
]
