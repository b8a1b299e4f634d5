"""One training run, from a config and a dataset to a run directory.

    numeral train --config NAME --data PATH --out DIR

is :func:`run_experiment`, which

1. loads the data (:mod:`numeral.data`) and splits it into train / validation / test,
2. trains the network(s) (:class:`numeral.train.loop.Trainer`), checkpointing every epoch,
3. evaluates the model on the test split, and
4. writes the run directory:

==================  ==================================================================
``model.npz``        the trained network or ensemble (weights + JSON description)
``config.toml``      the full resolved config
``metrics.csv``      one row per epoch: epoch, train/test loss and error, seconds, ...
``evaluation.json``  test accuracy, per-class scores, confusion matrix, misclassified
``results.npz``      what the figures need (latent features, histograms, test images)
``run.json``         where the data came from, so ``--resume`` and ``report`` can redo it
``figures/*.png``    the figures (:mod:`numeral.viz`)
``report.html``      everything above in one self-contained page (:mod:`numeral.report`)
==================  ==================================================================

A run stopped at any moment (Ctrl-C, a kill, a crash) continues with ``numeral train
--resume DIR``: from ``checkpoint.npz``, written atomically after every epoch and removed
only by the run's last step, or from the beginning if it stopped before its first
checkpoint; either way it ends with exactly an uninterrupted run's weights.

A config with a ``[study]`` table runs each variant into ``DIR/<variant>/`` and
then compares them in ``DIR/report.html``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from numeral.data import Dataset, load, resolve_data_path, split, stratified_split
from numeral.data.splits import group_split
from numeral.errors import ConfigError, DataError
from numeral.nn import Ensemble, Network
from numeral.nn.calibration import calibration, expected_calibration_error, tempered
from numeral.nn.files import atomic_write, write_npz
from numeral.rundir import read_metrics, write_json  # noqa: F401  (read_metrics: the old path)
from numeral.train.config import Config, load_config, variant, write_config
from numeral.train.loop import Split, Trainer, TrainResult
from numeral.train.metrics import evaluation
from numeral.train.watch import Observer

Log = Callable[[str], None]
METRIC_COLUMNS = ("epoch", "train_loss", "train_error", "test_loss", "test_error", "seconds")


@dataclass
class DataSource:
    """Where a run's data comes from: one dataset to split, or separate train/test files."""

    data: str | None = None
    train: str | None = None
    test: str | None = None


@dataclass
class RunData:
    train: Dataset
    val: Dataset | None
    test: Dataset | None
    split_description: str


def prepare_data(config: Config, source: DataSource) -> RunData:
    """Load the data and split it as the config says (the test split never trains)."""
    if source.train:
        train = load(source.train)
        test = load(source.test) if source.test else None
        how = "given train/test files"
    else:
        path = resolve_data_path(source.data)
        full = load(path)
        source.data = str(path.absolute())  # run.json: found again from any folder
        train_idx, test_idx = split(
            full.y, full.groups, config.split, config.test_fraction, config.split_seed
        )
        train, test = full.subset(train_idx), full.subset(test_idx)
        how = (
            f"{'stratified random' if config.split == 'random' else 'writer-independent (sheet)'}"
            f" split, {config.test_fraction:.0%} test, split_seed {config.split_seed}"
        )
    val = None
    if config.val_fraction:
        by_sheet = config.split == "sheet" and (train.groups >= 0).sum() > 0
        fit_idx, val_idx = (
            group_split(train.groups, config.val_fraction, config.split_seed + 1)
            if by_sheet
            else stratified_split(train.y, config.val_fraction, config.split_seed + 1)
        )
        train, val = train.subset(fit_idx), train.subset(val_idx)
        how += f"; validation {config.val_fraction:.0%} of training"
    return RunData(train, val, test, how)


def class_exemplars(ds: Dataset) -> list[list[int]]:
    """For each class, the training image closest to the class's mean image: a typical
    numeral, shown beside predictions (e.g. the draw-a-numeral page's reference strip)."""
    out: list[list[int]] = []
    for label in range(len(ds.class_names)):
        members = np.flatnonzero(ds.y == label)
        if not len(members):
            out.append([])
            continue
        X = ds.X[members]
        nearest = members[np.argmin(((X - X.mean(axis=0)) ** 2).sum(axis=1))]
        out.append(ds.images[nearest].reshape(-1).tolist())
    return out


