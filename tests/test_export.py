"""numeral export: ONNX graphs run by onnxruntime, and the static page's JavaScript forward pass
(in node, and drawn on in headless Chromium), against predict_proba on real images."""

from __future__ import annotations

import functools
import http.server
import importlib
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import numeral
from numeral.cli import main
from numeral.data import Dataset
from numeral.export.describe import input_descriptions
from numeral.export.onnx import BUILDERS, EXPORTED, ExportError, to_onnx
from numeral.export.web import READER_SETTINGS, export_web, javascript_types
from numeral.nn import Ensemble, Network
from numeral.nn.layers import LAYERS, BatchNorm, describe
from numeral.nn.layers.activations import Activation
from numeral.train.config import load_config, presets, with_epochs
from numeral.train.loop import Split, Trainer

FIXTURES = Path(__file__).parent / "fixtures" / "models"
OLD_FORMATS = sorted(p.name for p in FIXTURES.glob("format*.npz"))
NODE = shutil.which("node")
STATIC = Path(numeral.__file__).parent / "export" / "static"


@pytest.fixture(scope="module")
def images(tibetan: Dataset) -> np.ndarray:
    """1,000 real images from across the dataset."""
    return tibetan.X[:: len(tibetan) // 1000][:1000]


def onnx_probabilities(model: Network | Ensemble, X: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(to_onnx(model).SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["probabilities"], {"pixels": X})[0])


def javascript_probabilities(model: Network | Ensemble, X: np.ndarray, folder: Path) -> np.ndarray:
    if NODE is None:
        pytest.skip("node is not installed (the JavaScript forward pass runs in node here)")
    export_web(model, folder)
    (folder / "in.json").write_text(json.dumps(X.tolist()))
    subprocess.run([NODE, str(Path(__file__).parent / "js" / "predict.js"), str(folder),
                    str(folder / "in.json"), str(folder / "out.json")], check=True, timeout=300)
    return np.array(json.loads((folder / "out.json").read_text()))


def trained_briefly(name: str, X: np.ndarray, y: np.ndarray) -> Network | Ensemble:
    """The preset's architecture after one epoch on 2,000 images (weights, BatchNorm's
    running statistics and standardisations away from their initial values)."""
    config = with_epochs(load_config(name, ["study={}"]), 1).replace(batch_size=200)
    return Trainer(config, Split(X[:2000], y[:2000]), n_classes=10, progress=False).run().model


@pytest.fixture(scope="module")
def preset_models(tibetan: Dataset) -> dict[str, Network | Ensemble]:
    spread = np.random.default_rng(0).permutation(len(tibetan))
    return {name: trained_briefly(name, tibetan.X[spread], tibetan.y[spread])
            for name in presets()}


def every_layer_networks() -> list[Network]:
    """Every layer type the core has, with BatchNorm statistics and a standardisation that
    are not the identity."""
    rng = np.random.default_rng(3)
    nets = [
        Network.from_layers(["gamma 0.5", "conv 4 3 padding=same", "batchnorm", "leaky_relu",
                             "avgpool 2", "conv 6 4 stride=2 padding=1", "sigmoid",
                             "maxpool 2 stride=1", "flatten", "dropout 0.3", "dense 12",
                             "batchnorm", "tanh", "dense 10"], (1, 28, 28), seed=1),
        Network.from_layers(["deskew", "orientation", "conv 5 3", "relu", "globalavgpool",
                             "dense 10"], (1, 28, 28), seed=2),
        Network([784, 16, 10], activation="identity", seed=3),
    ]
    nets[2].set_standardization(rng.uniform(0, 0.5, 784), rng.uniform(0.05, 1, 784))
    for net in nets:
        for layer in net.layers:
            if isinstance(layer, BatchNorm):
                layer.running_mean[...] = rng.normal(0, 0.3, layer.running_mean.shape)
                layer.running_var[...] = rng.uniform(0.5, 2, layer.running_var.shape)
    return nets


# ------------------------------------------------------------------ one description
def test_every_layer_type_is_described_once_and_exported_everywhere() -> None:
    """Each type in numeral.nn.layers.LAYERS is in the network of every layer type above (so
    the tests below run it through onnxruntime and node), describes itself (its type, JSON
    hyperparameters, arrays), and has an ONNX builder and a forward pass in numeral.js."""
    nets = every_layer_networks()
    assert {layer.name for net in nets for layer in net.layers} == set(LAYERS)
    steps = set()  # the types that declare their ONNX steps themselves (no builder needed)
    for net in nets:
        for described in [*input_descriptions(net), *map(describe, net.body)]:
            if "onnx" in described:
                steps.add(described["type"])
            arrays = described["arrays"]
            assert described["type"] in LAYERS
            assert all(isinstance(a, np.ndarray) for a in arrays.values()), described["type"]
            assert not set(arrays) & set(described) - {"arrays"}, described["type"]
            json.dumps({k: v for k, v in described.items() if k != "arrays"})
    assert set(LAYERS) <= set(BUILDERS) | steps and tuple(LAYERS) == EXPORTED
    assert set(LAYERS) <= javascript_types()
    if NODE is not None:  # the table the exporter reads is the one the page runs
        script = (f"eval(require('fs').readFileSync({json.dumps(str(STATIC / 'numeral.js'))},"
                  f" 'utf8')); console.log(JSON.stringify(numeral.types))")
        done = subprocess.run([NODE, "-e", script], capture_output=True, text=True, check=True)
        assert set(json.loads(done.stdout)) == javascript_types()


def test_the_pages_reader_takes_its_settings_from_read_py(tmp_path: Path) -> None:
    """reader.js holds no copy of numeral/read.py's settings: the export writes read.py's own
    values into model.js, and reader.js reads them there."""
    reading = importlib.import_module("numeral.read")
    source = (STATIC / "reader.js").read_text()
    assert not re.search(r"\b[A-Z][A-Z_]+ = [0-9.]", source)  # no constants of its own
    used = re.search(r"const \{([A-Z_, ]+)\} = settings;", source)
    assert used is not None and {n.strip() for n in used.group(1).split(",")} == set(
        READER_SETTINGS)
    assert {name: getattr(reading, name) for name in READER_SETTINGS} == READER_SETTINGS
    export_web(numeral.load_model(str(FIXTURES / "format1-plain.npz")), tmp_path)
    line = (tmp_path / "model.js").read_text().splitlines()[-1]
    assert line.startswith("globalThis.NUMERAL_READER = ")
    assert json.loads(line.split(" = ", 1)[1].rstrip(";")) == READER_SETTINGS
    if NODE is not None:
        done = subprocess.run([NODE, str(Path(__file__).parent / "js" / "segment.js"),
                               str(tmp_path)], capture_output=True, text=True, check=True)
        assert json.loads(done.stdout)["settings"] == READER_SETTINGS


# ------------------------------------------------------------------ ONNX
@pytest.mark.parametrize("name", OLD_FORMATS)
def test_old_model_files_export_to_onnx(name: str, images: np.ndarray) -> None:
    model = numeral.load_model(str(FIXTURES / name))
    np.testing.assert_allclose(onnx_probabilities(model, images), model.predict_proba(images),
                               rtol=0, atol=1e-5)


def test_every_presets_architecture_exports_to_onnx(
        preset_models: dict[str, Network | Ensemble], images: np.ndarray) -> None:
    assert {"baseline", "best", "cnn", "seed"} <= set(preset_models)
    for name, model in preset_models.items():
        expected = model.predict_proba(images)
        got = onnx_probabilities(model, images)
        assert np.abs(got - expected).max() < 1e-5, name


def test_every_layer_type_exports_to_onnx(images: np.ndarray) -> None:
    for net in every_layer_networks():
        np.testing.assert_allclose(onnx_probabilities(net, images), net.predict_proba(images),
                                   rtol=0, atol=1e-5, err_msg=repr(net))


def test_the_graph_is_checked_and_says_what_it_holds(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import onnx

    path = tmp_path / "m.onnx"
    assert main(["export", str(FIXTURES / "format3-ensemble.npz"), "--onnx", str(path)]) == 0
    assert "input 'pixels' (n, 784)" in capsys.readouterr().out
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version >= 17
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "n"  # any batch size
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["class_names"]) == [str(i) for i in range(10)]
    assert props["temperature"] == "1.0"  # none fitted: the probabilities as they are


class Swish(Activation, register=False):  # made up here: no layer type of numeral
    name = "swish"

    def f(self, z: np.ndarray, out: np.ndarray) -> None:
        np.multiply(z, 1 / (1 + np.exp(-z)), out=out)


def test_a_layer_without_an_export_is_named(tmp_path: Path) -> None:
    net = Network.from_layers(["dense 8", Swish(), "dense 10"], (784,), seed=0)
    with pytest.raises(ExportError, match=r"layer 'swish' \(Swish\) has no ONNX form"):
        to_onnx(net)
    with pytest.raises(ExportError, match=r"layer 'swish' \(Swish\) has no form in numeral.js"):
        export_web(net, tmp_path / "site")
    assert main(["export", str(FIXTURES / "format1-plain.npz")]) == 2


# ------------------------------------------------------------------ the page's JavaScript
@pytest.mark.parametrize("name", OLD_FORMATS)
def test_old_model_files_run_in_javascript(name: str, images: np.ndarray, tmp_path: Path) -> None:
    model = numeral.load_model(str(FIXTURES / name))
    got = javascript_probabilities(model, images[:200], tmp_path)
    np.testing.assert_allclose(got, model.predict_proba(images[:200]), rtol=0, atol=1e-4)


def test_the_page_gives_the_calibrated_probabilities_the_server_gives(
        images: np.ndarray, tmp_path: Path) -> None:
    from numeral.nn.calibration import tempered
    from numeral.predict import Recognizer

    model = numeral.load_model(str(FIXTURES / "format1-plain.npz"))
    model.members[0].meta["calibration"] = {"temperature": 0.5}
    got = javascript_probabilities(model, images[:50], tmp_path)
    assert Recognizer(model).temperature == 0.5
    expected = tempered(model.predict_proba(images[:50]), 0.5)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert np.abs(got - model.predict_proba(images[:50])).max() > 0.01  # it did change


def test_every_preset_and_layer_type_runs_in_javascript(
        preset_models: dict[str, Network | Ensemble], images: np.ndarray,
        tmp_path: Path) -> None:
    models = [*preset_models.items(), *((repr(n), n) for n in every_layer_networks())]
    for i, (name, model) in enumerate(models):
        few = images[:: 20] if name in ("best", "cnn") else images[:100]  # slow in plain JS
        got = javascript_probabilities(model, few, tmp_path / str(i))
        assert np.abs(got - model.predict_proba(few)).max() < 1e-4, name


# ------------------------------------------------------------------ the page in Chromium
@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Network | Ensemble]]:
    """The exported page of a deskew + orientation network, served as plain files."""
    model = numeral.load_model(str(FIXTURES / "format2-gamma-deskew.npz"))
    assert main(["export", str(FIXTURES / "format2-gamma-deskew.npz"), "--web",
                 str(tmp_path / "site")]) == 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(tmp_path / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html", model
    finally:
        server.shutdown()


def test_drawing_on_the_exported_page_gives_pythons_probabilities(
        site: tuple[str, Network | Ensemble]) -> None:
    from playwright.sync_api import sync_playwright

    from tests.conftest import chromium_path

    url, model = site
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page()
        page.route("http*://**", lambda route: route.continue_()
                   if route.request.url.startswith("http://127.0.0.1") else route.abort())
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        box = page.locator("#pad").bounding_box()
        assert box is not None
        x0, y0 = box["x"], box["y"]
        page.mouse.move(x0 + 90, y0 + 60)  # a stroke down and a stroke across, point by point
        page.mouse.down()
        for step in range(16):
            page.mouse.move(x0 + 90 + 2 * step, y0 + 60 + 10 * step)
        page.mouse.up()
        page.mouse.move(x0 + 60, y0 + 120)
        page.mouse.down()
        for step in range(16):
            page.mouse.move(x0 + 60 + 10 * step, y0 + 120)
        page.mouse.up()
        page.wait_for_function("window.numeralState.timings.updates.length > 3")
        page.wait_for_timeout(200)
        state = page.evaluate("window.numeralState")
        label = page.get_attribute("#label", "data-label")
        browser.close()
    pixels = np.array(state["input"], np.float32).reshape(1, 784) / 255
    assert pixels.max() == 1.0 and 0.05 < (pixels > 0.5).mean() < 0.6  # a numeral, framed
    expected = model.predict_proba(pixels)[0]
    np.testing.assert_allclose(state["probabilities"], expected, rtol=0, atol=1e-4)
    assert label == str(int(np.argmax(expected)))
    ready, updates = state["timings"]["ready"], state["timings"]["updates"]
    print(f"\nfirst prediction ready {ready:.0f} ms after the page started; "
          f"{len(updates)} updates, median {np.median(updates):.2f} ms")
    assert ready < 2000 and np.median(updates) < 50  # generous here; measured: docs/export.md


def test_a_whole_number_on_the_exported_page(site: tuple[str, Network | Ensemble]) -> None:
    from playwright.sync_api import sync_playwright

    from tests.conftest import chromium_path
    from tests.test_serve import draw_ring

    url, model = site
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 800})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        page.click("#mode")
        box = page.locator("#pad").bounding_box()
        assert box is not None and box["width"] > 800
        for centre in (140, 420, 700):
            draw_ring(page, box["x"] + centre, box["y"] + box["height"] / 2)
        page.wait_for_function("window.numeralState.pieces && "
                               "window.numeralState.pieces.length === 3")
        page.wait_for_timeout(300)
        pieces = page.evaluate("window.numeralState.pieces")
        text = page.get_attribute("#number", "data-text")
        browser.close()
    assert [p["box"][0] for p in pieces] == sorted(p["box"][0] for p in pieces)
    inputs = np.array([p["input"] for p in pieces], np.float32) / 255
    np.testing.assert_allclose([p["probabilities"] for p in pieces], model.predict_proba(inputs),
                               rtol=0, atol=1e-4)
    assert text is not None and len(text) == 3


