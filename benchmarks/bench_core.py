"""Speed of the network core, side by side with PyTorch on the same CPU, in one run.

    python benchmarks/bench_core.py            # PyTorch columns appear when torch imports

Network 784-512-256-10, ReLU, softmax + cross-entropy, batch 128, float32, on
14,208 random inputs (the size of a TibetanMNIST training split), and the reference CNN
(conv 32 3, relu, maxpool 2, conv 64 3, relu, maxpool 2, flatten, dense 256, relu, dense 10)
on the same inputs as 28x28 images. Measures

(a) one forward + backward step (gradients of every parameter),
(b) one training epoch with Adam (batches in a fixed random order),

for numeral, for PyTorch (when installed), and the time of the bare matrix
products that one step needs (the floor any implementation pays), and prints
the ratios. Every timing is the median of several repeats.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numeral.nn import Network, Optimizer

SIZES = [784, 512, 256, 10]
# the reference CNN of the layered core's issue (numeral's `cnn` preset without dropout)
CNN = ["conv 32 3", "relu", "maxpool 2", "conv 64 3", "relu", "maxpool 2", "flatten",
       "dense 256", "relu", "dense 10"]
BATCH = 128
N_SAMPLES = 14_208


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bare_matmuls(X: np.ndarray) -> Callable[[], None]:
    """The 8 matrix products of one step: 3 forward, 3 weight gradients, 2 deltas."""
    rng = np.random.default_rng(0)
    Ws = [(rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32)
          for a, b in itertools.pairwise(SIZES)]
    acts = [X] + [np.empty((BATCH, s), np.float32) for s in SIZES[1:]]
    grads = [np.empty_like(W) for W in Ws]
    deltas = [rng.normal(size=(BATCH, s)).astype(np.float32) for s in SIZES[1:]]

    def step() -> None:
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W, out=acts[i + 1])
        for i in range(len(Ws) - 1, -1, -1):
            np.matmul(acts[i].T, deltas[i], out=grads[i])
            if i:
                np.matmul(deltas[i], Ws[i].T, out=deltas[i - 1])

    return step


def numeral_net(model: str) -> Network:
    if model == "cnn":
        return Network.from_layers(CNN, input_shape=(1, 28, 28), seed=0)
    return Network(SIZES, activation="relu", init="he", seed=0)


def numeral_step(X: np.ndarray, y: np.ndarray, model: str) -> Callable[[], None]:
    net = numeral_net(model)
    Xb, yb = X[:BATCH], y[:BATCH]
    return lambda: net.compute_gradients_(Xb, yb)  # type: ignore[return-value]


def numeral_epoch(X: np.ndarray, y: np.ndarray, order: np.ndarray,
                  model: str) -> Callable[[], None]:
    net = numeral_net(model)
    opt = Optimizer("adam", net.n_params, net.dtype, net.decay_mask)
    batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]

    def epoch() -> None:
        for idx in batches:
            net.compute_gradients_(X[idx], y[idx])
            opt.step(net.flat, net.grad_flat, 1e-3)

    return epoch


def torch_fns(X: np.ndarray, y: np.ndarray, order: np.ndarray, threads: int, kind: str):
    import torch

    torch.set_num_threads(threads)
    nn = torch.nn
    if kind == "cnn":
        model = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(1600, 256), nn.ReLU(), nn.Linear(256, 10))
    else:
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                              nn.Linear(256, 10))
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    Xb, yb = Xt[:BATCH], yt[:BATCH]
    batches = [torch.from_numpy(order[i : i + BATCH]) for i in range(0, len(order), BATCH)]

    def step() -> None:
        model.zero_grad(set_to_none=False)
        loss_fn(model(Xb), yb).backward()

    def epoch() -> None:
        for idx in batches:
            opt.zero_grad(set_to_none=False)
            loss_fn(model(Xt[idx]), yt[idx]).backward()
            opt.step()

    return step, epoch, torch.__version__


def measure(kind: str, repeats: int, epochs: int, threads: int) -> dict[str, float]:
    """One measurement in this process: 'numeral', 'bare', 'pytorch', 'numeral-cnn' or
    'pytorch-cnn'."""
    rng = np.random.default_rng(0)
    X = rng.random((N_SAMPLES, 784), dtype=np.float32)
    y = rng.integers(0, 10, N_SAMPLES)
    order = rng.permutation(N_SAMPLES)
    model = "cnn" if kind.endswith("-cnn") else "mlp"
    if model == "cnn":  # steps of ~50 ms: fewer repeats
        repeats, epochs = max(5, repeats // 10), 1
    if kind == "bare":
        return {"step": median_seconds(bare_matmuls(X[:BATCH]), repeats)}
    if kind.startswith("numeral"):
        return {"step": median_seconds(numeral_step(X, y, model), repeats),
                "epoch": median_seconds(numeral_epoch(X, y, order, model), epochs, 1)}
    step, epoch, _ = torch_fns(X, y, order, threads, model)
    return {"step": median_seconds(step, repeats), "epoch": median_seconds(epoch, epochs, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="repeats of the step timing")
    parser.add_argument("--epochs", type=int, default=3, help="repeats of the epoch timing")
    parser.add_argument("--rounds", type=int, default=5,
                        help="fresh processes per implementation, interleaved")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads (match BLAS)")
    parser.add_argument("--no-cnn", action="store_true", help="skip the CNN rows")
    parser.add_argument("--measure", choices=["numeral", "bare", "pytorch", "numeral-cnn",
                                              "pytorch-cnn"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # a child process: print one JSON line
        print(json.dumps(measure(args.measure, args.repeats, args.epochs, args.threads)))
        return

    kinds = ["numeral", "bare"] + ([] if args.no_cnn else ["numeral-cnn"])
    try:
        import torch

        kinds += ["pytorch"] + ([] if args.no_cnn else ["pytorch-cnn"])
        versions = f"numpy {np.__version__}, torch {torch.__version__}"
    except ImportError:
        print("PyTorch is not installed: its columns are skipped (pip install torch)")
        versions = f"numpy {np.__version__}"
    # Each implementation runs in a fresh process (no BLAS / OpenMP thread pools of one
    # disturbing the other), rounds interleaved so drift in the machine hits all alike.
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            out = subprocess.run(
                [sys.executable, __file__, "--measure", kind, "--repeats", str(args.repeats),
                 "--epochs", str(args.epochs), "--threads", str(args.threads)],
                check=True, capture_output=True, text=True,
            ).stdout
            results[kind].append(json.loads(out.strip().splitlines()[-1]))
    rows = {k: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for k, runs in results.items()}

    print(f"784-512-256-10 ReLU, batch {BATCH}, float32, {N_SAMPLES} samples, Adam; "
          f"{versions}; medians of {args.rounds} interleaved rounds")
    print(f"{'':>14} {'step (ms)':>10} {'epoch (s)':>10}")
    for name, row in rows.items():
        epoch_text = f"{row['epoch']:.3f}" if "epoch" in row else "-"
        print(f"{name:>14} {1e3 * row['step']:>10.3f} {epoch_text:>10}")
    n = rows["numeral"]
    print(f"numeral step / bare matmuls: {n['step'] / rows['bare']['step']:.2f}x")
    if "pytorch" in rows:
        t = rows["pytorch"]
        print(f"PyTorch step / bare matmuls: {t['step'] / rows['bare']['step']:.2f}x")
        print(f"numeral speed vs PyTorch: step {t['step'] / n['step']:.2f}x, "
              f"epoch {t['epoch'] / n['epoch']:.2f}x")
    if "pytorch-cnn" in rows:
        n, t = rows["numeral-cnn"], rows["pytorch-cnn"]
        print(f"CNN: numeral time / PyTorch time: step {n['step'] / t['step']:.2f}x, "
              f"epoch {n['epoch'] / t['epoch']:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
