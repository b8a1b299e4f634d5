"""The plan: a sweep's trials (settings x seeds), each checked as a config before anything
trains, and the sweep folder's ``sweep.json`` that records it."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from numeral.errors import ConfigError, NumeralError
from numeral.nn.files import atomic_write
from numeral.train.config import Config, from_dict, variant
from numeral.train.sweep.grammar import Draw, parse_grid, parse_random, parse_variant, setting_name

METRICS = ("val_error", "val_loss")
DEFAULT_VAL_FRACTION = 0.2


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep: the base config with ``settings`` and ``seed``."""

    setting: str  # the settings' name, shared by the seeds of one setting
    settings: dict[str, Any]
    seed: int

    @property
    def name(self) -> str:
        return f"{self.setting}-seed{self.seed}"


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
            variant(base, trial_config(base, settings, base.seed + seed),
                    f"sweep trial {name}-seed{seed}")
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


def data_source(data: str | None = None, train: str | None = None,
                test: str | None = None) -> dict[str, Any]:
    """Where the trials read their data, as absolute paths: Ray's workers do not share the
    driver's working directory."""
    from numeral.data import resolve_data_path

    if train:
        return {"train": str(Path(train).resolve()),
                "test": str(Path(test).resolve()) if test else None}
    return {"data": str(resolve_data_path(data).resolve())}


def plan_sweep(base: Config, *, data: str | None = None, train: str | None = None,
               test: str | None = None, out: Path | None = None,
               variants: Sequence[str] = (), grid: Sequence[str] = (),
               random: Sequence[str] = (), trials: int = 0, seeds: int = 1,
               draw_seed: int = 0, metric: str = "val_error", mixes: Sequence[str] = (),
               other_sweeps: bool = False) -> Sweep:
    """The sweep that ``numeral sweep``'s arguments describe (variants, ``--grid`` and
    ``--random`` as written on the command line; without variants, the base's ``[study]``
    tables; the data as ``--data`` or ``--train``/``--test``), checked before Ray starts
    or anything trains: every trial's config, the folder (:func:`check_same_base`) and each
    committee of ``mixes`` (unless ``other_sweeps`` brings trials of other folders)."""
    labelled = [parse_variant(v) for v in variants] or list(base.study.items())
    axes = [parse_grid(g) for g in grid]
    draws = [parse_random(r) for r in random]
    planned = plan(base, variants=labelled, grid=axes, draws=draws, trials=trials,
                   seeds=seeds, draw_seed=draw_seed)
    source = data_source(data, train, test)
    sweep = Sweep(base, planned, out or Path("runs") / f"sweep-{base.name}", source, metric,
                  swept=[k for k, _ in axes] + [d.key for d in draws],
                  labelled=bool(labelled))
    check_same_base(sweep)
    names = {t.name for t in planned}
    for mix in mixes:  # checked now, not after hours of training
        asked = set(mix.split("+"))
        if not other_sweeps and not asked <= names:
            raise NumeralError(f"--committee {mix!r} names trials this sweep does not train: "
                               f"{', '.join(sorted(asked - names))}")
    return sweep
