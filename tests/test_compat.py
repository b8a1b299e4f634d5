"""Model files of every earlier format still load and give the same probabilities.

The expected probabilities were computed by numeral 0.1 on another machine, so they are compared
within a tolerance measured here (tests/tolerance.py: SAFETY times how far rounding moves these
probabilities on this machine), and the tolerance is shown to catch a real change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tolerance import tolerance

from numeral.data import Dataset
from numeral.nn import Ensemble, Network, load_model

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
NAMES = ["format1-plain", "format1-standardised", "format1-float64", "format2-gamma-deskew",
         "format3-orientation", "format3-ensemble"]


@pytest.mark.parametrize("name", NAMES)
def test_models_saved_by_numeral_0_1_load_and_predict_as_they_did(name: str,
                                                                  tibetan: Dataset) -> None:
    with np.load(FIXTURES / "expected.npz") as expected:
        then = expected[name]
    X = tibetan.X[::1000]
    model = load_model(str(FIXTURES / f"{name}.npz"))
    now = model.predict_proba(X)
    assert now.shape == then.shape == (18, 10)
    atol = tolerance(model, X)
    np.testing.assert_allclose(now, then, rtol=0, atol=atol)
    # the tolerance still fails on a real change: one output parameter moved by 1e-4 ...
    model.members[0].params[-1][0] += 1e-4
    assert np.abs(model.predict_proba(X) - then).max() > 2 * atol
    # ... and a hidden layer's activation swapped for another
    desc, arrays = model.members[0].describe()
    swap = {"sigmoid": "tanh", "tanh": "sigmoid", "relu": "tanh", "leaky_relu": "sigmoid",
            "identity": "tanh"}
    layers = [swap.get(layer, layer) for layer in desc["layers"]]
    assert layers != desc["layers"]
    net = Network.from_description({**desc, "layers": layers}, arrays)
    swapped = Ensemble([net, *model.members[1:]]) if isinstance(model, Ensemble) else net
    assert np.abs(swapped.predict_proba(X) - then).max() > 100 * atol
