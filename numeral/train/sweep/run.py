"""Running a sweep: one trial on a worker (:func:`run_trial`), the trials as Ray tasks
(:class:`RayRunner`), and the driver (:func:`run_sweep`) that records each result on its
own disk.

Why Ray core tasks rather than Ray Tune: a trial here is a whole training run with its own
early stopping and checkpoints, scored once at the end; none of Tune's schedulers or search
algorithms is needed, and a ``@ray.remote`` function per trial plus ``ray.wait`` is a loop a
reader can follow. Ray places the tasks (``--cpus-per-trial`` CPUs each) on this machine's
cores or on a cluster's nodes alike.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from numeral.errors import ConfigError, NumeralError
from numeral.nn.files import atomic_write
from numeral.train.config import from_dict
from numeral.train.sweep.plan import Sweep, Trial, trial_config

Log = Callable[[str], None]


# ------------------------------------------------------------------ one trial (on a worker)
class ValidationScore:
    """An observer (numeral.train.watch) that keeps the trained model's probabilities on the
    run's validation split, from the data and model the run already holds."""

    probs: np.ndarray
    y: np.ndarray

    def start(self, config: Any, data: Any) -> None:
        pass

    def epoch(self, row: dict[str, float], net: Any) -> None:
        pass

    def finish(self, model: Any, data: Any, evaluation: dict[str, Any], out: Path) -> None:
        assert data.val is not None  # trial_config always carves one
        self.probs, self.y = model.predict_proba(data.val.X), data.val.y


