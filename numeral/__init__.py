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

In Python, one numeral or a whole number from a path, bytes, a PIL image or an array::

    numeral.recognize("seven.png").class_name      # "7"   (a Recognition; numeral.results)
    numeral.read("photo.jpg").text                 # "2026" (a Reading; .digits, .confidence)
    numeral.read("photo.jpg", model="best").to_dict()   # the JSON the CLI and the API give
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from numeral.nn import Ensemble, Network
    from numeral.predict import Model
    from numeral.results import Reading, Recognition
    from numeral.train.classifier import Classifier


def load_model(path: str = "tibetan") -> Network | Ensemble:
    """Load any model numeral saves (a network or an ensemble), or a model that ships with
    numeral by its name (``"tibetan"``, the default; see :mod:`numeral.models`). The result's
    ``predict_proba(X)`` takes exactly what :mod:`numeral.data` produces."""
    from numeral.models import resolve_model
    from numeral.nn.serialize import load_model as _load

    return _load(resolve_model(path))


def recognize(image: Any, model: Model = None, *, name: str = "image") -> Recognition:
    """The numeral in ``image`` (a path, bytes, a PIL image or an array), recognised by the
    shipped ``tibetan`` model unless ``model`` (a name, a file, a network) is given."""
    from numeral.predict import recognize as _recognize

    return _recognize(image, model, name=name)


def read(image: Any, model: Model = None, *, name: str = "image") -> Reading:
    """The numerals on one line of ``image`` (a path, bytes, a PIL image or an array), left to
    right, read by the shipped ``tibetan`` model unless ``model`` is given. (Once the module
    :mod:`numeral.read` is imported, ``numeral.read`` is that module, which reads the same way
    when called.)"""
    from numeral.read import read_number

    return read_number(image, model, name=name)


def __getattr__(name: str) -> Any:
    if name == "Classifier":
        from numeral.train.classifier import Classifier

        return Classifier
    raise AttributeError(f"module 'numeral' has no attribute {name!r}")


__all__ = ["Classifier", "load_model", "read", "recognize"]
