"""Train/test splits: stratified random, writer-independent (by sheet), k-fold.

Each returns index arrays into the dataset; the same seed gives the same split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from numeral.errors import DataError


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise DataError(f"test fraction must be between 0 and 1, got {fraction}")


def stratified_split(
    y: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``test_fraction`` of every class at random: (train_idx, test_idx)."""
    _check_fraction(test_fraction)
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        rng.shuffle(members)
        test.append(members[: round(len(members) * test_fraction)])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx, test_idx


def group_split(
    groups: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole groups (TibetanMNIST sheets, i.e. writers) until about
    ``test_fraction`` of the samples are held out; no group is on both sides.
    Samples of unknown group (-1) stay in training."""
    _check_fraction(test_fraction)
    known = np.unique(groups[groups >= 0])
    if len(known) < 2:
        raise DataError("a sheet (writer) split needs at least 2 known sheets; use --split random")
    rng = np.random.default_rng(seed)
    order = rng.permutation(known)
    target = test_fraction * len(groups)
    held: list[int] = []
    count = 0
    for g in order:
        if count >= target or len(held) == len(known) - 1:
            break
        held.append(int(g))
        count += int(np.sum(groups == g))
    test_mask = np.isin(groups, held)
    return np.flatnonzero(~test_mask), np.flatnonzero(test_mask)


def kfold(
    y: np.ndarray, k: int = 5, seed: int = 0, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train_idx, test_idx) folds: stratified by class, or by whole groups when given."""
    if k < 2:
        raise DataError(f"k-fold needs k >= 2, got {k}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), np.int64)
    if groups is not None:
        known = rng.permutation(np.unique(groups[groups >= 0]))
        if len(known) < k:
            raise DataError(f"{len(known)} sheets cannot make {k} folds")
        for i, g in enumerate(known):
            fold_of[groups == g] = i % k
        fold_of[groups < 0] = -1  # unknown writer: always train
    else:
        for label in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == label))
            fold_of[members] = np.arange(len(members)) % k
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]


def split(
    y: np.ndarray, groups: np.ndarray, how: str, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``how`` = ``random`` (stratified) or ``sheet`` (writer-independent)."""
    if how == "random":
        return stratified_split(y, test_fraction, seed)
    if how == "sheet":
        return group_split(groups, test_fraction, seed)
    raise DataError(f"unknown split {how!r}; use 'random' or 'sheet'")


def recorded_test_split(y: np.ndarray, groups: np.ndarray, meta: Mapping[str, Any],
                        how: str | None = None) -> np.ndarray:
    """Indices of the test split a model was trained beside: the split its metadata records
    (``split``, ``test_fraction``, ``split_seed``), or the split called ``how`` with the
    recorded fraction and seed."""
    _, test = split(y, groups, how or meta.get("split", "random"),
                    meta.get("test_fraction", 0.2), meta.get("split_seed", 0))
    return test
