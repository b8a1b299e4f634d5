"""A cache of preprocessed datasets, so decoding 17,768 JPEGs happens once.

Key: sha256 of (resolved path, size and modification time of the file -- or of
every file below a folder --, preprocessing parameters, strictness, cache
format). Location: ``$NUMERAL_CACHE``, else ``$XDG_CACHE_HOME/numeral``, else
``~/.cache/numeral``. Entries are written atomically; a damaged entry is
ignored and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from numeral.data.dataset import Dataset

CACHE_FORMAT = 2


def cache_dir() -> Path:
    """Where numeral keeps downloads and preprocessed arrays."""
    if env := os.environ.get("NUMERAL_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "numeral"


def source_key(path: Path, params: dict[str, Any], strict: bool) -> str:
    """Identity of a source file or folder plus everything that changes its arrays."""
    path = path.resolve()
    h = hashlib.sha256(json.dumps([str(path), params, strict, CACHE_FORMAT]).encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def load_cached(key: str) -> Dataset | None:
    entry = cache_dir() / "datasets" / f"{key}.npz"
    if not entry.is_file():
        return None
    try:
        with np.load(entry, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return Dataset(
                images=data["images"],
                y=data["y"],
                groups=data["groups"],
                names=data["names"],
                source=meta["source"],
                class_names=meta["class_names"],
                notes=meta["notes"],
                preprocessing=meta["preprocessing"],
            )
    except Exception:  # a damaged entry (zipfile and NumPy raise most anything): rebuild
        return None


def store_cached(key: str, ds: Dataset) -> None:
    from numeral.nn.files import write_npz

    meta = {
        "source": ds.source,
        "class_names": ds.class_names,
        "notes": ds.notes,
        "preprocessing": ds.preprocessing,
    }
    arrays: dict[str, Any] = {
        "images": ds.images,
        "y": ds.y,
        "groups": ds.groups,
        "names": ds.names,
        "meta": np.array(json.dumps(meta)),
    }
    with contextlib.suppress(OSError):  # a read-only cache only costs speed
        write_npz(cache_dir() / "datasets" / f"{key}.npz", arrays)
