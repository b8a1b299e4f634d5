"""Faults, for real: runs and sweeps killed with SIGKILL (at random moments, inside a
checkpoint write, before the first checkpoint, a Ray worker mid-trial) end, once resumed,
with exactly the weights of a run nobody interrupted (the same machine's)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from numeral.cli import main
from numeral.data import Dataset, load
from numeral.nn.files import HEADER_KEY
from numeral.train.config import load_config
from numeral.train.loop import Split, Trainer, load_checkpoint
from numeral.train.watch import EpochCallback

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

EPOCHS = 40
# baseline (ReLU, Adam, dropout 0.2: every random stream of an epoch) made tiny: ~15 ms an epoch
SETTINGS = ["hidden=[32]", f"epochs={EPOCHS}", "batch_size=64"]
SETS = [arg for s in SETTINGS for arg in ("--set", s)]
# Every run here (the reference too) with one BLAS thread: on two cores shared with other work,
# two threads per process make these small runs several times slower. (Bit-identical resume
# holds for any thread count, as long as the run and its resumption use the same one.)
ENV = {**os.environ, "PYTHONUNBUFFERED": "1",
       **dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")}

# `numeral train` as the CLI runs it, with two test-side changes: the report (7 s of figures,
# not on trial here) is skipped, and with argv[1] = K > 0 the K-th checkpoint write (the 1st is
# epoch 0's) is killed with SIGKILL halfway through writing its temporary file.
BOOT = """
import io, os, signal, sys
import numpy as np
import numeral.report
import numeral.train.loop as loop
from numeral.cli import main
from numeral.nn.files import atomic_write

numeral.report.build_report = lambda run: run / "report.html"
kill_at, writes = int(sys.argv[1]), [0]
real_write_npz = loop.write_npz

def write_npz(path, arrays):
    writes[0] += 1
    if writes[0] != kill_at:
        return real_write_npz(path, arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()

    def half_then_die(fh):
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    atomic_write(path, half_then_die)

loop.write_npz = write_npz
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory, tibetan_path: Path) -> Dataset:
    """2,400 of TibetanMNIST's images, drawn at random (decoding them all takes a while on
    two busy cores): the first 2,000 train, the other 400 test."""
    folder = tmp_path_factory.mktemp("subset")
    with zipfile.ZipFile(tibetan_path) as whole, \
            zipfile.ZipFile(folder / "subset.zip", "w") as part:
        names = sorted(n for n in whole.namelist() if n.endswith(".jpg"))
        for i in np.random.default_rng(0).choice(len(names), 2400, replace=False):
            part.writestr(names[i], whole.read(names[i]))
    ds = load(folder / "subset.zip")
    return ds.subset(np.random.default_rng(1).permutation(len(ds.y)))


