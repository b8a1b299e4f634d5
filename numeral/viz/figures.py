"""The figures of a run, drawn with matplotlib (headless) and saved as PNG.

Each function takes plain arrays (what ``results.npz``, ``metrics.csv`` and
``evaluation.json`` hold) and a path, draws one figure and returns the path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DPI = 110
CLASS_COLOURS = plt.get_cmap("tab10")


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def learning_curves(history: Sequence[dict[str, float]], path: Path, title: str = "") -> Path:
    """Loss (left) and error rate (right) per epoch, train against test (and validation)."""
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 3.8))
    rows = [r for r in history if int(r.get("member", 0)) == 0]
    epochs = [r["epoch"] for r in rows]
    for split, style in (("train", "-"), ("val", ":"), ("test", "--")):
        if rows and f"{split}_loss" in rows[0]:
            ax_loss.plot(epochs, [r[f"{split}_loss"] for r in rows], style, label=split)
            ax_err.plot(epochs, [100 * r[f"{split}_error"] for r in rows], style, label=split)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="classification error")
    if any(r["train_loss"] > 0 for r in rows):
        ax_loss.set_yscale("log")
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def snapshot_epochs(snapshots: Mapping[str, np.ndarray]) -> list[int]:
    """The epochs at which latent features were recorded."""
    return sorted(int(k.split("_")[1]) for k in snapshots
                  if k.startswith("latent_") and k[7:].isdigit())


def _latent_panel(ax: Any, points: np.ndarray, labels: np.ndarray, title: str) -> Any:
    order = np.random.default_rng(0).permutation(len(points))  # no class drawn on top
    ax.set(title=title, xticks=[], yticks=[])
    return ax.scatter(points[order, 0], points[order, 1], s=1.5, alpha=0.5, linewidths=0,
                      c=[CLASS_COLOURS(int(c) % 10) for c in labels[order]])


def _class_legend(fig: Any, class_names: Sequence[str]) -> None:
    handles = [plt.Line2D([], [], marker="o", ls="", color=CLASS_COLOURS(i % 10), label=name)
               for i, name in enumerate(class_names)]
    fig.legend(handles=handles, loc="center right", title="class", markerscale=1.5)


def latent_features(
    snapshots: dict[str, np.ndarray], labels: np.ndarray, path: Path, class_names: Sequence[str],
    epochs: Sequence[int] | None = None,
) -> Path | None:
    """Every training sample's 2-D feature (the bottleneck, or a PCA of the last hidden
    layer), coloured by class, one panel per recorded epoch (or per one of ``epochs``)."""
    epochs = [e for e in snapshot_epochs(snapshots) if epochs is None or e in epochs]
    if not epochs:
        return None
    fig, axes = plt.subplots(1, len(epochs), figsize=(4 * len(epochs), 4), squeeze=False)
    for ax, epoch in zip(axes[0], epochs, strict=True):
        _latent_panel(ax, snapshots[f"latent_{epoch}"], labels, f"epoch {epoch}")
    _class_legend(fig, class_names)
    fig.subplots_adjust(right=0.9)
    return _save(fig, path)


def latent_animation(snapshots: dict[str, np.ndarray], labels: np.ndarray, path: Path,
                     class_names: Sequence[str], fps: int = 2) -> Path | None:
    """The latent features as a GIF, one frame per recorded epoch, on fixed axes."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    epochs = snapshot_epochs(snapshots)
    if not epochs:
        return None
    frames = [snapshots[f"latent_{e}"] for e in epochs]
    low = np.min([f.min(axis=0) for f in frames], axis=0)
    high = np.max([f.max(axis=0) for f in frames], axis=0)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    _class_legend(fig, class_names)
    fig.subplots_adjust(right=0.8)

    def draw(i: int) -> list[Any]:
        ax.clear()
        dots = _latent_panel(ax, frames[i], labels, f"epoch {epochs[i]}")
        ax.set(xlim=(low[0], high[0]), ylim=(low[1], high[1]))
        return [dots]

    path.parent.mkdir(parents=True, exist_ok=True)
    FuncAnimation(fig, draw, frames=len(frames)).save(path, writer=PillowWriter(fps=fps),
                                                      dpi=80)
    plt.close(fig)
    return path


def _histogram_layers(snapshots: Mapping[str, np.ndarray]) -> list[int]:
    return sorted({int(k.split("_")[1]) for k in snapshots if k.startswith("hist_")})


