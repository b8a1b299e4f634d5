"""Sweeps: many ``numeral train`` runs of one config, scored on validation data, on Ray.

    numeral sweep --config baseline --grid l2=0,1e-4,1e-3 --grid lr=0.01,0.001 --seeds 2 \\
        --out runs/sweep

A sweep is a list of *settings* (config overrides), each trained with ``--seeds`` seeds:

- every combination of the ``--grid key=v1,v2,...`` values (values read as TOML, as
  ``--set`` reads them; ``[320,160]`` stays one value),
- ``--trials N`` random draws of ``--random key=lo:hi[:log]`` (integers when both ends are
  integers; the draws depend only on ``--draw-seed``, so running the command again plans
  the same trials), combined with every grid combination,
- labelled variants ``"label: key=value ..."`` (the arguments of the command, or a config's
  ``[study]`` tables), combined with the above.

Each trial is one run directory ``OUT/<trial>/`` written by the same code as ``numeral train``
(report included). Its config carves a validation split from the training split
(``val_fraction``: the config's, or 0.2): the trial is scored on that split and never on
the test split, and every trial of a sweep sees the same validation images, so their
probabilities can be averaged into committees.

The driver (this module's :func:`run_sweep`) owns the bookkeeping: ``OUT/<trial>/result.json``
(status, the one-line error of a failed trial, validation error and loss, epochs, seconds)
and ``OUT/<trial>/val_probs.npz`` are written from what each trial returns, so they land on
the driver's disk even on a cluster. A trial with a ``result.json`` is finished and is skipped
when the command runs again; a trial that was stopped mid-way resumes from its checkpoint.
A trial whose worker process died (killed, out of memory, its node lost) is run once more
by Ray, resuming from its checkpoint; if that worker dies too, the trial is recorded as
``crashed``, which is not finished: the next run of the command resumes it.
Then ``sweep.csv``, ``sweep.png`` (the metric against each swept key, seeds as error bars)
and ``best.toml`` (the base config with the best setting, for ``numeral train --config``).

Why Ray core tasks rather than Ray Tune: a trial here is a whole training run with its own
early stopping and checkpoints, scored once at the end; none of Tune's schedulers or search
algorithms is needed, and a ``@ray.remote`` function per trial plus ``ray.wait`` is a loop a
reader can follow. Ray places the tasks (``--cpus-per-trial`` CPUs each) on this machine's
cores or on a cluster's nodes alike.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import re
import shlex
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from numeral.errors import ConfigError, NumeralError
from numeral.nn.files import atomic_write
from numeral.train.config import Config, from_dict, parse_override

METRICS = ("val_error", "val_loss")
DEFAULT_VAL_FRACTION = 0.2
Log = Callable[[str], None]


# ------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class Trial:
    """One training run of a sweep: the base config with ``settings`` and ``seed``."""

    setting: str  # the settings' name, shared by the seeds of one setting
    settings: dict[str, Any]
    seed: int

    @property
    def name(self) -> str:
        return f"{self.setting}-seed{self.seed}"


def split_values(text: str) -> list[str]:
    """``'1,[2,3],"a,b"'`` -> ``['1', '[2,3]', '"a,b"']``: commas inside brackets or quotes
    belong to the value."""
    parts, depth, quote, current = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    return [p.strip() for p in parts]


def parse_grid(item: str) -> tuple[str, list[Any]]:
    """``'l2=0,1e-4'`` -> ``('l2', [0, 0.0001])``."""
    key, _, raw = item.partition("=")
    values = [parse_override(f"{key}={v}")[1] for v in split_values(raw)] if raw else []
    if not key.strip() or not values or any(v == "" for v in values):
        raise ConfigError(f"--grid {item!r}: expected key=v1,v2,..., e.g. --grid l2=0,1e-4,1e-3")
    return key.strip(), values


@dataclass(frozen=True)
class Draw:
    """``--random key=lo:hi[:log]``: a value drawn uniformly (or log-uniformly) in [lo, hi]."""

    key: str
    low: float
    high: float
    log: bool
    integer: bool

    def sample(self, rng: np.random.Generator) -> int | float:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if self.integer:
            return round(value)
        return float(f"{value:.3g}")  # readable trial names; three digits are plenty


def parse_random(item: str) -> Draw:
    key, _, spec = item.partition("=")
    parts = spec.split(":")
    usage = f"--random {item!r}: expected key=low:high or key=low:high:log, e.g. lr=1e-4:1e-2:log"
    if not key.strip() or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise ConfigError(usage)
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(usage) from None
    log = len(parts) == 3
    if not low < high or (log and low <= 0):
        raise ConfigError(f"--random {item!r}: needs low < high" + (" and low > 0 for :log"
                                                                     if log else ""))
    integer = all(re.fullmatch(r"[+-]?\d+", p.strip()) for p in parts[:2])
    return Draw(key.strip(), low, high, log, integer)


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``'dropout 0.1: epochs=120 dropout=0.1'`` -> ``('dropout 0.1', {...})``."""
    label, colon, settings = text.partition(":")
    try:
        pairs = shlex.split(settings)
    except ValueError as exc:
        raise ConfigError(f"variant {text!r}: {exc}") from None
    if not colon or not label.strip() or any("=" not in p for p in pairs):
        raise ConfigError(f"variant {text!r} must read 'label: key=value ...', "
                          f"e.g. 'wide: hidden=[512,256]'")
    return label.strip(), dict(parse_override(p) for p in pairs)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def setting_name(label: str | None, settings: dict[str, Any], shown: Iterable[str]) -> str:
    """A folder name for a setting: its label and the swept values, e.g. ``l2=0.001,lr=0.01``."""
    parts = [label] if label else []
    parts += [f"{k}={format_value(settings[k])}" for k in shown]
    text = re.sub(r"[^A-Za-z0-9._=,+\-\[\]]", "_", ",".join(parts)) or "base"
    if len(text) > 80:  # long lists of layers: keep it readable and unique
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        text = f"{text[:70]}~{digest}"
    return text


