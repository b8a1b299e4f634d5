"""Checking what callers hand the network: shapes, numbers, labels."""

from __future__ import annotations

from typing import Any

import numpy as np

from numeral.nn.errors import InputError


def check_inputs(
    X: Any,
    y: Any = None,
    *,
    n_features: int | None = None,
    n_classes: int | None = None,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return X as a C-contiguous (n, n_features) array of ``dtype`` (and y as int64 labels
    in 0..n_classes-1), raising :class:`InputError` with the fix for wrong shapes, NaN/inf
    and bad labels. ``None`` leaves the width or the number of classes open."""
    X = np.asarray(X)
    if X.ndim != 2 or (n_features is not None and X.shape[1] != n_features):
        width = n_features if n_features is not None else "d"
        fix = ("Reshape your data: X.reshape(1, -1) for one sample" if X.ndim == 1 else
               "flatten images first, e.g. with numeral.data")
        raise InputError(
            f"X has shape {X.shape}; expected (n, {width}): one row of values per sample ({fix})"
        )
    if X.shape[1] == 0:
        raise InputError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 "
                         "is required: X needs at least one column")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise InputError(f"X must hold real numbers, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=dtype)
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise InputError(
            f"X contains NaN or inf (first at row {bad[0]}, column {bad[1]}); "
            "clean or drop those samples"
        )
    if y is None:
        return X, None
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or len(y_arr) != len(X):
        raise InputError(
            f"y has shape {y_arr.shape}; expected ({len(X)},): one integer label per row of X"
        )
    whole = np.issubdtype(y_arr.dtype, np.floating) and np.all(y_arr == np.round(y_arr))
    if y_arr.size and not np.issubdtype(y_arr.dtype, np.integer) and not whole:
        raise InputError(f"y must hold integer class labels, got dtype {y_arr.dtype}")
    y_int = y_arr.astype(np.int64)
    top = n_classes if n_classes is not None else np.iinfo(np.int64).max
    if y_int.size and (y_int.min() < 0 or y_int.max() >= top):
        bad_label = y_int[(y_int < 0) | (y_int >= top)][0]
        limit = f"this network has {n_classes} classes, so labels must be 0..{top - 1}"
        raise InputError(f"label {bad_label} is out of range: "
                         + (limit if n_classes is not None else "labels must be >= 0"))
    return X, y_int
