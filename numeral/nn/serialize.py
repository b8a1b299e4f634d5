"""Model files: one ``.npz`` with the weights and a JSON header, no pickles.

Layout: ``__numeral__`` holds a JSON string::

    {"format": "numeral-model", "version": 1, "kind": "network" | "ensemble",
     "networks": [{"sizes": [...], "activations": [...], "dtype": ..., ...}, ...],
     "meta": {...}, "sha256": "<hash of every array>"}

(version 2 when a network transforms its inputs, 3 when one reads orientation planes; see
numeral.nn.inputs)
and ``net{i}.param{j}`` the arrays of network i (W^1, b^1, W^2, ...), plus
``net{i}.input_mean`` / ``net{i}.input_scale`` when the network standardises
its input. The hash detects a truncated or edited file; a header from a newer
format version is refused with a message rather than misread.
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

from numeral.nn.ensemble import Ensemble
from numeral.nn.errors import ModelFileError
from numeral.nn.network import Network

FORMAT = "numeral-model"
FORMAT_VERSION = 3  # 2: networks may transform their inputs; 3: into orientation planes
HEADER_KEY = "__numeral__"


def network_to_arrays(net: Network) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON description and the arrays of one network."""
    desc = {
        "sizes": net.sizes,
        "activations": net.activation_names,
        "init": net.init,
        "seed": net.seed,
        "dtype": str(net.dtype),
        "dropout": net.dropout,
        "standardized": net.input_mean is not None,
        "input_transform": net.input_transform,
        "input_gamma": net.input_gamma,
        "meta": net.meta,
    }
    arrays = {f"param{j}": p for j, p in enumerate(net.params)}
    if net.input_mean is not None and net.input_scale is not None:
        arrays["input_mean"], arrays["input_scale"] = net.input_mean, net.input_scale
    return desc, arrays


def network_from_arrays(desc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Network:
    net = Network(
        desc["sizes"],
        activation=desc["activations"],
        init="zeros",
        seed=desc.get("seed", 0),
        dtype=desc.get("dtype", "float32"),
        dropout=desc.get("dropout", 0.0),
        input_transform=desc.get("input_transform", "none"),
        input_gamma=desc.get("input_gamma", 1.0),
    )
    net.init = desc.get("init", "zeros")
    for j, p in enumerate(net.params):
        src = arrays[f"param{j}"]
        if src.shape != p.shape:
            raise ValueError(f"param{j} has shape {src.shape}, expected {p.shape}")
        p[...] = src
    if desc.get("standardized"):
        net.input_mean = np.asarray(arrays["input_mean"], net.dtype)
        net.input_scale = np.asarray(arrays["input_scale"], net.dtype)
    net.meta = dict(desc.get("meta", {}))
    return net


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def atomic_write(path: str | os.PathLike[str], write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    A crash midway leaves the previous file (or none), never half of one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> None:
    """Write ``arrays`` as an uncompressed .npz at ``path``, atomically."""
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def oldest_reader(members: list[Network]) -> int:
    """The lowest format version that describes these networks: a file an older numeral can
    use correctly says so, and one it cannot makes it refuse the file instead of misreading
    it (1: plain networks, 2: gamma or deskew, 3: orientation planes)."""
    if any(n.input_transform == "orientation" for n in members):
        return 3
    return 2 if any(n.transforms_inputs for n in members) else 1


def save_model(model: Network | Ensemble, path: str | os.PathLike[str]) -> None:
    """Write a network or an ensemble to ``path`` atomically."""
    members = model.members
    arrays: dict[str, np.ndarray] = {}
    descs = []
    for i, net in enumerate(members):
        desc, net_arrays = network_to_arrays(net)
        descs.append(desc)
        arrays.update({f"net{i}.{k}": v for k, v in net_arrays.items()})
    header = {
        "format": FORMAT,
        "version": oldest_reader(members),
        "kind": "ensemble" if isinstance(model, Ensemble) else "network",
        "networks": descs,
        "meta": model.meta if isinstance(model, Ensemble) else {},
        "sha256": _digest(arrays),
    }
    write_npz(path, {HEADER_KEY: np.array(json.dumps(header)), **arrays})


def load_model(path: str | os.PathLike[str]) -> Network | Ensemble:
    """Read a model file written by :func:`save_model` (never unpickles anything)."""
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
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelFileError(f"{p} is not a readable numeral model (.npz): {exc}") from None
    if HEADER_KEY not in contents:
        raise ModelFileError(f"{p} is an .npz but not a numeral model (no {HEADER_KEY} header)")
    try:
        header = json.loads(str(contents.pop(HEADER_KEY)))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{p} has a corrupt model header: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{p} is not a numeral model (format {header.get('format')!r})")
    version = header.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{p} was written by a newer numeral (model format {version}); this numeral reads "
            f"format <= {FORMAT_VERSION}: upgrade numeral to load it"
        )
    if header.get("sha256") != _digest(contents):
        raise ModelFileError(
            f"{p} is corrupt or was modified after it was saved (checksum mismatch); "
            "re-save or re-train the model"
        )
    try:
        members = []
        for i, desc in enumerate(header["networks"]):
            prefix = f"net{i}."
            arrays = {k[len(prefix) :]: v for k, v in contents.items() if k.startswith(prefix)}
            members.append(network_from_arrays(desc, arrays))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{p} has an inconsistent model description: {exc}") from None
    if header.get("kind") == "ensemble":
        ensemble = Ensemble(members)
        ensemble.meta = dict(header.get("meta", {}))
        return ensemble
    return members[0]
