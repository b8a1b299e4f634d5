"""Training runs end to end: configs, the run directory, report, resume, CLI, Classifier."""

from __future__ import annotations

import csv
import importlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import numeral
from numeral.cli import main
from numeral.data import Dataset
from numeral.errors import ConfigError, InputError
from numeral.nn import Network
from numeral.nn.init import identical_units
from numeral.nn.inputs import Features
from numeral.train.config import load_config, presets
from numeral.train.experiment import DataSource, run_experiment
from numeral.train.watch import EpochCallback

FAST = ["--epochs", "4", "--set", "hidden=[64]", "--set", "batch_size=256", "--quiet"]


def test_every_preset_loads_and_validates() -> None:
    names = presets()
    assert {"seed", "seed-xavier", "latent2d", "best", "baseline", "regularization"} <= set(names)
    for name in names:
        load_config(name)
    seed = load_config("seed")
    assert (seed.hidden, seed.activation, seed.init) == ([320, 160], "sigmoid", "zeros")
    assert (seed.batch_size, seed.shuffle, seed.reduction) == (100, False, "sum")
    assert (seed.optimizer, seed.lr, seed.weight_decay) == ("sgd", 0.001, 0.1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["colour=1"], "unknown config key 'colour'"),
        (["lr='fast'"], "'lr'.*must be float"),
        (["l2=-0.1"], "'l2'.*must be >= 0"),
        (["hidden=[64, 0]"], "'hidden'.*width >= 1"),
        (["activation='swish'"], "'activation'.*must be one of"),
        (["input_transform=['none', 'blur']"], "'input_transform'.*must be one of"),
        (["input_gamma=0"], "'input_gamma'.*must be in"),
        (["early_stopping=3"], "needs val_fraction"),
        (["train_metrics_sample=-1"], "'train_metrics_sample'.*must be >= 0"),
        (["augment_until=0"], "'augment_until'.*must be in \\(0, 1\\]"),
        (["epochs"], "expected key=value"),
        (["latent_layer=2"], "'latent_layer'.*must index one of the 2 hidden layers"),
        (['layers=["conv 8 30", "flatten", "dense 10"]', "dropout=0"],  # before data loads
         "'layers'.*conv 8 30 does not fit in a 28x28 input.*on \\(1, 28, 28\\) inputs"),
        (['layers=["conv 8 3", "maxpool 2", "conv 8 9"]', "input_shape=[1, 16, 16]",
          "dropout=0"],
         "'layers'.*does not fit"),
        (["members=[{seed=1}]"], "'members'.*member 1 sets 'seed'.*set it outside"),
        (["members=[{}, {layers=['conv 8 30', 'flatten', 'dense 10']}]"],
         "'dropout' .preset baseline, member 2.: is a layer"),
        (["dropout=0", "members=[{}, {layers=['conv 8 30', 'flatten', 'dense 10']}]"],
         "'layers' .preset baseline, member 2.: conv 8 30 does not fit"),
        (["members=[{epochs=0}]"], "'epochs' .preset baseline, member 1.: must be >= 1"),
    ],
)
def test_bad_configs_are_rejected_naming_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("baseline", overrides)


