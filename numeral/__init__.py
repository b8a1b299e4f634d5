"""numeral — handwritten numeral recognition with a deep network written in NumPy.

The pipeline, data flowing one way::

    numeral.data     images -> (n, 784) vectors in [0, 1], labels, sheet groups, splits
    numeral.nn       the network: forward, back-propagation, optimisers (NumPy only)
    numeral.train    configs, the training loop, checkpoints, metrics, Classifier
    numeral.viz      figures;  numeral.report: the HTML report
    numeral.serve    the draw-a-numeral page and JSON API
    numeral.export   ONNX, and a page that runs the model without a server
    numeral.read     whole numbers: segment a photo into numerals and read them
    numeral.models   the models that ship with numeral
    numeral.cli      the `numeral` command, a thin layer over the above
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from numeral.nn import Ensemble, Network
    from numeral.train.classifier import Classifier


def load_model(path: str = "tibetan") -> Network | Ensemble:
    """Load any model numeral saves (a network or an ensemble), or a model that ships with
    numeral by its name (``"tibetan"``, the default; see :mod:`numeral.models`). The result's
    ``predict_proba(X)`` takes exactly what :mod:`numeral.data` produces."""
    from numeral.models import resolve_model
    from numeral.nn.serialize import load_model as _load

    return _load(resolve_model(path))


def __getattr__(name: str) -> Any:
    if name == "Classifier":
        from numeral.train.classifier import Classifier

        return Classifier
    raise AttributeError(f"module 'numeral' has no attribute {name!r}")


__all__ = ["Classifier", "load_model"]
