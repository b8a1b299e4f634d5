"""The models that ship with numeral, loaded by name: ``numeral.load_model("tibetan")``.

=========  ===============================================================================
tibetan    TibetanMNIST's numerals 0-9: a 784-1024-1024-10 ReLU network on orientation
           planes and a CNN (the first two networks of the ``best`` recipe), float16 on
           disk, widened to float32 at load. Trained by ``python3 tasks.py ship`` on the
           training part of the random split; its accuracy, and the same recipe's on the
           writer-independent split, are in the README and in the file's metadata.
=========  ===============================================================================

The weights derive from TibetanMNIST, published under CC BY-NC-SA 4.0 (attribution,
non-commercial, share alike): so are these models (see ``LICENSE-MODELS`` beside this file).
numeral's code is MIT-licensed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED = {"tibetan": "tibetan.npz"}
DEFAULT = "tibetan"
LICENCE = ("The weights derive from TibetanMNIST (Minzu University of China, "
           "github.com/bat67/TibetanMNIST), licensed CC BY-NC-SA 4.0: attribution, "
           "non-commercial use only, share alike. numeral's code is MIT-licensed.")


def shipped_path(name: str) -> Path | None:
    """The file of the shipped model ``name``, or None when no model is called that."""
    if name not in SHIPPED:
        return None
    path = Path(str(resources.files("numeral.models") / SHIPPED[name]))
    return path if path.is_file() else None


def resolve_model(name_or_path: str | Path) -> Path:
    """A model file: ``name_or_path`` itself when it exists (or is not a shipped name), else the
    shipped model of that name."""
    path = Path(name_or_path)
    if path.exists() or str(name_or_path) not in SHIPPED:
        return path
    shipped = shipped_path(str(name_or_path))
    if shipped is None:
        from numeral.errors import NumeralError

        raise NumeralError(f"the shipped model {name_or_path!r} is missing from this install "
                           f"of numeral; reinstall it, or give a model file")
    return shipped
