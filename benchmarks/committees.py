"""Validation errors of every committee a sweep's finished trials can make, by kind.

    python benchmarks/committees.py runs/screen-cnn [--kinds mlp cnn cnnbn] [--max 3]

A sweep (numeral sweep) leaves each trial's validation probabilities in
``TRIAL/val_probs.npz``; trials are named ``SETTING-seedK``. For every mix of settings (how
many trials of each, up to --max of each), this averages the probabilities of every
combination of distinct trials and prints the committees' validation errors: the mean, the
fewest and the most. ``numeral sweep --committee A+B`` scores one mix; this scores them all,
so that a choice of committee rests on every combination, not on one lucky pair.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from numeral.train.sweep import by_setting, every_committee, validation_probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--kinds", nargs="+", help="settings to mix (default: all)")
    parser.add_argument("--max", type=int, default=3, help="trials of one setting at most")
    args = parser.parse_args()
    saved = validation_probabilities([args.sweep])
    y = saved.pop("y", None)
    saved.pop("split", None)
    if y is None:
        raise SystemExit(f"{args.sweep}: no finished trials (no */val_probs.npz)")
    kinds = by_setting(sorted(saved))
    names = args.kinds or sorted(kinds)
    print(f"{args.sweep}: {len(y)} validation images; trials: "
          + ", ".join(f"{k} {len(kinds[k])}" for k in names))
    print("\n| committee | validation errors: mean (fewest - most) | combinations |")
    print("|---|---|---|")
    for counts, errors in every_committee(saved, y, names, args.max):
        label = " + ".join(f"{n} {k}" for k, n in counts.items() if n)
        print(f"| {label} | {np.mean(errors):.1f} ({min(errors)} - {max(errors)}) "
              f"| {len(errors)} |")


if __name__ == "__main__":
    main()
