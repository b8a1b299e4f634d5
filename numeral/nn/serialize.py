"""Loading any model file numeral writes (the format is described in :mod:`numeral.nn.files`)."""

from __future__ import annotations

import os

from numeral.nn.ensemble import Ensemble
from numeral.nn.errors import InputError, ModelFileError
from numeral.nn.files import one_line, read_model_file, save_model
from numeral.nn.network import Network, network_from_file

__all__ = ["load_model", "save_model"]


def load_model(path: str | os.PathLike[str]) -> Network | Ensemble:
    """Read a model file written by :func:`save_model` (never unpickles anything): a Network,
    or an Ensemble of them."""
    header, nets = read_model_file(path)
    members = [network_from_file(path, desc, arrays) for desc, arrays in nets]
    if header.get("kind") == "ensemble":
        try:
            ensemble = Ensemble(members)
        except InputError as exc:  # members that cannot be averaged: the file's fault
            raise ModelFileError(f"{path} has an inconsistent model description: "
                                 f"{one_line(exc)}") from None
        ensemble.meta = dict(header.get("meta", {}))
        return ensemble
    return members[0]
