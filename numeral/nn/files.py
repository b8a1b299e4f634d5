"""Model files and other arrays on disk: atomic writes, no pickles.

A model file is one ``.npz``. ``__numeral__`` holds a JSON string::

    {"format": "numeral-model", "version": 4, "kind": "network" | "ensemble",
     "networks": [{"layers": ["dense 512", "relu", ...], "input_shape": [784], ...}, ...],
     "meta": {...}, "sha256": "<hash of every array>"}

and ``net{i}.param{j}`` the parameters of network i in layer order, ``net{i}.state{l}.{name}``
what layer l keeps beside them (BatchNorm's running statistics, Standardize's mean and
scale); the input transforms are the first layer strings. Earlier versions, still read
(``numeral.nn.network.upgrade_description`` turns them into the layer list): 1 (plain
multi-layer perceptrons: ``sizes`` and activations), 2 (with gamma or deskew), 3 (with
orientation planes). The hash, of every array
(not of the JSON header), detects edited weights; a truncated or damaged archive, a header
that does not describe networks, or one from a newer format version is refused with a
one-line :class:`ModelFileError` naming the file rather than misread. This module knows
files, not networks (:mod:`numeral.nn.serialize` turns descriptions into networks), so every
part of numeral may import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from numeral.nn.errors import ModelFileError

FORMAT = "numeral-model"
FORMAT_VERSION = 4  # 2: input transforms; 3: orientation planes; 4: the layer list
HEADER_KEY = "__numeral__"
NetworkFile = tuple[dict[str, Any], dict[str, np.ndarray]]  # (description, arrays)


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


_UMASK = os.umask(0o022)  # read once, at import (os.umask can only be read by setting it)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike[str], write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    A crash midway leaves the previous file (or none), never half of one. The file gets the
    permissions a plain ``open(path, "w")`` would give it (the temporary file is private).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> None:
    """Write ``arrays`` as an uncompressed .npz at ``path``, atomically."""
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def save_model(model: Any, path: str | os.PathLike[str], *, half: bool = False) -> None:
    """Write a network or an ensemble (anything with ``members``, each with ``describe()``)
    to ``path`` atomically. ``half``: float32 arrays stored as float16 (half the size; loading
    widens them to the network's dtype again)."""
    members = model.members
    arrays: dict[str, np.ndarray] = {}
    descs = []
    for i, net in enumerate(members):
        desc, net_arrays = net.describe()
        if half:
            desc = {**desc, "stored_as": "float16"}
            net_arrays = {k: v.astype(np.float16) if v.dtype == np.float32 else v
                          for k, v in net_arrays.items()}
        descs.append(desc)
        arrays.update({f"net{i}.{k}": v for k, v in net_arrays.items()})
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kind": "network" if members == [model] else "ensemble",
        "networks": descs,
        "meta": {} if members == [model] else model.meta,
        "sha256": _digest(arrays),
    }
    write_npz(path, {HEADER_KEY: np.array(json.dumps(header)), **arrays})


def one_line(exc: object, limit: int = 200) -> str:
    """``exc``'s message on one line, at most ``limit`` characters (its type when it has no
    message): what goes after "because" in an error about a file."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[NetworkFile]]:
    """The header of a model file and each network's (description, arrays), checked: a
    missing, foreign, corrupt, edited or newer file raises :class:`ModelFileError`."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(
            f"model file {p} not found; train one with `numeral train --out DIR` "
            "(it writes DIR/model.npz)"
        )
    if not zipfile.is_zipfile(p):  # else np.load reads it as pickle and says "trust the file"
        raise ModelFileError(
            f"{p} is not a readable numeral model (.npz): it is not an .npz archive; give the "
            "model.npz that `numeral train` writes"
        )
    try:
        with np.load(p, allow_pickle=False) as data:
            contents = {k: data[k] for k in data.files}
    except Exception as exc:  # reading only: any failure is the file's
        # A damaged archive makes zipfile and NumPy raise almost anything: BadZipFile,
        # zlib.error, NotImplementedError (a flag or method it cannot read), RuntimeError
        # ("encrypted"), EOFError, ValueError (an .npy header), struct.error, MemoryError...
        raise ModelFileError(f"{p} is not a readable numeral model (.npz): {one_line(exc)}"
                             ) from None
    if HEADER_KEY not in contents:
        raise ModelFileError(f"{p} is an .npz but not a numeral model (no {HEADER_KEY} header)")
    try:
        header = json.loads(str(contents.pop(HEADER_KEY)))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ModelFileError(f"{p} has a corrupt model header: {one_line(exc)}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise ModelFileError(f"{p} is not a numeral model (format {one_line(repr(found))})")
    version = header.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{p} was written by a newer numeral (model format {one_line(repr(version))}); this "
            f"numeral reads format <= {FORMAT_VERSION}: upgrade numeral to load it"
        )
    if header.get("sha256") != _digest(contents):
        raise ModelFileError(
            f"{p} is corrupt or was modified after it was saved (checksum mismatch); "
            "re-save or re-train the model"
        )
    descs, meta = header.get("networks"), header.get("meta", {})
    if not isinstance(descs, list) or not descs or not all(isinstance(d, dict) for d in descs):
        raise ModelFileError(f"{p} has an inconsistent model description: 'networks' must be "
                             f"a list of network descriptions, got {one_line(repr(descs))}")
    if not isinstance(meta, dict):
        raise ModelFileError(f"{p} has an inconsistent model description: 'meta' must be a "
                             f"table, got {one_line(repr(meta))}")
    nets = []
    for i, desc in enumerate(descs):
        prefix = f"net{i}."
        nets.append((desc, {k[len(prefix) :]: v for k, v in contents.items()
                            if k.startswith(prefix)}))
    return header, nets
