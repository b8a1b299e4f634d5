"""Optimisers, schedules, ensembles and model files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from numeral.nn import OPTIMISERS, Ensemble, ModelFileError, Network, Optimizer, learning_rate
from numeral.nn.files import HEADER_KEY
from numeral.nn.serialize import load_model


def test_adam_matches_the_textbook_update() -> None:
    rng = np.random.default_rng(0)
    p = rng.normal(size=200_000)  # more than one cache block
    mask = np.ones_like(p)
    opt = Optimizer("adam", p.size, "float64", mask)
    ref, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-3
    for t in range(1, 6):
        g = rng.normal(size=p.size)
        opt.step(p, g.copy(), lr)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        ref -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(p, ref, rtol=1e-10, atol=1e-12)


def test_adamw_decay_is_decoupled_and_skips_biases() -> None:
    p = np.array([1.0, 1.0])
    opt = Optimizer("adamw", 2, "float64", np.array([1.0, 0.0]), weight_decay=0.1)
    opt.step(p, np.zeros(2), 0.5)  # zero gradient: only the decay acts
    np.testing.assert_allclose(p, [1.0 - 0.5 * 0.1, 1.0])


@pytest.mark.parametrize("name", OPTIMISERS)
def test_every_optimiser_reduces_the_loss(name: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10))
    y = np.argmax(X @ rng.normal(size=(10, 3)), axis=1)  # a learnable rule
    net = Network([10, 16, 3], activation="tanh", init="xavier", dtype="float64")
    opt = Optimizer(name, net.n_params, net.dtype, net.decay_mask)
    first = net.compute_gradients_(X, y)
    for _ in range(100):
        net.compute_gradients_(X, y)
        opt.step(net.flat, net.grad_flat, 0.1 if name == "sgd" else 0.01)
    assert net.compute_gradients_(X, y) < 0.5 * first


def test_schedules() -> None:
    assert learning_rate("constant", 0.1, 0.7) == 0.1
    assert learning_rate("step", 0.1, 0.5, epochs=20, step_epochs=5, gamma=0.5) == 0.1 / 4
    assert learning_rate("cosine", 0.1, 0.0) == pytest.approx(0.1)
    assert learning_rate("cosine", 0.1, 0.5) == pytest.approx(0.05)
    assert learning_rate("cosine", 0.1, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate("cosine", 0.1, 0.05, warmup=0.1) == pytest.approx(0.05)
    peak = learning_rate("onecycle", 0.1, 0.3, warmup=0.3)
    assert learning_rate("onecycle", 0.1, 0.0, warmup=0.3) == pytest.approx(0.1 / 25)
    assert peak == pytest.approx(0.1)
    assert learning_rate("onecycle", 0.1, 1.0, warmup=0.3) < 1e-4


def make_net(seed: int = 0) -> Network:
    net = Network([6, 5, 3], activation="tanh", init="xavier", seed=seed)
    net.meta = {"class_names": ["a", "b", "c"]}
    return net


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    net = make_net()
    net.set_standardization(np.arange(6.0), np.full(6, 2.0))
    net.save(str(tmp_path / "m.npz"))
    back = Network.load(str(tmp_path / "m.npz"))
    assert back.sizes == net.sizes and back.activation_names == net.activation_names
    assert back.meta == net.meta and back.dtype == net.dtype
    X = np.random.default_rng(0).normal(size=(4, 6))
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))


def test_ensemble_averages_and_round_trips(tmp_path: Path) -> None:
    ens = Ensemble([make_net(0), make_net(1)])
    X = np.random.default_rng(0).normal(size=(4, 6))
    expected = (ens.members[0].predict_proba(X) + ens.members[1].predict_proba(X)) / 2
    np.testing.assert_allclose(ens.predict_proba(X), expected, rtol=1e-6)
    ens.save(str(tmp_path / "e.npz"))
    back = load_model(tmp_path / "e.npz")
    assert isinstance(back, Ensemble) and len(back.members) == 2
    np.testing.assert_allclose(back.predict_proba(X), expected, rtol=1e-6)
    with pytest.raises(Exception, match="ensemble"):
        Network.load(str(tmp_path / "e.npz"))
    mixed = Ensemble([Network([784, 4, 3], seed=0),
                      Network([784, 4, 3], seed=1, input_transform="deskew", input_gamma=0.3)])
    mixed.save(str(tmp_path / "mixed.npz"))
    for name in ("e", "mixed"):  # the layer list: numeral 0.1 (formats 1-3) refuses them
        with np.load(tmp_path / f"{name}.npz", allow_pickle=False) as data:
            header = json.loads(str(data["__numeral__"]))
            assert header["version"] == 4
    assert header["networks"][1]["layers"] == ["gamma 0.3", "deskew", "dense 4", "relu",
                                               "dense 3"]
    images = np.random.default_rng(1).random((3, 784), dtype=np.float32)
    edges = Network([784, 4, 3], seed=2, input_transform="orientation", input_gamma=0.3)
    edges.save(str(tmp_path / "edges.npz"))
    with np.load(tmp_path / "edges.npz", allow_pickle=False) as data:
        assert json.loads(str(data["__numeral__"]))["networks"][0]["layers"][:3] == [
            "gamma 0.3", "orientation", "flatten"]
    back_edges = load_model(tmp_path / "edges.npz")
    assert isinstance(back_edges, Network) and back_edges.input_transform == "orientation"
    np.testing.assert_array_equal(back_edges.predict_proba(images), edges.predict_proba(images))
    back_mixed = load_model(tmp_path / "mixed.npz")
    assert [m.input_transform for m in back_mixed.members] == ["none", "deskew"]
    assert [m.input_gamma for m in back_mixed.members] == [1.0, 0.3]
    np.testing.assert_array_equal(back_mixed.predict_proba(images), mixed.predict_proba(images))
    each = [m.predict_proba(images) for m in mixed.members]  # each member prepares on its own
    np.testing.assert_allclose(mixed.predict_proba(images), np.mean(each, axis=0), rtol=1e-6)
    lone = make_net(2)  # a network is a committee of one, so callers need no isinstance
    np.testing.assert_allclose(np.mean([m.predict_proba(X) for m in lone.members], axis=0),
                               lone.predict_proba(X))
    assert lone.members == [lone]


def rewrite(path: Path, change) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(path, **arrays)


def test_tampered_weights_are_detected(tmp_path: Path) -> None:
    make_net().save(str(tmp_path / "m.npz"))
    rewrite(tmp_path / "m.npz", lambda a: a["net0.param0"].__setitem__((0, 0), 9.0))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(tmp_path / "m.npz")


def test_a_model_from_a_newer_numeral_is_refused(tmp_path: Path) -> None:
    make_net().save(str(tmp_path / "m.npz"))

    def bump(arrays: dict) -> None:
        header = json.loads(str(arrays[HEADER_KEY]))
        header["version"] = 99
        arrays[HEADER_KEY] = np.array(json.dumps(header))

    rewrite(tmp_path / "m.npz", bump)
    with pytest.raises(ModelFileError, match=r"newer numeral.*upgrade"):
        load_model(tmp_path / "m.npz")


def test_unreadable_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable numeral model") as junk:
        load_model(tmp_path / "junk.npz")
    assert "not an .npz archive" in str(junk.value) and "trust" not in str(junk.value)
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a numeral model"):
        load_model(tmp_path / "plain.npz")
    pickled: dict[str, Any] = {HEADER_KEY: np.array([{"x": 1}], dtype=object)}
    np.savez(tmp_path / "pickled.npz", **pickled)
    with pytest.raises(ModelFileError):  # object arrays need pickle: refused, never loaded
        load_model(tmp_path / "pickled.npz")
    make_net().save(str(tmp_path / "cut.npz"))
    data = (tmp_path / "cut.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "cut.npz")
    assert zipfile.is_zipfile(tmp_path / "plain.npz")


def test_files_written_atomically_get_ordinary_permissions(tmp_path: Path) -> None:
    import os
    import stat

    from numeral.nn.files import _UMASK, atomic_write

    atomic_write(tmp_path / "f.txt", lambda fh: fh.write(b"x"))
    mode = stat.S_IMODE(os.stat(tmp_path / "f.txt").st_mode)
    assert mode == 0o666 & ~_UMASK  # not the temporary file's private 0o600
    assert not list(tmp_path.glob(".f.txt.*"))  # no temporary file left
