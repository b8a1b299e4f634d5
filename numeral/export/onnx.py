"""A numeral model as one ONNX graph: ``numeral export MODEL --onnx OUT.onnx``.

Input ``pixels``: (n, 784) float32 in [0, 1], exactly the rows ``numeral.data`` produces (n is
dynamic). Output ``probabilities``: (n, classes). Everything the model file applies is in the
graph, in the order numeral applies it:

==================  =========================================================================
gamma               Pow(Max(x, 0), G)
deskew              the image moments as reductions, then GridSample (bilinear, zeros
                    outside the frame, align_corners: pixel centres at integer coordinates;
                    coordinates clipped to [-1, side - 0.001] as numeral's sampler does)
orientation         Sobel kernels as a Conv, the doubled angle by an atan2 made of Atan and
                    Where, each plane's share, 2x2 sums (AveragePool x 4)
standardize         Sub, Mul
dense               Gemm (W as numeral keeps it: (fan_in, fan_out))
conv                Conv (pads P on each side)
maxpool, avgpool    MaxPool, AveragePool (no padding; rows that do not fill a window dropped)
globalavgpool       GlobalAveragePool, Flatten
batchnorm           BatchNormalization with the running statistics (eval mode), eps 1e-5
flatten             Flatten (channel, row, column order, as numeral's)
dropout             nothing: evaluation mode
activations         Sigmoid, Tanh, Relu, LeakyRelu, (identity: nothing)
ensemble            each member's Softmax, then Mean
==================  =========================================================================

Built with the ``onnx`` package's helpers (``pip install 'numeral[export]'``); the tests run
every shipped preset's architecture and the old model formats through onnxruntime and compare
with ``predict_proba`` on real images. A layer numeral does not know how to export is refused
with an error naming it, never skipped.

Each step is built from its description (:mod:`numeral.export.describe`: the layer's own
``export()``) by the builder of its type in :data:`BUILDERS`, or from the ONNX steps the
layer declares in its description (``"onnx"``: see :func:`_steps`); which types export, and
with which hyperparameters, is what the layers declare.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from numeral.export.describe import Description, ExportError, input_descriptions
from numeral.nn import Ensemble, Network
from numeral.nn.calibration import temperature_of
from numeral.nn.layers import LAYERS, Layer, describe

OPSET = 17


def require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ExportError("exporting to ONNX needs the onnx package; install it with: "
                          "pip install 'numeral[export]'") from None
    return onnx


class Graph:
    """Nodes and constants of the graph being built; each ``op`` returns its output's name."""

    def __init__(self) -> None:
        self.onnx = require_onnx()
        self.nodes: list[Any] = []
        self.constants: list[Any] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value: Any, hint: str = "c", dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, hint: str = "", **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def reshape(self, x: str, shape: tuple[int, ...]) -> str:
        return self.op("Reshape", x, self.const([-1, *shape], "shape", np.int64))

    def sum(self, x: str, axes: list[int]) -> str:
        return self.op("ReduceSum", x, self.const(axes, "axes", np.int64), keepdims=0)

    def unsqueeze(self, x: str, axes: list[int]) -> str:
        return self.op("Unsqueeze", x, self.const(axes, "axes", np.int64))


# ------------------------------------------------------------------ input transforms
def atan2(g: Graph, y: str, x: str) -> str:
    """atan2(y, x) from Atan and Where (ONNX has no atan2): atan(y / x), plus or minus pi
    where x < 0, and sign(y) pi / 2 where x = 0."""
    zero = g.const(0.0)
    x_is_zero = g.op("Equal", x, zero)
    safe_x = g.op("Where", x_is_zero, g.const(1.0), x)
    base = g.op("Atan", g.op("Div", y, safe_x))
    shift = g.op("Where", g.op("Less", x, zero),
                 g.op("Where", g.op("Less", y, zero), g.const(-math.pi), g.const(math.pi)),
                 zero)
    on_axis = g.op("Mul", g.op("Sign", y), g.const(math.pi / 2))
    return g.op("Where", x_is_zero, on_axis, g.op("Add", base, shift))


