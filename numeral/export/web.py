"""A draw-and-recognise page that runs the model in the browser: ``numeral export MODEL --web DIR``.

DIR gets four files and needs nothing else, no server code and no network:

==============  ==========================================================================
``index.html``  the page: draw a numeral, see the top 3 as you draw, the 28x28 input
``numeral.js``  numeral's forward pass in about 200 lines of JavaScript (every layer type,
                the input transforms, ensembles), evaluation mode
``reader.js``   whole numbers: the numerals on the canvas found as numeral/read.py finds them
``model.js``    the model: its layers and float32 arrays (base64), class names, a typical
                training image per class
==============  ==========================================================================

Why a forward pass of our own and not onnxruntime-web: the page then weighs the model plus
10 KB instead of the model plus onnxruntime-web's 10+ MB of WebAssembly, opens from a plain
folder (even as file://, where a WebAssembly fetch is refused), and a learner can read the
same forward pass again in a second language. Its probabilities are tested against
``predict_proba`` to 1e-4 (node for every layer type; headless Chromium for the page).

The page prepares the drawing as numeral.data does (ink bounding box, centred square,
Lanczos resampling to 28x28), in JavaScript; the test compares probabilities for the same
28x28 input the page shows.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from numeral.export.onnx import EXPORTED, ExportError
from numeral.nn import Ensemble, Network
from numeral.nn.files import atomic_write
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


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode()


def layer_json(layer: Any) -> dict[str, Any]:
    """One layer as numeral.js reads it; arrays listed in ``arrays`` are base64 float32."""
    def with_arrays(kind: str, **arrays: np.ndarray) -> dict[str, Any]:
        return {"type": kind, "arrays": list(arrays), **{k: b64(v) for k, v in arrays.items()}}

    side = math.isqrt(math.prod(layer.in_shape)) if layer.in_shape else 0
    if isinstance(layer, Gamma):
        return {"type": "gamma", "gamma": layer.gamma}
    if isinstance(layer, Deskew):
        return {"type": "deskew", "side": side}
    if isinstance(layer, OrientationPlanes):
        return {"type": "orientation", "side": side, "out_shape": list(layer.out_shape)}
    if isinstance(layer, Standardize):
        return with_arrays("standardize", mean=layer.mean, scale=layer.scale)
    if isinstance(layer, Dense):
        return with_arrays("dense", W=layer.params[0], b=layer.params[1])
    if isinstance(layer, Conv2D):
        return {**with_arrays("conv", W=layer.params[0], b=layer.params[1]),
                "kernel": layer.kernel, "stride": layer.stride, "pad": layer.pad,
                "out": layer.out_channels}
    if isinstance(layer, MaxPool2D | AvgPool2D):
        return {"type": layer.name, "kernel": layer.kernel, "stride": layer.stride}
    if isinstance(layer, BatchNorm):
        return {**with_arrays("batchnorm", gamma=layer.params[0], beta=layer.params[1],
                              mean=layer.running_mean, var=layer.running_var), "eps": BN_EPS}
    if isinstance(layer, LeakyReLU):
        return {"type": "leaky_relu", "slope": layer.slope}
    if isinstance(layer, GlobalAvgPool | Flatten | Dropout | Sigmoid | Tanh | ReLU | Identity):
        return {"type": layer.name}
    raise ExportError(f"layer {layer.spec()!r} ({type(layer).__name__}) has no form in "
                      f"numeral.js; numeral exports {', '.join(EXPORTED)}")


def model_json(model: Network | Ensemble) -> dict[str, Any]:
    members = model.members
    meta = getattr(model, "meta", None) or members[0].meta
    classes = meta.get("class_names") or [str(i) for i in range(model.n_classes)]
    return {
        "description": repr(model),
        "classes": list(classes),
        "exemplars": meta.get("exemplars", []),
        "test_accuracy": meta.get("test_accuracy"),
        "members": [{"input_shape": list(net.input_shape), "body_shape": list(net.body_shape),
                     "n_input": net.n_input,
                     "layers": [layer_json(layer) for layer in net.layers]}
                    for net in members],
    }


def export_web(model: Network | Ensemble, folder: str | Path) -> Path:
    """Write the static site into ``folder`` (made if needed); return the folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file; give a folder for --web")
    folder.mkdir(parents=True, exist_ok=True)
    text = "globalThis.NUMERAL_MODEL = " + json.dumps(model_json(model)) + ";\n"
    atomic_write(folder / "model.js", lambda fh: fh.write(text.encode()))
    static = resources.files("numeral.export") / "static"
    for name in ("index.html", "numeral.js", "reader.js"):
        with resources.as_file(static / name) as source:
            shutil.copyfile(source, folder / name)
    return folder