def plan(base: Config, *, variants: Sequence[tuple[str, dict[str, Any]]] = (),
         grid: Sequence[tuple[str, list[Any]]] = (), draws: Sequence[Draw] = (),
         trials: int = 0, seeds: int = 1, draw_seed: int = 0) -> list[Trial]:
    """Every trial of the sweep, each checked as a config now (not after hours of training)."""
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: give 1 or more")
    if draws and trials < 1:
        raise ConfigError("--random needs --trials N (how many draws), e.g. --trials 8")
    if trials and not draws:
        raise ConfigError("--trials needs at least one --random key=low:high")
    keys = [k for k, _ in grid]
    twice = sorted(k for k, n in Counter([*keys, *(d.key for d in draws)]).items() if n > 1)
    if twice:
        raise ConfigError(f"{twice[0]!r} is swept twice; give each key one --grid or --random")
    rng = np.random.default_rng(draw_seed)
    random_settings = [{d.key: d.sample(rng) for d in draws} for _ in range(trials)] or [{}]
    labelled: list[tuple[str | None, dict[str, Any]]] = [*variants] or [(None, {})]
    combos = list(itertools.product(*(values for _, values in grid)))
    shown = [*keys, *(d.key for d in draws)]
    out: list[Trial] = []
    for (label, fixed), combo, drawn in itertools.product(labelled, combos, random_settings):
        settings = {**fixed, **dict(zip(keys, combo, strict=True)), **drawn}
        name = setting_name(label, settings, shown)
        for seed in range(seeds):
            config = trial_config(base, settings, base.seed + seed)
            from_dict(config, origin=f"sweep trial {name}-seed{seed}")
            out.append(Trial(name, settings, base.seed + seed))
    names = Counter(t.name for t in out)
    if max(names.values()) > 1:
        raise ConfigError(f"two trials would both be called {names.most_common(1)[0][0]!r}; "
                          f"give the variants different labels or the grid different values")
    return out


def trial_config(base: Config, settings: dict[str, Any], seed: int) -> dict[str, Any]:
    """The config a trial trains: the base with its settings and seed, and a validation
    split carved from the training split when the base has none."""
    config = {k: v for k, v in base.to_dict().items() if k != "study"}
    config["seed"] = seed
    config.update(settings)  # a variant that fixes its own seed keeps it
    if not config.get("val_fraction"):
        config["val_fraction"] = DEFAULT_VAL_FRACTION
    return config


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