def deskew(g: Graph, x: str, side: int) -> str:
    """numeral.nn.inputs.deskew: the shear x' = x + alpha (y - centre) about the centre of
    mass, alpha = mu11 / max(mu02, 1e-3), sampled bilinearly."""
    img = g.reshape(x, (side, side))
    coord = g.const(np.arange(side))
    row_mass, col_mass = g.sum(img, [2]), g.sum(img, [1])  # (n, side): by y, by x
    mass = g.op("Add", g.sum(row_mass, [1]), g.const(np.finfo(np.float32).tiny))
    cy = g.op("Div", g.op("MatMul", row_mass, coord), mass)
    cx = g.op("Div", g.op("MatMul", col_mass, coord), mass)
    dy = g.op("Sub", coord, g.unsqueeze(cy, [1]))
    dx = g.op("Sub", coord, g.unsqueeze(cx, [1]))
    mu02 = g.op("Div", g.sum(g.op("Mul", row_mass, g.op("Mul", dy, dy)), [1]), mass)
    weighted = g.op("Mul", g.op("Mul", g.unsqueeze(dy, [2]), img), g.unsqueeze(dx, [1]))
    mu11 = g.op("Div", g.sum(weighted, [1, 2]), mass)
    alpha = g.op("Div", mu11, g.op("Max", mu02, g.const(1e-3)))
    centre = (side - 1) / 2.0
    out_y = g.const((np.arange(side) - centre).reshape(1, side, 1))
    out_x = g.const((np.arange(side) - centre).reshape(1, 1, side))
    alpha3, cx3, cy3 = (g.unsqueeze(v, [1, 2]) for v in (alpha, cx, cy))
    src_x = g.op("Add", g.op("Add", out_x, g.op("Mul", alpha3, out_y)), cx3)  # (n, side, side)
    src_y = g.op("Add", g.op("Add", out_y, cy3), g.const(np.zeros((1, 1, side))))
    # as numeral's sampler: coordinates clipped to [-1, side - 0.001] (-1 and side are black)
    low, high = g.const(-1.0), g.const(side - 0.001)
    src_x, src_y = (g.op("Clip", v, low, high) for v in (src_x, src_y))
    scale, one = g.const(2.0 / (side - 1)), g.const(1.0)
    grid = g.op("Concat", *(g.unsqueeze(g.op("Sub", g.op("Mul", v, scale), one), [3])
                            for v in (src_x, src_y)), axis=3)  # (n, side, side, 2): x, y
    out = g.op("GridSample", g.reshape(img, (1, side, side)), grid, align_corners=1,
               mode="bilinear", padding_mode="zeros")
    return g.reshape(out, (side * side,))


def orientation(g: Graph, x: str, side: int) -> str:
    """numeral.nn.inputs.orientation_planes: four planes of 2x2 cells."""
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 4
    kernels = np.stack([sobel_x, sobel_x.T])[:, None]  # (2, 1, 3, 3): gx, gy
    grads = g.op("Conv", g.reshape(x, (1, side, side)), g.const(kernels), pads=[1, 1, 1, 1])
    gx = g.op("Slice", grads, *(g.const(v, "s", np.int64) for v in ([0], [1], [1])))
    gy = g.op("Slice", grads, *(g.const(v, "s", np.int64) for v in ([1], [2], [1])))
    gx2, gy2 = g.op("Mul", gx, gx), g.op("Mul", gy, gy)
    magnitude = g.op("Sqrt", g.op("Add", gx2, gy2))
    doubled = atan2(g, g.op("Mul", gx, gy), g.op("Mul", g.op("Sub", gx2, gy2), g.const(0.5)))
    direction = g.op("Mul", doubled, g.const(2 / math.pi))  # 0, 1, +-2, -1: 0, 45, 90, 135
    planes = []
    for at in (0, 1, 2, -1):
        distance = g.op("Abs", g.op("Sub", direction, g.const(float(at))))
        distance = g.op("Min", distance, g.op("Sub", g.const(4.0), distance))
        share = g.op("Max", g.op("Sub", g.const(1.0), distance), g.const(0.0))
        planes.append(g.op("Mul", share, magnitude))
    stacked = g.op("Concat", *planes, axis=1)  # (n, 4, side, side)
    cells = g.op("Mul", g.op("AveragePool", stacked, kernel_shape=[2, 2], strides=[2, 2]),
                 g.const(4.0))
    return g.reshape(cells, (side * side,))


