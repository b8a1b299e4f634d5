"""A draw-and-recognise page that runs the model in the browser: ``numeral export MODEL --web DIR``.

DIR gets four files and needs nothing else, no server code and no network:

==============  ==========================================================================
``index.html``  the page: draw a numeral, see the top 3 as you draw, the 28x28 input
``numeral.js``  numeral's forward pass in about 200 lines of JavaScript (every layer type,
                the input transforms, ensembles), evaluation mode
``reader.js``   whole numbers: the numerals on the canvas found as numeral/read.py finds them
``model.js``    the model: its input transforms and layers as they describe themselves
                (``export()``; arrays as base64 float32), class names, a typical training
                image per class; and the reader's settings, read from numeral/read.py
==============  ==========================================================================

Nothing here knows a layer type: each step is written as its description
(:mod:`numeral.export.describe`), and numeral.js runs it by the forward pass of its type
(``FORWARD`` there). A type numeral.js has no forward pass for is refused when exporting.

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
import re
import shutil
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from numeral.export.describe import Description, ExportError, input_descriptions
from numeral.export.onnx import EXPORTED
from numeral.nn import Ensemble, Network
from numeral.nn.calibration import temperature_of
from numeral.nn.files import atomic_write
from numeral.nn.layers import Layer, describe
from numeral.read import (
    ASPECT,
    CUT_TRIES,
    LINE_PART,
    MAX_PIECES,
    MERGE_MOST,
    MERGE_WIDTH,
    SPECK,
)

# numeral/read.py's settings that reader.js uses, under their names there
READER_SETTINGS = {"SPECK": SPECK, "ASPECT": ASPECT, "MAX_PIECES": MAX_PIECES,
                   "CUT_TRIES": CUT_TRIES, "LINE_PART": LINE_PART,
                   "MERGE_WIDTH": MERGE_WIDTH, "MERGE_MOST": MERGE_MOST}
STATIC = ("index.html", "numeral.js", "reader.js")


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode()


@cache
def javascript_types() -> frozenset[str]:
    """The types numeral.js has a forward pass for: the keys of its ``FORWARD`` table."""
    text = (resources.files("numeral.export") / "static" / "numeral.js").read_text()
    table = re.search(r"^  const FORWARD = \{\n(.*?)^  \};", text, re.M | re.S)
    if table is None:
        raise ExportError("numeral.js has no FORWARD table")
    return frozenset(re.findall(r"^    (\w+): ", table.group(1), re.M))


def as_json(described: Description) -> dict[str, Any]:
    """A description as numeral.js reads it: the arrays base64 float32 under their names,
    listed in ``arrays``."""
    arrays = described["arrays"]
    return {**{k: v for k, v in described.items() if k != "arrays"},
            "arrays": list(arrays), **{k: b64(v) for k, v in arrays.items()}}


def layer_json(layer: Layer) -> dict[str, Any]:
    """One learning layer as numeral.js reads it."""
    described = describe(layer)
    if described["type"] not in javascript_types():
        raise ExportError(f"layer {layer.spec()!r} ({type(layer).__name__}) has no form in "
                          f"numeral.js; numeral exports {', '.join(EXPORTED)}")
    return as_json(described)


def export_inputs(net: Network) -> list[dict[str, Any]]:
    """The network's input transforms as numeral.js reads them."""
    described = input_descriptions(net)
    for step in described:
        if step["type"] not in javascript_types():
            raise ExportError(f"the input transform {step['type']!r} has no form in numeral.js")
    return [as_json(step) for step in described]


def model_json(model: Network | Ensemble) -> dict[str, Any]:
    members = model.members
    meta = getattr(model, "meta", None) or members[0].meta
    classes = meta.get("class_names") or [str(i) for i in range(model.n_classes)]
    return {
        "description": repr(model),
        "classes": list(classes),
        "exemplars": meta.get("exemplars", []),
        "test_accuracy": meta.get("test_accuracy"),
        "temperature": temperature_of(meta),  # the page's probabilities are calibrated too
        "members": [{"input_shape": list(net.input_shape), "inputs": export_inputs(net),
                     "body_shape": list(net.inputs.shape),
                     "layers": [layer_json(layer) for layer in net.body]}
                    for net in members],
    }


def export_web(model: Network | Ensemble, folder: str | Path) -> Path:
    """Write the static site into ``folder`` (made if needed); return the folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file; give a folder for --web")
    folder.mkdir(parents=True, exist_ok=True)
    text = ("globalThis.NUMERAL_MODEL = " + json.dumps(model_json(model)) + ";\n"
            "globalThis.NUMERAL_READER = " + json.dumps(READER_SETTINGS) + ";\n")
    atomic_write(folder / "model.js", lambda fh: fh.write(text.encode()))
    static = resources.files("numeral.export") / "static"
    for name in STATIC:
        with resources.as_file(static / name) as source:
            shutil.copyfile(source, folder / name)
    return folder
