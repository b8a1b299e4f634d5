"""A sweep's results: one row per setting, ``sweep.csv``, the terminal table, ``best.toml``
and (drawn by a function the caller passes, since numeral.train does not import numeral.viz)
``sweep.png``."""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numeral.nn.files import atomic_write
from numeral.train.config import from_dict
from numeral.train.sweep.grammar import format_value
from numeral.train.sweep.plan import METRICS, Sweep

Log = Callable[[str], None]
# sweep_figure(points, keys, metric, path): numeral.viz.sweep_figure, or any such function
Figure = Callable[..., Any]


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


def finish(sweep: Sweep, log: Log = print, figure: Figure | None = None) -> Row | None:
    """Write sweep.csv, best.toml and (with ``figure``, e.g. numeral.viz.sweep_figure)
    sweep.png; print the table; return the best row."""
    table = rows(sweep)
    write_table(sweep, sweep.out / "sweep.csv")
    log(summary(sweep, table))
    best = best_row(table)
    keys = list(sweep.swept) + (["setting"] if sweep.labelled or not sweep.swept else [])
    points = [(dict(row.settings, setting=row.setting), list(row.scores.values()))
              for row in table if row.scores]
    if points and figure is not None:
        figure(points, keys, sweep.metric, sweep.out / "sweep.png")
    if best is not None:
        write_best(sweep, best, sweep.out / "best.toml")
        log(f"best: {best.setting} ({sweep.metric} {best.mean:.4g}); its config: "
            f"{sweep.out / 'best.toml'}")
    log(f"table: {sweep.out / 'sweep.csv'}"
        + (f"; figure: {sweep.out / 'sweep.png'}" if figure is not None else ""))
    return best
