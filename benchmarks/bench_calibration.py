"""How sure the models say they are, against how often they are right (#27).

    python benchmarks/bench_calibration.py runs/tibetan-sheet/model.npz tibetan \
        --figure docs/figures/reliability.png

For each model: on the test split it was trained beside (its metadata names it), the accuracy,
the expected calibration error and the negative log-likelihood of its probabilities as they
come out of the network and at the temperature fitted on its validation data (stored in the
model file when it was trained), and a reliability diagram of both. The test split only
reports: the temperature was chosen on validation data carved from training.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from numeral.data import load, resolve_data_path
from numeral.nn.calibration import expected_calibration_error, nll, reliability, tempered
from numeral.predict import Recognizer
from numeral.train.experiment import held_out
from numeral.viz.figures import reliability_diagram


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--figure", type=Path, help="PNG of the reliability diagrams")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load(resolve_data_path(None))
    print("| model | test split | images | accuracy | temperature | ECE raw | ECE calibrated "
          "| NLL raw | NLL calibrated |\n|---|---|---|---|---|---|---|---|---|")
    curves = {}
    for name in args.models:
        recognizer = Recognizer.from_file(name)
        meta = recognizer.meta
        test = held_out(ds, meta)
        raw = recognizer.model.predict_proba(ds.X[test])
        y = ds.y[test]
        t = recognizer.temperature
        calibrated = tempered(raw, t)
        fitted = meta.get("calibration", {}).get("fitted_on", "none fitted")
        print(f"| {name} | {meta.get('split', 'random')} | {len(y)} | "
              f"{np.mean(raw.argmax(axis=1) == y):.2%} | {t:g} ({fitted}) | "
              f"{expected_calibration_error(raw, y):.2%} | "
              f"{expected_calibration_error(calibrated, y):.2%} | {nll(raw, y):.4f} | "
              f"{nll(calibrated, y):.4f} |")
        for label, proba in (("raw", raw), ("calibrated", calibrated)):
            short = Path(name).parent.name if Path(name).name == "model.npz" else Path(name).stem
            curves[f"{short} {label}"] = (
                *reliability(proba, y), expected_calibration_error(proba, y))
    if args.figure:
        reliability_diagram(curves, args.figure, "single numerals, test split")
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
