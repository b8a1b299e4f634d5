"""The files of a run directory (metrics.csv, JSON such as results and configs).

Every layer may import this module: training writes these files, the report and
the sweep read them, and it imports nothing of numeral but numeral.nn.files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from numeral.nn.files import atomic_write


def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.csv -> one dict a row, empty cells left out."""
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (values it cannot encode as their str)."""
    text = json.dumps(data, indent=1, default=str)
    atomic_write(path, lambda fh: fh.write(text.encode()))
