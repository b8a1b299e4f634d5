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

The driver (:func:`run_sweep`) owns the bookkeeping: ``OUT/<trial>/result.json``
(status, the one-line error of a failed trial, validation error and loss, epochs, seconds)
and ``OUT/<trial>/val_probs.npz`` are written from what each trial returns, so they land on
the driver's disk even on a cluster. A trial with a ``result.json`` is finished and is skipped
when the command runs again; a trial that was stopped mid-way resumes from its checkpoint.
A trial whose worker process died (killed, out of memory, its node lost) is run once more
by Ray, resuming from its checkpoint; if that worker dies too, the trial is recorded as
``crashed``, which is not finished: the next run of the command resumes it.
Then ``sweep.csv``, ``sweep.png`` (the metric against each swept key, seeds as error bars;
drawn by the figure function the caller passes to :func:`finish`, numeral.viz.sweep_figure
for the command, since numeral.train does not import numeral.viz) and ``best.toml`` (the base
config with the best setting, for ``numeral train --config``).

Why Ray core tasks rather than Ray Tune: see :mod:`numeral.train.sweep.run`.

The package, one concern a module, each importing only those above it:

- ``grammar``: ``--grid``, ``--random`` and ``"label: key=value ..."`` read as overrides;
- ``plan``: the trials (:func:`plan`, :func:`plan_sweep`), each trial's config, ``sweep.json``;
- ``run``: one trial on a worker, the Ray runner, the driver that records results;
- ``tables``: ``sweep.csv``, the terminal table, ``best.toml``, the figure;
- ``committee``: committees of finished trials and the images most of them misread.
"""

from __future__ import annotations

from numeral.train.sweep.committee import (
    by_setting,
    committee_error,
    committee_report,
    draw_hard_images,
    every_committee,
    hard_gallery,
    hard_images,
    validation_probabilities,
    wrong_count,
)
from numeral.train.sweep.grammar import (
    Draw,
    format_value,
    parse_grid,
    parse_random,
    parse_variant,
    setting_name,
    split_values,
)
from numeral.train.sweep.plan import (
    DEFAULT_VAL_FRACTION,
    METRICS,
    Sweep,
    Trial,
    check_same_base,
    data_source,
    load_sweep,
    plan,
    plan_sweep,
    save_plan,
    trial_config,
)
from numeral.train.sweep.run import (
    Log,
    RayRunner,
    ValidationScore,
    first_line,
    record,
    require_ray,
    run_sweep,
    run_trial,
)
from numeral.train.sweep.tables import (
    Row,
    best_row,
    finish,
    rows,
    summary,
    write_best,
    write_table,
)

__all__ = [
    "DEFAULT_VAL_FRACTION",
    "METRICS",
    "Draw",
    "Log",
    "RayRunner",
    "Row",
    "Sweep",
    "Trial",
    "ValidationScore",
    "best_row",
    "by_setting",
    "check_same_base",
    "committee_error",
    "committee_report",
    "data_source",
    "draw_hard_images",
    "every_committee",
    "finish",
    "first_line",
    "format_value",
    "hard_gallery",
    "hard_images",
    "load_sweep",
    "parse_grid",
    "parse_random",
    "parse_variant",
    "plan",
    "plan_sweep",
    "record",
    "require_ray",
    "rows",
    "run_sweep",
    "run_trial",
    "save_plan",
    "setting_name",
    "split_values",
    "summary",
    "trial_config",
    "validation_probabilities",
    "write_best",
    "write_table",
    "wrong_count",
]
