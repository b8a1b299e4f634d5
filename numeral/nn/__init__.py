"""numeral.nn — the network core: NumPy and the standard library, nothing else.

Read in this order: ``activations`` -> ``losses`` -> ``init`` ->
``regularizers`` -> ``inputs`` (fixed input transforms) -> ``network`` (forward and
back-propagation) -> ``optim`` -> ``schedules`` -> ``serialize`` -> ``gradcheck``.
"""

from numeral.nn.activations import ACTIVATIONS, get_activation
from numeral.nn.ensemble import Ensemble
from numeral.nn.errors import DivergenceError, InputError, ModelFileError, NumeralError
from numeral.nn.gradcheck import GradCheckResult, gradcheck
from numeral.nn.init import INITIALISERS
from numeral.nn.inputs import INPUT_TRANSFORMS
from numeral.nn.losses import softmax, softmax_cross_entropy_
from numeral.nn.network import Network
from numeral.nn.optim import OPTIMISERS, Optimizer
from numeral.nn.schedules import SCHEDULES, learning_rate
from numeral.nn.serialize import load_model, save_model

__all__ = [
    "ACTIVATIONS",
    "INITIALISERS",
    "INPUT_TRANSFORMS",
    "OPTIMISERS",
    "SCHEDULES",
    "DivergenceError",
    "Ensemble",
    "GradCheckResult",
    "InputError",
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
