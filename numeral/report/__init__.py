"""numeral.report — a run directory (or several) turned into one self-contained HTML page.

:func:`build_report` reads what :func:`numeral.train.experiment.run_experiment`
wrote (metrics.csv, evaluation.json, results.npz, model.npz, config.toml),
redraws every figure into ``DIR/figures/`` and writes ``DIR/report.html`` with
the figures embedded, so the file opens offline and can be mailed around.
"""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from numeral.errors import NumeralError
from numeral.nn import Ensemble, Network
from numeral.nn.files import atomic_write
from numeral.nn.init import identical_units, unit_spread
from numeral.nn.layers import Conv2D
from numeral.nn.serialize import load_model


@dataclass
class Figure:
    title: str
    caption: str
    path: Path

    @property
    def data(self) -> str:
        return base64.b64encode(self.path.read_bytes()).decode()

    @property
    def mime(self) -> str:
        return "image/gif" if self.path.suffix == ".gif" else "image/png"


def _version() -> str:
    try:
        return version("numeral")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "dev"


def _render(out: Path, **context: Any) -> Path:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("numeral.report"), autoescape=True, keep_trailing_newline=True
    )
    html = env.get_template("report.html.j2").render(version=_version(), **context)
    path = out / "report.html"
    atomic_write(path, lambda fh: fh.write(html.encode()))
    return path


def _require(run: Path, name: str) -> Path:
    path = run / name
    if not path.is_file():
        raise NumeralError(
            f"{run} is not a finished numeral run (no {name}); train one with "
            f"`numeral train --config NAME --out {run}`"
        )
    return path


def symmetry_notes(net: Network) -> list[str]:
    """Say so when every unit of a hidden layer has the same incoming weights, up to
    rounding (relative to the weights' size, so the note holds whichever CPU kernel ran)."""
    notes = []
    eps = float(np.finfo(net.dtype).eps)
    for layer, W in enumerate(net.weights[:-1]):
        if W.ndim != 2 or W.shape[1] < 2 or not identical_units(W):  # dense layers' units
            continue
        scale = float(np.abs(W).max())
        spread = unit_spread(W) * scale
        notes.append(
            f"All {W.shape[1]} units of hidden layer {layer + 1} have the same incoming "
            f"weights, up to rounding: the largest difference between two units' weights is "
            f"{spread:.2g}, against weights of up to {scale:.2g} (a relative {spread / scale:.1g}; "
            f"{net.dtype} rounds at {eps:.1g}). They started equal (zero initialisation) and "
            "received the same gradients, so the layer acts like a single unit. The small "
            "differences are rounding: a matrix product sums its columns in an order that "
            "depends on the CPU's kernel. They do not rescue the network, because two units "
            "are pulled apart only in proportion to how different they already are (they see "
            "the same inputs and, through the next layer's equal weights, the same error), so "
            "a difference of a millionth of the weights stays a millionth (on the seed study "
            "it is 8e-7 of the weights after one epoch and 1e-6 after twenty). Break the "
            "symmetry with a random initialisation (see the seed-xavier preset)."
        )
    return notes