def test_a_bad_config_stops_the_command_before_any_work(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    assert main(["train", "--config", "baseline", "--set", "l1=-1", "--out",
                 str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("numeral: error: config key 'l1'") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tibetan_path: Path) -> Path:
    out = tmp_path_factory.mktemp("runs") / "baseline"
    assert main(["train", "--config", "baseline", "--data", str(tibetan_path), *FAST,
                 "--out", str(out)]) == 0
    return out


def test_train_writes_the_whole_run_directory(run_dir: Path) -> None:
    for name in ("model.npz", "config.toml", "metrics.csv", "report.html", "evaluation.json"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "checkpoint.npz").exists()
    with open(run_dir / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:6] == ["epoch", "train_loss", "train_error", "test_loss",
                                 "test_error", "seconds"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["test_error"]) < 0.12  # 4 epochs of a small net: > 88 % already
    config = load_config(str(run_dir / "config.toml"))
    assert config.hidden == [64] and config.epochs == 4
    with np.load(run_dir / "results.npz") as results:
        assert results["snap.latent_layer"].tolist() == [0, 64]  # 64 units: PCA to 2-D
        assert results["snap.latent_4"].shape == (len(results["train_y"]), 2)
    figures = {p.name for p in (run_dir / "figures").glob("*.png")}
    assert {"learning_curves.png", "latent_features.png", "activations.png",
            "confusion_matrix.png", "misclassified.png", "first_layer_weights.png"} <= figures


def test_the_report_animates_every_recorded_epoch(run_dir: Path) -> None:
    from PIL import Image

    for name in ("latent_features.gif", "activations.gif"):  # epochs 1-4: four frames
        with Image.open(run_dir / "figures" / name) as gif:
            assert getattr(gif, "n_frames", 1) == 4, name
            first = np.asarray(gif.convert("L"))
            gif.seek(3)
            assert np.abs(np.asarray(gif.convert("L")).astype(int) - first).mean() > 0.5
    html = (run_dir / "report.html").read_text()
    assert html.count('src="data:image/gif;base64,') == 2
    with Image.open(run_dir / "figures" / "latent_features.png") as still:
        assert 3 * 330 < still.width < 4 * 330  # three panels (first, middle, last), not four


def test_the_report_is_self_contained(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched online
    assert "test accuracy" in html and "stratified random" in html
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").read_text().count("data:image/png;base64,") >= 6


def test_load_model_reaches_the_reported_accuracy(run_dir: Path, tibetan: Dataset) -> None:
    from numeral.data import split

    model = numeral.load_model(str(run_dir / "model.npz"))
    _, test = split(tibetan.y, tibetan.groups, "random", 0.2, 0)
    accuracy = float(np.mean(model.predict_proba(tibetan.X[test]).argmax(1) == tibetan.y[test]))
    reported = json.loads((run_dir / "evaluation.json").read_text())["accuracy"]
    assert accuracy == pytest.approx(reported, abs=1e-9)


def test_evaluate_command(run_dir: Path, tibetan_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(run_dir / "model.npz"), "--data", str(tibetan_path),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 3552 and result["accuracy"] > 0.88  # 20 % of each class, rounded
    assert len(result["per_class"]) == 10 and np.array(result["confusion_matrix"]).sum() == 3552
    assert all(m["name"].endswith(".jpg") for m in result["misclassified"])
    assert main(["evaluate", str(run_dir / "model.npz"), "--data", str(tibetan_path)]) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "precision" in text and "misclassified" in text


def test_predict_command_any_size_and_dark_on_light(run_dir: Path, tibetan_path: Path,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with zipfile.ZipFile(tibetan_path) as zf:
        raw = zf.read("TibetanMnist/7_3_12.jpg")
    (tmp_path / "seven.jpg").write_bytes(raw)
    grey = np.asarray(Image.open(io.BytesIO(raw)).convert("L"))
    Image.fromarray(255 - grey).convert("RGB").resize((123, 123)).save(tmp_path / "paper.png")
    assert main(["predict", str(run_dir / "model.npz"), str(tmp_path / "seven.jpg"),
                 str(tmp_path / "paper.png"), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in results] == [7, 7]
    assert len(results[0]["top3"]) == 3 and sum(results[0]["probabilities"]) == pytest.approx(1)
    assert main(["predict", str(run_dir / "model.npz"), str(tmp_path), "--json"]) == 0
    assert [r["label"] for r in json.loads(capsys.readouterr().out)] == [7, 7]  # a folder
    assert main(["predict", str(run_dir / "model.npz"), str(tmp_path / "missing.png")]) == 2
    assert "missing.png" in capsys.readouterr().err


def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(tibetan_path: Path,
                                                                  tmp_path: Path) -> None:
    config = load_config("baseline", ["epochs=3", "hidden=[32]", "batch_size=512",
                                      "dropout=0.2"])
    source = DataSource(str(tibetan_path))
    run_experiment(config, source, tmp_path / "whole", progress=False, write_report=False)

    def interrupt(row: dict[str, float]) -> None:
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, source, tmp_path / "cut", progress=False,
                       observers=[EpochCallback(interrupt)], write_report=False)
    assert (tmp_path / "cut" / "checkpoint.npz").is_file()
    assert not (tmp_path / "cut" / "model.npz").exists()
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    whole = Network.load(str(tmp_path / "whole" / "model.npz"))
    resumed = Network.load(str(tmp_path / "cut" / "model.npz"))
    assert np.array_equal(whole.flat, resumed.flat)
    with open(tmp_path / "cut" / "metrics.csv") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["1", "2", "3"]


def test_seed_preset_shows_the_symmetry_problem(tibetan_path: Path, tmp_path: Path) -> None:
    assert main(["train", "--config", "seed", "--data", str(tibetan_path), "--epochs", "1",
                 "--quiet", "--out", str(tmp_path / "seed")]) == 0
    net = Network.load(str(tmp_path / "seed" / "model.npz"))
    assert identical_units(net.weights[0]) and identical_units(net.weights[1])
    html = (tmp_path / "seed" / "report.html").read_text()
    assert html.count("have the same incoming weights, up to rounding") == 2
    assert "a random initialisation" in html


def test_the_report_of_an_orientation_network_shows_its_planes(tibetan_path: Path,
                                                                tmp_path: Path) -> None:
    """The weights figure shows the four planes as quadrants, not as one 28x28 image, and a
    figure shows what the first layer reads."""
    from numeral.viz.figures import plane_mosaic

    planes = np.arange(4 * 9).reshape(4, 3, 3)  # planes 0..3, 3x3 cells each
    mosaic = plane_mosaic(planes.reshape(1, 36), gap=1)[0]
    for quadrant, (top, left) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        np.testing.assert_array_equal(mosaic[top : top + 3, left : left + 3], planes[quadrant])
    assert np.isnan(mosaic[3]).all() and np.isnan(mosaic[:, 3]).all()  # the blank gap
    assert main(["train", "--config", "baseline", "--data", str(tibetan_path), "--epochs", "1",
                 "--set", "hidden=[24]", "--set", 'input_transform="orientation"', "--quiet",
                 "--out", str(tmp_path / "edges")]) == 0
    html = (tmp_path / "edges" / "report.html").read_text()
    assert "What the first layer reads" in html and "quadrants (0° top left" in html
    assert (tmp_path / "edges" / "figures" / "orientation.png").is_file()


def test_a_study_trains_every_variant_and_compares_them(tibetan_path: Path,
                                                        tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text('hidden = [24]\nepochs = 1\nbatch_size = 512\n'
                     '[study.none]\n[study.l1]\nl1 = 1e-3\n[study.l2]\nl2 = 1e-2\n')
    assert main(["train", "--config", str(study), "--data", str(tibetan_path), "--quiet",
                 "--out", str(tmp_path / "s")]) == 0
    for variant in ("none", "l1", "l2"):
        assert (tmp_path / "s" / variant / "model.npz").is_file()
    html = (tmp_path / "s" / "report.html").read_text()
    assert "Regularisation against" in html and html.count("<tr>") >= 4
    assert main(["compare", str(tmp_path / "s" / "none"), str(tmp_path / "s" / "l2"),
                 "--out", str(tmp_path / "cmp")]) == 0
    assert (tmp_path / "cmp" / "report.html").is_file()


def test_classifier_estimator(tibetan: Dataset) -> None:
    pick = np.random.default_rng(0).permutation(len(tibetan.y))
    train, test = pick[:4000], pick[4000:6000]
    clf = numeral.Classifier(hidden=(64,), activation="relu", epochs=3, seed=1)
    assert clf.fit(tibetan.X[train], tibetan.y[train], tibetan.X[test], tibetan.y[test]) is clf
    assert [int(r["epoch"]) for r in clf.history_] == [1, 2, 3]
    assert "val_loss" in clf.history_[0]
    assert clf.score(tibetan.X[test], tibetan.y[test]) > 0.85
    assert clf.predict_proba(tibetan.X[:5]).shape == (5, 10)
    with pytest.raises(TypeError, match="colour"):
        numeral.Classifier(colour="red")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=r"'activation'.*must be one of"):
        numeral.Classifier(activation="swish").fit(tibetan.X[:20], tibetan.y[:20])
    with pytest.raises(Exception, match="not fitted"):
        numeral.Classifier().predict(tibetan.X[:2])
    X = tibetan.X[:20].copy()
    with pytest.raises(InputError, match="y has only one class \\(-1\\)"):
        numeral.Classifier(epochs=1).fit(X, np.full(20, -1))
    X[3, 5] = np.nan
    with pytest.raises(InputError, match=r"NaN or inf \(first at row 3, column 5\)"):
        numeral.Classifier(epochs=1).fit(X, tibetan.y[train[:20]])
    with pytest.raises(InputError, match="X has 100 features, but Classifier is expecting 784"):
        clf.fit(tibetan.X[train[:20]], tibetan.y[train[:20]], tibetan.X[:5, :100],
                tibetan.y[:5])


def test_a_committee_of_plain_and_deskewed_networks(tibetan: Dataset, tmp_path: Path) -> None:
    pick = np.random.default_rng(4).permutation(len(tibetan.y))
    train, test = pick[:3000], pick[3000:4000]
    clf = numeral.Classifier(hidden=(48,), epochs=3, ensemble=2, augment=True,
                             input_transform=["none", "deskew"])
    model = clf.fit(tibetan.X[train], tibetan.y[train]).model_
    assert model is not None
    assert [m.input_transform for m in model.members] == ["none", "deskew"]
    deskewed, X, y = model.members[1], tibetan.X[test], tibetan.y[test]
    on_straightened = np.mean(deskewed.predict(X) == y)
    on_raw = np.mean(deskewed.predict(Features(X, deskewed.inputs.signature)) == y)  # no deskew
    assert on_straightened > 0.8 and on_straightened > on_raw + 0.1  # it learnt deskewed images
    clf.save(str(tmp_path / "m.npz"))
    back = numeral.load_model(str(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.predict_proba(tibetan.X[test]),
                                  clf.predict_proba(tibetan.X[test]))


def test_orientation_networks_are_distorted_as_images_and_learn(
    tibetan: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training distorts the images (after gamma) and only then computes the orientation
    planes; the network learns from them and the saved model computes them itself."""
    from numeral.data.augment import Augmenter

    seen: list[np.ndarray] = []
    distort = Augmenter.__call__

    def spy(self: Augmenter, X: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        seen.append(X.copy())
        return distort(self, X, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Augmenter, "__call__", spy)
    pick = np.random.default_rng(5).permutation(len(tibetan.y))
    train, test = pick[:3000], pick[3000:4000]
    clf = numeral.Classifier(hidden=(48,), epochs=3, augment=True, input_gamma=0.5,
                             input_transform="orientation")
    model = clf.fit(tibetan.X[train], tibetan.y[train]).model_
    assert isinstance(model, Network) and model.input_transform == "orientation"
    images = {row.tobytes() for row in np.sqrt(tibetan.X[train]).astype(np.float32)}
    assert seen and all(row.tobytes() in images for row in seen[0])  # gamma'd images, no planes
    X, y = tibetan.X[test], tibetan.y[test]
    assert np.mean(model.predict(X) == y) > 0.85
    as_planes = Features(X, model.inputs.signature)  # the pixels taken for its planes
    assert np.mean(model.predict(as_planes) == y) < 0.5
    clf.save(str(tmp_path / "m.npz"))
    back = numeral.load_model(str(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


def test_early_stopping_keeps_the_best_epoch(tibetan: Dataset) -> None:
    pick = np.random.default_rng(0).permutation(len(tibetan.y))[:3000]
    clf = numeral.Classifier(hidden=(32,), epochs=40, lr=0.02, early_stopping=2,
                             val_fraction=0.2)
    clf.fit(tibetan.X[pick], tibetan.y[pick])
    assert len(clf.history_) < 40
    losses = [r["val_loss"] for r in clf.history_]
    assert losses.index(min(losses)) == len(losses) - 3  # two epochs without improvement


def test_standardisation_uses_training_statistics_and_travels_with_the_model(
    tibetan: Dataset, tmp_path: Path
) -> None:
    pick = np.random.default_rng(3).permutation(len(tibetan.y))[:2000]
    X, y = tibetan.X[pick], tibetan.y[pick]
    clf = numeral.Classifier(hidden=(16,), epochs=1, standardize=True).fit(X, y)
    net = clf.model_
    assert isinstance(net, Network) and net.input_mean is not None
    np.testing.assert_allclose(net.input_mean, X.mean(axis=0), atol=1e-6)
    clf.save(str(tmp_path / "m.npz"))
    back = numeral.load_model(str(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.predict_proba(X[:50]), clf.predict_proba(X[:50]))


def test_the_validation_split_comes_from_training_data_only(tibetan_path: Path) -> None:
    from numeral.train.experiment import prepare_data

    for how in ("random", "sheet"):
        config = load_config("baseline", [f'split="{how}"', "val_fraction=0.1",
                                          "early_stopping=3"])
        data = prepare_data(config, DataSource(str(tibetan_path)))
        assert data.val is not None and data.test is not None
        train, val, test = (set(d.names.tolist()) for d in (data.train, data.val, data.test))
        assert not train & val and not train & test and not val & test
        assert len(train) + len(val) + len(test) == 17768
        if how == "sheet":  # no writer on two sides
            sheets = [set(d.groups[d.groups >= 0].tolist()) for d in (data.train, data.val,
                                                                      data.test)]
            assert not sheets[0] & sheets[1] and not sheets[0] & sheets[2]


def test_ctrl_c_keeps_a_checkpoint_and_says_how_to_resume(tibetan_path: Path,
                                                          tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    command = [sys.executable, "-m", "numeral.cli", "train", "--config", "baseline", "--data",
               str(tibetan_path), "--epochs", "200", "--set", "hidden=[32]", "--quiet",
               "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.npz").exists():  # written before the first epoch starts
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    time.sleep(1.0)  # somewhere in the middle of training
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert f"numeral train --resume {out}" in err and "Traceback" not in err
    assert (out / "checkpoint.npz").is_file() and not (out / "model.npz").exists()
    assert main(["train", "--resume", str(out), "--epochs", "3", "--quiet"]) == 0
    assert (out / "model.npz").is_file()


def test_learning_curves_on_a_training_sample_leave_the_training_alone(tibetan: Dataset) -> None:
    from numeral.train.loop import Split, Trainer

    pick = np.random.default_rng(5).permutation(len(tibetan.y))[:1500]
    train = Split(tibetan.X[pick], tibetan.y[pick])
    runs = {}
    for size in (0, 300):
        config = load_config("baseline", ["hidden=[32]", "epochs=2", "batch_size=128",
                                          f"train_metrics_sample={size}"])
        runs[size] = Trainer(config, train, progress=False).run()
    whole, sampled = runs[0], runs[300]
    assert isinstance(whole.model, Network) and isinstance(sampled.model, Network)
    np.testing.assert_array_equal(sampled.model.flat, whole.model.flat)  # same weights
    for row, full_row in zip(sampled.history, whole.history, strict=True):
        errors = row["train_error"] * 300
        assert abs(errors - round(errors)) < 1e-9  # scored on 300 images, not 1500
        assert row["train_error"] == pytest.approx(full_row["train_error"], abs=0.05)
        assert row["train_loss"] != full_row["train_loss"]


def test_augment_until_leaves_the_last_epochs_undistorted(tibetan: Dataset) -> None:
    from numeral.train.loop import Split, Trainer

    train = Split(tibetan.X[:300], tibetan.y[:300])
    config = load_config("baseline", ["epochs=8", "augment=true", "augment_until=0.75",
                                      "batch_size=100", "shuffle=false"])
    trainer = Trainer(config, train, progress=False)
    assert [trainer.distorts(config, e) for e in range(1, 9)] == [True] * 6 + [False] * 2
    rng = np.random.default_rng(0)
    clean = np.concatenate([X for X, _ in trainer.batches(config, train.X, rng, rng,
                                                          distort=False)])
    np.testing.assert_array_equal(clean, train.X)  # the images as written
    warped = np.concatenate([X for X, _ in trainer.batches(config, train.X, rng, rng,
                                                           distort=True)])
    assert np.abs(warped - train.X).mean() > 0.01
    plain = config.replace(augment=False)
    assert not any(Trainer(plain, train, progress=False).distorts(plain, e) for e in range(1, 9))


def test_the_deprecated_on_epoch_still_becomes_the_first_observer(tibetan: Dataset) -> None:
    from numeral.train.loop import Split, Trainer

    train = Split(tibetan.X[:100], tibetan.y[:100])
    config = load_config("baseline", ["epochs=1"])
    rows: list[dict[str, float]] = []
    other = EpochCallback(print)
    with pytest.warns(DeprecationWarning, match="EpochCallback"):
        trainer = Trainer(config, train, progress=False, on_epoch=rows.append, observers=[other])
    first, second = trainer.observers
    assert isinstance(first, EpochCallback) and first.fn == rows.append and second is other


def test_a_committee_of_different_networks_trains_resumes_and_saves(
    tibetan: Dataset, tmp_path: Path
) -> None:
    """`members`: an orientation MLP for 2 epochs and a CNN for 1, in one committee."""
    from numeral.nn import Ensemble
    from numeral.train.loop import Split, Trainer

    pick = np.random.default_rng(5).permutation(len(tibetan.y))
    train = Split(tibetan.X[pick[:1500]], tibetan.y[pick[:1500]])
    test = Split(tibetan.X[pick[1500:2000]], tibetan.y[pick[1500:2000]])
    config = load_config("baseline", [
        "hidden=[32]", "epochs=2", "ensemble=2", "batch_size=100", "input_gamma=0.5",
        "members=[{input_transform='orientation'}, {epochs=1, dropout=0, lr=0.003, "
        "layers=['conv 4 3', 'relu', 'maxpool 2', 'flatten', 'dropout 0.3', 'dense 10']}]"])
    whole = Trainer(config, train, test=test, progress=False).run()
    model = whole.model
    assert isinstance(model, Ensemble)
    mlp, cnn = model.members
    assert mlp.input_transform == "orientation" and mlp.sizes == [784, 32, 10]
    assert [type(layer).__name__ for layer in cnn.layers[:2]] == ["Gamma", "Conv2D"]
    assert [(r["member"], r["epoch"]) for r in whole.history] == [(0, 1), (0, 2), (1, 1)]
    assert whole.history[-1]["lr"] <= 0.003 and np.mean(model.predict(test.X) == test.y) > 0.5

    def stop_in_the_cnn(row: dict[str, float]) -> None:
        if row["member"] == 1:
            raise KeyboardInterrupt

    checkpoint = tmp_path / "checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, train, test=test, progress=False, checkpoint=checkpoint,
                observers=[EpochCallback(stop_in_the_cnn)]).run()
    resumed = Trainer(config, train, test=test, progress=False).run(resume=checkpoint).model
    assert isinstance(resumed, Ensemble)
    for a, b in zip(model.members, resumed.members, strict=True):
        assert np.array_equal(a.flat, b.flat)  # bit-identical on one machine
    model.save(str(tmp_path / "m.npz"))
    back = numeral.load_model(str(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.predict_proba(test.X), model.predict_proba(test.X))


def test_a_dropout_layer_drops_in_training(tibetan: Dataset) -> None:
    """A `layers` network's "dropout P" is active in training (it once was not: the loop
    only drew dropout masks for the MLP shorthand's `dropout` key)."""
    from numeral.train.loop import Split, Trainer

    train = Split(tibetan.X[:600], tibetan.y[:600])
    nets = {}
    for p in (0.0, 0.5):
        config = load_config("baseline", [
            "epochs=1", "batch_size=100", "dropout=0",
            f"layers=['dense 32', 'relu', 'dropout {p}', 'dense 10']"])
        nets[p] = Trainer(config, train, progress=False).run().model
    assert isinstance(nets[0.0], Network) and isinstance(nets[0.5], Network)
    assert not np.allclose(nets[0.0].flat, nets[0.5].flat, rtol=1e-3)


def test_the_report_of_a_mixed_committee_shows_each_kinds_first_layer(
    tibetan_path: Path, tmp_path: Path
) -> None:
    config = load_config("baseline", [
        "hidden=[16]", "epochs=1", "ensemble=2", "batch_size=256", "dropout=0",
        "members=[{}, {layers=['conv 4 3', 'relu', 'maxpool 2', 'flatten', 'dense 10']}]"])
    out = tmp_path / "run"
    run_experiment(config, DataSource(str(tibetan_path)), out, progress=False)
    html = (out / "report.html").read_text()
    assert "First-layer weights (network 1 of 2)" in html
    assert "First-layer filters (network 2 of 2)" in html and "Feature maps (network 2" in html
    assert {"first_layer_weights.png", "conv_filters.png", "feature_maps.png"} <= {
        p.name for p in (out / "figures").iterdir()}


def test_a_committee_member_is_one_table_of_overrides_however_it_is_written() -> None:
    from numeral.train.config import committee, member_config

    assert committee(load_config("baseline", ["ensemble=2"])) == [{}, {}]
    transforms = load_config("baseline", ["ensemble=3",
                                          "input_transform=['none', 'orientation']"])
    assert committee(transforms) == [{"input_transform": "none"},
                                     {"input_transform": "orientation"},
                                     {"input_transform": "none"}]
    tables = load_config("baseline", [
        "ensemble=3", "input_transform=['deskew', 'orientation']",
        "members=[{hidden=[16]}, {lr=0.003, input_transform=['none', 'orientation']}]"])
    assert committee(tables) == [{"hidden": [16], "input_transform": "deskew"},
                                 {"lr": 0.003, "input_transform": "orientation"},
                                 {"hidden": [16], "input_transform": "deskew"}]
    assert member_config(tables, 1).lr == 0.003
    assert member_config(tables, 1).input_transform == "orientation"
    plain = load_config("baseline")
    assert member_config(plain, 1) is plain  # nothing to change: the config itself


def test_study_variants_sweep_trials_and_members_are_made_by_one_function(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """config.variant is the one place a config is varied: a [study] variant, a sweep's
    trial and a committee member all go through it, and its error names where it came from."""
    from numeral.train import config as config_module
    from numeral.train.sweep.plan import plan

    studied = load_config("baseline", ["study={wide={hidden=[64]}, slow={lr=0.001}}"])
    one = config_module.variant(studied, {"hidden": [64]}, "here")
    assert one.hidden == [64] and one.study == {} and studied.study  # one run, no study
    with pytest.raises(ConfigError, match=r"key .lr. \(here\): must be > 0"):
        config_module.variant(studied, {"lr": -1.0}, "here")
    base, committee_of_one = load_config("baseline"), load_config("baseline",
                                                                  ["members=[{lr=0.01}]"])
    made: list[str] = []
    real = config_module.variant

    def spy(c: object, overrides: dict[str, object], origin: str = "config") -> object:
        made.append(origin)
        return real(c, overrides, origin)  # type: ignore[arg-type]

    monkeypatch.setattr(config_module, "variant", spy)
    monkeypatch.setattr(importlib.import_module("numeral.train.sweep.plan"), "variant", spy)
    config_module.validate(studied, "my.toml")
    plan(base, grid=[("lr", [0.1, 0.2])])
    assert config_module.member_config(committee_of_one, 0).lr == 0.01
    assert made == ["my.toml, study variant 'wide'", "my.toml, study variant 'slow'",
                    "sweep trial lr=0.1-seed0", "sweep trial lr=0.2-seed0",
                    "config, member 1"]


def test_the_trainer_builds_an_mlp_from_its_layer_list_as_the_mlp_constructor_does() -> None:
    from numeral.train.loop import Split, Trainer

    rng = np.random.default_rng(0)
    train = Split(rng.random((40, 784)).astype(np.float32), np.arange(40) % 10)
    config = load_config("baseline", ["hidden=[24, 12]", "activation=['tanh', 'relu']",
                                      "dropout=0.2", "input_gamma=0.5", "ensemble=2",
                                      "input_transform=['deskew', 'orientation']"])
    trainer = Trainer(config, train, progress=False)
    for member, transform in enumerate(("deskew", "orientation")):
        built = trainer.new_network(member)
        mlp = Network([784, 24, 12, 10], activation=["tanh", "relu"], init=config.init,
                      seed=config.seed + member, dropout=0.2, input_transform=transform,
                      input_gamma=0.5)
        assert built.describe()[0]["layers"] == mlp.describe()[0]["layers"]
        np.testing.assert_array_equal(built.flat, mlp.flat)


def test_numeral_evaluate_is_score_model_and_its_table(run_dir: Path, tibetan_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    from numeral.train.evaluate import evaluation_table, score_model

    model = numeral.load_model(str(run_dir / "model.npz"))
    result = score_model(model, str(tibetan_path))
    assert main(["evaluate", str(run_dir / "model.npz"), "--data", str(tibetan_path)]) == 0
    assert capsys.readouterr().out == evaluation_table(result) + "\n"
    assert result["data"].startswith("random test split of")
    everything = score_model(model, str(tibetan_path), split="all")
    assert everything["n"] > result["n"] and everything["data"].startswith("all of")
