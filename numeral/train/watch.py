"""Watching a run while it trains: what each epoch shows, and the observers that show it.

An :class:`Observer` is told about the run's data before training (``start``), after every
epoch with the network as it is (``epoch``), and once the model is saved (``finish``). Two
ship with numeral: :class:`TensorBoardLog` here (``numeral train --tensorboard DIR``) and the
live page, ``numeral.serve.live.LiveView`` (``numeral train --live``).

A :class:`Probe` computes what both show from the network on fixed samples: the 2-D latent
features of 1,000 training images (a 2-unit layer, or the top two principal components of the
chosen hidden layer, signs kept from epoch to epoch so the picture does not flip), a
histogram of each hidden layer's activations, and the guesses on 48 fixed test images.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from numeral.errors import NumeralError
from numeral.nn import Ensemble, Network
from numeral.train.config import member_epochs

HIST_BINS = 40
HIST_SAMPLE = 200_000  # values a histogram of the probe reads at most
FIXED_RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


def hidden_histogram(values: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin edges of a hidden layer's activations: over the function's own range
    for sigmoid and tanh, else over the values' range."""
    low, high = FIXED_RANGES.get(
        activation, (float(values.min()), float(max(values.max(), values.min() + 1e-6))))
    return np.histogram(values, bins=HIST_BINS, range=(low, high))


