"""The layered core as users call it: from_layers, layer strings, BatchNorm's state, CNN runs."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

import numeral
from numeral.cli import main
from numeral.errors import ConfigError, InputError
from numeral.nn import Network
from numeral.nn.constraints import CONSTRAINTS
from numeral.nn.layers import (
    ACTIVATIONS,
    ARGUMENTS,
    LAYERS,
    BatchNorm,
    Conv2D,
    Dense,
    MaxPool2D,
    layer_arguments,
    parse_layer,
)
from numeral.train.config import load_config
from numeral.train.watch import EpochCallback

ISSUE_EXAMPLE = ["conv 6 3", "relu", "maxpool 2", "conv 4 3 stride=2 padding=0", "batchnorm",
                 "tanh", "flatten", "dense 12", "sigmoid", "dense 5"]


def test_the_public_api_as_written(tmp_path: Path) -> None:
    net = Network.from_layers(ISSUE_EXAMPLE, input_shape=(1, 12, 12), seed=0, dtype="float64")
    assert [p.shape for p in net.params] == [
        (6, 1, 3, 3), (6,), (4, 6, 3, 3), (4,), (4,), (4,), (16, 12), (12,), (12, 5), (5,)]
    X = np.random.default_rng(0).random((7, 144))
    y = np.array([0, 1, 2, 3, 4, 0, 1])
    loss, grads = net.loss_and_grads(X, y, l1=0.0, l2=0.0)
    assert np.isfinite(loss) and [g.shape for g in grads] == [p.shape for p in net.params]
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    net.save(str(tmp_path / "cnn.npz"))
    back = numeral.load_model(str(tmp_path / "cnn.npz"))
    assert isinstance(back, Network) and back.architecture == net.architecture
    np.testing.assert_array_equal(back.predict_proba(X), proba)
    objects = Network.from_layers([Conv2D(6, 3), "relu", MaxPool2D(2), "flatten", Dense(5)],
                                  input_shape=(1, 12, 12))
    assert objects.architecture == "conv 6 3, relu, maxpool 2, flatten, dense 5"
    assert Network.from_layers(["conv 2 3", "flatten", "dense 3"]).input_shape == (1, 28, 28)
    assert Network.from_layers(["dense 3"]).input_shape == (784,)


def test_l1_and_l2_penalise_dense_and_conv_weights_only() -> None:
    net = Network.from_layers(ISSUE_EXAMPLE, input_shape=(1, 12, 12), dtype="float64")
    decayed = [bool(net.decay_mask[np.shares_memory(net.flat, p) and
                                   slice(*_span(net.flat, p))].all()) for p in net.params]
    assert decayed == [True, False, True, False, False, False, True, False, True, False]


def _span(flat: np.ndarray, part: np.ndarray) -> tuple[int, int]:
    start = (part.__array_interface__["data"][0] - flat.__array_interface__["data"][0])
    start //= flat.itemsize
    return start, start + part.size


def test_batchnorm_keeps_running_statistics_for_evaluation(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    net = Network.from_layers(["dense 6", "batchnorm", "relu", "dense 3"], input_shape=(5,),
                              dtype="float64")
    bn = net.layers[1]
    assert isinstance(bn, BatchNorm)
    X = rng.normal(3.0, 2.0, (200, 5))
    for _ in range(60):  # each training pass moves the running statistics 10 % of the way
        net.loss_and_grads(X, rng.integers(0, 3, 200))
    z = X @ net.params[0] + net.params[1]
    np.testing.assert_allclose(bn.running_mean, z.mean(axis=0), rtol=1e-2)
    np.testing.assert_allclose(bn.running_var, z.var(axis=0, ddof=1), rtol=1e-2)
    net.save(str(tmp_path / "bn.npz"))
    back = numeral.load_model(str(tmp_path / "bn.npz"))
    assert isinstance(back, Network)
    np.testing.assert_array_equal(back.layers[1].state()["running_var"], bn.running_var)
    np.testing.assert_array_equal(back.predict_proba(X[:9]), net.predict_proba(X[:9]))
    one = net.predict_proba(X[:1])  # evaluation: a sample's output does not depend on the batch
    np.testing.assert_allclose(net.predict_proba(X[:50])[:1], one, rtol=1e-12)


@pytest.mark.parametrize(("text", "message"), [
    ("conv 6", "does not fit its form: conv OUT_CHANNELS KERNEL"),
    ("dense", "does not fit its form: dense UNITS"),
    ("pool 2", "unknown layer 'pool'"),
    ("conv 6 3 stride=0", "stride >= 1"),
    ("conv 6 3 padding=half", "padding must be an int >= 0, 'same' or 'valid'"),
    ("dropout 1.5", "dropout must be in"),
    ("maxpool 2 size=3", "does not fit its form"),
])
def test_bad_layer_strings_name_the_layer_and_its_form(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_layer(text)


@pytest.mark.parametrize(("layers", "shape", "message"), [
    (["dense 4", "conv 2 3", "flatten", "dense 3"], (16,), r"reads images"),
    (["conv 2 3", "dense 3"], (1, 8, 8), "put a flatten layer before it"),
    (["conv 2 9", "flatten", "dense 3"], (1, 8, 8), "does not fit in a 8x8 input"),
    (["conv 2 3"], (1, 8, 8), "one score per class"),
    (["dense 4", "deskew", "dense 3"], (784,), "is an input transform: it goes first"),
])
def test_impossible_networks_are_refused_before_training(layers: list[str],
                                                         shape: tuple[int, ...],
                                                         message: str) -> None:
    with pytest.raises(InputError, match=message):
        Network.from_layers(layers, input_shape=shape)


def test_every_layer_declares_the_settings_its_strings_take() -> None:
    """The parser knows every layer type by its class: its ``arguments`` name settings of its
    constructor (the required ones positional), and each layer's string parses back to it."""
    for name, cls in LAYERS.items():
        assert cls.name == name
        positional, keywords = layer_arguments(cls)
        signature = inspect.signature(cls.__init__).parameters
        settings = [k for k in signature if k != "self"]
        required = [k for k in settings if signature[k].default is inspect.Parameter.empty]
        assert set(positional) | set(keywords) == set(settings), name  # every one, no more
        assert required == list(positional)[: len(required)], name
    assert ARGUMENTS["conv"] == (("out_channels", "kernel"), ("stride", "padding"))
    for text in ["dense 7", "conv 4 3 stride=2 padding=same", "maxpool 3 stride=2", "avgpool 2",
                 "dropout 0.25", "dropout 0.123456789", "gamma 0.5", "leaky_relu slope=0.2",
                 *(n for n in LAYERS if not layer_arguments(
                     LAYERS[n])[0])]:
        assert parse_layer(text).spec() == text


