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

Also: each step's achieved GFLOP/s (multiply-adds counted from the layers: forward, weight
gradients and input gradients) beside the machine's own large float32 GEMM measured in the
same run (the roofline), for the MLP, the reference CNN and a deeper CNN (four 3x3
convolutions 32-32-64-64, "same" padding, pooling after each pair; step only), and the peak
memory an epoch of the reference CNN adds to its process, numeral beside PyTorch.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numeral.nn import Network, Optimizer
from numeral.nn.layers import Conv2D
from numeral.train.cores import numeral_threads

SIZES = [784, 512, 256, 10]
# the reference CNN of the layered core's issue (numeral's `cnn` preset without dropout)
CNN = ["conv 32 3", "relu", "maxpool 2", "conv 64 3", "relu", "maxpool 2", "flatten",
       "dense 256", "relu", "dense 10"]
DEEP = ["conv 32 3 padding=same", "relu", "conv 32 3 padding=same", "relu", "maxpool 2",
        "conv 64 3 padding=same", "relu", "conv 64 3 padding=same", "relu", "maxpool 2",
        "flatten", "dense 256", "relu", "dense 10"]
BATCH = 128
N_SAMPLES = 14_208
GEMM_SIDE = 2048


def step_flops(model: str) -> float:
    """Floating-point operations of one step: 2 per multiply-add, in the forward pass, the
    weight gradients, and the input gradients of every weighted layer but the first."""
    net = numeral_net(model)
    total = 0.0
    for i, layer in enumerate(net.weighted):
        if isinstance(layer, Conv2D):  # OUT x C K K per output pixel
            c = layer.in_shape[0]
            per_sample = layer.out_shape[0] * c * layer.kernel**2 * math.prod(layer.out_shape[1:])
        else:
            per_sample = layer.in_shape[0] * layer.out_shape[0]
        total += 2.0 * BATCH * per_sample * (3 if i else 2)
    return total


def gemm_seconds() -> float:
    """The roofline: one large float32 matrix product, 2 n^3 operations."""
    rng = np.random.default_rng(0)
    a = rng.random((GEMM_SIDE, GEMM_SIDE), dtype=np.float32)
    out = np.empty_like(a)
    return median_seconds(lambda: np.matmul(a, a, out=out), 7, 2)


def status_bytes(field: str) -> int:
    """VmRSS (resident now) or VmHWM (peak since the last reset) of this process (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def start_peak() -> int:
    """Reset this process's peak resident memory to what it holds now and return that: an
    epoch's peak minus it is what the epoch added (Linux: /proc/self/clear_refs, 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return status_bytes("VmRSS")
    except OSError:  # not Linux: the peak so far (an earlier peak would hide the epoch's)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_bytes() -> int:
    """The process's peak resident memory since :func:`start_peak`."""
    try:
        return status_bytes("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
    if model in ("cnn", "deep"):
        return Network.from_layers(CNN if model == "cnn" else DEEP, input_shape=(1, 28, 28),
                                   seed=0)
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
    elif kind == "deep":
        model = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 256), nn.ReLU(),
            nn.Linear(256, 10))
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


def measure(kind: str, repeats: int, epochs: int, threads: int,
            own_threads: bool = True) -> dict[str, float]:
    """One measurement in this process: 'numeral', 'bare', 'pytorch', 'numeral-cnn' or
    'pytorch-cnn'. numeral runs on its own threads, as it trains (numeral_threads), unless
    ``own_threads`` is False."""
    if kind.startswith("numeral") and own_threads:
        model = kind.split("-")[1] if "-" in kind else "mlp"
        with numeral_threads(numeral_net(model)):
            return measure_here(kind, repeats, epochs, threads)
    return measure_here(kind, repeats, epochs, threads)


