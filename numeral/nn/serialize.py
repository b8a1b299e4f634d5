"""Loading any model file numeral writes (the format is described in :mod:`numeral.nn.files`)."""

from __future__ import annotations

import os

from numeral.nn.ensemble import Ensemble
from numeral.nn.files import read_model_file, save_model
from numeral.nn.network import Network, network_from_file

__all__ = ["load_model", "save_model"]


def load_model(path: str | os.PathLike[str]) -> Network | Ensemble:
    """Read a model file written by :func:`save_model` (never unpickles anything): a Network,
    or an Ensemble of them."""
    header, nets = read_model_file(path)
    members = [network_from_file(path, desc, arrays) for desc, arrays in nets]
    if header.get("kind") == "ensemble":
        ensemble = Ensemble(members)
        ensemble.meta = dict(header.get("meta", {}))
        return ensemble
    return members[0]
