"""What watching costs a run: training time with and without --live / --tensorboard.

    NUMERAL_DATA=…/TibetanMNIST.zip python benchmarks/bench_live.py [--repeats 3]

Each measurement is a fresh ``numeral train`` process; the variants alternate (plain, live,
tensorboard, plain, ...) so that drifts of the machine hit all of them alike. The time
compared is the training loop's own (``train_seconds`` in evaluation.json: every epoch with
its metrics and the observers' per-epoch calls, not the data loading or the report). No
browser is connected: the page's work (the probe in a worker thread) happens whether or not
anyone watches.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RUNS = {  # name: train arguments
    "baseline MLP, 20 epochs": ["--config", "baseline", "--epochs", "20"],
    "cnn, 3 epochs": ["--config", "cnn", "--epochs", "3"],
}
VARIANTS = {"plain": [], "--live": ["--live", "0"], "--tensorboard": ["--tensorboard", "TB"]}


def train_seconds(args: list[str], variant: list[str], folder: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=folder))
    extra = [str(out / "tb") if a == "TB" else a for a in variant]
    subprocess.run([sys.executable, "-m", "numeral.cli", "train", *args, "--quiet",
                    "--out", str(out), *extra], check=True, stdout=subprocess.DEVNULL)
    return float(json.loads((out / "evaluation.json").read_text())["train_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| run | plain (s) | --live (s) | ratio | --tensorboard (s) | ratio |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in RUNS.items():
            times: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for _ in range(args.repeats):
                for variant, flags in VARIANTS.items():
                    times[variant].append(train_seconds(run, flags, Path(tmp)))
            median = {v: statistics.median(t) for v, t in times.items()}
            print(f"| {name} | {median['plain']:.2f} | {median['--live']:.2f} | "
                  f"{median['--live'] / median['plain']:.3f} | {median['--tensorboard']:.2f} | "
                  f"{median['--tensorboard'] / median['plain']:.3f} |", flush=True)
    print(f"\nmedians of {args.repeats} fresh processes each, variants alternating")


if __name__ == "__main__":
    main()