# ------------------------------------------------------------------ the sweep
@dataclass
class Sweep:
    """A planned sweep: the base config, its trials and where they are written."""

    base: Config
    trials: list[Trial]
    out: Path
    source: dict[str, Any]
    metric: str = "val_error"
    swept: list[str] = field(default_factory=list)  # the keys the figure puts on its axes
    labelled: bool = False  # whether settings carry variant labels

    def result(self, trial: Trial) -> dict[str, Any] | None:
        path = self.out / trial.name / "result.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None


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


# ------------------------------------------------------------------ results
@dataclass
class Row:
    setting: str
    settings: dict[str, Any]
    scores: dict[int, float]  # seed -> metric of the trials that finished
    failed: dict[int, str]  # seed -> message
    crashed: set[int] = field(default_factory=set)  # the failed seeds whose worker died

    @property
    def mean(self) -> float:
        return statistics.mean(self.scores.values()) if self.scores else math.inf

    @property
    def spread(self) -> float:
        return statistics.stdev(self.scores.values()) if len(self.scores) > 1 else 0.0


def rows(sweep: Sweep) -> list[Row]:
    """One row per setting, in plan order, from the trials' result.json files."""
    table: dict[str, Row] = {}
    for trial in sweep.trials:
        row = table.setdefault(trial.setting, Row(trial.setting, trial.settings, {}, {}))
        result = sweep.result(trial)
        if result is None:
            continue
        if result["status"] == "ok":
            row.scores[trial.seed] = float(result[sweep.metric])
        else:
            row.failed[trial.seed] = str(result.get("message", "failed"))
            if result["status"] == "crashed":
                row.crashed.add(trial.seed)
    return list(table.values())


