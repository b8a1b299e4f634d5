"""Preprocessing and augmentation speed on the real TibetanMNIST zip.

    NUMERAL_DATA=…/TibetanMNIST.zip python benchmarks/bench_data.py

(1) all 17,768 raw 350x350 JPEGs -> (n, 784) arrays with a cold cache,
(2) the same load again from the cache,
(3) one training epoch of 784-512-256-10 (ReLU, Adam, batch 128) without and with
    random affine + elastic distortions, as a ratio (target: under 1.3x).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numeral.data import load, resolve_data_path
from numeral.train.config import Config
from numeral.train.loop import Split, Trainer


def epoch_seconds(X, y, augment: bool, epochs: int = 3) -> float:
    config = Config(hidden=[512, 256], epochs=epochs, augment=augment, augment_elastic=1.5)
    trainer = Trainer(config, Split(X, y), progress=False)
    trainer.run()
    return min(row["seconds"] for row in trainer.history)


def main() -> None:
    path = resolve_data_path(sys.argv[1] if len(sys.argv) > 1 else None)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NUMERAL_CACHE"] = cache
        started = time.perf_counter()
        ds = load(path)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        ds = load(path)
        _ = ds.X
        warm = time.perf_counter() - started
    print(f"{path}: {len(ds)} images, {os.cpu_count()} cores")
    print(f"preprocess, cold cache: {cold:.2f} s ({1e3 * cold / len(ds):.3f} ms per image)")
    print(f"load from the cache:    {warm:.3f} s")
    X, y = ds.X, ds.y
    plain, augmented = epoch_seconds(X, y, False), epoch_seconds(X, y, True)
    print(f"epoch 784-512-256-10 Adam: plain {plain:.2f} s, augmented {augmented:.2f} s "
          f"-> {augmented / plain:.2f}x")


if __name__ == "__main__":
    main()