def run_trial(config: dict[str, Any], source: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Train one trial into ``run_dir`` (resumed from its checkpoint if it has one: the
    worker looks, since a retry of a task whose worker died finds the checkpoint that worker
    left) and score it on its validation split. Runs in a Ray worker (or in-process); never
    raises: a failure comes back as its one-line message."""
    from numeral.train.experiment import DataSource, run_experiment

    started = time.perf_counter()
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    resume = (out / "checkpoint.npz").is_file()
    result: dict[str, Any] = {"status": "failed", "host": os.uname().nodename}
    with open(out / "log.txt", "a") as log_file:
        def log(message: str) -> None:
            print(message, file=log_file, flush=True)

        if resume:
            log(f"resuming from {out / 'checkpoint.npz'}")
        try:
            cfg = from_dict(config, origin=f"trial {out.name}")
            scored = ValidationScore()
            run_experiment(cfg, DataSource(**source), out, resume=resume, progress=False,
                           log=log, observers=[scored])
            probs, y = scored.probs, scored.y
            picked = np.clip(probs[np.arange(len(y)), y], 1e-12, None)
            with open(out / "metrics.csv") as fh:
                epochs = sum(1 for _ in fh) - 1
            result.update(status="ok", val_error=float(np.mean(probs.argmax(1) != y)),
                          val_loss=float(-np.mean(np.log(picked))), epochs=epochs,
                          val_probs=probs.astype(np.float32), val_y=y,
                          split=cfg.split)
        except NumeralError as exc:
            result["message"] = str(exc)
        except Exception as exc:  # a trial's bug must not stop the sweep: record it
            result["message"] = f"{type(exc).__name__}: {exc}"
        if "message" in result:
            log(f"numeral: error: {result['message']}")
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


# ------------------------------------------------------------------ running on Ray
def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise NumeralError("numeral sweep runs its trials on Ray, which is not installed; "
                           "install it with: pip install 'numeral[sweep]'") from None
    return ray


@dataclass
class RayRunner:
    """Runs trials as Ray tasks with ``cpus`` CPUs and as many BLAS threads each."""

    address: str | None = None
    cpus: int = 1
    ray: Any = field(default=None, repr=False)

    def __enter__(self) -> RayRunner:
        import logging

        self.ray = ray = require_ray()
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        try:
            if address:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False,
                         logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "this machine"
            raise NumeralError(f"could not start Ray on {where}: {exc}".splitlines()[0]) from None
        total = ray.cluster_resources().get("CPU", 0)
        if self.cpus > total:
            ray.shutdown()
            raise ConfigError(f"--cpus-per-trial {self.cpus} is more than the {total:g} CPUs "
                              f"Ray has; give at most {total:g}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.ray.shutdown()

    def run(self, jobs: list[tuple[Trial, dict[str, Any]]], source: dict[str, Any],
            out: Path, done: Callable[[Trial, dict[str, Any]], None]) -> None:
        """Start every job, call ``done`` as each finishes; Ctrl-C cancels the rest. A task
        whose worker died is retried once (run_trial never raises, so Ray retries only
        that); a second death comes back as a ``crashed`` result."""
        ray = self.ray
        threads = str(self.cpus)
        task = ray.remote(run_trial).options(
            num_cpus=self.cpus, max_retries=1,
            runtime_env={"env_vars": {k: threads for k in (
                "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}})
        pending = {task.remote(config, source, str(out / trial.name)): trial
                   for trial, config in jobs}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    trial = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # raised in run_trial: a bug
                        result = {"status": "failed", "seconds": 0.0,
                                  "message": f"{type(exc).__name__}: {first_line(exc)}"}
                    except ray.exceptions.RayError as exc:  # its worker died twice (memory,
                        # a kill, its node lost): not the trial's fault, so not finished
                        result = {"status": "crashed", "seconds": 0.0,
                                  "message": f"{type(exc).__name__}: {first_line(exc)}; run "
                                             f"the same command again to resume the trial"}
                    done(trial, result)
        finally:
            for ref in pending:  # Ctrl-C: stop what still runs; its checkpoint stays
                ray.cancel(ref, force=True)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else ""


def record(sweep: Sweep, trial: Trial, result: dict[str, Any]) -> None:
    """Write a finished trial's result.json and val_probs.npz (the driver's copy)."""
    folder = sweep.out / trial.name
    folder.mkdir(parents=True, exist_ok=True)
    probs, y = result.pop("val_probs", None), result.pop("val_y", None)
    if probs is not None:
        from numeral.nn.files import write_npz

        write_npz(folder / "val_probs.npz", {"probs": probs, "y": y,
                                             "split": np.array(result.get("split", ""))})
    summary = {"trial": trial.name, "setting": trial.setting, "seed": trial.seed,
               "settings": trial.settings, **result}
    text = json.dumps(summary, indent=1, default=str)
    atomic_write(folder / "result.json", lambda fh: fh.write(text.encode()))


def run_sweep(sweep: Sweep, runner: RayRunner, *, retry_failed: bool = False,
              log: Log = print) -> tuple[int, int]:
    """Run the trials that have no result yet (or a ``crashed`` one: their worker died);
    return (finished now, skipped)."""
    sweep.out.mkdir(parents=True, exist_ok=True)
    todo: list[tuple[Trial, dict[str, Any]]] = []
    skipped = 0
    for trial in sweep.trials:
        previous = sweep.result(trial)
        status = previous["status"] if previous else None
        if status == "ok" or (status == "failed" and not retry_failed):
            skipped += 1
            continue
        todo.append((trial, trial_config(sweep.base, trial.settings, trial.seed)))
    if skipped:
        log(f"{skipped} of {len(sweep.trials)} trials already finished in {sweep.out}; "
            f"running the other {len(todo)}")
    finished = 0

    def done(trial: Trial, result: dict[str, Any]) -> None:
        nonlocal finished
        finished += 1
        record(sweep, trial, result)
        score = (f"{sweep.metric} {result[sweep.metric]:.4g}" if result["status"] == "ok"
                 else f"{result['status'].upper()}: {result.get('message', '')}")
        log(f"[{finished + skipped}/{len(sweep.trials)}] {trial.name}: {score} "
            f"({result.get('seconds', 0):.0f} s)")

    if todo:  # Ray starts only when there is something to run
        with runner:
            runner.run(todo, sweep.source, sweep.out, done)
    return finished, skipped
