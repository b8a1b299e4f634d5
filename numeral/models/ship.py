"""Write the shipped model: ``python3 tasks.py ship`` (which trains the two runs first).

    python -m numeral.models.ship runs/tibetan-random runs/tibetan-sheet

The model trained on the random split's training part is stored as float16 in
``numeral/models/tibetan.npz`` with its recipe, the data it saw, its test accuracy, the same
recipe's accuracy on the writer-independent split, and the data's licence in its metadata. The
float16 file is checked against the float32 model on the test split: at most 0.05 point apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from numeral.data import load
from numeral.errors import NumeralError
from numeral.models import LICENCE, SHIPPED
from numeral.nn import Ensemble, Network
from numeral.nn.files import save_model
from numeral.nn.serialize import load_model
from numeral.train.experiment import held_out

MAX_SIZE = 8_000_000  # bytes
MAX_LOSS = 0.0005  # accuracy the float16 file may lose against float32 (0.05 point)


def test_accuracy(model: Network | Ensemble, run: Path) -> tuple[float, int]:
    """Accuracy on the test split the run was trained beside, and its size."""
    info = json.loads((run / "run.json").read_text())
    ds = load(info["source"]["data"])
    test = held_out(ds, model.members[0].meta)
    return float(np.mean(model.predict(ds.X[test]) == ds.y[test])), len(test)


def ship(random_run: Path, sheet_run: Path, out: Path | None = None) -> Path:
    out = out or Path(__file__).parent / SHIPPED["tibetan"]
    model = load_model(random_run / "model.npz")
    accuracy, n = test_accuracy(model, random_run)
    sheet = json.loads((sheet_run / "evaluation.json").read_text())
    config = (random_run / "config.toml").read_text()
    facts = {
        "name": "tibetan",
        "licence": LICENCE,
        "recipe": "python3 tasks.py ship  (numeral train --config tibetan --split random|sheet)",
        "config": config,
        "trained_on": "TibetanMNIST, the training part of the stratified random split "
                      "(80 %, split_seed 0)",
        "test_accuracy_random": round(accuracy, 5),
        "test_images_random": n,
        "test_accuracy_sheet": round(float(sheet["accuracy"]), 5),
        "test_images_sheet": int(sheet["n"]),
    }
    for net in model.members:
        net.meta.update(facts)
    if model.members != [model]:  # an ensemble's own metadata too
        model.meta.update(facts)
    save_model(model, out, half=True)
    shipped = load_model(out)
    half_accuracy, _ = test_accuracy(shipped, random_run)
    size = out.stat().st_size
    print(f"{out}: {size / 1e6:.2f} MB; test accuracy float32 {accuracy:.4%}, float16 "
          f"{half_accuracy:.4%} ({n} images); sheet split {sheet['accuracy']:.4%}")
    if size > MAX_SIZE or accuracy - half_accuracy > MAX_LOSS:
        raise NumeralError(f"{out} is {size} bytes, or loses {accuracy - half_accuracy:.4%} "
                           f"in float16: over the limits ({MAX_SIZE} bytes, 0.05 point)")
    return out


if __name__ == "__main__":
    ship(Path(sys.argv[1]), Path(sys.argv[2]))
