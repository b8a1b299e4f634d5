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

Then it asks what a committee would gain: every network's validation probabilities (saved
to ``OUT/val_probs.npz``) are averaged per variant and over all networks, and the images
that at least half of the networks misread are counted by confusion (``--hard PNG`` draws
them). ``--from-probs NPZ [NPZ ...]`` repeats that analysis from earlier screens' files alone
(screens of the same split), and ``--committee 'a-seed0+b-seed1+...'`` (repeatable) adds the
error of any mix of their networks:

    python benchmarks/screen.py --from-probs runs/do/val_probs.npz runs/do3/val_probs.npz \
        --committee 'do0-seed0+do0-seed1+dd0-seed0+dd0-seed1'
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import shlex
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numeral
from numeral.train.config import Config, load_config
from numeral.train.experiment import DataSource, RunData, prepare_data
from numeral.viz.figures import image_grid

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


def run_dir(out: Path, label: str, seed: int) -> Path:
    """Where the network of variant ``label`` and ``seed`` is trained."""
    return out / f"{label.replace(' ', '_')}-seed{seed}"


def final_val_error(run: Path) -> float | None:
    """The validation error after the last epoch, from the run's metrics.csv."""
    try:
        with open(run / "metrics.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return float(rows[-1]["val_error"])
    except (OSError, KeyError, IndexError, ValueError):
        return None


def last_log_line(run: Path) -> str:
    """The last line a run's ``numeral train`` wrote (its error, when it failed)."""
    lines = (run / "log.txt").read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def validation_data(config: Config) -> RunData:
    """The train / validation split a screen's networks were scored on (``split_seed``)."""
    data = prepare_data(config, DataSource(data=None))
    assert data.val is not None
    return data


def validation_probabilities(runs: list[Path], out: Path) -> tuple[dict[str, np.ndarray],
                                                                   RunData | None]:
    """Each finished run's class probabilities on the validation split, which every run of a
    screen shares -> out/val_probs.npz (with the labels as ``y`` and the ``split``)."""
    done = [run for run in runs if (run / "model.npz").is_file()]
    if not done:
        return {}, None
    config = load_config(str(done[0] / "config.toml"))
    data = validation_data(config)
    assert data.val is not None
    probs = {run.name: numeral.load_model(str(run / "model.npz")).predict_proba(data.val.X)
             for run in done}
    split = np.array(config.split)
    saved: dict[str, Any] = {"y": data.val.y, "split": split, **probs}
    np.savez_compressed(out / "val_probs.npz", **saved)
    return saved, data


def merge_probs(paths: list[Path]) -> dict[str, np.ndarray]:
    """The networks of several val_probs.npz files, which must score the same images."""
    merged: dict[str, np.ndarray] = {}
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"screen: {path} does not exist; give a screen's val_probs.npz")
        if not zipfile.is_zipfile(path):
            raise SystemExit(f"screen: {path} is not a .npz file; give a screen's val_probs.npz")
        with np.load(path, allow_pickle=False) as saved:
            found = {k: saved[k] for k in saved.files}
        if "y" not in found:
            raise SystemExit(f"screen: {path} is not a val_probs.npz (it has no labels 'y')")
        found.setdefault("split", np.array("random"))  # as committee_report reads it
        if "y" in merged and (not np.array_equal(merged["y"], found["y"])
                              or str(merged["split"]) != str(found["split"])):
            raise SystemExit(f"screen: {path} scores other validation images than "
                             f"{paths[0]}; merge only screens of the same split")
        twice = sorted(set(merged) & set(found) - {"y", "split"})
        if twice:
            raise SystemExit(f"screen: {path} repeats network {twice[0]}; rename one screen's runs")
        merged.update(found)
    return merged


