"""benchmarks/screen.py: committees mixed from several screens' saved validation probabilities."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def screen_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screen", ROOT / "benchmarks" / "screen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_hot(classes: list[int], weight: float = 1.0) -> np.ndarray:
    return weight * np.eye(3)[classes]


Y = np.array([0, 1, 2, 0])


def save(path: Path, y: np.ndarray = Y, **networks: np.ndarray) -> Path:
    arrays: dict[str, Any] = {"y": y, "split": np.array("random"), **networks}
    np.savez_compressed(path, **arrays)
    return path


def test_a_committee_mixed_from_two_screens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    screen = screen_module()
    # a-seed0 misreads images 2 and 3, b-seed0 only image 3 (less sure of it), c-seed0 image 2
    first = save(tmp_path / "one.npz", **{"a-seed0": one_hot([0, 1, 1, 1], 0.9)})
    second = save(tmp_path / "two.npz", **{"b-seed0": one_hot([0, 1, 2, 2], 0.5) + 0.1,
                                           "c-seed0": one_hot([0, 1, 0, 0])})
    merged = screen.merge_probs([first, second])
    assert sorted(merged) == ["a-seed0", "b-seed0", "c-seed0", "split", "y"]
    screen.committee_report(merged, None, mixes=["b-seed0+c-seed0", "a-seed0+b-seed0"])
    out = capsys.readouterr().out
    assert "| b-seed0 + c-seed0 | 2 | 25.00 % (1 of 4) |" in out
    assert "| a-seed0 + b-seed0 | 2 | 50.00 % (2 of 4) |" in out


def test_screens_of_other_images_or_unknown_networks_are_refused(tmp_path: Path) -> None:
    screen = screen_module()
    first = save(tmp_path / "one.npz", **{"a-seed0": one_hot([0, 1, 2, 0])})
    other = save(tmp_path / "other.npz", y=np.array([1, 1, 2, 0]),
                 **{"b-seed0": one_hot([0, 1, 2, 0])})
    with pytest.raises(SystemExit, match="other validation images"):
        screen.merge_probs([first, other])
    with pytest.raises(SystemExit, match="repeats network a-seed0"):
        screen.merge_probs([first, first])
    with pytest.raises(SystemExit, match=r"is not a \.npz file"):
        screen.merge_probs([ROOT / "README.md"])
    with pytest.raises(SystemExit, match="'nope', which no file holds; the networks are: a-seed0"):
        screen.committee_report(screen.merge_probs([first]), None, mixes=["a-seed0+nope"])


def test_a_file_without_its_split_is_read_as_the_random_split(tmp_path: Path) -> None:
    screen = screen_module()
    bare = tmp_path / "bare.npz"
    unlabelled_split: dict[str, Any] = {"y": Y, "a-seed0": one_hot([0, 1, 2, 0])}
    np.savez_compressed(bare, **unlabelled_split)
    sheet = tmp_path / "sheet.npz"
    arrays: dict[str, Any] = {"y": Y, "split": np.array("sheet"), "b-seed0": one_hot([0, 1, 2, 0])}
    np.savez_compressed(sheet, **arrays)
    random = save(tmp_path / "random.npz", **{"c-seed0": one_hot([0, 1, 2, 0])})
    merged = screen.merge_probs([bare, random])
    assert str(merged["split"]) == "random" and "c-seed0" in merged
    with pytest.raises(SystemExit, match="other validation images"):
        screen.merge_probs([bare, sheet])