def test_the_activation_names_are_the_constraint_tables() -> None:
    assert set(ACTIVATIONS) == set(CONSTRAINTS["activation"].values)  # type: ignore[union-attr]


def test_a_cnn_trains_resumes_exactly_and_reports_its_filters(tibetan_path: Path,
                                                              tmp_path: Path) -> None:
    """The cnn preset's shape, small: train, stop after epoch 1, resume to the same weights
    (BatchNorm's running statistics included), and a report with the conv figures."""
    layers = '["conv 4 3", "batchnorm", "relu", "maxpool 2", "conv 6 3 stride=2", "relu", ' \
             '"flatten", "dense 16", "relu", "dropout 0.1", "dense 10"]'
    common = ["--data", str(tibetan_path), "--epochs", "2", "--set", f"layers={layers}",
              "--set", "train_metrics_sample=500", "--set", "augment=true", "--set", "lr=0.004",
              "--quiet"]
    assert main(["train", "--config", "cnn", *common, "--out", str(tmp_path / "whole")]) == 0
    from numeral.train.config import load_config as _load
    from numeral.train.experiment import DataSource, run_experiment

    config = _load("cnn", ["epochs=2", f"layers={layers}", "train_metrics_sample=500",
                           "augment=true", "lr=0.004"])

    def stop(row: dict[str, float]) -> None:
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, DataSource(str(tibetan_path)), tmp_path / "cut", progress=False,
                       observers=[EpochCallback(stop)], write_report=False)
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    whole = numeral.load_model(str(tmp_path / "whole" / "model.npz"))
    resumed = numeral.load_model(str(tmp_path / "cut" / "model.npz"))
    assert isinstance(whole, Network) and isinstance(resumed, Network)
    np.testing.assert_array_equal(whole.flat, resumed.flat)
    np.testing.assert_array_equal(whole.layers[1].state()["running_mean"],
                                  resumed.layers[1].state()["running_mean"])
    assert np.abs(whole.layers[1].state()["running_mean"]).max() > 0  # it did move
    html = (tmp_path / "whole" / "report.html").read_text()
    assert "First-layer filters" in html and "Feature maps" in html
    accuracy = float((tmp_path / "whole" / "evaluation.json").read_text().split(
        '"accuracy": ')[1].split(",")[0])
    assert accuracy > 0.8


def test_a_last_layer_that_does_not_fit_the_classes_is_refused(
        tibetan_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--config", "cnn", "--data", str(tibetan_path), "--quiet",
                 "--set", 'layers=["flatten", "dense 4"]', "--out", str(tmp_path / "x")]) == 2
    assert "the last layer gives 4 scores, but the data has 10 classes; end with 'dense 10'" \
        in capsys.readouterr().err


def test_layers_in_a_config_are_checked_when_it_loads() -> None:
    with pytest.raises(ConfigError, match=r"'layers'.*unknown layer 'convolution'"):
        load_config("cnn", ['layers=["convolution 3 3", "dense 10"]'])
    with pytest.raises(ConfigError, match=r"'dropout'.*is a layer"):
        load_config("cnn", ["dropout=0.2"])
    assert load_config("cnn").layers[0] == "conv 32 3"
