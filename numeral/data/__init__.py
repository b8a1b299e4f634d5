"""numeral.data — from raw images to the 1-D vectors the network reads.

    ds = load("TibetanMNIST.zip")   # or a folder, an .npz, an IDX file
    ds.X       (n, 784) float32 in [0, 1]
    ds.y       (n,) int64
    ds.groups  (n,) int64 sheet id, -1 where unknown
    ds.images  (n, 28, 28) uint8
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from numeral.data.cache import cache_dir, load_cached, source_key, store_cached
from numeral.data.dataset import Dataset, vectorize
from numeral.data.preprocess import Preprocessing, preprocess_image
from numeral.data.sources import read_source
from numeral.data.splits import group_split, kfold, split, stratified_split
from numeral.errors import DataError

__all__ = [
    "DataError",
    "DataWarning",
    "Dataset",
    "Preprocessing",
    "cache_dir",
    "group_split",
    "kfold",
    "load",
    "preprocess_image",
    "resolve_data_path",
    "split",
    "stratified_split",
    "vectorize",
]


class DataWarning(UserWarning):
    """Some files were skipped or read in a special way; the message names them."""


def load(
    path: str | os.PathLike[str],
    *,
    preprocessing: Preprocessing | None = None,
    strict: bool = False,
    cache: bool = True,
) -> Dataset:
    """Read a dataset from a folder, .zip, .npz or IDX file, preprocessed to 28x28.

    Files that are skipped or read specially are named in one :class:`DataWarning`
    (``strict=True`` makes that an error). The result is cached, keyed by the
    source's identity and the preprocessing parameters.
    """
    path = Path(path).expanduser()
    params = preprocessing or Preprocessing()
    image_source = path.exists() and (
        path.is_dir() or path.suffix.lower() == ".zip"
    ) and not any(path.rglob("*idx3-ubyte*") if path.is_dir() else [])
    key = source_key(path, params.to_dict(), strict) if cache and image_source else None
    ds = load_cached(key) if key else None
    if ds is None:
        ds = read_source(path, params, strict)
        if key:
            store_cached(key, ds)
    if ds.notes:
        warnings.warn(f"{path}: " + " | ".join(ds.notes), DataWarning, stacklevel=2)
    return ds


def resolve_data_path(explicit: str | None = None) -> Path:
    """--data, else $NUMERAL_DATA, else the downloaded copy in the cache; else say how."""
    if explicit:
        return Path(explicit).expanduser()
    if env := os.environ.get("NUMERAL_DATA"):
        return Path(env).expanduser()
    downloaded = cache_dir() / "TibetanMNIST.zip"
    if downloaded.is_file():
        return downloaded
    raise DataError(
        "no dataset given: pass --data PATH (a TibetanMNIST folder or .zip, an .npz, an "
        "IDX file), set NUMERAL_DATA, or run `numeral data download` to fetch TibetanMNIST"
    )
