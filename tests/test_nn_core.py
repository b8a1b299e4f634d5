"""numeral.nn: the public API, numerics, initialisation, regularisation, bad input."""

from __future__ import annotations

import ast
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from numeral.data import Dataset
from numeral.nn import DivergenceError, InputError, Network, Optimizer, softmax
from numeral.nn.init import identical_units, unit_spread
from numeral.nn.losses import softmax_cross_entropy_

NN_DIR = Path(__file__).resolve().parents[1] / "numeral" / "nn"


def test_core_imports_only_numpy_and_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"numpy", "numeral"}
    offenders = []
    for path in sorted(NN_DIR.rglob("*.py")):  # the layers subpackage too
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in allowed or (top == "numeral" and not name.startswith("numeral.nn")):
                    offenders.append(f"{path.name}: import {name}")
    assert offenders == []


def test_public_api_shapes_and_probabilities(rng: np.random.Generator) -> None:
    net = Network([784, 320, 160, 10], activation="sigmoid", init="xavier", seed=0,
                  dtype="float64")
    assert [p.shape for p in net.params] == [(784, 320), (320,), (320, 160), (160,),
                                             (160, 10), (10,)]
    X = rng.random((7, 784))
    y = rng.integers(0, 10, 7)
    loss, grads = net.loss_and_grads(X, y, l1=0.0, l2=0.0)
    assert [g.shape for g in grads] == [p.shape for p in net.params]
    P = net.predict_proba(X)
    assert P.shape == (7, 10)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    expected = -np.mean(np.log(P[np.arange(7), y]))
    assert loss == pytest.approx(expected, rel=1e-10)


def test_loss_includes_the_penalty_on_weights_only(rng: np.random.Generator) -> None:
    net = Network([6, 5, 3], activation="tanh", init="xavier", seed=3, dtype="float64")
    X, y = rng.normal(size=(4, 6)), rng.integers(0, 3, 4)
    base, _ = net.loss_and_grads(X, y)
    l1, l2 = 0.01, 0.1
    total, _ = net.loss_and_grads(X, y, l1=l1, l2=l2)
    W = net.weights
    penalty = l1 * sum(np.abs(w).sum() for w in W) + l2 / 2 * sum((w**2).sum() for w in W)
    assert total == pytest.approx(base + penalty, rel=1e-12)


def test_default_dtype_is_float32_and_float64_on_request() -> None:
    assert Network([4, 3, 2]).flat.dtype == np.float32
    assert Network([4, 3, 2], dtype="float64").flat.dtype == np.float64


def test_softmax_cross_entropy_is_stable_for_huge_logits() -> None:
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow / divide warning fails the test
        p = softmax(logits)
        loss = softmax_cross_entropy_(logits.copy(), np.array([1, 0]))
    assert np.isfinite(p).all() and np.isfinite(loss)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    # sample 0 puts all mass on the wrong class: loss 2e4; sample 1 is uniform: log 3
    assert loss == pytest.approx((2e4 + np.log(3)) / 2)


def test_same_seed_gives_bit_identical_weights_after_training(rng: np.random.Generator) -> None:
    X, y = rng.random((300, 20)).astype(np.float32), rng.integers(0, 4, 300)

    def train(seed: int) -> np.ndarray:
        net = Network([20, 16, 4], activation="relu", init="he", seed=seed, dropout=0.3)
        opt = Optimizer("adam", net.n_params, net.dtype, net.decay_mask)
        drop = np.random.default_rng(seed)
        for start in range(0, 300, 50):
            net.compute_gradients_(X[start:start + 50], y[start:start + 50], rng=drop)
            opt.step(net.flat, net.grad_flat, 1e-2)
        return net.flat.copy()

    assert np.array_equal(train(1), train(1))
    assert not np.array_equal(train(1), train(2))


def fit(net: Network, X: np.ndarray, y: np.ndarray, *, steps: int, lr: float,
        optimizer: str = "adam", l1: float = 0.0, l2: float = 0.0) -> None:
    opt = Optimizer(optimizer, net.n_params, net.dtype, net.decay_mask)
    X, labels = net.check_inputs(X, y)
    assert labels is not None
    y = labels
    for _ in range(steps):
        net.compute_gradients_(X, y, l1=l1, l2=l2)
        opt.step(net.flat, net.grad_flat, lr)


