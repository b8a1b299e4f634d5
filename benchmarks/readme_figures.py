"""Regenerate the figures shown in the README with the project's own commands.

    NUMERAL_DATA=…/TibetanMNIST.zip python benchmarks/readme_figures.py

Trains the `seed`, `seed-xavier` and `latent2d` presets and the `regularization`
study into runs/readme/, then copies the figures the README shows into
docs/figures/. Each figure in the README names the run it comes from.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numeral.cli import main

RUNS = Path("runs/readme")
DOCS = Path("docs/figures")
WANTED = {
    "seed": ["learning_curves.png", "activations.png"],
    "seed-xavier": ["learning_curves.png", "activations.png", "confusion_matrix.png"],
    "latent2d": ["latent_features.png", "learning_curves.png"],
    "regularization": ["regularization.png"],
}


def run() -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    for preset, figures in WANTED.items():
        out = RUNS / preset
        if main(["train", "--config", preset, "--out", str(out), "--quiet"]) != 0:
            raise SystemExit(f"training {preset} failed")
        for name in figures:
            shutil.copy(out / "figures" / name, DOCS / f"{preset}-{name}")
            print(f"docs/figures/{preset}-{name}  <-  {out}/figures/{name}")


if __name__ == "__main__":
    run()