def measure_here(kind: str, repeats: int, epochs: int, threads: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    X = rng.random((N_SAMPLES, 784), dtype=np.float32)
    y = rng.integers(0, 10, N_SAMPLES)
    order = rng.permutation(N_SAMPLES)
    model = kind.split("-")[1] if "-" in kind else "mlp"
    if model in ("cnn", "deep"):  # steps of ~50 ms (cnn) to ~300 ms (deep): fewer repeats
        repeats, epochs = max(5, repeats // (10 if model == "cnn" else 40)), 1
    if kind == "bare":
        return {"step": median_seconds(bare_matmuls(X[:BATCH]), repeats)}
    if kind == "gemm":
        return {"step": gemm_seconds()}
    before = start_peak()  # the epoch first, so that its peak memory is its own
    if kind.startswith("numeral"):
        epoch = numeral_epoch(X, y, order, model)
    else:
        step, epoch, _ = torch_fns(X, y, order, threads, model)
    row = {}
    if model != "deep":  # the deep CNN: the step only (an epoch is ~40 s on 2 cores)
        row["epoch"] = median_seconds(epoch, epochs, 1)
        row["epoch_memory"] = float(peak_rss_bytes() - before)
    if kind.startswith("numeral"):
        step = numeral_step(X, y, model)
    row["step"] = median_seconds(step, repeats)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="repeats of the step timing")
    parser.add_argument("--epochs", type=int, default=3, help="repeats of the epoch timing")
    parser.add_argument("--rounds", type=int, default=5,
                        help="fresh processes per implementation, interleaved")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads (match BLAS)")
    parser.add_argument("--no-cnn", action="store_true", help="skip the CNN rows")
    parser.add_argument("--no-deep", action="store_true", help="skip the deeper CNN's step")
    parser.add_argument("--blas-threads", action="store_true",
                        help="numeral's CNNs on BLAS's own threads, not numeral_threads (as "
                             "before 2026-12-04), for comparison")
    parser.add_argument("--measure", choices=["numeral", "bare", "gemm", "pytorch",
                                              "numeral-cnn", "pytorch-cnn", "numeral-deep",
                                              "pytorch-deep"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # a child process: print one JSON line
        print(json.dumps(measure(args.measure, args.repeats, args.epochs, args.threads,
                                 own_threads=not args.blas_threads)))
        return

    deep = not (args.no_cnn or args.no_deep)
    kinds = ["gemm", "numeral", "bare"] + ([] if args.no_cnn else ["numeral-cnn"])
    kinds += ["numeral-deep"] if deep else []
    try:
        import torch

        kinds += ["pytorch"] + ([] if args.no_cnn else ["pytorch-cnn"])
        kinds += ["pytorch-deep"] if deep else []
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
                 "--epochs", str(args.epochs), "--threads", str(args.threads),
                 *(["--blas-threads"] if args.blas_threads else [])],
                check=True, capture_output=True, text=True,
            ).stdout
            results[kind].append(json.loads(out.strip().splitlines()[-1]))
    rows = {k: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for k, runs in results.items()}

    print(f"784-512-256-10 ReLU, batch {BATCH}, float32, {N_SAMPLES} samples, Adam; "
          f"{versions}; medians of {args.rounds} interleaved rounds")
    roof = 2.0 * GEMM_SIDE**3 / rows["gemm"]["step"] / 1e9
    print(f"roofline: a {GEMM_SIDE}x{GEMM_SIDE} float32 GEMM runs at {roof:.0f} GFLOP/s")
    print(f"{'':>14} {'step (ms)':>10} {'epoch (s)':>10} {'GFLOP/s':>8} {'of roof':>8} "
          f"{'epoch MB':>9}")
    for name, row in rows.items():
        if name == "gemm":
            continue
        epoch_text = f"{row['epoch']:.3f}" if "epoch" in row else "-"
        model = name.split("-")[1] if "-" in name else "mlp"
        rate = step_flops(model) / row["step"] / 1e9
        memory = f"{row['epoch_memory'] / 2**20:.0f}" if "epoch_memory" in row else "-"
        print(f"{name:>14} {1e3 * row['step']:>10.3f} {epoch_text:>10} {rate:>8.1f} "
              f"{rate / roof:>8.0%} {memory:>9}")
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
              f"epoch {n['epoch'] / t['epoch']:.2f}x (target <= 1.1x); epoch memory "
              f"{n['epoch_memory'] / max(t['epoch_memory'], 1.0):.2f}x PyTorch's")
    if "pytorch-deep" in rows:
        n, t = rows["numeral-deep"], rows["pytorch-deep"]
        print(f"deeper CNN: numeral step / PyTorch step: {n['step'] / t['step']:.2f}x")


if __name__ == "__main__":
    main()