def write_table(sweep: Sweep, path: Path) -> None:
    """sweep.csv: one line per trial (finished or not)."""
    keys = sorted({k for t in sweep.trials for k in t.settings})
    columns = ["trial", "setting", "seed", *keys, "status", *METRICS, "epochs", "seconds",
               "message"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for trial in sweep.trials:
        result = sweep.result(trial) or {"status": "not run"}
        writer.writerow({"trial": trial.name, "setting": trial.setting, "seed": trial.seed,
                         **{k: format_value(v) for k, v in trial.settings.items()}, **result})
    atomic_write(path, lambda fh: fh.write(buffer.getvalue().encode()))


def summary(sweep: Sweep, table: list[Row]) -> str:
    """The terminal table: each setting's metric per seed and their mean."""
    percent = sweep.metric == "val_error"

    def show(v: float) -> str:
        return f"{100 * v:.2f} %" if percent else f"{v:.4f}"

    lines = [f"| setting ({sweep.base.name}) | {sweep.metric} per seed | mean ± sd |",
             "|---|---|---|"]
    for row in table:
        seeds = sorted({*row.scores, *row.failed})
        each = ", ".join(("crashed" if s in row.crashed else "failed") if s in row.failed
                         else show(row.scores[s]) for s in seeds)
        mean = (f"{show(row.mean)} ± {show(row.spread)}" if len(row.scores) > 1
                else show(row.mean) if row.scores else "-")
        lines.append(f"| {row.setting} | {each or 'not run'} | {mean} |")
    for row in table:
        for seed, message in sorted(row.failed.items()):
            how = "crashed" if seed in row.crashed else "failed"
            lines.append(f"{how}: {row.setting}-seed{seed}: {message}")
    return "\n".join(lines)


def best_row(table: list[Row]) -> Row | None:
    scored = [row for row in table if row.scores]
    return min(scored, key=lambda row: row.mean) if scored else None


def write_best(sweep: Sweep, row: Row, path: Path) -> None:
    """best.toml: the base config with the best setting, for ``numeral train --config``."""
    import tomli_w

    config = {k: v for k, v in sweep.base.to_dict().items() if k != "study"}
    config.update(row.settings)
    config["name"] = f"{sweep.base.name}-sweep-best"
    config["description"] = (f"{sweep.base.name} with {row.setting} (best mean {sweep.metric} "
                             f"{row.mean:.4g} over {len(row.scores)} seed(s) of a sweep)")
    from_dict(config, origin=str(path))  # written only if it loads back
    header = (f"# The best setting of the sweep in {sweep.out}, chosen on validation data\n"
              f"# carved from the training split. Train it: numeral train --config {path}\n")
    text = header + tomli_w.dumps(config)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def finish(sweep: Sweep, log: Log = print) -> Row | None:
    """Write sweep.csv, sweep.png and best.toml; print the table; return the best row."""
    from numeral.viz import sweep_figure

    table = rows(sweep)
    write_table(sweep, sweep.out / "sweep.csv")
    log(summary(sweep, table))
    best = best_row(table)
    keys = list(sweep.swept) + (["setting"] if sweep.labelled or not sweep.swept else [])
    points = [(dict(row.settings, setting=row.setting), list(row.scores.values()))
              for row in table if row.scores]
    if points:
        sweep_figure(points, keys, sweep.metric, sweep.out / "sweep.png")
    if best is not None:
        write_best(sweep, best, sweep.out / "best.toml")
        log(f"best: {best.setting} ({sweep.metric} {best.mean:.4g}); its config: "
            f"{sweep.out / 'best.toml'}")
    log(f"table: {sweep.out / 'sweep.csv'}; figure: {sweep.out / 'sweep.png'}")
    return best


def check_same_base(sweep: Sweep) -> None:
    """Refuse to mix trials of another base config or dataset into an existing sweep folder
    (its finished trials would be skipped as if they were this sweep's)."""
    try:
        saved = json.loads((sweep.out / "sweep.json").read_text())
    except (OSError, ValueError):
        return
    now = json.loads(json.dumps(sweep.base.to_dict(), default=str))
    before = saved.get("base", {})
    changed = sorted(k for k in {*now, *before} if now.get(k) != before.get(k) and k != "study")
    if changed:
        raise ConfigError(f"{sweep.out} holds a sweep of another config ({changed[0]} was "
                          f"{before.get(changed[0])!r}, is {now.get(changed[0])!r}); give a new "
                          f"--out, or the same --config and --set as before")
    if saved.get("source") != sweep.source:
        raise ConfigError(f"{sweep.out} holds a sweep of other data ({saved.get('source')}); "
                          f"give a new --out, or the same --data as before")


def save_plan(sweep: Sweep, command: dict[str, Any]) -> None:
    """sweep.json: what was asked, so ``--committee`` can read a sweep from its folder."""
    text = json.dumps({"command": command, "base": sweep.base.to_dict(),
                       "source": sweep.source, "metric": sweep.metric, "swept": sweep.swept,
                       "labelled": sweep.labelled,
                       "trials": [{"name": t.name, "setting": t.setting, "seed": t.seed,
                                   "settings": t.settings} for t in sweep.trials]},
                      indent=1, default=str)
    atomic_write(sweep.out / "sweep.json", lambda fh: fh.write(text.encode()))


# ------------------------------------------------------------------ committees
def validation_probabilities(folders: Sequence[Path]) -> dict[str, np.ndarray]:
    """The validation probabilities of every finished trial in these sweep folders, keyed by
    trial name (``y`` and ``split`` too); refused unless they all scored the same images."""
    merged: dict[str, np.ndarray] = {}
    for folder in folders:
        if not (folder / "sweep.json").is_file():
            raise NumeralError(f"{folder} is not a sweep folder (no sweep.json); give the --out "
                               f"of a numeral sweep")
        names = [t["name"] for t in json.loads((folder / "sweep.json").read_text())["trials"]]
        for name in names:
            path = folder / name / "val_probs.npz"
            if not path.is_file():
                continue
            with np.load(path, allow_pickle=False) as saved:
                probs, y, split = saved["probs"], saved["y"], str(saved["split"])
            if "y" in merged and (not np.array_equal(merged["y"], y)
                                  or str(merged["split"]) != split):
                raise NumeralError(f"{path} scores other validation images than the trials "
                                   f"before it; a committee mixes trials of one split and "
                                   f"val_fraction only")
            if name in merged:
                raise NumeralError(f"trial {name} is in two of the sweeps; rename one sweep's "
                                   f"trials (a variant label) to mix them")
            merged.update(y=y, split=np.array(split))
            merged[name] = probs
    return merged


def committee_error(probs: dict[str, np.ndarray], names: Sequence[str], y: np.ndarray) -> str:
    wrong = int((np.mean([probs[n] for n in names], axis=0).argmax(1) != y).sum())
    return f"{100 * wrong / len(y):.2f} % ({wrong} of {len(y)})"


def hard_images(saved: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The validation images at least half of the trials misread: their indices, how many
    trials misread each, and the wrong class named most often."""
    probs = [p for name, p in saved.items() if name not in ("y", "split")]
    y = saved["y"]
    guesses = np.array([p.argmax(1) for p in probs])  # (trials, images)
    misread = guesses != y
    hard = np.flatnonzero(2 * misread.sum(axis=0) >= len(probs))
    named = np.array([Counter(guesses[misread[:, i], i].tolist()).most_common(1)[0][0]
                      for i in hard], dtype=int)
    return hard, misread.sum(axis=0)[hard], named


def draw_hard_images(sweep: Sweep, saved: dict[str, np.ndarray], path: Path) -> Path | None:
    """A gallery of the validation images most trials misread (``--hard PNG``)."""
    from numeral.train.experiment import DataSource, prepare_data
    from numeral.viz.figures import image_grid

    hard, count, named = hard_images(saved)
    if not len(hard):
        return None
    first = sweep.trials[0]
    config = from_dict(trial_config(sweep.base, first.settings, first.seed))
    data = prepare_data(config, DataSource(**sweep.source))
    assert data.val is not None
    if not np.array_equal(data.val.y, saved["y"]):
        raise NumeralError(f"the validation split of {sweep.out} is not the one its trials "
                           f"scored; draw --hard from the sweep the trials came from")
    trials = sum(name not in ("y", "split") for name in saved)
    titles = [f"label {saved['y'][i]}, read {g}\nby {n} of {trials}"
              for i, n, g in zip(hard, count, named, strict=True)]
    return image_grid(data.val.images[hard], titles, path)


def committee_report(saved: dict[str, np.ndarray], mixes: Sequence[str] = ()) -> str:
    """Committee errors (probabilities averaged) per setting, over every trial, and for each
    ``'a+b+...'`` of ``mixes``; then the images most trials misread."""
    probs = {name: p for name, p in saved.items() if name not in ("y", "split")}
    if not probs:
        raise NumeralError("no finished trial has validation probabilities yet; run the sweep")
    y = saved["y"]
    names = list(probs)  # plan order
    mixed = [mix.split("+") for mix in mixes]
    unknown = sorted({n for mix in mixed for n in mix} - set(names))
    if unknown:
        raise NumeralError(f"--committee names {unknown[0]!r}, which is no finished trial; "
                           f"the trials are: {', '.join(names)}")
    lines = ["| committee (probabilities averaged) | trials | validation error |", "|---|---|---|"]
    settings = defaultdict(list)
    for name in names:
        settings[name.rpartition("-seed")[0]].append(name)
    lines += [f"| {s} | {len(members)} | {committee_error(probs, members, y)} |"
              for s, members in settings.items()]
    lines.append(f"| every trial | {len(names)} | {committee_error(probs, names, y)} |")
    lines += [f"| {' + '.join(mix)} | {len(mix)} | {committee_error(probs, mix, y)} |"
              for mix in mixed]
    hard, _, named = hard_images(saved)
    pairs = Counter(zip(y[hard].tolist(), named.tolist(), strict=True))
    singles = [int((p.argmax(1) != y).sum()) for p in probs.values()]
    lines.append(f"\nOne trial misreads {min(singles)}-{max(singles)} images; {len(hard)} are "
                 f"misread by at least half of the {len(names)} trials"
                 + (", most often: " + ", ".join(f"{t} as {g}: {n}"
                                                 for (t, g), n in pairs.most_common(10))
                    if len(hard) else ""))
    return "\n".join(lines)


def load_sweep(folder: Path) -> Sweep:
    """A sweep read back from its folder's sweep.json (for ``--committee`` alone)."""
    try:
        saved = json.loads((folder / "sweep.json").read_text())
    except (OSError, ValueError):
        raise NumeralError(f"{folder} is not a sweep folder (no readable sweep.json); give the "
                           f"--out of a numeral sweep, or --config and what to sweep") from None
    trials = [Trial(t["setting"], t["settings"], t["seed"]) for t in saved["trials"]]
    return Sweep(from_dict(saved["base"], origin=str(folder / "sweep.json")), trials, folder,
                 saved["source"], saved["metric"], saved["swept"], saved["labelled"])
