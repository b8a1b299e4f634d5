"""Committees of a sweep's finished trials: their validation probabilities averaged, per
setting, over every trial, for named mixes, and for every mix (:func:`committee_table`); the
validation images most trials misread (the gallery's images and titles, drawn by the caller)."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from numeral.errors import NumeralError
from numeral.train.config import from_dict
from numeral.train.sweep.plan import Sweep, trial_config


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


def by_setting(names: Sequence[str]) -> dict[str, list[str]]:
    """Trial names (``SETTING-seedK``) grouped by setting, in the order given."""
    settings: dict[str, list[str]] = defaultdict(list)
    for name in names:
        settings[name.rpartition("-seed")[0]].append(name)
    return dict(settings)


def wrong_count(probs: dict[str, np.ndarray], names: Sequence[str], y: np.ndarray) -> int:
    """How many images the committee of ``names`` (probabilities averaged) misreads."""
    return int((np.mean([probs[n] for n in names], axis=0).argmax(1) != y).sum())


def committee_error(probs: dict[str, np.ndarray], names: Sequence[str], y: np.ndarray) -> str:
    wrong = wrong_count(probs, names, y)
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


def hard_gallery(sweep: Sweep, saved: dict[str, np.ndarray]
                 ) -> tuple[np.ndarray, list[str]] | None:
    """The validation images most trials misread and a title for each (label, the reading
    most of them gave, how many misread it), or None when no image is that hard."""
    from numeral.train.experiment import DataSource, prepare_data

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
    return data.val.images[hard], titles


Gallery = Callable[[np.ndarray, list[str], Path], Path | None]


def draw_hard_images(sweep: Sweep, saved: dict[str, np.ndarray], path: Path,
                     draw: Gallery) -> Path | None:
    """A gallery of the validation images most trials misread (``--hard PNG``), drawn by
    ``draw(images, titles, path)`` (numeral.viz.figures.image_grid: the caller passes it,
    since numeral.train does not import numeral.viz)."""
    gallery = hard_gallery(sweep, saved)
    return None if gallery is None else draw(*gallery, path)


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
    lines += [f"| {s} | {len(members)} | {committee_error(probs, members, y)} |"
              for s, members in by_setting(names).items()]
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


def every_committee(probs: dict[str, np.ndarray], y: np.ndarray, settings: Sequence[str],
                    most: int = 3) -> list[tuple[dict[str, int], list[int]]]:
    """Every mix of ``settings`` (how many trials of each, 0 to ``most``, not all 0), with the
    misread counts of every committee of distinct trials that mix makes: so that a choice of
    committee rests on every combination, not on one lucky pair."""
    kinds = by_setting(list(probs))
    unknown = sorted(set(settings) - set(kinds))
    if unknown:
        raise NumeralError(f"no finished trial of setting {unknown[0]!r}; the settings are: "
                           f"{', '.join(kinds)}")
    out = []
    for counts in itertools.product(*(range(min(most, len(kinds[k])) + 1) for k in settings)):
        if sum(counts) == 0:
            continue
        per_kind = [list(itertools.combinations(kinds[k], n))
                    for k, n in zip(settings, counts, strict=True)]
        errors = [wrong_count(probs, [t for part in parts for t in part], y)
                  for parts in itertools.product(*per_kind)]
        out.append((dict(zip(settings, counts, strict=True)), errors))
    return out