@pytest.fixture(scope="module")
def small(subset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The subset as .npz files: `--train` and `--test` arguments."""
    folder = tmp_path_factory.mktemp("small")
    for name, part in (("train", slice(0, 2000)), ("test", slice(2000, 2400))):
        np.savez(folder / f"{name}.npz", image=subset.images[part], label=subset.y[part])
    return ["--train", str(folder / "train.npz"), "--test", str(folder / "test.npz")]


def boot(args: list[str], kill_at: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BOOT, str(kill_at), *args],
                          capture_output=True, text=True, timeout=300, env=ENV)


@pytest.fixture(scope="module")
def reference(small: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.npz of the run nobody interrupted."""
    out = tmp_path_factory.mktemp("reference")
    done = boot(["train", *small, *SETS, "--quiet", "--out", str(out)])
    assert done.returncode == 0, done.stderr
    return out / "model.npz"


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "train_seconds"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def assert_same_model(path: Path, reference: Path) -> None:
    """Every array of the two model files equal, bit for bit; the headers equal but for
    the training time."""
    with np.load(path) as got, np.load(reference) as want:
        assert sorted(got.files) == sorted(want.files)
        for key in want.files:
            if key == HEADER_KEY:
                assert without_timings(json.loads(str(got[key]))) == without_timings(
                    json.loads(str(want[key])))
            else:
                np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def checkpoint_epoch(out: Path) -> int | None:
    """The epoch the run directory's checkpoint holds (None: no checkpoint); the file must
    always be readable."""
    path = out / "checkpoint.npz"
    return load_checkpoint(path)["epoch"] if path.exists() else None


def leftovers(out: Path) -> list[Path]:
    return sorted(out.glob(".*.tmp"))


def wait_for(get: Callable[[], Any], process: subprocess.Popen[str], what: str,
             seconds: float = 120) -> Any:
    """The first true value of ``get()``, polled while ``process`` runs."""
    deadline = time.monotonic() + seconds
    while not (value := get()):
        assert process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {seconds} s"
        time.sleep(0.01)
    return value


def reached(out: Path, epoch: int) -> Callable[[], bool]:
    return lambda: (checkpoint_epoch(out) or 0) >= epoch


# ------------------------------------------------------------------ numeral train
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_weights(
        small: list[str], reference: Path, tmp_path: Path) -> None:
    """Seven SIGKILLs at moments drawn from a seeded generator: one early (start-up, data,
    the first epochs), five in training (anywhere in the epoch after a drawn one, checkpoint
    writes included), one after the last epoch (evaluation, model file, report); after each,
    `--resume` (or the first command again where no run directory was made yet)."""
    rng = np.random.default_rng(20240611)
    out = tmp_path / "run"
    cli = [sys.executable, "-m", "numeral.cli", "train"]
    first, resume = [*cli, *small, *SETS, "--quiet", "--out", str(out)], \
        [*cli, "--resume", str(out), "--quiet"]
    targets = sorted(rng.choice(np.arange(2, EPOCHS), 5, replace=False).tolist())
    plan: list[tuple[float, int | None]] = [(rng.uniform(0.0, 0.5), None)]
    plan += [(rng.uniform(0.0, 0.05), int(e)) for e in targets]  # ~3 epochs of jitter
    plan += [(rng.uniform(0.0, 1.0), EPOCHS), (0.0, -1)]  # -1: run to the end
    saved: int | None = None  # the epoch the checkpoint held before each start
    kills = []
    for i, (jitter, epoch) in enumerate(plan):
        started_from = saved
        command = resume if (out / "config.toml").is_file() else first
        log = tmp_path / f"out{i}.txt"
        with open(log, "w") as fh:
            process = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, text=True,
                                       env=ENV)
            if epoch == -1:
                assert process.wait(timeout=300) == 0, log.read_text()
            else:
                if epoch is not None:
                    wait_for(reached(out, epoch), process, f"checkpoint of epoch {epoch}")
                time.sleep(jitter)
                os.kill(process.pid, signal.SIGKILL)
                assert process.wait(timeout=60) == -signal.SIGKILL
        text = log.read_text()
        assert "Traceback" not in text, text
        trained = [int(e) for e in re.findall(r"^epoch (\d+) ", text, re.MULTILINE)]
        if trained:  # it went on from its checkpoint, or from the beginning if it had none
            assert trained[0] == (started_from or 0) + 1, (started_from, text)
        if epoch == -1:
            break
        now = checkpoint_epoch(out)
        if saved is not None:  # once there is a checkpoint, every kill leaves one
            assert now is not None and now >= saved, (saved, now)
        kills.append((now, [p.name for p in leftovers(out)]))
        saved = now
    assert any(e is not None and 0 < e < EPOCHS for e, _ in kills), kills  # killed mid-run
    assert_same_model(out / "model.npz", reference)
    assert not (out / "checkpoint.npz").exists() and not leftovers(out)
    assert (out / "report.html").is_file()
    metrics = (out / "metrics.csv").read_text().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in metrics] == list(range(1, EPOCHS + 1))