def committee_report(saved: dict[str, np.ndarray], hard_png: Path | None,
                     data: RunData | None = None, mixes: Sequence[str] = ()) -> None:
    """Committee errors per variant, overall and for each ``'a+b+...'`` in ``mixes``, and the
    images most networks misread. ``saved`` is what val_probs.npz holds; ``data`` the split
    (loaded here when not given)."""
    probs = {name: p for name, p in saved.items() if name not in ("y", "split")}
    y, split = saved["y"], str(saved.get("split", "random"))
    runs = sorted(probs)
    mixed = [mix.split("+") for mix in mixes]
    unknown = sorted({n for names in mixed for n in names} - set(runs))
    if unknown:
        raise SystemExit(f"screen: --committee names {unknown[0]!r}, which no file holds; "
                         f"the networks are: {', '.join(runs)}")

    def error(names: list[str]) -> str:
        wrong = int((np.mean([probs[n] for n in names], axis=0).argmax(1) != y).sum())
        return f"{100 * wrong / len(y):.2f} % ({wrong} of {len(y)})"

    print("\n| committee (probabilities averaged) | networks | validation error |\n|---|---|---|")
    variants = collections.defaultdict(list)
    for name in runs:
        variants[name.rpartition("-seed")[0]].append(name)
    for label, names in variants.items():
        print(f"| {label} | {len(names)} | {error(names)} |")
    print(f"| every network | {len(runs)} | {error(runs)} |")
    for names in mixed:
        print(f"| {' + '.join(names)} | {len(names)} | {error(names)} |")
    guesses = np.array([probs[n].argmax(1) for n in runs])  # (networks, images)
    misread = guesses != y
    singles = misread.sum(axis=1)
    hard = [int(i) for i in np.flatnonzero(2 * misread.sum(axis=0) >= len(runs))]
    guess = {i: collections.Counter(guesses[misread[:, i], i].tolist()).most_common(1)[0][0]
             for i in hard}  # the wrong class the networks name most often
    pairs = collections.Counter((int(y[i]), guess[i]) for i in hard)
    print(f"\nOne network misreads {singles.min()}-{singles.max()} images; {len(hard)} are misread "
          f"by at least half of the {len(runs)} networks: "
          + ", ".join(f"{t} as {g}: {n}" for (t, g), n in pairs.most_common()))
    if hard_png is not None and len(hard):
        if data is None:  # --from-probs: the screens' split of the default base
            data = validation_data(load_config("best", [*FIXED, f"split={split!r}"]))
        assert data.val is not None and np.array_equal(data.val.y, y)
        titles = [f"label {y[i]}, read {guess[i]}\nby {misread[:, i].sum()} of {len(runs)}"
                  for i in hard]
        image_grid(data.val.images[hard], titles, hard_png)
        print(f"gallery: {hard_png}")
        nearest = nearest_neighbour(data.train.X, data.val.X)
        read = data.train.y[nearest]
        right = int((read == y)[hard].sum())
        print(f"A raw-pixel nearest neighbour (in the training part) reads {right}"
              f" of these {len(hard)} correctly; its own validation error is "
              f"{100 * np.mean(read != y):.2f} %")


def nearest_neighbour(train: np.ndarray, query: np.ndarray) -> np.ndarray:
    """argmin_j |q_i - t_j|^2 = argmin_j (|t_j|^2 - 2 q_i . t_j) for each query row i."""
    train, query = train.astype(np.float32), query.astype(np.float32)
    return np.argmin((train**2).sum(axis=1) - 2 * query @ train.T, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="*", help="'label: key=value ...'")
    parser.add_argument("--base", default="best", help="preset the variants change")
    parser.add_argument("--split", default="random", choices=["random", "sheet"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads per network")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "screen")
    parser.add_argument("--hard", type=Path, help="PNG of the images most networks misread")
    parser.add_argument("--from-probs", type=Path, nargs="+",
                        help="analyse these val_probs.npz files only (same split)")
    parser.add_argument("--committee", action="append", default=[], metavar="RUN+RUN+...",
                        help="also score this mix of networks (run names, e.g. do0-seed0)")
    args = parser.parse_args()
    if args.from_probs:
        committee_report(merge_probs(args.from_probs), args.hard, mixes=args.committee)
        return
    if not args.variants:
        parser.error("give at least one variant, or --from-probs")
    variants = [parse_variant(v) for v in args.variants]
    planned = {run_dir(args.out, label, seed).name for label, _ in variants
               for seed in range(args.seeds)}
    for mix in args.committee:  # checked now, not after hours of training
        if not set(mix.split("+")) <= planned:
            parser.error(f"--committee {mix!r} names networks this screen does not train; "
                         f"it trains {', '.join(sorted(planned))}")
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
            run = run_dir(args.out, label, seed)
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
        errors = [final_val_error(run_dir(args.out, label, seed)) for seed in range(args.seeds)]
        done = [e for e in errors if e is not None]
        for seed, error in enumerate(errors):
            if error is None:
                print(f"screen: {label}, seed {seed} failed: "
                      f"{last_log_line(run_dir(args.out, label, seed))}", file=sys.stderr)
        each = ", ".join("failed" if e is None else f"{100 * e:.2f} %" for e in errors)
        mean = f"{100 * statistics.mean(done):.2f} %" if done else "-"
        print(f"| {label} (`{' '.join(pairs)}`) | {each} | {mean} |")
    print(f"\n{len(variants) * args.seeds} networks in {time.perf_counter() - started:.0f} s")
    runs = [run_dir(args.out, label, seed) for label, _ in variants for seed in range(args.seeds)]
    probs, data = validation_probabilities(runs, args.out)
    if probs:
        committee_report(probs, args.hard, data, args.committee)


if __name__ == "__main__":
    main()
