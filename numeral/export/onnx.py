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
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from numeral.errors import NumeralError
from numeral.nn import Ensemble, Network
from numeral.nn.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
    Standardize,
)
from numeral.nn.layers.activations import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from numeral.nn.layers.norm import BN_EPS
from numeral.nn.layers.transforms import Deskew, Gamma, OrientationPlanes

OPSET = 17


class ExportError(NumeralError):
    """A model the exporter cannot write faithfully."""


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
    for layer in net.layers[: net.n_input]:
        side = math.isqrt(math.prod(layer.in_shape))
        if isinstance(layer, Gamma):
            x = g.op("Pow", g.op("Max", x, g.const(0.0)), g.const(layer.gamma))
        elif isinstance(layer, Deskew):
            x = deskew(g, x, side)
        elif isinstance(layer, OrientationPlanes):
            x = orientation(g, x, side)
        else:
            raise ExportError(f"the input transform {layer.spec()!r} has no ONNX form yet")
    x = g.reshape(x, net.body_shape)
    rank = 1 + len(net.body_shape)
    for layer in net.body:
        x, rank = body_layer(g, layer, x, rank)
    return x


def body_layer(g: Graph, layer: Any, x: str, rank: int) -> tuple[str, int]:
    """One learning layer (eval mode); returns the output and its rank."""
    if isinstance(layer, Dense):
        if rank != 2:
            x = g.op("Flatten", x, axis=1)
        W, b = layer.params
        return g.op("Gemm", x, g.const(W, "W"), g.const(b, "b")), 2
    if isinstance(layer, Conv2D):
        W, b = layer.params
        k, p, s = layer.kernel, layer.pad, layer.stride
        return g.op("Conv", x, g.const(W, "W"), g.const(b, "b"), kernel_shape=[k, k],
                    strides=[s, s], pads=[p, p, p, p]), 4
    if isinstance(layer, MaxPool2D | AvgPool2D):
        op = "MaxPool" if isinstance(layer, MaxPool2D) else "AveragePool"
        return g.op(op, x, kernel_shape=[layer.kernel] * 2, strides=[layer.stride] * 2), 4
    if isinstance(layer, GlobalAvgPool):
        return g.op("Flatten", g.op("GlobalAveragePool", x), axis=1), 2
    if isinstance(layer, BatchNorm):
        gamma, beta = layer.params
        return g.op("BatchNormalization", x, g.const(gamma), g.const(beta),
                    g.const(layer.running_mean), g.const(layer.running_var),
                    epsilon=BN_EPS), rank
    if isinstance(layer, Standardize):
        shifted = g.op("Sub", x, g.const(layer.mean.reshape(layer.in_shape)))
        return g.op("Mul", shifted, g.const(layer.scale.reshape(layer.in_shape))), rank
    if isinstance(layer, Flatten):
        return g.op("Flatten", x, axis=1), 2
    if isinstance(layer, Dropout | Identity):
        return x, rank
    if isinstance(layer, LeakyReLU):
        return g.op("LeakyRelu", x, alpha=float(layer.slope)), rank
    simple = {Sigmoid: "Sigmoid", Tanh: "Tanh", ReLU: "Relu"}
    for kind, op in simple.items():
        if type(layer) is kind:
            return g.op(op, x), rank
    raise ExportError(f"layer {layer.spec()!r} ({type(layer).__name__}) has no ONNX form; "
                      f"numeral exports {', '.join(EXPORTED)}")


EXPORTED = ("dense", "conv", "maxpool", "avgpool", "globalavgpool", "batchnorm", "flatten",
            "dropout", "standardize", "sigmoid", "tanh", "relu", "leaky_relu", "identity",
            "gamma", "deskew", "orientation")


# ------------------------------------------------------------------ the model
def to_onnx(model: Network | Ensemble) -> Any:
    """The model as an ``onnx.ModelProto`` (checked by ``onnx.checker``)."""
    onnx = require_onnx()
    from onnx import TensorProto, helper

    members = model.members
    first = members[0]
    if any(net.n_inputs != first.n_inputs for net in members):
        raise ExportError("the ensemble's networks read inputs of different widths")
    g = Graph()
    probabilities = [g.op("Softmax", network_logits(g, net, "pixels"), axis=1)
                     for net in members]
    out = probabilities[0] if len(probabilities) == 1 else g.op("Mean", *probabilities)
    g.nodes.append(helper.make_node("Identity", [out], ["probabilities"]))
    graph = helper.make_graph(
        g.nodes, "numeral",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", first.n_inputs])],
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