def test_a_small_network_overfits_100_samples(tibetan: Dataset) -> None:
    pick = np.random.default_rng(1).choice(len(tibetan.y), 100, replace=False)
    X, y = tibetan.X[pick], tibetan.y[pick]
    assert len(set(y.tolist())) == 10
    net = Network([784, 64, 10], activation="tanh", init="xavier", seed=0)
    fit(net, X, y, steps=300, lr=3e-3)
    assert np.mean(net.predict(X) == y) == 1.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_initialisation_keeps_hidden_units_identical(rng: np.random.Generator,
                                                          dtype: str) -> None:
    """Identical up to rounding, relative to the weights' size: widths 37 and 13 are not
    multiples of any matrix-product kernel's block, so columns of one product are summed by
    different code paths (on some CPUs in a different order), as on the seed study."""
    X, y = rng.random((200, 30)), rng.integers(0, 5, 200)
    net = Network([30, 37, 13, 5], activation="sigmoid", init="zeros", dtype=dtype)
    fit(net, X, y, steps=50, lr=0.5, optimizer="sgd")
    for W, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        assert identical_units(W)  # every column (unit) the same, up to rounding
        assert np.ptp(b) <= 1e3 * np.finfo(b.dtype).eps * np.abs(b).max()
        assert np.abs(W).max() > 0  # ...although the weights did change
    randomly = Network([30, 37, 13, 5], activation="sigmoid", init="xavier", dtype=dtype)
    fit(randomly, X, y, steps=50, lr=0.5, optimizer="sgd")
    assert not identical_units(randomly.weights[0])
    assert unit_spread(randomly.weights[0]) > 0.1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_symmetry_check_tells_rounding_from_a_real_difference(dtype: str) -> None:
    """Rounding-sized differences (as another CPU's kernel makes) still count as identical
    units; a difference of a thousandth of the weights' size does not."""
    eps = float(np.finfo(dtype).eps)
    W = np.tile(np.linspace(-0.03, 0.02, 50)[:, None], (1, 7)).astype(dtype)
    assert identical_units(W) and unit_spread(W) == 0.0
    noisy = W * (1 + 8 * eps * np.random.default_rng(0).standard_normal(W.shape))
    assert identical_units(noisy.astype(dtype))  # what the seed study shows: ~8 eps
    real = W.copy()
    real[10, 3] += 1e-3 * np.abs(W).max()
    assert not identical_units(real)
    assert identical_units(np.zeros((4, 3), dtype))  # nothing learned: all equal


def test_l2_alone_decays_weights_geometrically_and_spares_biases() -> None:
    """With no data gradient, SGD on (l2/2)|W|^2 gives W_t = (1 - lr l2)^t W_0."""
    net = Network([5, 4, 3], init="xavier", seed=0, dtype="float64")
    net.biases[0][...] = 0.7
    W0 = [w.copy() for w in net.weights]
    opt = Optimizer("sgd", net.n_params, net.dtype, net.decay_mask, weight_decay=0.1)
    zero = np.zeros_like(net.flat)
    for _ in range(10):
        opt.step(net.flat, zero.copy(), 0.5)
    for w, w0 in zip(net.weights, W0, strict=True):
        np.testing.assert_allclose(w, (1 - 0.5 * 0.1) ** 10 * w0, rtol=1e-12)
    assert np.all(net.biases[0] == 0.7)


