"""Shared fixtures. Real-data tests read the datasets from ../shared/data (or
$NUMERAL_DATA); preprocessed arrays are cached in a per-session folder."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from numeral.data import Dataset, split

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def tibetan_zip() -> Path:
    path = Path(os.environ.get("NUMERAL_DATA", SHARED / "tibetan-mnist" / "TibetanMNIST.zip"))
    if not path.exists():
        pytest.skip(f"TibetanMNIST not found at {path}; set NUMERAL_DATA")
    return path


def mnist_dir() -> Path:
    path = SHARED / "mnist"
    if not path.exists():
        pytest.skip(f"MNIST test set not found at {path}")
    return path


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    if "NUMERAL_CACHE" not in os.environ:
        os.environ["NUMERAL_CACHE"] = str(tmp_path_factory.mktemp("numeral-cache"))


@pytest.fixture(scope="session")
def tibetan_path() -> Path:
    return tibetan_zip()


@pytest.fixture(scope="session")
def tibetan(tibetan_path: Path) -> Dataset:
    from numeral.data import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(tibetan_path)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def chromium_path() -> str:
    """Debian's chromium for the browser tests (with Playwright), or a skip saying why."""
    import os
    import shutil

    pytest.importorskip("playwright")
    path = os.environ.get("NUMERAL_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.skip("no chromium on PATH (apt-get install chromium); .ci/run installs it")
    return path


@pytest.fixture(scope="session")
def test_images(tibetan: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Numerals of writers the shipped model never saw... nor any other test image: the
    shipped model trained on the random split's training part, so its test part."""
    _, test = split(tibetan.y, tibetan.groups, "random", 0.2, 0)
    return tibetan.images[test], tibetan.y[test]