def test_the_pages_reader_splits_touching_numerals(tmp_path: Path) -> None:
    if NODE is None:
        pytest.skip("node is not installed")
    export_web(numeral.load_model(str(FIXTURES / "format1-plain.npz")), tmp_path)
    done = subprocess.run([NODE, str(Path(__file__).parent / "js" / "segment.js"),
                           str(tmp_path)], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert len(found["apart"]) == 2 and len(found["touching"]) == 2  # one component, cut
    (a0, a1), (b0, b1) = found["touching"]
    assert a0 < a1 <= b0 < b1 and 125 <= a1 <= 155  # near the thin middle
    assert found["scored"][0][1] > found["touching"][0][1]  # the score chose another cut
    assert "no ink" in found["blank"]["reason"] and "2 lines" in found["lines"]["reason"]
    assert found["stroke"] == [[21, 100]]  # a stroke above a numeral is part of it, not a line
    # a broken ring: two pieces, joined when the model reads them surer as one (never two
    # numerals apart, which together are wider than MERGE_WIDTH numerals)
    assert found["broken"] == [[61, 98], [103, 140]] and found["joined"] == [[61, 140]]
    assert found["apartScored"] == found["apart"]
    assert found["evenlySure"] == found["broken"]  # as sure together as apart: kept apart