def test_a_kill_inside_a_checkpoint_write_leaves_a_temporary_file_that_resume_removes(
        small: list[str], reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    killed = boot(["train", *small, *SETS, "--quiet", "--out", str(out)], kill_at=6)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert checkpoint_epoch(out) == 4  # the write of epoch 5's checkpoint was cut short
    (partial,) = leftovers(out)
    assert partial.name.startswith(".checkpoint.npz.") and partial.stat().st_size > 0
    with pytest.raises(zipfile.BadZipFile):  # half a zip: no central directory
        np.load(partial)
    done = boot(["train", "--resume", str(out), "--quiet"])
    assert done.returncode == 0, done.stderr
    assert re.findall(r"^epoch (\d+) ", done.stdout, re.MULTILINE)[0] == "5"
    assert not leftovers(out) and not (out / "checkpoint.npz").exists()
    assert_same_model(out / "model.npz", reference)


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_beginning(
        small: list[str], reference: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    killed = boot(["train", *small, *SETS, "--quiet", "--out", str(out)], kill_at=1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / "config.toml").is_file() and (out / "run.json").is_file()
    assert not (out / "checkpoint.npz").exists()  # only half of it, in a temporary file
    done = boot(["train", "--resume", str(out), "--quiet"])
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stdout.splitlines() if "no checkpoint" in line]
    assert said == [f"{out} has no checkpoint yet (stopped in its first epoch): starting it "
                    f"again from the beginning"]
    assert_same_model(out / "model.npz", reference)
    assert not leftovers(out)
    assert main(["train", "--resume", str(out), "--quiet"]) == 2  # finished: nothing to do
    assert capsys.readouterr().err == (f"numeral: error: nothing to resume in {out}: its run "
                                       f"finished (model.npz is there); train it again with "
                                       f"--out instead of --resume\n")


def test_a_new_run_over_an_old_ones_directory_never_resumes_the_old_checkpoint(
        small: list[str], reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    old = boot(["train", *small, "--set", "hidden=[16]", "--set", "epochs=3", "--quiet",
                "--out", str(out)], kill_at=3)  # an old run of another network, interrupted
    assert old.returncode == -signal.SIGKILL and checkpoint_epoch(out) == 1
    new = boot(["train", *small, *SETS, "--quiet", "--out", str(out)], kill_at=1)
    assert new.returncode == -signal.SIGKILL
    assert not (out / "checkpoint.npz").exists()  # the old run's went when the new one began
    done = boot(["train", "--resume", str(out), "--quiet"])
    assert done.returncode == 0, done.stderr
    assert "starting it again from the beginning" in done.stdout
    assert_same_model(out / "model.npz", reference)


def test_a_truncated_checkpoint_is_refused_in_one_line_that_says_what_to_do(
        small: list[str], reference: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    killed = boot(["train", *small, *SETS, "--quiet", "--out", str(out)], kill_at=4)
    assert killed.returncode == -signal.SIGKILL and checkpoint_epoch(out) == 2
    checkpoint = out / "checkpoint.npz"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])  # e.g. a copy cut short by a full disk
    assert main(["train", "--resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"numeral: error: cannot resume from {checkpoint}: it is truncated "
                          f"or not a checkpoint (")
    assert err.endswith("; delete it to start the run again from the beginning\n")
    checkpoint.unlink()  # as it says
    done = boot(["train", "--resume", str(out), "--quiet"])
    assert done.returncode == 0, done.stderr
    assert "starting it again from the beginning" in done.stdout
    assert_same_model(out / "model.npz", reference)


def test_a_run_killed_after_it_stopped_early_stays_stopped_when_resumed(
        subset: Dataset, tmp_path: Path) -> None:
    """The checkpoint of the epoch that stops early is written before the run stops; a kill
    right after it must not make the resumed run train on."""
    train = Split(subset.X[:1600], subset.y[:1600])
    val = Split(subset.X[1600:2000], subset.y[1600:2000])
    config = load_config("baseline", [*SETTINGS, "val_fraction=0.2", "early_stopping=2",
                                      "lr=0.005"])
    whole = Trainer(config, train, val=val, progress=False).run()
    stopped = len(whole.history)
    assert whole.stopped_early and stopped < EPOCHS

    def killed(row: dict[str, float]) -> None:  # called once the epoch is checkpointed
        if row["epoch"] == stopped:
            raise KeyboardInterrupt

    checkpoint = tmp_path / "checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, train, val=val, progress=False, checkpoint=checkpoint,
                observers=[EpochCallback(killed)]).run()
    resumed = Trainer(config, train, val=val, progress=False).run(resume=checkpoint)
    assert len(resumed.history) == stopped and resumed.stopped_early
    np.testing.assert_array_equal(resumed.model.members[0].flat, whole.model.members[0].flat)


# ------------------------------------------------------------------ numeral sweep on Ray
def holder_of(path: Path, exclude: int | None = None) -> int | None:
    """The process that has ``path`` open (a trial's log.txt: the Ray worker running it)."""
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                pid = int(fd_dir.parent.name)
                if pid != exclude:
                    return pid
        except OSError:  # gone, or not ours to read
            continue
    return None


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the worker in /proc")
def test_a_sweep_whose_ray_worker_is_killed_mid_trial_finishes_the_trial_on_rerun(
        small: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two trials of one setting under two labels; the worker of one is SIGKILLed mid-trial,
    Ray retries it (resuming from the checkpoint) and that worker is killed too; the sweep
    records the trial as crashed, and rerunning the command finishes it with the result of
    the trial nobody killed."""
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    command = ["sweep", *small[:2], *SETS, "killed: lr=0.001", "spared: lr=0.001",
               "--out", str(out)]
    trial, spared = out / "killed-seed0", out / "spared-seed0"
    log = tmp_path / "driver.txt"
    with open(log, "w") as fh:
        driver = subprocess.Popen([sys.executable, "-m", "numeral.cli", *command], stdout=fh,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(reached(trial, 3), driver, "a trial in progress", seconds=240)
            worker = holder_of(trial / "log.txt")
            assert worker is not None
            os.kill(worker, signal.SIGKILL)
            retry = wait_for(lambda: "resuming from" in (trial / "log.txt").read_text()
                             and holder_of(trial / "log.txt", exclude=worker), driver,
                             "Ray's retry of the trial, resuming it in a new worker")
            os.kill(retry, signal.SIGKILL)
            assert driver.wait(timeout=240) == 0, log.read_text()  # the other trial finished
        finally:
            if driver.poll() is None:
                driver.kill()
    crashed = json.loads((trial / "result.json").read_text())
    assert crashed["status"] == "crashed", crashed
    assert crashed["message"].startswith("WorkerCrashedError: ")
    assert crashed["message"].endswith("; run the same command again to resume the trial")
    assert "CRASHED: WorkerCrashedError" in log.read_text()
    assert (trial / "checkpoint.npz").is_file()  # what the rerun resumes from

    assert main(command) == 0
    assert "1 of 2 trials already finished" in capsys.readouterr().out
    results = [json.loads((t / "result.json").read_text()) for t in (trial, spared)]
    assert [r["status"] for r in results] == ["ok", "ok"]
    for key in ("val_error", "val_loss", "epochs"):
        assert results[0][key] == results[1][key], key
    table = (out / "sweep.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in table[1:]] == ["killed-seed0", "spared-seed0"]
    assert all(",ok," in line for line in table[1:])
    with np.load(trial / "val_probs.npz") as got, np.load(spared / "val_probs.npz") as want:
        np.testing.assert_array_equal(got["probs"], want["probs"])
    assert_same_model(trial / "model.npz", spared / "model.npz")
    assert (trial / "log.txt").read_text().count("resuming from") == 2  # the retry, the rerun
