"""Screen recipe changes honestly: one network per (variant, seed), scored on validation data.

    NUMERAL_DATA=…/TibetanMNIST.zip python benchmarks/screen.py \\
        "80 epochs: epochs=80" "120 epochs: epochs=120" "dropout 0.1: epochs=120 dropout=0.1" \\
        [--base best] [--split random] [--seeds 2] [--jobs 8] [--threads 2]

Each variant is ``"label: key=value key=value"`` (values parsed as TOML, as ``--set`` does)
applied on top of the base preset with ``ensemble=1``, ``input_transform="none"`` and
``val_fraction=0.2``: every network trains on 80 % of the training split and is scored on
the other 20 %, so choosing between variants never looks at the test split. Runs go out
as parallel ``numeral train`` processes with ``--threads`` BLAS threads each (pinned to
their own cores where the machine has enough), so a 16-core machine screens 8 networks at
once. Prints one row per variant: the validation error of each seed and their mean.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
FIXED = ["ensemble=1", 'input_transform="none"', "val_fraction=0.2"]


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'label: a=1 b=2' -> ('label', ['a=1', 'b=2'])."""
    label, colon, settings = text.partition(":")
    pairs = shlex.split(settings)
    bad = [p for p in pairs if "=" not in p]
    if not colon or not label.strip() or bad:
        raise SystemExit(f"screen: variant {text!r} must read 'label: key=value ...'")
    return label.strip(), pairs


def command(base: str, split: str, pairs: list[str], seed: int, out: Path) -> list[str]:
    settings = [arg for p in [*FIXED, f"seed={seed}", *pairs] for arg in ("--set", p)]
    return [sys.executable, "-m", "numeral.cli", "train", "--config", base, "--split", split,
            *settings, "--out", str(out), "--quiet"]


def final_val_error(run: Path) -> float | None:
    """The validation error after the last epoch, from the run's metrics.csv."""
    try:
        with open(run / "metrics.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return float(rows[-1]["val_error"])
    except (OSError, KeyError, IndexError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", help="'label: key=value ...'")
    parser.add_argument("--base", default="best", help="preset the variants change")
    parser.add_argument("--split", default="random", choices=["random", "sheet"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads per network")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "screen")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg",
               **{k: str(args.threads) for k in
                  ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    queue = [(label, pairs, seed) for label, pairs in variants for seed in range(args.seeds)]
    cores = os.cpu_count() or 1
    running: dict[int, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}  # slot -> process, log
    started = time.perf_counter()
    while queue or running:
        for slot, (proc, log) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                del running[slot]
        for slot in range(args.jobs):
            if slot in running or not queue:
                continue
            label, pairs, seed = queue.pop(0)
            run = args.out / f"{label.replace(' ', '_')}-seed{seed}"
            run.mkdir(parents=True, exist_ok=True)
            cmd = command(args.base, args.split, pairs, seed, run)
            if args.jobs * args.threads <= cores:  # pin each network to its own cores
                first = slot * args.threads
                cmd = ["taskset", "-c", f"{first}-{first + args.threads - 1}", *cmd]
            log = open(run / "log.txt", "wb")  # noqa: SIM115 (closed when the process ends)
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            running[slot] = (proc, log)
        time.sleep(1)
    print(f"| variant ({args.base}, one network, {args.split} split) | validation error "
          f"per seed | mean |")
    print("|---|---|---|")
    for label, pairs in variants:
        errors = [final_val_error(args.out / f"{label.replace(' ', '_')}-seed{seed}")
                  for seed in range(args.seeds)]
        done = [e for e in errors if e is not None]
        for seed, error in enumerate(errors):
            if error is None:
                log = args.out / f"{label.replace(' ', '_')}-seed{seed}" / "log.txt"
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                print(f"screen: {label}, seed {seed} failed: {tail[0]}", file=sys.stderr)
        each = ", ".join("failed" if e is None else f"{100 * e:.2f} %" for e in errors)
        mean = f"{100 * statistics.mean(done):.2f} %" if done else "-"
        print(f"| {label} (`{' '.join(pairs)}`) | {each} | {mean} |")
    print(f"\n{len(variants) * args.seeds} networks in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
