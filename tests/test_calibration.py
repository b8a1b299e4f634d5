"""Say how sure it is (#27): temperature scaling fitted on validation data, the expected
calibration error, and the --min-confidence flag of the command line and the API."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from numeral.cli import main
from numeral.nn.calibration import (
    calibration,
    expected_calibration_error,
    fit_temperature,
    reliability,
    tempered,
)
from numeral.nn.losses import softmax
from numeral.results import with_check


def sampled(temperature: float, n: int = 20000, seed: int = 0
            ) -> tuple[np.ndarray, np.ndarray]:
    """A model's probabilities softmax(z), and labels drawn from softmax(z / temperature):
    the model is exactly ``temperature`` too sure (T > 1) or too shy (T < 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, 10))
    truth = softmax(z / temperature)
    y = (truth.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return softmax(z), y


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_at(temperature: float) -> None:
    proba, y = sampled(temperature)
    # 20,000 labels: the fit's sampling error, measured over seeds, is about 1.5 %
    assert fit_temperature(proba, y) == pytest.approx(temperature, rel=0.06)


def test_tempering_keeps_the_class_and_moves_the_confidence_the_right_way() -> None:
    proba, _ = sampled(1.0, n=500)
    hot, cold = tempered(proba, 2.0), tempered(proba, 0.5)
    assert tempered(proba, 1.0) is proba
    for p in (hot, cold):
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
        assert (p.argmax(axis=1) == proba.argmax(axis=1)).all()
    assert (hot.max(axis=1) <= proba.max(axis=1) + 1e-12).all()
    assert (cold.max(axis=1) >= proba.max(axis=1) - 1e-12).all()


def test_the_expected_calibration_error_by_hand() -> None:
    # two images at 0.9 (one right, one wrong) and one at 0.55 (right): bins 13 and 8
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.45, 0.55]])
    y = np.array([0, 1, 1])
    conf, accuracy, count = reliability(proba, y)
    assert count[13] == 2 and count[8] == 1 and count.sum() == 3
    assert accuracy[13] == 0.5 and conf[13] == pytest.approx(0.9)
    # ECE = 2/3 * |0.5 - 0.9| + 1/3 * |1 - 0.55|
    assert expected_calibration_error(proba, y) == pytest.approx(2 / 3 * 0.4 + 1 / 3 * 0.45)


def test_temperature_scaling_cuts_the_calibration_error_of_a_shy_model() -> None:
    proba, y = sampled(0.5)  # the labels are surer than the model says (label smoothing)
    fitted = calibration(proba, y, "test")
    assert fitted["temperature"] < 0.6
    assert fitted["ece_after"] < 0.02 < 0.1 < fitted["ece_before"]
    assert fitted["nll_after"] < fitted["nll_before"]


def test_validation_data_read_all_right_leave_the_temperature_at_1() -> None:
    proba, y = sampled(1.0, n=2000)
    y = proba.argmax(axis=1)  # every image read right: the likelihood falls on towards T = 0
    fitted = calibration(proba, y, "validation")
    assert fitted["temperature"] == 1.0 and "not fitted: 0 of 2000 misread" in fitted["fitted_on"]


@pytest.mark.parametrize("bad", [0, -1.5, "warm", float("nan")])
def test_a_model_file_with_a_temperature_that_is_not_positive_is_refused(bad: object) -> None:
    from numeral.nn.calibration import temperature_of
    from numeral.nn.errors import ModelFileError

    assert temperature_of({}) == 1.0 and temperature_of({"calibration": {"temperature": 2}}) == 2
    with pytest.raises(ModelFileError, match="not a positive number"):
        temperature_of({"calibration": {"temperature": bad}})