def principal_2d(features: np.ndarray, previous: np.ndarray | None = None,
                 sample: int = 4000, iterations: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """``features`` (n, d) projected on their top two principal components (estimated from up
    to ``sample`` rows), and those components (2, d). A layer of 2 units is returned as it is.

    The components come from subspace iteration (q <- orth(Aᵀ A q), then the two directions of
    span(q) ordered by variance), which costs a few products with A instead of a full SVD
    (116 ms for 1,000 x 256 here, against a few ms), and starts from ``previous`` when given:
    consecutive epochs then converge in a few steps and keep each component's sign."""
    features = features.astype(np.float64)
    d = features.shape[1]
    if d <= 2:
        return features, np.eye(d)
    centred = features - features.mean(axis=0)
    rows = centred[:: max(1, len(centred) // sample)]
    start = (previous.T if previous is not None and previous.shape == (2, d)
             else np.random.default_rng(0).normal(size=(d, 2)))
    q = np.linalg.qr(start)[0]
    for _ in range(iterations):  # until the plane stops turning (cosines of its angles ~ 1)
        q, before = np.linalg.qr(rows.T @ (rows @ q))[0], q
        if np.linalg.svd(q.T @ before, compute_uv=False).min() > 1 - 1e-12:
            break
    projected = rows @ q
    _, vectors = np.linalg.eigh(projected.T @ projected)  # Rayleigh-Ritz in span(q)
    basis = (q @ vectors[:, ::-1]).T  # the larger variance first
    if previous is not None and previous.shape == basis.shape:
        flip = np.sum(basis * previous, axis=1) < 0
    else:  # a fixed orientation: each component's largest entry positive
        flip = basis[np.arange(2), np.abs(basis).argmax(axis=1)] < 0
    basis = basis * np.where(flip, -1.0, 1.0)[:, None]
    return centred @ basis.T, basis


def spread_sample(values: np.ndarray, most: int = HIST_SAMPLE) -> np.ndarray:
    """At most ``most`` of the values, evenly spread (a convolution's activations on 1,000
    images are tens of millions; their histogram's shape needs far fewer)."""
    flat = values.reshape(-1)
    return flat[:: max(1, flat.size // most)]


@dataclass
class EpochView:
    """What one epoch looks like on the probe's samples."""

    latent: np.ndarray  # (n, 2)
    latent_layer: int  # position among the hidden layers
    histograms: list[tuple[str, np.ndarray, np.ndarray]]  # (activation, counts, edges)
    guesses: np.ndarray  # predicted class of each shown test image
    confidence: np.ndarray  # its probability


class Probe:
    """Fixed samples of a run's data and what a network makes of them."""

    def __init__(self, train_X: np.ndarray, train_y: np.ndarray, shown_X: np.ndarray,
                 shown_y: np.ndarray, latent_layer: int = -1, size: int = 1000,
                 shown: int = 48, seed: int = 0) -> None:
        rng = np.random.default_rng([seed, 11])
        keep = np.sort(rng.choice(len(train_y), min(size, len(train_y)), replace=False))
        self.X, self.y = train_X[keep], train_y[keep]
        pick = np.sort(rng.choice(len(shown_y), min(shown, len(shown_y)), replace=False))
        self.shown_X, self.shown_y = shown_X[pick], shown_y[pick]
        self.latent_layer = latent_layer
        self._basis: np.ndarray | None = None

    @classmethod
    def of(cls, data: Any, latent_layer: int = -1, seed: int = 0) -> Probe:
        """A probe of a run's data (``numeral.train.experiment.RunData``): training images,
        and the test split's (else the validation split's, else the training split's)."""
        shown = data.test if data.test is not None and len(data.test) else (
            data.val if data.val is not None and len(data.val) else data.train)
        return cls(data.train.X, data.train.y, shown.X, shown.y, latent_layer, seed=seed)

    @property
    def shown_images(self) -> np.ndarray:
        side = math.isqrt(self.shown_X.shape[1])
        return self.shown_X.reshape(len(self.shown_X), side, -1)

    def measure(self, net: Network) -> EpochView:
        hidden = net.hidden_activations(self.X)
        names = net.activation_names
        layer = self.latent_layer % len(hidden) if hidden else 0
        if hidden:
            latent, self._basis = principal_2d(hidden[layer], self._basis)
        else:
            latent = np.zeros((len(self.X), 2))
        proba = net.predict_proba(self.shown_X)
        return EpochView(latent.astype(np.float32), layer,
                         [(name, *hidden_histogram(spread_sample(a), name))
                          for a, name in zip(hidden, names, strict=True)],
                         proba.argmax(1), proba.max(1))


class Observer(Protocol):
    """Something told about a run as it trains (all three calls in the training thread:
    ``epoch`` must return quickly and copy what it keeps, the network changes next step)."""

    def start(self, config: Any, data: Any) -> None: ...

    def epoch(self, row: dict[str, float], net: Network) -> None: ...

    def finish(self, model: Network | Ensemble, data: Any, evaluation: dict[str, Any],
               out: Path) -> None: ...


class EpochCallback:
    """An observer of the epochs only: ``fn(row)`` after each, the row of metrics.csv (what
    ``Trainer(on_epoch=fn)``, deprecated, does through this class)."""

    def __init__(self, fn: Callable[[dict[str, float]], None]) -> None:
        self.fn = fn

    def start(self, config: Any, data: Any) -> None:
        pass

    def epoch(self, row: dict[str, float], net: Network) -> None:
        self.fn(row)

    def finish(self, model: Network | Ensemble, data: Any, evaluation: dict[str, Any],
               out: Path) -> None:
        pass


# ------------------------------------------------------------------ TensorBoard
def require_tensorboardx() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise NumeralError("--tensorboard writes with tensorboardX, which is not installed; "
                           "install it with: pip install 'numeral[tensorboard]'") from None
    return SummaryWriter


class TensorBoardLog:
    """TensorBoard event files in ``logdir``: per epoch the scalars of metrics.csv (tags as
    its columns: train_loss, test_error, lr, ...), histograms of each layer's weights and of
    each hidden layer's activations; at the end the latent features of test images for the
    embedding projector (with the images as its sprite) and the misread test images."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = Path(logdir)
        self.writer: Any = None
        self.probe: Probe | None = None
        self.offsets = [0]  # global step of each ensemble member's epoch 0

    def start(self, config: Any, data: Any) -> None:
        SummaryWriter = require_tensorboardx()
        self.writer = SummaryWriter(str(self.logdir), flush_secs=5)
        self.probe = Probe.of(data, config.latent_layer, config.split_seed)
        self.offsets = [0, *itertools.accumulate(member_epochs(config))]

    def step(self, row: dict[str, float]) -> int:
        """Global step: the epoch, counted on across an ensemble's members."""
        return int(row["epoch"]) + self.offsets[int(row.get("member", 0))]

    def epoch(self, row: dict[str, float], net: Network) -> None:
        assert self.writer is not None and self.probe is not None
        step = self.step(row)
        for key, value in row.items():
            if key not in ("epoch", "member"):
                self.writer.add_scalar(key, value, step)
        for i, layer in enumerate(net.layers):
            names = layer.param_names or tuple(f"p{j}" for j in range(len(layer.params)))
            for name, array in zip(names, layer.params, strict=True):
                self.writer.add_histogram(f"weights/{i}_{layer.name}.{name}", array, step)
        hidden = net.hidden_activations(self.probe.X)
        for i, (a, name) in zip(net.hidden_layers, zip(hidden, net.activation_names, strict=True),
                                strict=True):
            self.writer.add_histogram(f"activations/{i}_{name}", spread_sample(a), step)
        self.writer.flush()

    def finish(self, model: Network | Ensemble, data: Any, evaluation: dict[str, Any],
               out: Path) -> None:
        assert self.writer is not None
        net = model.members[0] if isinstance(model, Ensemble) else model
        test = data.test if data.test is not None and len(data.test) else data.train
        keep = np.arange(0, len(test), max(1, len(test) // 1000))[:1000]
        hidden = net.hidden_activations(test.X[keep])
        if hidden:
            features = hidden[-1]
            images = test.images[keep].astype(np.float32)[:, None]
            self.writer.add_embedding(features, metadata=[test.class_names[c]
                                                          for c in test.y[keep]],
                                      label_img=images, tag="last_hidden_layer")
        wrong = evaluation.get("misclassified", [])[:64]
        if wrong:
            index = [m["index"] for m in wrong]
            self.writer.add_images("misread_test_images", test.images[index][:, None]
                                   .astype(np.float32), dataformats="NCHW")
            self.writer.add_text("misread_test_images", "  \n".join(
                f"{m['name']}: label {m['true']}, read {m['predicted']} "
                f"({m['confidence']:.0%})" for m in wrong))
        self.writer.close()
