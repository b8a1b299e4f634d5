"""The grid grammar: what ``--grid``, ``--random`` and labelled variants say, read as
config overrides, and the folder names of the settings they make.

- ``--grid key=v1,v2,...``: values read as TOML, as ``--set`` reads them (``[320,160]`` stays
  one value);
- ``--random key=lo:hi[:log]``: a :class:`Draw` (integers when both ends are integers);
- ``"label: key=value ..."``: a labelled variant (the command's arguments, or a config's
  ``[study]`` tables).
"""

from __future__ import annotations

import hashlib
import math
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from numeral.errors import ConfigError
from numeral.train.config import parse_override


def split_values(text: str) -> list[str]:
    """``'1,[2,3],"a,b"'`` -> ``['1', '[2,3]', '"a,b"']``: commas inside brackets or quotes
    belong to the value."""
    parts, depth, quote, current = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    return [p.strip() for p in parts]


def parse_grid(item: str) -> tuple[str, list[Any]]:
    """``'l2=0,1e-4'`` -> ``('l2', [0, 0.0001])``."""
    key, _, raw = item.partition("=")
    values = [parse_override(f"{key}={v}")[1] for v in split_values(raw)] if raw else []
    if not key.strip() or not values or any(v == "" for v in values):
        raise ConfigError(f"--grid {item!r}: expected key=v1,v2,..., e.g. --grid l2=0,1e-4,1e-3")
    return key.strip(), values


@dataclass(frozen=True)
class Draw:
    """``--random key=lo:hi[:log]``: a value drawn uniformly (or log-uniformly) in [lo, hi]."""

    key: str
    low: float
    high: float
    log: bool
    integer: bool

    def sample(self, rng: np.random.Generator) -> int | float:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if self.integer:
            return round(value)
        return float(f"{value:.3g}")  # readable trial names; three digits are plenty


def parse_random(item: str) -> Draw:
    key, _, spec = item.partition("=")
    parts = spec.split(":")
    usage = f"--random {item!r}: expected key=low:high or key=low:high:log, e.g. lr=1e-4:1e-2:log"
    if not key.strip() or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise ConfigError(usage)
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(usage) from None
    log = len(parts) == 3
    if not low < high or (log and low <= 0):
        raise ConfigError(f"--random {item!r}: needs low < high" + (" and low > 0 for :log"
                                                                     if log else ""))
    integer = all(re.fullmatch(r"[+-]?\d+", p.strip()) for p in parts[:2])
    return Draw(key.strip(), low, high, log, integer)


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``'dropout 0.1: epochs=120 dropout=0.1'`` -> ``('dropout 0.1', {...})``."""
    label, colon, settings = text.partition(":")
    try:
        pairs = shlex.split(settings)
    except ValueError as exc:
        raise ConfigError(f"variant {text!r}: {exc}") from None
    if not colon or not label.strip() or any("=" not in p for p in pairs):
        raise ConfigError(f"variant {text!r} must read 'label: key=value ...', "
                          f"e.g. 'wide: hidden=[512,256]'")
    return label.strip(), dict(parse_override(p) for p in pairs)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def setting_name(label: str | None, settings: dict[str, Any], shown: Iterable[str]) -> str:
    """A folder name for a setting: its label and the swept values, e.g. ``l2=0.001,lr=0.01``."""
    parts = [label] if label else []
    parts += [f"{k}={format_value(settings[k])}" for k in shown]
    text = re.sub(r"[^A-Za-z0-9._=,+\-\[\]]", "_", ",".join(parts)) or "base"
    if len(text) > 80:  # long lists of layers: keep it readable and unique
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        text = f"{text[:70]}~{digest}"
    return text
