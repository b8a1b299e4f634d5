"""A network's inputs as one object (``net.inputs``) and every network as one layer list.

Issue #25: the input transforms (gamma, deskew, orientation planes) sit in an
:class:`~numeral.nn.inputs.Inputs` in front of the layers; the MLP keywords and model files of
formats 1-3 become layer lists before anything is built.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from numeral.nn import Ensemble, InputError, Network, load_model, save_model
from numeral.nn.files import HEADER_KEY, read_model_file
from numeral.nn.inputs import Inputs, deskew, orientation_planes
from numeral.nn.layers import LAYERS, Layer, describe, layer_arguments, parse_layer
from numeral.nn.layers.transforms import Deskew, Gamma, OrientationPlanes
from numeral.nn.network import mlp_layers, upgrade_description

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
OLD_FORMATS = ["format1-plain", "format1-standardised", "format1-float64",
               "format2-gamma-deskew", "format3-orientation", "format3-ensemble"]


def images(n: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 784), dtype=np.float32)


def randomised(net: Network, seed: int) -> Network:
    net.flat[...] = np.random.default_rng(seed).normal(0, 0.3, net.flat.size)
    return net


# ------------------------------------------------------------------ the object
def test_inputs_map_raw_images_to_distorted_images_to_features() -> None:
    X = images()
    inputs = Inputs([Gamma(0.5), Deskew(), OrientationPlanes()], (784,))
    assert inputs.shape == (4, 14, 14) and inputs.size == 784
    assert inputs.specs == ("gamma 0.5", "deskew", "orientation")
    assert (inputs.input_transform, inputs.gamma) == ("orientation", 0.5)
    straightened = inputs.images(X)  # what training distorts: gamma, then deskew
    np.testing.assert_allclose(straightened, deskew(np.sqrt(X)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(inputs.features(straightened),
                                  orientation_planes(straightened))
    np.testing.assert_array_equal(inputs(X), inputs.features(inputs.images(X)))
    plain = Inputs([], (1, 28, 28))
    assert plain.shape == (1, 28, 28) and plain.input_transform == "none" and plain.gamma == 1
    np.testing.assert_array_equal(plain(X), X)
    with pytest.raises(InputError, match=r"expected \(n, 784\)"):
        plain.images(X[:, :100])
    with pytest.raises(InputError, match=r"gamma 0\.5 is an input transform: it goes first"):
        Inputs([OrientationPlanes(), Gamma(0.5)], (784,))


def test_a_network_holds_its_transforms_in_front_of_its_layers() -> None:
    net = Network.from_layers(["gamma 0.3", "deskew", "conv 4 3", "relu", "flatten", "dense 10"],
                              (1, 28, 28))
    assert net.inputs.specs == ("gamma 0.3", "deskew")
    assert [layer.spec() for layer in net.body] == ["conv 4 3", "relu", "flatten", "dense 10"]
    assert net.layers == [*net.inputs.transforms, *net.body]  # the list as it is written
    assert net.architecture == "gamma 0.3, deskew, conv 4 3, relu, flatten, dense 10"
    assert net.inputs.shape == (1, 28, 28) and net.input_size == 784
    X = images()
    features = net.inputs.prepare(X)
    np.testing.assert_array_equal(features.values, net.inputs(X))
    np.testing.assert_array_equal(net.predict_proba(X), net.predict_proba(features))
    other = Network.from_layers(["gamma 0.5", "deskew", "conv 4 3", "relu", "flatten",
                                 "dense 10"], (1, 28, 28))
    with pytest.raises(InputError, match=r"made by inputs of gamma 0\.3, deskew from 784 "
                       r"values; this network's inputs are gamma 0\.5, deskew from 784: pass"):
        other.predict(features)  # another network's features are not its own
    with pytest.raises(InputError, match=r"expected \(n, 784\)"):
        net.predict(features._replace(values=X[:, :700]))
    with pytest.warns(DeprecationWarning, match=r"prepared=True is deprecated"):
        legacy = net.predict_proba(net.inputs(X), prepared=True)
    np.testing.assert_array_equal(legacy, net.predict_proba(X))
    assert not hasattr(Layer, "stage")  # the layer protocol knows nothing of inputs
    with pytest.raises(InputError, match="is an input transform: it goes first"):
        Network.from_layers(["dense 8", "gamma 0.5", "dense 3"], (784,))


def test_the_signature_changes_with_every_setting_of_the_inputs() -> None:
    def signature(layers: list[str], shape: tuple[int, ...] = (784,),
                  dtype: str = "float32") -> object:
        return Network.from_layers([*layers, "flatten", "dense 3"], shape,
                                   dtype=dtype).inputs.signature

    base = signature(["gamma 0.5", "deskew"])
    assert signature(["gamma 0.5", "deskew"]) == base  # equal settings read X alike
    assert Network([784, 8, 3], input_gamma=0.5, input_transform="deskew").inputs.signature \
        == base  # however the network was written
    for other in (signature(["gamma 0.4", "deskew"]), signature(["gamma 0.5"]),
                  signature(["deskew"]), signature(["gamma 0.5", "orientation"]),
                  signature(["gamma 0.5", "deskew"], dtype="float64"),
                  signature(["gamma 0.500001", "deskew"])):
        assert other != base, other
    assert signature([], (144,)) != signature([], (784,))  # the width of X is part of it
    # a flat MLP and a CNN whose transforms turn X into the same numbers share them
    assert signature(["gamma 0.5", "deskew"], (1, 28, 28)) == base


def test_an_ensemble_transforms_x_once_per_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    call = Inputs.__call__

    def counted(self: Inputs, X: np.ndarray) -> np.ndarray:
        calls.append(self.specs)
        return call(self, X)

    monkeypatch.setattr(Inputs, "__call__", counted)
    members = [randomised(Network([784, 8, 3], input_gamma=0.5, seed=i), i) for i in range(3)]
    members.append(randomised(Network([784, 8, 3], input_transform="deskew"), 9))
    model = Ensemble(members)
    X = images()
    got = model.predict_proba(X)
    assert sorted(calls) == [("deskew",), ("gamma 0.5",)]
    monkeypatch.setattr(Inputs, "__call__", call)
    want = np.mean([net.predict_proba(X) for net in members], axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_the_inputs_are_saved_with_the_model(tmp_path: Path) -> None:
    X = images()
    nets = [randomised(Network([784, 8, 3], input_gamma=0.123456789, input_transform="deskew"),
                       1),
            randomised(Network([784, 8, 3], input_transform="orientation"), 2),
            randomised(Network.from_layers(["gamma 0.3", "orientation", "conv 4 3", "relu",
                                            "flatten", "dense 3"], (1, 28, 28)), 3)]
    nets[1].set_standardization(np.full(784, 0.1), np.full(784, 0.5))
    for i, net in enumerate(nets):
        path = tmp_path / f"net{i}.npz"
        net.save(str(path))
        back = load_model(str(path))
        assert isinstance(back, Network)
        assert back.inputs.specs == net.inputs.specs and back.inputs.shape == net.inputs.shape
        assert back.inputs.signature == net.inputs.signature
        assert back.inputs.gamma == net.inputs.gamma  # exactly: the layer string is exact
        np.testing.assert_array_equal(back.inputs(X), net.inputs(X))
        np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    assert parse_layer(Gamma(0.123456789).spec()).gamma == 0.123456789  # type: ignore[attr-defined]
    assert Gamma(0.3).spec() == "gamma 0.3" and Gamma(2).spec() == "gamma 2"


def test_the_transforms_describe_themselves_for_the_exporters() -> None:
    net = Network.from_layers(["gamma 0.5", "deskew", "orientation", "flatten", "dense 3"],
                              (1, 28, 28))
    assert [describe(t) for t in net.inputs.transforms] == [
        {"type": "gamma", "gamma": 0.5, "arrays": {}},
        {"type": "deskew", "side": 28, "arrays": {}},
        {"type": "orientation", "side": 28, "out_shape": [4, 14, 14], "arrays": {}}]
    assert [layer_arguments(LAYERS[name]) for name in ("gamma", "deskew", "orientation")] == [
        (("gamma",), ()), ((), ()), ((), ())]


# ------------------------------------------------------------- one description
def test_the_mlp_keywords_are_a_shorthand_for_a_layer_list() -> None:
    shorthand = Network([784, 32, 16, 10], activation=["tanh", "relu"], dropout=0.2,
                        input_transform="orientation", input_gamma=0.5, seed=4)
    written = ["gamma 0.5", "orientation", "flatten", "dense 32", "tanh", "dropout 0.2",
               "dense 16", "relu", "dropout 0.2", "dense 10"]
    assert [layer.spec() for layer in mlp_layers([784, 32, 16, 10], ["tanh", "relu"], 0.2,
                                                 "orientation", 0.5)] == written
    longhand = Network.from_layers(written, (784,), seed=4)
    assert shorthand.architecture == longhand.architecture == ", ".join(written)
    np.testing.assert_array_equal(shorthand.flat, longhand.flat)  # the same build, bit for bit
    assert shorthand.describe()[0] == longhand.describe()[0]
    assert shorthand.sizes == [784, 32, 16, 10] and shorthand.hidden_layers == [4, 7]


@pytest.mark.parametrize("name", OLD_FORMATS)
def test_files_of_formats_1_to_3_become_layer_lists(name: str, tmp_path: Path) -> None:
    """upgrade_description turns each old network into the newest description; built from
    it, and saved and read again in the newest format, it predicts exactly as before."""
    path = FIXTURES / f"{name}.npz"
    header, nets = read_model_file(path)
    assert header["version"] < 4
    model = load_model(str(path))
    X = images(18, seed=5)
    for (desc, arrays), net in zip(nets, model.members, strict=True):
        assert "layers" not in desc
        upgraded, new_arrays = upgrade_description(desc, arrays)
        assert upgraded["layers"] == [layer.spec() for layer in net.layers]
        assert upgraded["input_shape"] == [784] and not {"sizes", "activations"} & set(upgraded)
        assert upgrade_description(upgraded, new_arrays) == (upgraded, new_arrays)
        if desc.get("standardized"):
            at = upgraded["layers"].index("standardize")
            assert at == len(net.inputs.transforms)
            np.testing.assert_array_equal(new_arrays[f"state{at}.mean"].reshape(-1),
                                          arrays["input_mean"])
        rebuilt = Network.from_description(upgraded, new_arrays)
        np.testing.assert_array_equal(rebuilt.predict_proba(X), net.predict_proba(X))
    save_model(model, tmp_path / "new.npz")
    with zipfile.ZipFile(tmp_path / "new.npz") as z:
        assert json.loads(np.load(z.open(f"{HEADER_KEY}.npy")).item())["version"] == 4
    again = load_model(tmp_path / "new.npz")
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


# ------------------------------------------------------------- the old names
def test_the_old_names_still_work_and_say_what_replaces_them() -> None:
    net = Network([784, 8, 3], input_transform="orientation", input_gamma=0.5)
    X = images()
    old_and_new = [
        (lambda: net.n_input, len(net.inputs.transforms), "len\\(net.inputs.transforms\\)"),
        (lambda: net.n_inputs, net.input_size, "input_size"),
        (lambda: net.body_shape, net.inputs.shape, "net.inputs.shape"),
        (lambda: net.input_signature, net.inputs.signature, "net.inputs.signature"),
        (lambda: net.hidden, net.hidden_layers, "hidden_layers"),
        (lambda: net.transforms_inputs, True, "bool\\(net.inputs.transforms\\)"),
    ]
    for old, new, says in old_and_new:
        with pytest.warns(DeprecationWarning, match=says):
            assert old() == new
    for call, want in ((lambda: net.prepare(X), net.inputs(X)),
                       (lambda: net.prepare_images(X), net.inputs.images(X)),
                       (lambda: net.features(net.inputs.images(X)), net.inputs(X))):
        with pytest.warns(DeprecationWarning, match="net.inputs"):
            np.testing.assert_array_equal(call(), want)
    with pytest.warns(DeprecationWarning):
        assert net.n_input == 2  # gamma, orientation (flatten is a layer)
