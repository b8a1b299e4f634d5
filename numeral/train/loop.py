"""The training loop: mini-batches, the optimiser, checkpoints, snapshots for figures.

One epoch, for each batch (X_b, y_b):

    grads  = back-propagation of loss(X_b, y_b)       (numeral.nn.Network)
    params = optimiser step with lr = schedule(progress)

then the losses and errors on the train/validation/test splits are recorded,
snapshots for the figures are taken, and a checkpoint is written atomically.
Every random choice of epoch e comes from a generator seeded with
(seed, member, e), so a run resumed from a checkpoint ends with exactly the
weights of an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from numeral.data.augment import Augmentation, Augmenter
from numeral.errors import ConfigError
from numeral.nn import DivergenceError, Ensemble, Network, Optimizer, learning_rate
from numeral.nn.files import write_npz
from numeral.nn.inputs import Features, Signature
from numeral.nn.losses import softmax
from numeral.train.config import Config, member_config, network_layers
from numeral.train.cores import numeral_threads
from numeral.train.metrics import cross_entropy
from numeral.train.watch import EpochCallback, Observer, hidden_histogram, principal_2d

HIST_VALUES = 40_000_000  # hidden values the histograms of one snapshot read at most
# An epoch's training loss above this many times the larger of a uniform guess's loss,
# log(classes), and the untrained network's loss means divergence. (The untrained loss counts
# for inputs far from [0, 1]: there a fresh network's logits, and its loss, are large.)
DIVERGED_VS_START = 4.0
Log = Callable[[str], None]


def quiet_overflow() -> np.errstate:
    """Silence NumPy's overflow warnings: training checks each batch and epoch for divergence
    itself and says so in one error."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


@dataclass
class Split:
    X: np.ndarray
    y: np.ndarray


@dataclass
class TrainResult:
    model: Network | Ensemble
    history: list[dict[str, float]]
    snapshots: dict[str, np.ndarray] = field(default_factory=dict)
    stopped_early: bool = False