# ------------------------------------------------------------------ one network
def network_logits(g: Graph, net: Network, x: str) -> str:
    """The logits of ``net`` for the (n, inputs) tensor ``x``."""
    x = g.reshape(export_inputs(g, net, x), net.inputs.shape)
    rank = 1 + len(net.inputs.shape)
    for layer in net.body:
        x, rank = build(g, describe(layer), x, rank, layer)
    return x


def export_inputs(g: Graph, net: Network, x: str) -> str:
    """The input transforms on the flat (n, pixels) rows ``x``; the rows they give."""
    for described in input_descriptions(net):
        x, _ = build(g, described, x, 2)
    return x


def build(g: Graph, described: Description, x: str, rank: int,
          layer: Layer | None = None) -> tuple[str, int]:
    """One step (eval mode) by the builder of its type; its output and that output's rank."""
    builder = BUILDERS.get(described["type"]) or (_steps if "onnx" in described else None)
    if builder is None:
        if layer is None:
            raise ExportError(f"the input transform {described['type']!r} has no ONNX form yet")
        raise ExportError(f"layer {layer.spec()!r} ({type(layer).__name__}) has no ONNX form; "
                          f"numeral exports {', '.join(EXPORTED)}")
    return builder(g, described, x, rank)


Builder = Callable[[Graph, Description, str, int], tuple[str, int]]


def _dense(g: Graph, d: Description, x: str, rank: int) -> tuple[str, int]:
    if rank != 2:
        x = g.op("Flatten", x, axis=1)
    W, b = d["arrays"]["W"], d["arrays"]["b"]  # W as numeral keeps it: (fan_in, fan_out)
    return g.op("Gemm", x, g.const(W, "W"), g.const(b, "b")), 2


def _conv(g: Graph, d: Description, x: str, rank: int) -> tuple[str, int]:
    k, p, s = d["kernel"], d["pad"], d["stride"]
    return g.op("Conv", x, g.const(d["arrays"]["W"], "W"), g.const(d["arrays"]["b"], "b"),
                kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p]), 4


def _pool(op: str) -> Builder:
    def pool(g: Graph, d: Description, x: str, rank: int) -> tuple[str, int]:
        return g.op(op, x, kernel_shape=[d["kernel"]] * 2, strides=[d["stride"]] * 2), 4
    return pool


def _batchnorm(g: Graph, d: Description, x: str, rank: int) -> tuple[str, int]:
    a = d["arrays"]
    return g.op("BatchNormalization", x, g.const(a["gamma"]), g.const(a["beta"]),
                g.const(a["mean"]), g.const(a["var"]), epsilon=d["eps"]), rank


def _standardize(g: Graph, d: Description, x: str, rank: int) -> tuple[str, int]:
    shifted = g.op("Sub", x, g.const(d["arrays"]["mean"]))
    return g.op("Mul", shifted, g.const(d["arrays"]["scale"])), rank


def _elementwise(op: str | None, **attrs: str) -> Builder:
    """An op applied to each value (attributes read from the description), or, for None,
    nothing: the values pass unchanged."""
    def elementwise(g: Graph, d: Description, x: str, rank: int) -> tuple[str, int]:
        if op is None:
            return x, rank
        values: dict[str, Any] = {attr: float(d[key]) for attr, key in attrs.items()}
        return g.op(op, x, **values), rank
    return elementwise


def _gamma(g: Graph, d: Description, x: str, rank: int) -> tuple[str, int]:
    return g.op("Pow", g.op("Max", x, g.const(0.0)), g.const(d["gamma"])), rank