def key_epochs(epochs: Sequence[int]) -> list[int]:
    """The first, middle and last of the recorded epochs (the static figures' panels)."""
    return sorted({epochs[0], epochs[(len(epochs) - 1) // 2], epochs[-1]}) if epochs else []


def first_of_each_kind(members: list[Network]) -> list[tuple[int, Network]]:
    """The first convolutional network and the first other one of a committee, with their
    places: the report shows the first layer of each kind."""
    kinds: dict[bool, tuple[int, Network]] = {}
    for i, net in enumerate(members):
        if net.weighted:
            kinds.setdefault(isinstance(net.weighted[0], Conv2D), (i, net))
    return sorted(kinds.values(), key=lambda pair: pair[0])


def add_first_layer_figures(net: Network, results: dict[str, np.ndarray], figs: Path,
                            add: Callable[[Path | None, str, str], None], which: str) -> None:
    """A CNN's first filters and feature maps, or an MLP's first-layer weights."""
    from numeral import viz

    first = net.weighted[0]
    if isinstance(first, Conv2D):
        add(viz.conv_filters(first.params[0], figs / "conv_filters.png"),
            f"First-layer filters{which}",
            f"The {first.out_channels} filters of the first convolution ({first.kernel}x"
            f"{first.kernel}; red positive, blue negative; the strongest first): each is slid "
            "over the whole image, so it finds its pattern (an edge, a corner, a stroke end) "
            "wherever the pattern is.")
        if "sample_images" in results:
            images = results["sample_images"]
            maps = net.layer_outputs(images.reshape(len(images), -1).astype(np.float32) / 255,
                                     net.layers.index(first))
            add(viz.feature_maps(images, maps, figs / "feature_maps.png"),
                f"Feature maps{which}",
                "Test numerals (left) and what the first convolution's first filters make of "
                "them (bright: the filter's pattern is there). Later layers read these maps "
                "instead of pixels.")
        return
    reads_edges = net.input_transform == "orientation"
    add(viz.first_layer_weights(net.weights[0], figs / "first_layer_weights.png",
                                orientation=reads_edges),
        f"First-layer weights{which}",
        "Incoming weights of the first hidden layer's strongest units (red positive, blue "
        "negative): the patterns each unit looks for, "
        + ("in the four orientation planes, shown as quadrants (0° top left, 45° top "
           "right, 90° bottom left, 135° bottom right)." if reads_edges else
           "as 28x28 images."))


def build_report(run: Path) -> Path:
    """Redraw the figures of one run and write ``run/report.html``."""
    from numeral import viz
    from numeral.rundir import read_metrics

    history = read_metrics(_require(run, "metrics.csv"))
    model = load_model(_require(run, "model.npz"))
    net = model.members[0]  # the first network of an ensemble
    evaluation = json.loads(_require(run, "evaluation.json").read_text())
    config_text = (run / "config.toml").read_text() if (run / "config.toml").is_file() else ""
    config = tomllib.loads(config_text) if config_text else {}
    info = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    class_names = info.get("class_names") or net.meta.get("class_names") or [
        str(i) for i in range(net.n_classes)
    ]
    with np.load(_require(run, "results.npz"), allow_pickle=False) as data:
        results = {k: data[k] for k in data.files}
    snaps = {k[5:]: v for k, v in results.items() if k.startswith("snap.")}
    figs = run / "figures"
    figures: list[Figure] = []

    def add(path: Path | None, title: str, caption: str) -> None:
        if path is not None:
            figures.append(Figure(title, caption, path))

    split = info.get("split", "the test split")
    which = ("" if not isinstance(model, Ensemble) else
             f" of the first of the {len(model.members)} networks (figures below likewise)")
    add(viz.learning_curves(history, figs / "learning_curves.png"), "Learning curves",
        f"Loss and error per epoch{which} on the training and test data ({split}). A widening gap "
        "between train and test is over-fitting; a flat line at 90 % error is a network that "
        "does not learn.")
    layer, width = (int(v) for v in snaps.get("latent_layer", [len(net.sizes) - 3, 0]))
    recorded = viz.snapshot_epochs(snaps)
    shown = recorded if config.get("snapshot_epochs") else key_epochs(recorded)
    add(viz.latent_features(snaps, results["train_y"], figs / "latent_features.png", class_names,
                            epochs=shown),
        "Latent features across epochs",
        (f"The {width}-unit hidden layer {layer + 1}" if width <= 2 else
         f"Hidden layer {layer + 1} ({width} units) projected on its two principal components")
        + " for every training sample, coloured by class: watch the classes pull apart into "
        "separate regions as training goes on.")
    add(viz.activation_histograms(snaps, net.activation_names, figs / "activations.png",
                                  epochs=shown),
        "Hidden activations",
        "The distribution of each hidden layer's outputs after its activation function, on "
        "the training data, at several epochs. Sigmoid units piled at 0 or 1 are saturated "
        "(their gradient a(1-a) is near zero); a single spike means every unit outputs the same.")
    if len(recorded) > 2:  # the same, as animations over every recorded epoch
        add(viz.latent_animation(snaps, results["train_y"], figs / "latent_features.gif",
                                 class_names),
            "Latent features, epoch by epoch",
            f"The latent features above at each of the {len(recorded)} recorded epochs "
            f"({', '.join(map(str, recorded))}), one frame each (the principal components keep "
            "their direction from frame to frame).")
        add(viz.histogram_animation(snaps, net.activation_names, figs / "activations.gif"),
            "Hidden activations, epoch by epoch",
            "The histograms above at each recorded epoch, one frame each.")
    if "confusion_matrix" in evaluation:
        add(viz.confusion_heatmap(np.array(evaluation["confusion_matrix"]), class_names,
                                  figs / "confusion_matrix.png"),
            "Confusion matrix",
            "Test samples by true class (rows) and predicted class (columns); the diagonal is "
            "correct. Off-diagonal cells show which numerals the network confuses.")
    if "wrong_images" in results:
        add(viz.misclassified_gallery(results["wrong_images"], results["wrong_true"],
                                      results["wrong_pred"], class_names,
                                      figs / "misclassified.png"),
            "Misclassified test images",
            "Up to 60 test images the model got wrong, with the true and the predicted class: "
            "many are ambiguous or badly written even to a person.")
    for i, member in first_of_each_kind(model.members):
        add_first_layer_figures(member, results, figs, add,
                                f" (network {i + 1} of {len(model.members)})"
                                if isinstance(model, Ensemble) else "")
    reads_edges = any(m.input_transform == "orientation" for m in model.members)
    if reads_edges and model.meta.get("exemplars"):
        net = next(m for m in model.members if m.input_transform == "orientation")
        images = net.inputs.images(np.array(model.meta["exemplars"][:5], np.float32) / 255)
        add(viz.orientation_examples(images, net.inputs.features(images), figs / "orientation.png"),
            "What the first layer reads",
            "This network reads orientation planes, not pixels: for each pixel, the Sobel "
            "gradient's strength, shared between the two of the directions 0°, 45°, 90° and "
            "135° nearest its angle (the gradient points across a stroke's edge: 0° holds "
            "vertical edges, 90° horizontal ones), summed over 2x2 cells. Left, training "
            "numerals as the network prepares them (gamma); right, their four 14x14 planes.")

    summary = [
        ("model", repr(model)),
        ("data", info.get("source", {}).get("data") or info.get("source", {}).get("train", "?")),
        ("split", split),
        ("samples (train / validation / test)",
         " / ".join(str(info.get("sizes", {}).get(k, "?")) for k in ("train", "val", "test"))),
        ("test accuracy", _percent(evaluation.get("accuracy"))),
        ("train accuracy", _percent(evaluation.get("train_accuracy"))),
        ("training time", f"{evaluation.get('train_seconds', '?')} s"),
    ]
    metrics = [{k: _fmt(v) for k, v in row.items()} for row in history]
    return _render(
        run,
        title=f"numeral run: {config.get('name', run.name)}",
        description=config.get("description", ""),
        notes=symmetry_notes(net),
        summary=summary,
        figures=figures,
        per_class=evaluation.get("per_class", []),
        metrics=metrics,
        config=config_text,
        runs=[],
    )


def build_comparison(runs: Sequence[Path], out: Path) -> Path:
    """Several runs side by side: a table, their test-error curves and, when they differ
    in L1/L2, the regularisation study figure. Writes ``out/report.html``."""
    from numeral import viz
    from numeral.rundir import read_metrics

    if not runs:
        raise NumeralError("numeral compare needs at least one run directory")
    rows, histories, studies = [], {}, []
    for run in runs:
        evaluation = json.loads(_require(run, "evaluation.json").read_text())
        config = tomllib.loads(_require(run, "config.toml").read_text())
        name = run.name
        histories[name] = read_metrics(_require(run, "metrics.csv"))
        model = load_model(_require(run, "model.npz"))
        net = model.members[0]  # the first network of an ensemble
        weights = np.concatenate([np.abs(W).ravel() for W in net.weights])
        rows.append({
            "run": name,
            "model": net.architecture,
            "L1": config.get("l1", 0.0),
            "L2": config.get("l2", 0.0),
            "test accuracy": _percent(evaluation.get("accuracy")),
            "train accuracy": _percent(evaluation.get("train_accuracy")),
            "mean |W|": f"{weights.mean():.4f}",
            "|W| < 1e-3": f"{np.mean(weights < 1e-3):.1%}",
            "seconds": evaluation.get("train_seconds", ""),
        })
        studies.append({
            "name": name,
            "l1": config.get("l1", 0.0),
            "l2": config.get("l2", 0.0),
            "test_accuracy": evaluation.get("accuracy", 0.0),
            "train_accuracy": evaluation.get("train_accuracy", 0.0),
            "abs_weights": weights[:: max(1, len(weights) // 200_000)],
        })
    out.mkdir(parents=True, exist_ok=True)
    figs = out / "figures"
    figures = [Figure("Test error per epoch", "Each run's test error as training goes on.",
                      viz.compare_curves(histories, figs / "compare_curves.png"))]
    if any(s["l1"] or s["l2"] for s in studies):
        figures.append(Figure(
            "Regularisation against λ",
            "Test accuracy (left) and the train−test accuracy gap (middle) for L1 and L2 "
            "penalties of growing strength λ; the grey line is the run without a penalty. A "
            "penalty that helps closes the gap without costing test accuracy. Right: the "
            "distribution of weight magnitudes: L1 drives many weights to (nearly) zero, L2 "
            "shrinks them all towards zero without making them exactly zero.",
            viz.regularization_study(studies, figs / "regularization.png")))
    return _render(out, title="numeral: runs compared", description=", ".join(map(str, runs)),
                   notes=[], summary=[], figures=figures, per_class=[], metrics=[], config="",
                   runs=rows)


def _percent(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "—"


def _fmt(value: float) -> str:
    return f"{value:.4g}" if value != int(value) else str(int(value))
