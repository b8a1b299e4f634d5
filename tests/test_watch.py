"""Watching a run: the probe, TensorBoard event files read back, the live page in Chromium."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from numeral.cli import main
from numeral.nn import Network
from numeral.train.watch import EpochView, Probe, hidden_histogram, principal_2d
from tests.conftest import chromium_path

TINY = ["--set", "hidden=[16]", "--set", "batch_size=512", "--epochs", "3", "--quiet"]


def read_metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_latent_components_keep_their_sign_from_epoch_to_epoch() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 6)) * [5, 3, 1, 1, 1, 1]
    first, basis = principal_2d(features)
    flipped, again = principal_2d(features, previous=-basis)  # as if the SVD had flipped
    scale = np.abs(first).max()
    np.testing.assert_allclose(flipped, -first, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(again, -basis, rtol=0, atol=1e-5)
    exact = np.linalg.svd(features - features.mean(axis=0), full_matrices=False)[2][:2]
    np.testing.assert_allclose(np.abs(basis @ exact.T), np.eye(2), atol=1e-6)  # = the SVD's
    assert abs(first[:, 0].std() / first[:, 1].std() - 5 / 3) < 0.3  # the two widest axes
    two = rng.normal(size=(50, 2))
    assert principal_2d(two)[0] is not None and np.array_equal(principal_2d(two)[0], two)
    counts, edges = hidden_histogram(rng.uniform(size=1000), "sigmoid")
    assert counts.sum() == 1000 and edges[0] == 0.0 and edges[-1] == 1.0


def test_the_probe_sees_every_hidden_layer_and_the_shown_images() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.uniform(size=(300, 784)).astype(np.float32), rng.integers(0, 10, 300)
    probe = Probe(X, y, X[:100], y[:100], size=200, shown=48)
    net = Network([784, 12, 7, 10], activation="tanh", seed=0)
    view = probe.measure(net)
    assert view.latent.shape == (200, 2) and view.latent_layer == 1
    assert [h[0] for h in view.histograms] == ["tanh", "tanh"]
    assert all(h[1].sum() == 200 * w for h, w in zip(view.histograms, (12, 7), strict=True))
    assert view.guesses.shape == (48,) and probe.shown_images.shape == (48, 28, 28)
    np.testing.assert_array_equal(view.guesses, net.predict(probe.shown_X))


def test_tensorboard_files_hold_what_metrics_csv_holds(tibetan_path: Path,
                                                      tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, logdir = tmp_path / "run", tmp_path / "tb"
    assert main(["train", "--config", "baseline", "--data", str(tibetan_path), *TINY,
                 "--set", "hidden=[16,8]", "--out", str(out), "--tensorboard", str(logdir)]) == 0
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0,
                                                          "images": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    rows = read_metrics(out)
    for column in ("train_loss", "train_error", "test_loss", "test_error", "lr", "seconds"):
        logged = events.Scalars(column)
        assert [e.step for e in logged] == [int(r["epoch"]) for r in rows]
        np.testing.assert_allclose([e.value for e in logged],
                                   [float(r[column]) for r in rows], rtol=1e-5, atol=1e-9)
    histograms = set(tags["histograms"])
    # baseline's layers: dense relu dropout dense relu dropout dense
    assert {"weights/0_dense.W", "weights/0_dense.b", "weights/3_dense.W",
            "weights/6_dense.W", "activations/1_relu", "activations/4_relu"} <= histograms
    relu = events.Histograms("activations/1_relu")
    assert len(relu) == 3 and relu[-1].histogram_value.min >= 0  # ReLU outputs
    assert relu[-1].histogram_value.num == 1000 * 16  # the probe's 1,000 images
    assert "misread_test_images" in tags["images"]
    projector = next(logdir.glob("*/last_hidden_layer"))
    vectors = (projector / "tensors.tsv").read_text().strip().splitlines()
    labels = (projector / "metadata.tsv").read_text().strip().splitlines()
    assert len(vectors) == len(labels) > 500 and len(vectors[0].split("\t")) == 8
    assert (projector / "sprite.png").stat().st_size > 1000
    assert "last_hidden_layer" in (logdir / "projector_config.pbtxt").read_text()


def test_the_live_page_shows_each_epoch_while_training(tibetan_path: Path,
                                                       tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    out = tmp_path / "run"
    layers = '["conv 8 3", "relu", "maxpool 2", "conv 8 3", "relu", "flatten", "dense 10"]'
    command = [sys.executable, "-m", "numeral.cli", "train", "--config", "cnn", "--data",
               str(tibetan_path), "--set", f"layers={layers}", "--epochs", "6", "--quiet",
               "--live", "0", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    assert process.stdout is not None
    url = ""
    deadline = time.monotonic() + 120
    while not url:
        line = process.stdout.readline()
        assert line and time.monotonic() < deadline, "no live page line"
        if line.startswith("live page: "):
            url = line.split(": ", 1)[1].strip()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url)
            other = browser.new_context().new_page()  # a second viewer who leaves
            other.goto(url)
            page.wait_for_selector("#status[data-epoch='1']", timeout=300_000)
            assert process.poll() is None  # epoch 1 is on the page while the run goes on
            assert not (out / "metrics.csv").exists()
            first = page.inner_text("tr[data-epoch='1'] td.train_loss")
            other.context.close()
            page.wait_for_selector("#status[data-done='1']", timeout=300_000)
            if screenshot := os.environ.get("NUMERAL_LIVE_SCREENSHOT"):  # docs/live.png
                page.set_viewport_size({"width": 1500, "height": 1000})
                page.screenshot(path=screenshot, full_page=True)
            shown = {int(tr.get_attribute("data-epoch") or 0):
                     {td.get_attribute("class"): td.inner_text()
                      for td in tr.query_selector_all("td[class]")}
                     for tr in page.query_selector_all("#epochs tr")}
            latent_points = page.get_attribute("#latent", "data-points")
            histograms = page.query_selector_all("#hists canvas")
            misread = page.query_selector_all("#shown figure")
            browser.close()
    finally:
        rest, _ = process.communicate(timeout=300)
    assert process.returncode == 0, rest
    assert (out / "report.html").is_file()
    rows = read_metrics(out)
    assert sorted(shown) == [1, 2, 3, 4, 5, 6]
    for row in rows:
        for column in ("train_loss", "train_error", "test_loss", "test_error"):
            assert float(shown[int(row["epoch"])][column]) == pytest.approx(
                float(row[column]), rel=1e-3)
    assert first == shown[1]["train_loss"]
    hidden = len(Network.load(str(out / "model.npz")).hidden_layers)
    assert latent_points == "1000" and len(histograms) == hidden == 2 and len(misread) == 48


def test_the_page_keeps_its_pictures_within_its_time_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import json as json_
    import threading

    from numeral.serve import live
    from numeral.serve.live import BUDGET, LiveView
    from numeral.train.loop import weights_of

    rng = np.random.default_rng(2)
    X, y = rng.uniform(size=(200, 784)).astype(np.float32), rng.integers(0, 10, 200)
    net = Network([784, 8, 10], seed=0)
    view = LiveView(log=lambda line: None, linger=0)
    view.probe = Probe(X, y, X, y, size=100)
    measure = view.probe.measure

    clock = [0.0]  # the worker's perf_counter: each probe takes exactly 50 ms of it

    def slow(network: Network) -> EpochView:
        clock[0] += 0.05
        return measure(network)

    monkeypatch.setattr(live.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(view.probe, "measure", slow)
    view.nets[0] = net
    worker = threading.Thread(target=view.run_worker)
    worker.start()
    for epoch in range(1, 41):  # 40 epochs of 0.1 s: 3 % of 4 s buys one or two more pictures
        view.work.put(({"epoch": epoch, "train_loss": 1.0, "seconds": 0.1}, (0, weights_of(net))))
        deadline = time.monotonic() + 10
        while len(view.events) < epoch and time.monotonic() < deadline:  # as if the epoch
            time.sleep(0.005)  # took a while: the worker keeps up
    view.work.put(None)
    worker.join()
    events = [(e.split("\n")[0][7:], json_.loads(e.split("data: ", 1)[1])) for e in view.events]
    pictured = [d["row"]["epoch"] for kind, d in events if kind == "epoch" and "latent" in d]
    assert [d["row"]["epoch"] for _, d in events] == list(range(1, 41))  # every epoch's numbers
    # 50 ms fits in 3 % of the training time after 1.67 s (epoch 17), 100 ms after 3.33 s
    assert pictured == [1, 17, 34]
    assert view.spent == pytest.approx(0.15) and view.spent <= BUDGET * view.trained + 0.05
    assert view.unseen is not None  # the last epoch's pictures: sent by finish()


def test_the_live_page_pictures_every_member_of_a_mixed_committee() -> None:
    """Each member of a committee gets its own copy in the worker: an MLP's and a CNN's
    weights do not fit one network."""
    import json as json_
    import threading

    from numeral.serve.live import LiveView

    rng = np.random.default_rng(0)
    X, y = rng.uniform(size=(200, 784)).astype(np.float32), rng.integers(0, 10, 200)
    view = LiveView(log=lambda line: None, linger=0)
    view.probe = Probe(X, y, X, y, size=100)
    members = [Network([784, 8, 10], seed=0),
               Network.from_layers(["conv 2 3", "relu", "maxpool 2", "flatten", "dense 10"],
                                   (1, 28, 28), seed=1)]
    worker = threading.Thread(target=view.run_worker)
    worker.start()
    for member, net in enumerate(members):
        view.epoch({"epoch": 1, "member": member, "train_loss": 1.0, "seconds": 100.0}, net)
        deadline = time.monotonic() + 10
        while len(view.events) <= member and time.monotonic() < deadline:
            time.sleep(0.005)  # one epoch at a time: the worker is never behind
    view.work.put(None)
    worker.join()
    events = [json_.loads(e.split("data: ", 1)[1]) for e in view.events]
    assert [e["row"]["member"] for e in events] == [0, 1]
    assert all("latent" in e and "problem" not in e for e in events), events
    assert [h["activation"] for h in events[1]["histograms"]] == ["relu"]  # the CNN's one
