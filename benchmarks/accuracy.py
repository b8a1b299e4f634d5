"""Train the shipped presets on TibetanMNIST and tabulate their test accuracy.

    NUMERAL_DATA=…/TibetanMNIST.zip python benchmarks/accuracy.py [--presets seed best]
        [--seeds 3] [--out runs/accuracy]

For each preset and each split (stratified random 20 %, and writer-independent:
whole sheets held out), trains with ``numeral train`` (the same code path as the
command line) and reports test accuracy and training time; `best` is trained with
several seeds and reported as mean ± standard deviation. The accuracy is measured
again through ``numeral.load_model(PATH).predict_proba(X)`` on the vectors
``numeral.data`` produces, so no preprocessing outside the model file is involved.
Prints a Markdown table with the command that reproduces each row.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numeral
from numeral.data import load, resolve_data_path
from numeral.train.config import load_config
from numeral.train.experiment import DataSource, held_out, run_experiment

PRESETS = ["seed", "seed-xavier", "baseline", "latent2d", "best"]


def measured_accuracy(model_path: Path, data) -> float:
    model = numeral.load_model(str(model_path))
    test = held_out(data, model.meta)  # the test split recorded in the model file
    proba = model.predict_proba(data.X[test])
    return float(np.mean(proba.argmax(axis=1) == data.y[test]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--splits", nargs="+", default=["random", "sheet"])
    parser.add_argument("--seeds", type=int, default=3, help="seeds for the best preset")
    parser.add_argument("--out", type=Path, default=Path("runs/accuracy"))
    parser.add_argument("--reuse", action="store_true",
                        help="keep runs this script already finished in --out (model.npz and "
                             "seconds.txt), train only the missing ones")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    path = resolve_data_path(None)
    data = load(path)
    rows = []
    for preset in args.presets:
        for how in args.splits:
            seeds = range(args.seeds) if preset == "best" else [0]
            accuracies, seconds = [], []
            for seed in seeds:
                out = args.out / f"{preset}-{how}-seed{seed}"
                config = load_config(preset, [f'split="{how}"', f"seed={seed}"])
                if args.reuse and (out / "seconds.txt").is_file():
                    seconds.append(float((out / "seconds.txt").read_text()))
                else:
                    started = time.perf_counter()
                    run_experiment(config, DataSource(str(path)), out, progress=False)
                    seconds.append(time.perf_counter() - started)
                    (out / "seconds.txt").write_text(f"{seconds[-1]:.1f}\n")
                accuracies.append(measured_accuracy(out / "model.npz", data))
                print(f"{preset} {how} seed {seed}: {accuracies[-1]:.2%} "
                      f"in {seconds[-1]:.0f} s", flush=True)
            mean = statistics.mean(accuracies)
            spread = f" ± {statistics.stdev(accuracies):.2%}" if len(accuracies) > 1 else ""
            command = (f"numeral train --config {preset} --split {how}"
                       + (" --set seed=N" if len(accuracies) > 1 else "") + " --out DIR")
            rows.append((preset, how, f"{mean:.2%}{spread}", f"{statistics.mean(seconds):.0f} s",
                         len(accuracies), command))
    print("\n| preset | split | test accuracy | training time | seeds | command |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(f"`{c}`" if i == 5 else str(c) for i, c in enumerate(row)) + " |")


if __name__ == "__main__":
    main()
