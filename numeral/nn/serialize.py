"""Loading any model file numeral writes (the format is described in :mod:`numeral.nn.files`)."""

from __future__ import annotations

import os

from numeral.nn.ensemble import Ensemble
from numeral.nn.errors import InputError, ModelFileError
from numeral.nn.files import read_model_file as read_model_file
from numeral.nn.files import save_model
from numeral.nn.network import Network

__all__ = ["load_model", "save_model"]


def load_model(path: str | os.PathLike[str]) -> Network | Ensemble:
    """Read a model file written by :func:`save_model` (never unpickles anything): a Network,
    or an Ensemble of them."""
    header, nets = read_model_file(path)
    try:
        members = [Network.from_description(desc, arrays) for desc, arrays in nets]
    except (KeyError, ValueError, TypeError, InputError) as exc:
        raise ModelFileError(f"{path} has an inconsistent model description: {exc}") from None
    if header.get("kind") == "ensemble":
        ensemble = Ensemble(members)
        ensemble.meta = dict(header.get("meta", {}))
        return ensemble
    return members[0]