def resumed_run(out: Path, overrides: Sequence[str] = ()) -> tuple[Config, DataSource]:
    """The config (with ``overrides``) and data source of the run directory ``out``, to
    continue it with ``run_experiment(..., resume=True)``."""
    if not (out / "config.toml").is_file():
        raise ConfigError(f"cannot resume {out}: it is not a run directory (no config.toml)")
    config = load_config(str(out / "config.toml"), list(overrides))
    try:
        saved = json.loads((out / "run.json").read_text()).get("source", {})
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot resume {out}: its run.json is unreadable ({exc}); train it "
                          f"again with --out") from None
    return config, DataSource(**saved)


def held_out(ds: Dataset, meta: dict[str, Any], how: str | None = None) -> np.ndarray:
    """Indices of the test split a model was trained beside: the split its metadata records
    (``split``, ``test_fraction``, ``split_seed``), or the split called ``how``."""
    _, test = split(ds.y, ds.groups, how or meta.get("split", "random"),
                    meta.get("test_fraction", 0.2), meta.get("split_seed", 0))
    return test


def model_meta(config: Config, data: RunData) -> dict[str, Any]:
    """What a saved model must carry to be used on new images."""
    return {
        "exemplars": class_exemplars(data.train),
        "config": config.name,
        "class_names": data.train.class_names,
        "preprocessing": data.train.preprocessing,
        "source": data.train.source,
        "split": config.split,
        "test_fraction": config.test_fraction,
        "split_seed": config.split_seed,
    }


def train_model(
    config: Config,
    data: RunData,
    *,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Log | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    observers: Sequence[Observer] = (),
) -> TrainResult:
    """Train the model the config describes on ``data.train``."""

    def as_split(ds: Dataset | None) -> Split | None:
        return Split(ds.X, ds.y) if ds is not None and len(ds) else None

    train_split = as_split(data.train)
    if train_split is None:
        raise DataError("the training split is empty; use a larger dataset or a smaller test split")
    trainer = Trainer(
        config,
        train_split,
        test=as_split(data.test),
        val=as_split(data.val),
        n_classes=len(data.train.class_names),
        meta=model_meta(config, data),
        checkpoint=checkpoint,
        progress=progress,
        log=log,
        on_epoch=on_epoch,
        observers=observers,
    )
    return trainer.run(resume=checkpoint if resume else None)


def run_experiment(
    config: Config,
    source: DataSource,
    out: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    log: Log | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    write_report: bool = True,
    observers: Sequence[Observer] = (),
) -> Path:
    """Train, evaluate and write the run directory ``out``; return the report's path.
    ``observers`` (numeral.train.watch) are told about the data, each epoch and the end."""
    log = log or (lambda message: None)
    if config.study:
        return run_study(config, source, out, progress=progress, log=log)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.npz"
    remove_leftovers(out)
    if resume and not checkpoint.is_file():
        if (out / "model.npz").is_file():  # a run's last step removes its checkpoint
            raise ConfigError(f"nothing to resume in {out}: its run finished (model.npz is "
                              f"there); train it again with --out instead of --resume")
        log(f"{out} has no checkpoint yet (stopped in its first epoch): starting it again "
            f"from the beginning")
        resume = False
    data = prepare_data(config, source)
    if not resume:  # a fresh start: an earlier run's files here must not pass for this
        # run's (config.toml first: a kill in between leaves no run directory to resume)
        for name in ("config.toml", "checkpoint.npz", "model.npz"):
            (out / name).unlink(missing_ok=True)
    write_json(out / "run.json", {
        "source": source.__dict__,
        "split": data.split_description,
        "sizes": {k: len(v) if v is not None else 0
                  for k, v in (("train", data.train), ("val", data.val), ("test", data.test))},
        "class_names": data.train.class_names,
    })
    write_config(config, out / "config.toml")  # after run.json: --resume reads both
    log(f"{config.name}: {len(data.train)} training samples; {data.split_description}")
    for observer in observers:
        observer.start(config, data)
    started = time.perf_counter()
    result = train_model(config, data, checkpoint=checkpoint, resume=resume, progress=progress,
                         log=log, on_epoch=on_epoch, observers=observers)
    seconds = time.perf_counter() - started
    model = result.model
    evaluation_ = finish_model(model, data, result, seconds)
    model.save(str(out / "model.npz"))
    write_metrics(out / "metrics.csv", result.history)
    write_json(out / "evaluation.json", evaluation_)
    write_results(out / "results.npz", model, data, result, evaluation_)
    for observer in observers:
        observer.finish(model, data, evaluation_, out)
    log(f"test accuracy {evaluation_['accuracy']:.2%}" if data.test is not None else "trained")
    report = out
    if write_report:
        from numeral.report import build_report

        report = build_report(out)
    checkpoint.unlink(missing_ok=True)  # last: a run stopped before this step resumes
    return report


