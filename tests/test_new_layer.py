"""Adding a layer type touches its own file, its test and the JavaScript forward pass only.

This file is that walk-through (docs/architecture.md, "Adding a layer"): ``Scale``, a learned
scale and shift per feature, is written here as it would be in numeral/nn/layers/, and without
one line elsewhere it parses from its string, trains with checked gradients, saves and loads,
and exports to ONNX; numeral.js is the one place left, and the web export says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from numeral.export.web import ExportError, export_web
from numeral.nn import Network, gradcheck, load_model
from numeral.nn.layers import LAYERS, Layer, parse_layer
from numeral.nn.layers.base import Buffers, Shape, out_buffer


class Scale(Layer, register=False):  # registered by the fixture, for this file's tests only
    """``scale``: each feature scaled and shifted by learned values.

    forward     y = x * s + t               x (n, F), s (F,), t (F,)
    backward    dL/ds = sum over rows of g * x
                dL/dt = sum over rows of g
                dL/dx = g * s
    """

    name = "scale"
    param_names = ("s", "t")

    def export(self) -> dict[str, Any]:  # the ONNX form is declared, so no builder is needed
        return {"type": self.name, "arrays": {"s": self.params[0], "t": self.params[1]},
                "onnx": [["Mul", "x", "s"], ["Add", "x", "t"]]}

    def param_shapes(self) -> list[Shape]:
        return [self.in_shape, self.in_shape]

    def init_params(self, rng: np.random.Generator, init: str) -> None:
        self.params[0][...] = 1.0 + rng.normal(scale=0.1, size=self.in_shape)

    def buffers(self, n: int, train: bool) -> Buffers:
        return {"out": out_buffer(self, n)}

    def forward(self, x: np.ndarray, buf: Buffers, train: bool,
                rng: np.random.Generator | None) -> np.ndarray:
        s, t = self.params
        buf["x"] = x
        out = np.multiply(x, s, out=buf["out"])  # y = x * s
        out += t  #                                   + t
        return out

    def backward(self, grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        s = self.params[0]
        gs, gt = self.grads
        np.sum(grad * buf["x"], axis=0, out=gs)  # dL/ds = sum_rows g * x
        np.sum(grad, axis=0, out=gt)  # dL/dt = sum_rows g
        return grad * s if need_dx else None  # dL/dx = g * s


@pytest.fixture(autouse=True)
def scale_registered() -> Iterator[None]:
    """What defining Scale in numeral/nn/layers/ does (Layer.__init_subclass__), undone after."""
    LAYERS["scale"] = Scale
    yield
    del LAYERS["scale"]


LAYER_LIST = ["dense 6", "scale", "tanh", "dense 3"]


def test_the_new_layer_parses_and_its_gradients_are_right() -> None:
    assert isinstance(parse_layer("scale"), Scale) and parse_layer("scale").spec() == "scale"
    net = Network.from_layers(LAYER_LIST, (5,), seed=0, dtype="float64")
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(4, 5)), rng.integers(0, 3, 4)
    result = gradcheck(net, X, y, l2=1e-2)
    assert result.max_error < 1e-7 and len(result.errors) == 6  # W, b, s, t, W, b


def test_a_wrong_backward_is_caught() -> None:
    """The check this file relies on fails when the equation is wrong."""
    net = Network.from_layers(LAYER_LIST, (5,), seed=0, dtype="float64")
    layer = next(la for la in net.layers if isinstance(la, Scale))

    def forgets_s(grad: np.ndarray, buf: Buffers, need_dx: bool) -> np.ndarray | None:
        Scale.backward(layer, grad, buf, need_dx)
        return grad  # dL/dx = g, the factor s forgotten

    layer.backward = forgets_s  # type: ignore[method-assign]
    rng = np.random.default_rng(1)
    assert gradcheck(net, rng.normal(size=(4, 5)), rng.integers(0, 3, 4)).max_error > 1e-3


def test_the_new_layer_saves_loads_and_exports_to_onnx(tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    from numeral.export.onnx import to_onnx

    net = Network.from_layers(LAYER_LIST, (5,), seed=0)
    net.params[2][...] = np.linspace(0.5, 1.5, 6)  # s: not all ones, so Mul matters
    net.params[3][...] = np.linspace(-1, 1, 6)  # t
    X = np.random.default_rng(2).random((7, 5), dtype=np.float32)
    net.save(str(tmp_path / "m.npz"))
    loaded = load_model(str(tmp_path / "m.npz"))
    assert isinstance(loaded, Network) and loaded.architecture == net.architecture
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    session = onnxruntime.InferenceSession(to_onnx(net).SerializeToString())
    got = session.run(None, {session.get_inputs()[0].name: X})[0]
    # float32 through two different engines: a few units of rounding in the last place
    np.testing.assert_allclose(got, net.predict_proba(X), rtol=0, atol=1e-6)


def test_the_javascript_forward_pass_is_the_one_place_left(tmp_path: Path) -> None:
    net = Network.from_layers(LAYER_LIST, (5,), seed=0)
    with pytest.raises(ExportError, match=r"layer 'scale' \(Scale\) has no form in numeral.js"):
        export_web(net, tmp_path / "site")