def test_l1_makes_weights_sparse_and_l2_shrinks_norms(tibetan: Dataset) -> None:
    pick = np.random.default_rng(2).choice(len(tibetan.y), 1000, replace=False)
    X, y = tibetan.X[pick], tibetan.y[pick]
    nets = {}
    for name, (l1, l2) in {"none": (0, 0), "l1": (1e-3, 0), "l2": (0, 1e-2)}.items():
        net = Network([784, 32, 10], activation="relu", init="he", seed=0)
        fit(net, X, y, steps=150, lr=2e-3, l1=l1, l2=l2)
        nets[name] = net

    def small(net: Network) -> float:
        return float(np.mean(np.abs(net.weights[0]) < 1e-3))

    def norm(net: Network) -> float:
        return float(np.linalg.norm(net.weights[0]))

    assert small(nets["l1"]) > 0.5 > 5 * small(nets["none"])
    assert norm(nets["l2"]) < 0.8 * norm(nets["none"])


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.zeros((3, 5)), np.zeros(3, int), "expected (n, 4)"),
        (np.full((3, 4), np.nan), np.zeros(3, int), "NaN or inf"),
        (np.zeros((3, 4)), np.array([0, 1, 7]), "label 7 is out of range"),
        (np.zeros((3, 4)), np.array([0, 1]), "one integer label per row"),
        (np.zeros((3, 4)), np.array([0.5, 1, 1]), "integer class labels"),
    ],
)
def test_bad_input_names_the_value_and_the_fix(X: np.ndarray, y: np.ndarray, message: str) -> None:
    net = Network([4, 3, 2])
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        net.loss_and_grads(X, y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sizes": [4]}, "at least an input and an output"),
        ({"sizes": [4, 0, 2]}, "width must be >= 1"),
        ({"sizes": [4, 3, 2], "activation": "swish"}, "unknown activation 'swish'"),
        ({"sizes": [4, 3, 2], "init": "orthogonal"}, "unknown init"),
        ({"sizes": [4, 3, 2], "dtype": "float16"}, "dtype must be"),
        ({"sizes": [4, 3, 2], "dropout": 1.0}, "dropout must be"),
    ],
)
def test_bad_network_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Network(**kwargs)