def test_a_run_with_validation_data_records_its_temperature_and_readers_use_it(
        tibetan_path: Path, tmp_path: Path) -> None:
    from numeral.predict import Recognizer

    out = tmp_path / "run"
    assert main(["train", "--config", "baseline", "--data", str(tibetan_path), "--epochs", "2",
                 "--set", "hidden=[32]", "--set", "val_fraction=0.1", "--set",
                 "label_smoothing=0.2", "--quiet", "--out", str(out)]) == 0
    recognizer = Recognizer.from_file(out / "model.npz")
    fitted = recognizer.meta["calibration"]
    assert fitted["images"] > 1000 and "validation" in fitted["fitted_on"]
    assert recognizer.temperature == fitted["temperature"] < 1.0  # smoothing made it shy
    evaluation = json.loads((out / "evaluation.json").read_text())["calibration"]
    assert evaluation["test_ece_after"] < evaluation["test_ece_before"]
    images = np.zeros((1, 28, 28), np.uint8)
    images[0, 6:22, 12:16] = 255
    raw = recognizer.model.predict_proba(images.reshape(1, -1).astype(np.float32) / 255)
    np.testing.assert_allclose(recognizer.probabilities(images),
                               tempered(raw, recognizer.temperature), rtol=1e-5)


def test_answers_are_flagged_below_the_minimum_confidence() -> None:
    reading = {"text": "12", "confidence": 0.8, "digits": []}
    assert with_check(reading, 0.9)["check"] and not with_check(reading, 0.5)["check"]
    assert with_check(reading, None) is reading
    assert with_check({"text": "", "confidence": 0.0, "reason": "blank"}, 0.1)["check"]
    one = {"label": 3, "top3": [{"probability": 0.95}]}
    assert not with_check(one, 0.9)["check"] and with_check(one, 0.99)["check"]
    assert "check" not in with_check({"image": "x", "error": "bad"}, 0.9)
    nothing: dict[str, Any] = {"label": None, "class": None, "top3": [], "reason": "blank"}
    assert with_check(nothing, 0.0)["check"]  # nothing read: a person looks, whatever P
    assert with_check({"text": "", "confidence": 0.0, "reason": "blank"}, 0.0)["check"]


def test_the_read_command_flags_numbers_for_a_person_to_check(
        tmp_path: Path, test_images: tuple[np.ndarray, np.ndarray],
        capsys: pytest.CaptureFixture[str]) -> None:
    images, _ = test_images
    photo = tmp_path / "n.png"
    Image.fromarray(255 - np.hstack([images[0], images[1]])).resize((280, 140)).save(photo)
    assert main(["read", str(photo), "--json", "--min-confidence", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["check"] is True
    assert main(["read", str(photo), "--min-confidence", "0"]) == 0
    assert "CHECK" not in capsys.readouterr().out
    out = tmp_path / "r.csv"
    assert main(["read", str(photo), "--out", str(out), "--quiet", "--min-confidence", "1"]) == 0
    assert "1 to check" in capsys.readouterr().out
    assert next(csv.DictReader(out.open()))["check"] == "yes"
    with pytest.raises(SystemExit) as exit_:
        main(["read", str(photo), "--min-confidence", "90"])
    assert exit_.value.code == 2 and "is not a probability" in capsys.readouterr().err


def test_the_predict_command_flags_numerals_for_a_person_to_check(
        tmp_path: Path, test_images: tuple[np.ndarray, np.ndarray],
        capsys: pytest.CaptureFixture[str]) -> None:
    images, _ = test_images
    Image.fromarray(255 - images[0]).resize((140, 140)).save(tmp_path / "one.png")
    assert main(["predict", str(tmp_path / "one.png"), "--min-confidence", "1"]) == 0
    assert "CHECK" in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "one.png"), "--json", "--min-confidence", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["check"] is False


def test_an_old_csv_keeps_its_columns_when_a_run_continues_it(
        tmp_path: Path, test_images: tuple[np.ndarray, np.ndarray],
        capsys: pytest.CaptureFixture[str]) -> None:
    images, _ = test_images
    for k in range(2):
        Image.fromarray(255 - images[k]).resize((140, 140)).save(tmp_path / f"{k}.png")
    out = tmp_path / "old.csv"
    old = "image,text,tibetan,confidence,numerals,reason,error\n"
    out.write_text(old + f"{tmp_path / '0.png'},1,,0.9,1,,\n")
    assert main(["read", str(tmp_path / "1.png"), "--out", str(out), "--quiet",
                 "--min-confidence", "0.5"]) == 0
    assert 'old.csv was begun without a "check" column' in capsys.readouterr().err
    rows = list(csv.reader(out.open()))
    assert rows[0] == old.strip().split(",") and len(rows) == 3 and len(rows[2]) == 7