def default_snapshot_epochs(epochs: int) -> list[int]:
    """The first, middle and last epoch (the report's static figures) and up to 10 evenly
    spread in all (the frames of its animations)."""
    spread = np.linspace(1, epochs, min(epochs, 10)).round().astype(int).tolist()
    return sorted({1, max(1, epochs // 2), epochs, *spread})


def train_sample(train: Split, size: int, seed: int) -> Split:
    """The training images the learning curves score each epoch: all of them (size 0 or at
    least the split), else a fixed random sample of ``size``, drawn once from ``seed``."""
    if not 0 < size < len(train.y):
        return train
    keep = np.sort(np.random.default_rng([seed, 7]).choice(len(train.y), size, replace=False))
    return Split(train.X[keep], train.y[keep])


class Trainer:
    """Trains ``config.ensemble`` networks on (X, y) and keeps what the report needs."""

    def __init__(
        self,
        config: Config,
        train: Split,
        *,
        test: Split | None = None,
        val: Split | None = None,
        n_classes: int = 10,
        meta: dict[str, Any] | None = None,
        checkpoint: Path | None = None,
        progress: bool = True,
        log: Log | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        self.config = config
        self.observers = list(observers)  # told after each epoch (numeral.train.watch)
        if on_epoch is not None:  # one way to be told about epochs: an observer
            warnings.warn("Trainer(on_epoch=fn) is deprecated: pass observers="
                          "[numeral.train.watch.EpochCallback(fn)], or an observer of your own "
                          "(Observer.epoch)", DeprecationWarning, stacklevel=2)
            self.observers.insert(0, EpochCallback(on_epoch))
        self.train, self.test, self.val = train, test, val
        self.train_metrics = train_sample(train, config.train_metrics_sample, config.split_seed)
        self.n_classes = max(n_classes, int(train.y.max()) + 1 if len(train.y) else 2)
        self.meta = meta or {}
        self.checkpoint = checkpoint
        self.progress = progress
        self.log = log or (lambda message: None)
        self._member_configs: dict[int, Config] = {}  # see member_config
        self._augmenters: dict[Augmentation, Augmenter] = {}
        first = self.member_config(0)
        self.snapshot_epochs = config.snapshot_epochs or default_snapshot_epochs(first.epochs)
        self.history: list[dict[str, float]] = []
        self.snapshots: dict[str, np.ndarray] = {}
        self.members: list[Weights] = []  # what the finished ensemble members learned
        self._start_losses: dict[int, float] = {}  # see start_loss
        # X of each split as each kind of network reads it, keyed (id(split), net.inputs.signature):
        # as images (gamma, deskew) and as the first layer's features
        self._images: dict[tuple[int, Signature], np.ndarray] = {}
        self._prepared: dict[tuple[int, Signature], np.ndarray] = {}

    def member_config(self, member: int) -> Config:
        """The settings of ensemble member ``member`` (``config.members``, taken in turn)."""
        if member not in self._member_configs:
            self._member_configs[member] = member_config(self.config, member)
        return self._member_configs[member]

    def transform_of(self, member: int) -> str:
        """The input transform of ensemble member ``member`` (config.member_overrides takes
        a list in turn, so a member's is one name)."""
        t = self.member_config(member).input_transform
        assert isinstance(t, str)
        return t

    def augmenter(self, c: Config) -> Augmenter | None:
        """The distortions of a member's settings ``c`` (None without augmentation)."""
        if not c.augment:
            return None
        how = Augmentation(c.augment_shift, c.augment_rotate, c.augment_scale, c.augment_shear,
                           c.augment_elastic, stroke=c.augment_stroke, ink=c.augment_ink,
                           breaks=c.augment_break)
        return self._augmenters.setdefault(how, Augmenter(how))

    def inputs(self, split: Split, net: Network, images: bool = False) -> np.ndarray:
        """``split``'s X as ``net``'s first layer sees it (with ``images``: as the
        distortions see it, net.inputs.images), transformed once per run (a
        learning-curve sample that is the whole training split shares its entries)."""
        key = (id(split), net.inputs.signature)  # the trainer holds every split it is given
        if key not in self._images:
            self._images[key] = net.inputs.images(split.X)
        if images:
            return self._images[key]
        if key not in self._prepared:  # the same array where the features are the images
            self._prepared[key] = net.inputs.features(self._images[key])
        return self._prepared[key]

    def features(self, split: Split, net: Network) -> Features:
        """:meth:`inputs` marked as ``net.inputs``' own, for the prediction methods."""
        return Features(self.inputs(split, net), net.inputs.signature)

    # ------------------------------------------------------------ building
    def new_network(self, member: int) -> Network:
        """Member ``member``'s network, built from its layer list (config.network_layers:
        the MLP keywords become layers there), standardised on the training split."""
        c = self.member_config(member)
        layers, shape = network_layers(c, self.transform_of(member), self.train.X.shape[1],
                                       self.n_classes)
        net = Network.from_layers(layers, shape, init=c.init, seed=c.seed + member,
                                  dtype=c.dtype)
        if net.n_classes != self.n_classes:
            raise ConfigError(f"config key 'layers': the last layer gives {net.n_classes} "
                              f"scores, but the data has {self.n_classes} classes; end "
                              f"with 'dense {self.n_classes}'")
        if c.standardize:
            X = self.inputs(self.train, net)
            net.set_standardization(X.mean(axis=0), X.std(axis=0))
        net.meta = dict(self.meta)
        return net

    def new_optimizer(self, net: Network, member: int = 0) -> Optimizer:
        c = self.member_config(member)
        return Optimizer(c.optimizer, net.n_params, net.dtype, net.decay_mask,
                         momentum=c.momentum, weight_decay=c.weight_decay)

    # ------------------------------------------------------------- running
    def run(self, resume: Path | None = None) -> TrainResult:
        """Train every member (from ``resume``'s checkpoint if given). A run that diverges
        raises one :class:`DivergenceError`; NumPy's overflow warnings on the way are
        silenced, since the checks after each batch and epoch say what happened."""
        with quiet_overflow():
            return self._run(resume)

    def _run(self, resume: Path | None) -> TrainResult:
        c = self.config
        state = load_checkpoint(resume) if resume else None
        first_member = state["member"] if state else 0
        if state:
            self.history, self.snapshots = state["history"], state["snapshots"]
            self.members = state["members"]
        stopped_early = False
        for member in range(first_member, c.ensemble):
            mc = self.member_config(member)
            net = self.new_network(member)
            opt = self.new_optimizer(net, member)
            start_epoch = 1
            best: dict[str, Any] = {"loss": math.inf, "epoch": 0, "weights": None, "waited": 0}
            if state and member == first_member:
                set_weights(net, state["weights"])
                opt.load_state(state["optimizer"])
                start_epoch = state["epoch"] + 1
                best = state["best"]
                if mc.early_stopping and best["waited"] >= mc.early_stopping:
                    start_epoch = mc.epochs + 1  # it had stopped early, as it does below
                    stopped_early = True
            else:
                self.save_checkpoint(net, opt, member, 0, best)
            for epoch in range(start_epoch, mc.epochs + 1):
                with numeral_threads(net):  # a CNN's work all on numeral's threads
                    self.run_epoch(net, opt, member, epoch)
                if self.val is not None and mc.early_stopping:
                    val_loss = self.history[-1]["val_loss"]
                    if val_loss < best["loss"]:
                        best.update(loss=val_loss, epoch=epoch, weights=weights_of(net),
                                    waited=0)
                    else:
                        best["waited"] += 1
                self.save_checkpoint(net, opt, member, epoch, best)
                for observer in self.observers:  # once the epoch is checkpointed
                    observer.epoch(self.history[-1], net)
                if mc.early_stopping and best["waited"] >= mc.early_stopping:
                    self.log(f"early stop: validation loss has not improved for "
                             f"{mc.early_stopping} epochs; keeping epoch {best['epoch']}")
                    stopped_early = True
                    break
            if best["weights"] is not None:
                set_weights(net, best["weights"])
            self.members.append(weights_of(net))
        model = self.model()
        return TrainResult(model, self.history, self.snapshots, stopped_early)

    def model(self) -> Network | Ensemble:
        nets = []
        for i, weights in enumerate(self.members):
            net = self.new_network(i)
            set_weights(net, weights)
            nets.append(net)
        if len(nets) == 1:
            return nets[0]
        ensemble = Ensemble(nets)
        ensemble.meta = dict(self.meta)
        return ensemble

    def distorts(self, c: Config, epoch: int) -> bool:
        """Whether epoch (1-based) of a member with settings ``c`` distorts its images:
        augmentation is on and the epoch is among the first ``augment_until`` of them."""
        return c.augment and epoch <= math.ceil(c.augment_until * c.epochs)

    def batches(
        self, c: Config, X: np.ndarray, epoch_rng: np.random.Generator,
        aug_rng: np.random.Generator, distort: bool = True,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Mini-batches of one epoch of the training inputs X, distorted as ``c`` says when
        ``distort``. (Distorting in a background thread was measured no faster on 2 cores:
        BLAS already uses both.)"""
        y, size = self.train.y, c.batch_size
        order = epoch_rng.permutation(len(y)) if c.shuffle else np.arange(len(y))
        augmenter = self.augmenter(c) if distort else None
        distorted: dict[int, np.ndarray] = {}  # one reused buffer per batch size
        for start in range(0, len(y), size):
            idx = order[start : start + size]
            Xb = X[idx]
            if augmenter is not None:  # used up before the next is made
                out = distorted.setdefault(len(idx), np.empty(Xb.shape, np.float32))
                Xb = augmenter(Xb, aug_rng, out=out)
            yield Xb, y[idx]

    def run_epoch(self, net: Network, opt: Optimizer, member: int, epoch: int) -> None:
        c = self.member_config(member)
        seed_seq = [c.seed, member, epoch]
        epoch_rng = np.random.default_rng(seed_seq)
        aug_rng = np.random.default_rng([*seed_seq, 1])
        drop_rng = np.random.default_rng([*seed_seq, 2]) if net.dropout else None
        n_batches = math.ceil(len(self.train.y) / c.batch_size)
        total_steps = c.epochs * n_batches
        step = (epoch - 1) * n_batches
        bar = self._bar(n_batches, member, epoch)
        started = time.perf_counter()
        running = 0.0
        lr = c.lr
        batches = self.batches(c, self.inputs(self.train, net, images=True), epoch_rng, aug_rng,
                               distort=self.distorts(c, epoch))
        for i, (images, yb) in enumerate(batches):
            Xb = net.inputs.features(images)  # the distorted images as the first layer reads them
            lr = learning_rate(c.schedule, c.lr, step / total_steps, epochs=c.epochs,
                               warmup=c.warmup, step_epochs=c.step_epochs, gamma=c.gamma)
            loss = net.compute_gradients_(
                Xb, yb, l1=c.l1, l2=c.l2, label_smoothing=c.label_smoothing,
                reduction=c.reduction, rng=drop_rng, with_penalty=False,
            )
            if not math.isfinite(loss):
                raise self.diverged(c, epoch, f"batch {i + 1} has loss {loss}")
            opt.step(net.flat, net.grad_flat, lr)
            step += 1
            running += loss / (len(yb) if c.reduction == "sum" else 1)
            if bar is not None:
                bar.update(1)
                if i % 10 == 0:
                    bar.set_postfix(loss=f"{running / (i + 1):.4f}", lr=f"{lr:.2g}")
        seconds = time.perf_counter() - started
        if not np.isfinite(net.flat).all():
            raise self.diverged(c, epoch, "weights became NaN or infinite")
        row: dict[str, float] = {"epoch": epoch}
        for name, split in (("train", self.train_metrics), ("test", self.test), ("val", self.val)):
            if split is not None:
                proba = softmax(net.logits(self.features(split, net)))
                row[f"{name}_loss"] = cross_entropy(proba, split.y)
                row[f"{name}_error"] = float(np.mean(np.argmax(proba, 1) != split.y))
        row.update(seconds=round(seconds, 3), lr=lr, member=member)
        start = self.start_loss(member)
        if row["train_loss"] > DIVERGED_VS_START * start:
            raise self.diverged(c, epoch, f"training loss {row['train_loss']:.4g} is far above "
                                       f"the {start:.3g} it started from")
        if bar is not None:
            bar.set_postfix(loss=f"{row['train_loss']:.4f}",
                            acc=f"{1 - row.get('test_error', row['train_error']):.2%}")
            bar.close()
        self.history.append(row)
        self.log(format_row(row))
        if member == 0 and epoch in self.snapshot_epochs:
            self.take_snapshot(net, epoch)

    def start_loss(self, member: int) -> float:
        """The larger of a uniform guess's loss and member's untrained network's loss on the
        learning-curve sample (computed once per member, also on resume)."""
        if member not in self._start_losses:
            net = self.new_network(member)
            proba = softmax(net.logits(self.features(self.train_metrics, net)))
            untrained = cross_entropy(proba, self.train_metrics.y)
            self._start_losses[member] = max(math.log(self.n_classes), untrained)
        return self._start_losses[member]

    def diverged(self, c: Config, epoch: int, what: str) -> DivergenceError:
        """The error that stops a diverging run; the last good checkpoint stays on disk."""
        last = [r["train_loss"] for r in self.history]
        good = f"last good epoch loss {last[-1]:.4g}" if last else "no epoch finished"
        lr = c.lr  # the diverging member's
        return DivergenceError(
            f"training diverged at epoch {epoch} ({what}); {good}; lower the learning rate, "
            f"e.g. --set lr={lr / 10:g}"
        )

    def _bar(self, total: int, member: int, epoch: int) -> Any:
        if not self.progress:
            return None
        from tqdm import tqdm

        who = f"net {member + 1}/{self.config.ensemble} " if self.config.ensemble > 1 else ""
        epochs = self.member_config(member).epochs
        return tqdm(total=total, desc=f"{who}epoch {epoch}/{epochs}", unit="batch",
                    leave=False, dynamic_ncols=True)

    # -------------------------------------------------------------- figures
    def take_snapshot(self, net: Network, epoch: int) -> None:
        """Latent features (2-D) of every training sample and histograms of each hidden
        layer's activations, at this epoch (of every 1 in k training samples when the hidden
        layers hold more than HIST_VALUES values per sample, as convolutions' do)."""
        X = self.features(self.train, net)
        widths = [math.prod(net.layers[i].out_shape) for i in net.hidden_layers]
        if not widths:
            return
        layer = self.config.latent_layer % len(widths)
        step = max(1, len(X.values) * sum(widths) // HIST_VALUES)  # histograms: 1 in step
        hidden = net.hidden_activations(X._replace(values=X.values[::step]))
        chosen = (hidden[layer] if step == 1 else  # the latent figure shows every sample
                  net.hidden_activations(X, which=[layer])[0]).astype(np.float64)
        latent, basis = principal_2d(chosen, self.snapshots.get("latent_basis"))
        self.snapshots["latent_basis"] = basis  # the next snapshot keeps its directions
        self.snapshots[f"latent_{epoch}"] = latent.astype(np.float32)
        self.snapshots["latent_layer"] = np.array([layer, chosen.shape[1]])
        for layer, (a, name) in enumerate(zip(hidden, net.activation_names, strict=True)):
            counts, edges = hidden_histogram(a, name)
            self.snapshots[f"hist_{layer}_{epoch}"] = counts
            self.snapshots[f"edges_{layer}_{epoch}"] = edges

    # ---------------------------------------------------------- checkpoints
    def save_checkpoint(
        self, net: Network, opt: Optimizer, member: int, epoch: int, best: dict[str, Any]
    ) -> None:
        if self.checkpoint is None:
            return
        state = {
            "member": member,
            "epoch": epoch,
            "history": self.history,
            "best": {k: v for k, v in best.items() if k != "weights"},
            "config": self.config.to_dict(),
            "members": len(self.members),
        }
        arrays: dict[str, Any] = {"state": np.array(json.dumps(state))}
        arrays.update({f"net.{k}": v for k, v in weights_of(net, copy=False).items()})
        arrays.update({f"opt_{k}": v for k, v in opt.state().items()})
        for i, weights in enumerate(self.members):
            arrays.update({f"member{i}.{k}": v for k, v in weights.items()})
        if best.get("weights") is not None:
            arrays.update({f"best.{k}": v for k, v in best["weights"].items()})
        arrays.update({f"snap.{k}": v for k, v in self.snapshots.items()})
        write_npz(self.checkpoint, arrays)


Weights = dict[str, np.ndarray]  # a network's parameters ("flat") and its layers' state


def weights_of(net: Network, copy: bool = True) -> Weights:
    """Everything a network learned: its flat parameters and its layers' state arrays
    (BatchNorm's running statistics, a standardisation)."""
    weights = {"flat": net.flat, **net.state_arrays()}
    return {k: v.copy() for k, v in weights.items()} if copy else weights


def set_weights(net: Network, weights: Weights) -> None:
    net.flat[...] = weights["flat"]
    net.load_state_arrays(weights)


def _prefixed(data: Any, prefix: str) -> Weights:
    return {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}


def load_checkpoint(path: Path) -> dict[str, Any]:
    from numeral.errors import DataError

    try:
        with np.load(path, allow_pickle=False) as data:
            state = json.loads(str(data["state"]))
            best = dict(state["best"])
            if "net.flat" in data.files:
                weights = _prefixed(data, "net.")
                members = [_prefixed(data, f"member{i}.") for i in range(state["members"])]
                best["weights"] = _prefixed(data, "best.") or None
            else:  # a checkpoint of numeral 0.1: flat parameters only
                weights = {"flat": data["flat"]}
                members = [{"flat": flat} for flat in data["members"]]
                best["weights"] = {"flat": data["best_flat"]} if "best_flat" in data.files \
                    else None
            best.pop("flat", None)
            return {
                "member": state["member"],
                "epoch": state["epoch"],
                "history": state["history"],
                "best": best,
                "config": state["config"],
                "weights": weights,
                "optimizer": {"t": data["opt_t"], "m": data["opt_m"], "v": data["opt_v"]},
                "members": members,
                "snapshots": {k[5:]: data[k] for k in data.files if k.startswith("snap.")},
            }
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot resume from {path}: it is truncated or not a checkpoint "
                        f"({first}); delete it to start the run again from the beginning"
                        ) from None


def format_row(row: dict[str, float]) -> str:
    parts = [f"epoch {int(row['epoch'])}"]
    for key in ("train_loss", "train_error", "val_error", "test_loss", "test_error"):
        if key in row:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"{row['seconds']:.1f}s")
    return "  ".join(parts)