def test_a_diverging_learning_rate_stops_with_the_epoch_and_last_good_loss(
    tibetan: Dataset,
) -> None:
    from numeral.train.config import Config
    from numeral.train.loop import Split, Trainer

    pick = np.random.default_rng(0).choice(len(tibetan.y), 2000, replace=False)
    config = Config(hidden=[32], lr=1e30, epochs=3, batch_size=500)
    trainer = Trainer(config, Split(tibetan.X[pick], tibetan.y[pick]), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's overflow warnings would come first: the
        # command line printed them as "numeral: warning: overflow ..." before the error
        with pytest.raises(DivergenceError,
                           match=r"diverged at epoch \d+ .*lower the learning rate"):
            trainer.run()


def bar_image(slant: float, x_at_middle: float = 13.5) -> np.ndarray:
    """A 28x28 image of a one-pixel stroke x = x_at_middle + slant (y - 13.5), drawn with
    linear interpolation between the two nearest columns."""
    image = np.zeros((28, 28), np.float32)
    for y in range(4, 24):
        x = x_at_middle + slant * (y - 13.5)
        x0 = int(np.floor(x))
        image[y, x0], image[y, x0 + 1] = 1 - (x - x0), x - x0
    return image


def moments(image: np.ndarray) -> tuple[float, float, float]:
    """Centroid x, y and the slant mu_11 / mu_02 of one image."""
    ys, xs = np.mgrid[0:28, 0:28]
    m = image.sum()
    cx, cy = (image * xs).sum() / m, (image * ys).sum() / m
    return cx, cy, (image * (xs - cx) * (ys - cy)).sum() / (image * (ys - cy) ** 2).sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bilinear_sampler_matches_the_textbook_formula(dtype: type) -> None:
    """Each image is read at its own coordinates (no pixel from a neighbouring image), with
    weights (1-fx)(1-fy), fx(1-fy), (1-fx)fy, fx fy, and black outside the frame; the same
    sampler, reused for a second batch of another size, still reads the right images."""
    from numeral.nn.inputs import BilinearSampler

    rng = np.random.default_rng(3)
    sampler = BilinearSampler(28)

    def pixel(image: np.ndarray, y: int, x: int) -> float:
        return float(image[y, x]) if 0 <= y < 28 and 0 <= x < 28 else 0.0

    for n in (5, 3):
        X: np.ndarray = rng.random((n, 784)).astype(dtype)
        coords: np.ndarray = rng.uniform(-4, 30, (2, n, 784)).astype(dtype)  # inside: 0 .. 27
        expected = np.zeros((n, 784))
        for i in range(n):
            image = X[i].reshape(28, 28)
            for p in range(784):
                x, y = np.clip(coords[0, i, p], -1, 27.999), np.clip(coords[1, i, p], -1, 27.999)
                x0, y0 = int(np.floor(x)), int(np.floor(y))
                fx, fy = x - x0, y - y0
                expected[i, p] = ((1 - fx) * (1 - fy) * pixel(image, y0, x0)
                                  + fx * (1 - fy) * pixel(image, y0, x0 + 1)
                                  + (1 - fx) * fy * pixel(image, y0 + 1, x0)
                                  + fx * fy * pixel(image, y0 + 1, x0 + 1))
        got = sampler(X, coords.copy())
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bilinear_sampler_reads_large_batches_in_slices(monkeypatch) -> None:
    """Batches above MAX_BATCH are sampled slice by slice (float32 flat indices stay exact),
    with the same result as one pass."""
    from numeral.nn.inputs import BilinearSampler

    rng = np.random.default_rng(4)
    X = rng.random((7, 784), dtype=np.float32)
    coords = rng.uniform(-4, 30, (2, 7, 784)).astype(np.float32)
    whole = BilinearSampler(28)(X, coords.copy())
    monkeypatch.setattr("numeral.nn.inputs.MAX_BATCH", 3)
    np.testing.assert_array_equal(BilinearSampler(28)(X, coords.copy()), whole)


def test_deskew_straightens_a_slanted_stroke_and_centres_it() -> None:
    from numeral.nn.inputs import deskew

    slanted = np.stack([bar_image(0.4, 10.0), bar_image(-0.3, 16.0)]).reshape(2, 784)
    for before, after in zip(slanted, deskew(slanted), strict=True):
        assert abs(moments(before.reshape(28, 28))[2]) > 0.25
        cx, cy, slant = moments(after.reshape(28, 28))
        assert abs(slant) < 0.02 and abs(cx - 13.5) < 0.05 and abs(cy - 13.5) < 0.05
        assert after.sum() == pytest.approx(before.sum(), rel=0.02)  # nothing falls off
    upright = bar_image(0.0).reshape(1, 784)
    np.testing.assert_allclose(deskew(upright), upright, atol=1e-6)  # already straight


def sobel_by_hand(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gx, gy of one image, a loop over pixels and the 3x3 Sobel kernel / 4, zeros outside."""
    side = image.shape[0]
    padded = np.pad(image.astype(np.float64), 1)
    kernel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 4
    gx, gy = np.zeros((side, side)), np.zeros((side, side))
    for y in range(side):
        for x in range(side):
            window = padded[y : y + 3, x : x + 3]
            gx[y, x], gy[y, x] = (window * kernel).sum(), (window * kernel.T).sum()
    return gx, gy


def test_orientation_planes_split_each_edge_between_the_nearest_directions() -> None:
    """Each pixel's Sobel magnitude goes to the two directions nearest its gradient's angle, by
    closeness, and each plane is summed over 2x2 cells: checked against a loop by hand."""
    from numeral.nn.inputs import orientation_planes

    rng = np.random.default_rng(2)
    images = rng.random((3, 8, 8)) ** 3
    planes = orientation_planes(images.reshape(3, 64)).reshape(3, 4, 4, 4)
    for image, got in zip(images, planes, strict=True):
        gx, gy = sobel_by_hand(image)
        want = np.zeros((4, 8, 8))
        for (y, x), m in np.ndenumerate(np.hypot(gx, gy)):
            angle = np.degrees(np.arctan2(gy[y, x], gx[y, x])) % 180  # the sign is dropped
            lower, frac = int(angle // 45), angle % 45 / 45
            want[lower, y, x] += (1 - frac) * m
            want[(lower + 1) % 4, y, x] += frac * m  # 170 degrees: partly 135, partly 0
        cells = want.reshape(4, 4, 2, 4, 2).sum(axis=(2, 4))
        np.testing.assert_allclose(got, cells, atol=1e-9)


def test_orientation_planes_of_strokes_and_of_a_transposed_image() -> None:
    from numeral.nn.inputs import orientation_planes

    upright = bar_image(0.0)  # a vertical stroke: its edges have a horizontal gradient
    planes = orientation_planes(upright.reshape(1, 784)).reshape(4, 14, 14)
    energy = planes.sum(axis=(1, 2))
    assert energy[0] > 5 * (energy[1] + energy[2] + energy[3])
    # transposing swaps gx and gy: a gradient at theta turns to 90 - theta, so the planes of
    # 0 and 90 degrees trade places and 45 and 135 keep theirs (each plane transposed)
    rng = np.random.default_rng(3)
    X = rng.random((5, 28, 28), dtype=np.float32)
    straight = orientation_planes(X.reshape(5, 784)).reshape(5, 4, 14, 14)
    crossed = orientation_planes(X.transpose(0, 2, 1).reshape(5, 784)).reshape(5, 4, 14, 14)
    np.testing.assert_allclose(crossed, straight[:, [2, 1, 0, 3]].transpose(0, 1, 3, 2),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="even side"):
        orientation_planes(np.zeros((1, 49), np.float32))


def test_a_network_applies_its_input_transform_when_predicting() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((6, 784), dtype=np.float32)
    net = Network([784, 8, 3], input_transform="deskew", seed=1)
    plain = Network([784, 8, 3], seed=1)
    prepared = net.inputs(X)
    assert not np.allclose(prepared, X)
    np.testing.assert_array_equal(net.predict_proba(X), plain.predict_proba(prepared))
    np.testing.assert_array_equal(net.predict_proba(net.inputs.prepare(X)),
                                  net.predict_proba(X))
    bright = Network([784, 8, 3], input_gamma=0.5)
    np.testing.assert_allclose(bright.inputs(X), np.sqrt(X), rtol=1e-6)  # x' = x^gamma
    both = Network([784, 8, 3], input_transform="deskew", input_gamma=0.5)
    np.testing.assert_allclose(both.inputs(X), net.inputs(np.sqrt(X)), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="input_gamma must be in"):
        Network([784, 3], input_gamma=0)
    with pytest.raises(InputError, match="input_transform must be one of"):
        Network([784, 3], input_transform="blur")
    with pytest.raises(InputError, match="not a square"):
        Network([10, 3], input_transform="deskew")
    with pytest.raises(InputError, match="even side"):
        Network([49, 3], input_transform="orientation")
    edges = Network([784, 8, 3], input_transform="orientation", input_gamma=0.5)
    images = edges.inputs.images(X)  # what training distorts: the gamma'd images
    np.testing.assert_allclose(images, np.sqrt(X), rtol=1e-6)
    np.testing.assert_array_equal(edges.inputs(X), edges.inputs.features(images))
    assert not np.allclose(edges.inputs(X), images)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu"])
@pytest.mark.parametrize("settings", [{}, {"l1": 1e-4, "l2": 1e-4, "label_smoothing": 0.1}])
def test_a_training_step_allocates_no_array_of_its_own(activation: str,
                                                       settings: dict[str, Any]) -> None:
    """Forward, back-propagation (with dropout, L1/L2, label smoothing) and an Adam step reuse
    preallocated buffers. What tracemalloc still sees is NumPy's own iterator buffer for
    broadcasting and casting (the bias add, a ReLU's 0/1 mask written as floats), at most
    np.getbufsize() elements whatever the batch size, freed at once.
    With a batch of 16,384 any per-row temporary (64 KiB in float32) or any copy of the weights
    (200 KiB with L1: np.sign(W)) would be larger than that buffer."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n = 16384
    X, y = rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)
    net = Network([784, 64, 10], activation=activation, dropout=0.2)
    opt = Optimizer("adam", net.n_params, net.dtype, net.decay_mask)
    drop = np.random.default_rng(1)

    def step() -> None:
        net.compute_gradients_(X, y, rng=drop, **settings)
        opt.step(net.flat, net.grad_flat, 1e-3)

    step()  # the first step makes the buffers
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        step()
        step()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    numpy_iterator = np.getbufsize() * 4  # float32
    assert peak - before < numpy_iterator + 8192, f"a step allocated {peak - before} bytes"
    assert now - before < 4096  # nothing kept either
