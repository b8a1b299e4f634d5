"""The one obvious way in Python: numeral.recognize(image) and numeral.read(image) take a path,
bytes, a PIL image or an array, use the shipped model unless given one, and answer with typed
results whose to_dict() is exactly what the CLI prints and the API serves."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from images import png
from PIL import Image

import numeral
from numeral.cli import main
from numeral.data.compose import Layout, compose_number
from numeral.errors import NumeralError
from numeral.results import Candidate, Digit, Reading, Recognition

ROOT = Path(__file__).resolve().parents[1]


def photo_of(images: np.ndarray) -> np.ndarray:
    return compose_number(images, np.random.default_rng(3), Layout(specks=0))


def test_recognize_takes_every_kind_of_image(test_images: tuple[np.ndarray, np.ndarray],
                                             tmp_path: Path) -> None:
    images, labels = test_images
    scan = 255 - images[5]  # dark ink on light paper, as a scan is
    (tmp_path / "d.png").write_bytes(png(scan))
    forms = [tmp_path / "d.png", str(tmp_path / "d.png"), png(scan), Image.fromarray(scan),
             scan]
    answers = [numeral.recognize(form) for form in forms]
    assert all(isinstance(a, Recognition) for a in answers)
    assert {a.label for a in answers} == {int(labels[5])}
    first = answers[0]
    assert first.class_name == str(labels[5]) and first.confidence == first.probability
    assert [c.probability for c in first.top3] == sorted(
        (c.probability for c in first.top3), reverse=True)
    assert first.class_name is not None and first.label is not None
    assert first.top3[0] == Candidate(first.class_name, first.label, first.probability)
    assert abs(sum(first.probabilities) - 1) < 1e-4 and len(first.probabilities) == 10
    assert all(a.to_dict() == first.to_dict() for a in answers)


def test_recognize_says_when_there_is_no_numeral() -> None:
    blank = numeral.recognize(np.full((60, 60), 250, np.uint8))
    assert blank.class_name is None and blank.label is None and blank.confidence == 0.0
    assert blank.reason and blank.to_dict()["reason"] == blank.reason


def test_read_gives_a_typed_reading_with_boxes_in_the_images_pixels(
        test_images: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = test_images
    photo = photo_of(images[10:14])
    truth = "".join(str(c) for c in labels[10:14])
    reading = numeral.read(photo)
    assert isinstance(reading, Reading) and str(reading) == reading.text == truth
    assert reading.tibetan == "".join(chr(0x0F20 + int(c)) for c in truth)
    assert all(isinstance(d, Digit) for d in reading.digits) and len(reading.digits) == 4
    assert reading.size == (photo.shape[1], photo.shape[0])
    for digit in reading.digits:
        x0, y0, x1, y1 = digit.box
        assert 0 <= x0 < x1 <= photo.shape[1] and 0 <= y0 < y1 <= photo.shape[0]
        assert digit.top3[0].class_name == digit.class_name
    assert [d.box[0] for d in reading.digits] == sorted(d.box[0] for d in reading.digits)
    assert reading.confidence == pytest.approx(np.prod([d.probability for d in reading.digits]))
    bigger = numeral.read(Image.fromarray(photo).resize((photo.shape[1] * 3, photo.shape[0] * 3)))
    assert bigger.text == truth and bigger.size == (photo.shape[1] * 3, photo.shape[0] * 3)


def test_read_with_another_model_and_nothing_to_read(
        test_images: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    images, _ = test_images
    photo = photo_of(images[20:23])
    model = numeral.load_model("tibetan")
    assert numeral.read(photo, model=model).to_dict() == numeral.read(photo).to_dict()
    nothing = numeral.read(np.full((80, 200), 240, np.uint8))
    assert nothing.text == "" and nothing.digits == [] and "no ink" in (nothing.reason or "")
    assert nothing.to_dict()["tibetan"] == ""
    with pytest.raises(NumeralError, match=r"missing\.npz"):
        numeral.read(photo, model=str(tmp_path / "missing.npz"))


def test_the_cli_and_the_api_give_the_results_to_dict(
        test_images: tuple[np.ndarray, np.ndarray], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from fastapi.testclient import TestClient

    from numeral.serve import create_app

    images, _ = test_images
    photo = photo_of(images[30:34])
    (tmp_path / "n.png").write_bytes(png(photo))
    reading = numeral.read(tmp_path / "n.png").to_dict()
    assert main(["read", str(tmp_path / "n.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"image": str(tmp_path / "n.png"), **reading}
    client = TestClient(create_app("tibetan"))
    served = client.post("/api/read", files={"file": ("n.png", png(photo), "image/png")})
    assert served.json() == json.loads(json.dumps(reading))
    one = 255 - images[30]
    (tmp_path / "d.png").write_bytes(png(one))
    assert main(["predict", str(tmp_path / "d.png"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"image": str(tmp_path / "d.png"),
                       **numeral.recognize(tmp_path / "d.png").to_dict()}


def test_numeral_read_is_callable_before_and_after_its_module_is_imported() -> None:
    """``numeral.read`` is a function and a module's name: both ways of reaching it read."""
    code = ("import numpy as np, numeral; blank = np.full((40, 90), 240, np.uint8); "
            "a = numeral.read(blank); import numeral.read as m; b = numeral.read(blank); "
            "print(a.reason == b.reason == m.read_number(blank).reason, "
            "numeral.read is m, callable(m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.split() == ["True", "True", "True"]
    module = importlib.import_module("numeral.read")
    assert module.NumberReader is not None  # still the module of the reader's parts


def test_the_shipped_model_is_loaded_once() -> None:
    from numeral.predict import recognizer_for

    assert recognizer_for() is recognizer_for("tibetan") is recognizer_for(None)