def remove_leftovers(out: Path) -> None:
    """Delete the temporary files of atomic writes (``.<name>.<random>.tmp``) that a run
    killed in the middle of a write left in ``out``: never read, they only take space."""
    for path in out.glob(".*.tmp"):
        path.unlink(missing_ok=True)


def finish_model(
    model: Network | Ensemble, data: RunData, result: TrainResult, seconds: float
) -> dict[str, Any]:
    """Evaluate on the test split and record the summary in the model's metadata."""
    summary: dict[str, Any] = {"train_seconds": round(seconds, 1), "epochs": len(result.history)}
    ev: dict[str, Any] = {}
    if data.test is not None and len(data.test):
        proba = model.predict_proba(data.test.X)
        ev = evaluation(proba, data.test.y, data.test.class_names, data.test.names)
        summary["test_accuracy"] = round(ev["accuracy"], 5)
    if data.val is not None and len(data.val):  # how sure it is, fitted on validation data
        fitted = calibration(model.predict_proba(data.val.X), data.val.y,
                             f"validation: {len(data.val)} images carved from training")
        summary["calibration"] = fitted
        if ev and data.test is not None:
            ev["calibration"] = {**fitted, **calibration_on_test(proba, data.test.y,
                                                              float(fitted["temperature"]))}
    train_pred = model.predict(data.train.X)
    summary["train_accuracy"] = round(float(np.mean(train_pred == data.train.y)), 5)
    for target in [model, *model.members]:  # a lone network is updated twice, harmlessly
        target.meta.update(summary)
    return {**summary, "split": data.split_description, **ev}


def calibration_on_test(proba: np.ndarray, y: np.ndarray, temperature: float) -> dict[str, float]:
    """The test split's expected calibration error before and after ``temperature``."""
    return {"test_ece_before": round(expected_calibration_error(proba, y), 5),
            "test_ece_after": round(expected_calibration_error(tempered(proba, temperature), y),
                                    5)}


def write_metrics(path: Path, history: list[dict[str, float]]) -> None:
    """metrics.csv: the required columns first, then any others (val_loss, lr, member)."""
    extra = sorted({k for row in history for k in row} - set(METRIC_COLUMNS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*METRIC_COLUMNS, *extra], restval="")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write(path, lambda fh: fh.write(buffer.getvalue().encode()))


def write_results(
    path: Path,
    model: Network | Ensemble,
    data: RunData,
    result: TrainResult,
    ev: dict[str, Any],
) -> None:
    """The arrays the figures are drawn from, so ``numeral report DIR`` can redraw them."""
    arrays: dict[str, Any] = {f"snap.{k}": v for k, v in result.snapshots.items()}
    arrays["train_y"] = data.train.y
    wrong = [m["index"] for m in ev.get("misclassified", [])][:60]
    if data.test is not None and wrong:
        arrays["wrong_images"] = data.test.images[wrong]
        arrays["wrong_true"] = data.test.y[wrong]
        arrays["wrong_pred"] = np.array([m["predicted"] for m in ev["misclassified"][:60]])
    if data.test is not None and len(data.test.y):  # what the feature-map figure shows
        arrays["sample_images"] = data.test.images[:: max(1, len(data.test.y) // 4)][:4]
    write_npz(path, arrays)


def run_study(config: Config, source: DataSource, out: Path, *, progress: bool, log: Log) -> Path:
    """Train every variant of ``config.study`` into ``out/<variant>`` and compare them."""
    runs = []
    for name, overrides in config.study.items():
        one = variant(config, {**overrides, "name": f"{config.name}-{name}"},
                      f"study variant {name!r}")
        log(f"--- study variant {name} ---")
        run_experiment(one, source, out / name, progress=progress, log=log)
        runs.append(out / name)
    write_config(config, out / "config.toml")
    from numeral.report import build_comparison

    return build_comparison(runs, out)