def _steps(g: Graph, d: Description, x: str, rank: int) -> tuple[str, int]:
    """A layer that declares its ONNX form itself, in its ``export()``: ``"onnx"``, a list of
    steps ``[op, input, ...]`` (optionally ending in a dict of attributes), each input ``"x"``
    (the value so far: the layer's input, then each step's output) or the name of one of its
    ``arrays``; the shape's rank is unchanged. E.g. ``[["Mul", "x", "scale"], ["Add", "x",
    "shift"]]``. A new element-wise or affine layer needs no builder here."""
    for op, *args in d["onnx"]:
        attrs = args.pop() if args and isinstance(args[-1], dict) else {}
        inputs = [x if a == "x" else g.const(d["arrays"][a], a) for a in args]
        x = g.op(op, *inputs, **attrs)
    return x, rank


BUILDERS: dict[str, Builder] = {
    "gamma": _gamma,
    "deskew": lambda g, d, x, rank: (deskew(g, x, d["side"]), rank),
    "orientation": lambda g, d, x, rank: (orientation(g, x, d["side"]), rank),
    "standardize": _standardize,
    "dense": _dense,
    "conv": _conv,
    "maxpool": _pool("MaxPool"),
    "avgpool": _pool("AveragePool"),
    "globalavgpool": lambda g, d, x, rank: (
        g.op("Flatten", g.op("GlobalAveragePool", x), axis=1), 2),
    "batchnorm": _batchnorm,
    "flatten": lambda g, d, x, rank: (g.op("Flatten", x, axis=1), 2),
    "dropout": _elementwise(None),  # evaluation mode
    "identity": _elementwise(None),
    "sigmoid": _elementwise("Sigmoid"),
    "tanh": _elementwise("Tanh"),
    "relu": _elementwise("Relu"),
    "leaky_relu": _elementwise("LeakyRelu", alpha="slope"),
}
# the layer types numeral exports: those of numeral.nn.layers that have a builder
EXPORTED = tuple(name for name in LAYERS if name in BUILDERS)


# ------------------------------------------------------------------ the model
def to_onnx(model: Network | Ensemble) -> Any:
    """The model as an ``onnx.ModelProto`` (checked by ``onnx.checker``)."""
    onnx = require_onnx()
    from onnx import TensorProto, helper

    members = model.members
    first = members[0]
    if any(net.input_size != first.input_size for net in members):
        raise ExportError("the ensemble's networks read inputs of different widths")
    g = Graph()
    probabilities = [g.op("Softmax", network_logits(g, net, "pixels"), axis=1)
                     for net in members]
    out = probabilities[0] if len(probabilities) == 1 else g.op("Mean", *probabilities)
    g.nodes.append(helper.make_node("Identity", [out], ["probabilities"]))
    graph = helper.make_graph(
        g.nodes, "numeral",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", first.input_size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                       ["n", first.n_classes])],
        initializer=g.constants)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="numeral")
    meta = getattr(model, "meta", None) or first.meta
    helper.set_model_props(proto, {
        "class_names": json.dumps(meta.get("class_names")
                                  or [str(i) for i in range(first.n_classes)]),
        "preprocessing": json.dumps(meta.get("preprocessing", {})),
        "architecture": repr(model),
        "input": "rows of 784 grey values in [0, 1], numeral white on black, as numeral.data "
                 "prepares an image",
        # the graph gives the network's own probabilities p; calibrated, as numeral serves
        # them, they are p ** (1/T) / sum(p ** (1/T)) (numeral/nn/calibration.py)
        "temperature": str(temperature_of(meta)),
    })
    proto.doc_string = ("numeral model: " + repr(model) + ". " + str(meta.get("licence", "")))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: Network | Ensemble, path: str | Path) -> Path:
    """Write ``model`` as ONNX to ``path`` (atomically)."""
    from numeral.nn.files import atomic_write

    data = to_onnx(model).SerializeToString()
    path = Path(path)
    atomic_write(path, lambda fh: fh.write(data))
    return path