def _histogram_panel(ax: Any, snapshots: Mapping[str, np.ndarray], layer: int, epoch: int,
                     name: str, label: str | None = None) -> None:
    counts = snapshots[f"hist_{layer}_{epoch}"]
    edges = snapshots[f"edges_{layer}_{epoch}"]
    ax.stairs(counts / max(counts.sum(), 1), edges, label=label, linewidth=1.5)
    ax.set(title=f"hidden layer {layer + 1} ({name})", xlabel="activation a = f(z)",
           ylabel="share of activations")


def activation_histograms(
    snapshots: dict[str, np.ndarray], activation_names: Sequence[str], path: Path,
    epochs: Sequence[int] | None = None,
) -> Path | None:
    """Distribution of each hidden layer's activations a = f(z) at the recorded epochs (or
    at those of ``epochs``)."""
    layers = _histogram_layers(snapshots)
    if not layers:
        return None
    fig, axes = plt.subplots(1, len(layers), figsize=(4.5 * len(layers), 3.6), squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        recorded = sorted(int(k.split("_")[2]) for k in snapshots
                          if k.startswith(f"hist_{layer}_"))
        name = activation_names[layer] if layer < len(activation_names) else "?"
        for epoch in (e for e in recorded if epochs is None or e in epochs):
            _histogram_panel(ax, snapshots, layer, epoch, name, label=f"epoch {epoch}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def histogram_animation(snapshots: dict[str, np.ndarray], activation_names: Sequence[str],
                        path: Path, fps: int = 2) -> Path | None:
    """The activation histograms as a GIF, one frame per recorded epoch, on fixed axes."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    layers = _histogram_layers(snapshots)
    epochs = snapshot_epochs(snapshots)
    epochs = [e for e in epochs if all(f"hist_{k}_{e}" in snapshots for k in layers)]
    if not layers or not epochs:
        return None
    fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3.3), squeeze=False,
                             layout="constrained")
    top = {k: max(float((snapshots[f"hist_{k}_{e}"] / max(snapshots[f"hist_{k}_{e}"].sum(), 1))
                        .max()) for e in epochs) for k in layers}

    def draw(i: int) -> list[Any]:
        for ax, layer in zip(axes[0], layers, strict=True):
            ax.clear()
            name = activation_names[layer] if layer < len(activation_names) else "?"
            _histogram_panel(ax, snapshots, layer, epochs[i], name)
            ax.set_ylim(0, 1.05 * top[layer])
            ax.grid(alpha=0.3)
        fig.suptitle(f"epoch {epochs[i]}")
        return []

    path.parent.mkdir(parents=True, exist_ok=True)
    FuncAnimation(fig, draw, frames=len(epochs)).save(path, writer=PillowWriter(fps=fps),
                                                      dpi=70)
    plt.close(fig)
    return path


def confusion_heatmap(matrix: np.ndarray, class_names: Sequence[str], path: Path) -> Path:
    """Counts C[true, predicted] as an annotated heat map; recall per class on the right."""
    c = np.asarray(matrix)
    k = len(c)
    share = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * k, 0.8 + 0.55 * k))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if c[i, j]:
                ax.text(j, i, str(c[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    recall = np.diag(c) / np.maximum(c.sum(axis=1), 1)
    ax.set_xticks(range(k), class_names)
    ax.set_yticks(range(k), [f"{n}  ({r:.1%})" for n, r in zip(class_names, recall, strict=True)])
    ax.set(xlabel="predicted class", ylabel="true class  (recall)",
           title=f"confusion matrix — accuracy {np.trace(c) / max(c.sum(), 1):.2%}")
    return _save(fig, path)


def image_grid(
    images: np.ndarray, titles: Sequence[str], path: Path, columns: int = 10, cmap: str = "gray"
) -> Path | None:
    """Small images in a grid with a caption each (misclassified samples, weights)."""
    if len(images) == 0:
        return None
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.05, rows * 1.25), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles, strict=False):
        limit = float(np.nanmax(np.abs(image))) or 1.0
        vmin, vmax = (-limit, limit) if cmap != "gray" else (0, 255)
        ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=7)
    return _save(fig, path)


def misclassified_gallery(
    images: np.ndarray, true: np.ndarray, pred: np.ndarray, names: Sequence[str], path: Path
) -> Path | None:
    titles = [f"true {names[t]} → {names[p]}" for t, p in zip(true, pred, strict=True)]
    return image_grid(images, titles, path)


# the planes of input_transform="orientation": the gradient's direction, and the edges it
# crosses (y downwards, so a gradient at 45 degrees points down-right, across a "/" edge)
ORIENTATIONS = ("0°: | edges", "45°: / edges", "90°: — edges", "135°: \\ edges")


def plane_mosaic(features: np.ndarray, gap: int = 0) -> np.ndarray:
    """(n, 4*h*h) orientation planes -> (n, 2h+gap, 2h+gap) images, the planes as quadrants
    (0 degrees top left, 45 top right, 90 bottom left, 135 bottom right), ``gap`` NaN rows
    and columns between them (matplotlib leaves NaN blank)."""
    n = len(features)
    h = round(np.sqrt(features.shape[1] // 4))
    planes = features.reshape(n, 4, h, h)
    out = np.full((n, 2 * h + gap, 2 * h + gap), np.nan)
    for k, (top, left) in enumerate([(0, 0), (0, h + gap), (h + gap, 0), (h + gap, h + gap)]):
        out[:, top : top + h, left : left + h] = planes[:, k]
    return out


def first_layer_weights(
    W: np.ndarray, path: Path, count: int = 40, orientation: bool = False
) -> Path | None:
    """The incoming weights of the first hidden units, each shown as a 28x28 image
    (red positive, blue negative): the patterns those units respond to. With
    ``orientation`` the inputs are orientation planes, shown as four quadrants."""
    side = round(np.sqrt(W.shape[0]))
    if side * side != W.shape[0]:
        return None
    norms = np.linalg.norm(W, axis=0)
    units = np.argsort(norms)[::-1][:count]  # the units with the strongest input weights
    weights = W[:, units].T
    images = plane_mosaic(weights, gap=1) if orientation else weights.reshape(-1, side, side)
    return image_grid(images, [f"unit {u}" for u in units], path, cmap="RdBu_r")


def conv_filters(W: np.ndarray, path: Path, count: int = 40) -> Path:
    """The filters of a convolution, W (out, in, K, K), each shown as a K x K image (red
    positive, blue negative; the first input channel of each, the strongest first): the
    small patterns each feature map responds to, wherever they are in the image."""
    norms = np.linalg.norm(W.reshape(len(W), -1), axis=1)
    order = np.argsort(norms)[::-1][:count]
    return image_grid(W[order, 0], [f"filter {f}" for f in order], path,  # type: ignore[return-value]
                      columns=min(10, len(order)), cmap="RdBu_r")


def feature_maps(images: np.ndarray, maps: np.ndarray, path: Path, count: int = 8) -> Path:
    """One row per image: the image, then the feature maps (n, C, H, W) of its first
    ``count`` channels: where in the image each filter found its pattern."""
    count = min(count, maps.shape[1])
    fig, axes = plt.subplots(len(images), count + 1, figsize=((count + 1) * 1.05,
                                                              len(images) * 1.15), squeeze=False)
    for row, (image, planes) in enumerate(zip(images, maps, strict=True)):
        axes[row, 0].imshow(image, cmap="gray", vmin=0, vmax=255)
        for col in range(count):
            axes[row, col + 1].imshow(planes[col], cmap="magma")
    axes[0, 0].set_title("image", fontsize=8)
    for col in range(count):
        axes[0, col + 1].set_title(f"map {col}", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    return _save(fig, path)


def orientation_examples(images: np.ndarray, features: np.ndarray, path: Path) -> Path:
    """One row per example: the image as the network prepares it, then its four
    orientation planes (how much edge runs in each direction, per 2x2 cell)."""
    side = round(np.sqrt(images.shape[1]))
    planes = features.reshape(len(features), 4, side // 2, side // 2)
    top = float(planes.max()) or 1.0
    fig, axes = plt.subplots(len(images), 5, figsize=(5 * 1.1, len(images) * 1.15),
                             squeeze=False)
    for row, (image, four) in enumerate(zip(images, planes, strict=True)):
        axes[row, 0].imshow(image.reshape(side, side), cmap="gray", vmin=0, vmax=1)
        for col, plane in enumerate(four, start=1):
            axes[row, col].imshow(plane, cmap="magma", vmin=0, vmax=top)
    for col, title in enumerate(("image", *ORIENTATIONS)):
        axes[0, col].set_title(title, fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    return _save(fig, path)


def compare_curves(runs: Mapping[str, Sequence[dict[str, float]]], path: Path) -> Path:
    """Test error per epoch of several runs on one plot."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, history in runs.items():
        rows = [r for r in history if int(r.get("member", 0)) == 0]
        key = "test_error" if rows and "test_error" in rows[0] else "train_error"
        ax.plot([r["epoch"] for r in rows], [100 * r[key] for r in rows], label=name)
    ax.set(xlabel="epoch", ylabel="test error (%)", title="runs compared")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def regularization_study(studies: list[dict[str, Any]], path: Path) -> Path:
    """Against lambda, for L1 and L2: test accuracy (left) and the train-test accuracy gap
    (middle), the run without a penalty as a grey line; and the distribution of |W| for
    each run (right): L1 piles weights at zero, L2 shrinks them all."""
    fig, (ax_acc, ax_gap, ax_w) = plt.subplots(1, 3, figsize=(15, 4))
    baseline = [s for s in studies if not s["l1"] and not s["l2"]]
    for ax, title, value in (
        (ax_acc, "test accuracy", lambda s: 100 * s["test_accuracy"]),
        (ax_gap, "over-fitting: train − test accuracy",
         lambda s: 100 * (s["train_accuracy"] - s["test_accuracy"])),
    ):
        for penalty, colour in (("l1", "tab:red"), ("l2", "tab:blue")):
            runs = sorted((s for s in studies if s[penalty]), key=lambda s: s[penalty])
            if runs:
                ax.plot([s[penalty] for s in runs], [value(s) for s in runs], "o-",
                        color=colour, label=penalty.upper())
        for s in baseline:
            ax.axhline(value(s), color="grey", ls="--", label="no penalty")
        ax.set(xscale="log", xlabel="λ", ylabel="%", title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    top = max(float(np.percentile(s["abs_weights"], 99.5)) for s in studies) or 1.0
    bins = np.linspace(0, top, 60)
    for s in studies:
        ax_w.hist(s["abs_weights"], bins=bins, histtype="step", density=True, label=s["name"])
    ax_w.set(yscale="log", xlabel="|W| (all weight matrices)", ylabel="density",
             title="weight magnitudes")
    ax_w.legend(fontsize=7)
    return _save(fig, path)


def sweep_figure(points: Sequence[tuple[Mapping[str, Any], Sequence[float]]],
                 keys: Sequence[str], metric: str, path: Path) -> Path:
    """A sweep: the metric against each swept key, one panel per key. Each point is one
    setting (its bar: the standard deviation of its seeds); settings that differ only in the
    panel's key are joined by a line, labelled by the other keys' values."""
    scale = 100.0 if metric.endswith("_error") else 1.0
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.8), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        values = [settings.get(key) for settings, _ in points]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        numbers = [float(v) if numeric else 0.0 for v in values]  # type: ignore[arg-type]
        order = list(dict.fromkeys(str(v) for v in values))  # categories as first seen
        lines: dict[str, list[tuple[float, float, float]]] = {}
        for (settings, scores), value, number in zip(points, values, numbers, strict=True):
            others = ", ".join(f"{k}={settings.get(k)}" for k in keys if k != key)
            x = number if numeric else float(order.index(str(value)))
            spread = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
            lines.setdefault(others, []).append((x, scale * float(np.mean(scores)),
                                                 scale * spread))
        for others, line in lines.items():
            xs, means, spreads = zip(*sorted(line), strict=True)
            ax.errorbar(xs, means, yerr=spreads, fmt="o-" if numeric else "o", capsize=3,
                        label=others or None)
        if not numeric:
            ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
        elif min(numbers) > 0 and max(numbers) >= 10 * min(numbers):
            ax.set_xscale("log")
        if 1 < len(lines) <= 8:
            ax.legend(fontsize=7)
        ax.set(xlabel=key, ylabel=f"{metric}{' (%)' if scale != 1 else ''}")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{metric} on the validation split (mean of the seeds, bars: their spread)",
                 fontsize=10)
    return _save(fig, path)


def reliability_diagram(curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, float]],
                        path: Path, title: str = "") -> Path:
    """How sure a model said it was against how often it was right: for each curve (its name
    -> per-bin mean confidence, accuracy, count, and its ECE), accuracy over confidence, one
    point per bin with images (a calibrated model lies on the diagonal); below, how many
    images each bin holds."""
    if not curves:
        raise ValueError("a reliability diagram needs at least one curve")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.2, 6.0), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="calibrated")
    width = 1.0 / max(len(next(iter(curves.values()))[2]), 1)
    for k, (name, (conf, accuracy, count, ece)) in enumerate(curves.items()):
        seen = count > 0
        top.plot(conf[seen], accuracy[seen], marker="o", ms=4, label=f"{name}: ECE {ece:.2%}")
        centres = (np.arange(len(count)) + 0.5) * width
        bottom.bar(centres + (k - 0.5 * (len(curves) - 1)) * width / (len(curves) + 1),
                   count, width=width / (len(curves) + 1), label=name)
    top.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02), title=title or "reliability")
    top.legend(loc="upper left", fontsize=8)
    bottom.set(xlabel="confidence (top probability)", ylabel="images", yscale="log")
    return _save(fig, path)
