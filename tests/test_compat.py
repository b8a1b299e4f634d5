"""Model files of every earlier format still load and give the same probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from numeral.data import Dataset
from numeral.nn import load_model

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
NAMES = ["format1-plain", "format1-standardised", "format1-float64", "format2-gamma-deskew",
         "format3-orientation", "format3-ensemble"]


@pytest.mark.parametrize("name", NAMES)
def test_models_saved_by_numeral_0_1_load_and_predict_as_they_did(name: str,
                                                                  tibetan: Dataset) -> None:
    with np.load(FIXTURES / "expected.npz") as expected:
        then = expected[name]
    now = load_model(str(FIXTURES / f"{name}.npz")).predict_proba(tibetan.X[::1000])
    assert now.shape == then.shape == (18, 10)
    np.testing.assert_allclose(now, then, rtol=0, atol=1e-6)
