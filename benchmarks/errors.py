"""Where a trained model errs on its own test split: by (true, predicted) pair and by sheet.

    NUMERAL_DATA=…/TibetanMNIST.zip python benchmarks/errors.py MODEL [--gallery PNG]

Prints the most frequent confusions with the sheets (writers) they come from, and with
--gallery draws the test images of the most frequent confusion next to correctly read
samples of both classes, to judge by eye whether the model or the label is wrong.
"""

from __future__ import annotations

import argparse
import collections
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numeral
from numeral.data import load, resolve_data_path
from numeral.train.experiment import held_out
from numeral.viz.figures import image_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--gallery", type=Path, help="write a PNG of the top confusion")
    parser.add_argument("--top", type=int, default=8, help="confusions to list")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    data = load(resolve_data_path(None))
    model = numeral.load_model(str(args.model))
    test = held_out(data, model.meta)
    y, groups, images = data.y[test], data.groups[test], data.images[test]
    pred = model.predict(data.X[test])
    wrong = pred != y
    print(f"{args.model}: {model.meta.get('split')} split, {len(test)} test images, "
          f"{wrong.sum()} wrong ({1 - wrong.mean():.2%} right)")
    pairs = collections.Counter(zip(y[wrong].tolist(), pred[wrong].tolist(), strict=True))
    for (true, guess), count in pairs.most_common(args.top):
        sheets = collections.Counter(groups[wrong & (y == true) & (pred == guess)].tolist())
        where = ", ".join(f"sheet {s}: {n}" for s, n in sorted(sheets.items()))
        print(f"  true {true} read as {guess}: {count:3d}   ({where})")
    if args.gallery and pairs:
        (true, guess), _ = pairs.most_common(1)[0]
        confused = np.flatnonzero(wrong & (y == true) & (pred == guess))[:20]
        right_true = np.flatnonzero(~wrong & (y == true))[::37][:10]
        right_guess = np.flatnonzero(~wrong & (y == guess))[::37][:10]
        pick = np.concatenate([confused, right_true, right_guess])
        titles = ([f"label {true}, read {guess}"] * len(confused)
                  + [f"label {true}, read {true}"] * len(right_true)
                  + [f"label {guess}, read {guess}"] * len(right_guess))
        image_grid(images[pick], [f"{t}\nsheet {groups[i]}" for t, i in zip(titles, pick,
                                                                          strict=True)],
                   args.gallery)
        print(f"gallery: {args.gallery}")


if __name__ == "__main__":
    main()
