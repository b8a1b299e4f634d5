"""numeral sweep: the plan, trials on a local Ray (2 CPUs), resume, failures, Ctrl-C, committees."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from numeral.cli import main
from numeral.errors import ConfigError, NumeralError
from numeral.train import sweep as sw
from numeral.train.config import load_config

TINY = ["--set", "hidden=[16]", "--set", "epochs=2", "--set", "batch_size=512"]


# ------------------------------------------------------------------ the plan (no Ray)
def test_grid_values_are_toml_and_lists_stay_whole() -> None:
    assert sw.parse_grid("hidden=[320,160],[64], [8]") == ("hidden", [[320, 160], [64], [8]])
    assert sw.parse_grid("l2=0,1e-4") == ("l2", [0, 1e-4])
    assert sw.parse_grid('activation="relu",tanh') == ("activation", ["relu", "tanh"])
    for bad in ("l2", "l2=", "=1,2", "l2=1,,2"):
        with pytest.raises(ConfigError, match="--grid"):
            sw.parse_grid(bad)


def test_random_draws_are_repeatable_and_in_range() -> None:
    lr, width = sw.parse_random("lr=1e-4:1e-2:log"), sw.parse_random("batch_size=16:256")
    assert lr.log and not lr.integer and width.integer and not width.log
    base = load_config("baseline")
    first = sw.plan(base, draws=[lr, width], trials=6)
    again = sw.plan(base, draws=[lr, width], trials=6)
    assert [t.settings for t in first] == [t.settings for t in again]  # resumable
    assert all(1e-4 <= t.settings["lr"] <= 1e-2 for t in first)
    assert all(isinstance(t.settings["batch_size"], int) for t in first)
    assert len({t.settings["lr"] for t in first}) == 6
    other = sw.plan(base, draws=[lr, width], trials=6, draw_seed=1)
    assert [t.settings for t in other] != [t.settings for t in first]
    for bad, why in (("lr=1:0.1", "low < high"), ("lr=0:1:log", "low > 0"),
                     ("lr=a:b", "key=low:high"), ("lr=1:2:ln", "key=low:high")):
        with pytest.raises(ConfigError, match=why):
            sw.parse_random(bad)
    with pytest.raises(ConfigError, match="--trials"):
        sw.plan(base, draws=[lr])


def test_the_plan_is_variants_times_grid_times_seeds_each_checked_up_front() -> None:
    base = load_config("baseline")
    variants = [sw.parse_variant("wide: hidden=[64]"), sw.parse_variant("deep: hidden=[8,8]")]
    trials = sw.plan(base, variants=variants, grid=[sw.parse_grid("lr=0.1,0.01")], seeds=2)
    assert [t.name for t in trials[:4]] == ["wide,lr=0.1-seed0", "wide,lr=0.1-seed1",
                                            "wide,lr=0.01-seed0", "wide,lr=0.01-seed1"]
    assert len(trials) == 8 and trials[-1].settings == {"hidden": [8, 8], "lr": 0.01}
    config = sw.trial_config(base, trials[0].settings, trials[0].seed + 1)
    assert config["val_fraction"] == sw.DEFAULT_VAL_FRACTION and config["seed"] == 1
    kept = sw.trial_config(base.replace(val_fraction=0.1), {}, 0)
    assert kept["val_fraction"] == 0.1
    with pytest.raises(ConfigError, match=r"'lr' \(sweep trial lr=-1-seed0\)"):
        sw.plan(base, grid=[sw.parse_grid("lr=0.1,-1")])
    with pytest.raises(ConfigError, match="swept twice"):
        sw.plan(base, grid=[sw.parse_grid("lr=1"), sw.parse_grid("lr=2")])
    with pytest.raises(ConfigError, match="both be called"):
        sw.plan(base, variants=[sw.parse_variant("a: lr=1"), sw.parse_variant("a: lr=2")])
    with pytest.raises(ConfigError, match="label: key=value"):
        sw.parse_variant("no colon lr=1")


def test_trial_names_are_safe_folder_names() -> None:
    name = sw.setting_name("my label", {"layers": ["conv 8 3", "relu"] * 20}, ["layers"])
    assert "/" not in name and " " not in name and len(name) <= 80
    other = sw.setting_name("my label", {"layers": ["conv 8 5", "relu"] * 20}, ["layers"])
    assert other != name  # the hash keeps long names apart


# ------------------------------------------------------------------ committees (no Ray)
def fake_sweep(folder: Path, probs: dict[str, np.ndarray], y: np.ndarray,
               split: str = "random") -> Path:
    folder.mkdir(parents=True)
    trials = [{"name": n, "setting": n.rpartition("-seed")[0], "seed": 0, "settings": {}}
              for n in probs]
    (folder / "sweep.json").write_text(json.dumps({
        "command": {}, "base": load_config("baseline").to_dict(), "source": {},
        "metric": "val_error", "swept": [], "labelled": True, "trials": trials}))
    for name, p in probs.items():
        (folder / name).mkdir()
        np.savez(folder / name / "val_probs.npz", probs=p, y=y, split=np.array(split))
    return folder


def one_hot(classes: list[int], weight: float = 1.0) -> np.ndarray:
    return weight * np.eye(3)[classes]


Y = np.array([0, 1, 2, 0])


def test_committees_mix_trials_of_two_sweeps(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # a misreads images 2 and 3, b only image 3 (less sure of it), c image 2
    first = fake_sweep(tmp_path / "one", {"a-seed0": one_hot([0, 1, 1, 1], 0.9)}, Y)
    second = fake_sweep(tmp_path / "two", {"b-seed0": one_hot([0, 1, 2, 2], 0.5) + 0.1,
                                           "c-seed0": one_hot([0, 1, 0, 0])}, Y)
    assert main(["sweep", "--out", str(first), "--include", str(second),
                 "--committee", "b-seed0+c-seed0", "--committee", "a-seed0+b-seed0"]) == 0
    out = capsys.readouterr().out
    assert "| b-seed0 + c-seed0 | 2 | 25.00 % (1 of 4) |" in out
    assert "| a-seed0 + b-seed0 | 2 | 50.00 % (2 of 4) |" in out
    assert "| every trial | 3 |" in out


def test_committees_of_other_images_or_unknown_trials_are_refused(tmp_path: Path) -> None:
    first = fake_sweep(tmp_path / "one", {"a-seed0": one_hot([0, 1, 2, 0])}, Y)
    other = fake_sweep(tmp_path / "other", {"b-seed0": one_hot([0, 1, 2, 0])},
                       np.array([1, 1, 2, 0]))
    sheet = fake_sweep(tmp_path / "sheet", {"c-seed0": one_hot([0, 1, 2, 0])}, Y, "sheet")
    with pytest.raises(NumeralError, match="other validation images"):
        sw.validation_probabilities([first, other])
    with pytest.raises(NumeralError, match="other validation images"):
        sw.validation_probabilities([first, sheet])
    with pytest.raises(NumeralError, match="trial a-seed0 is in two"):
        sw.validation_probabilities([first, first])
    with pytest.raises(NumeralError, match="not a sweep folder"):
        sw.validation_probabilities([tmp_path])
    with pytest.raises(NumeralError, match="'nope', which is no finished trial"):
        sw.committee_report(sw.validation_probabilities([first]), ["a-seed0+nope"])


def test_every_committee_scores_each_mix_of_settings_and_the_benchmark_prints_it(
        tmp_path: Path) -> None:
    # a misreads images 2 and 3 (both seeds), b image 3 (seed0) or none (seed1)
    folder = fake_sweep(tmp_path / "s", {"a-seed0": one_hot([0, 1, 1, 1], 0.9),
                                         "a-seed1": one_hot([0, 1, 1, 1], 0.8),
                                         "b-seed0": one_hot([0, 1, 2, 2]),
                                         "b-seed1": one_hot([0, 1, 2, 0])}, Y)
    saved = sw.validation_probabilities([folder])
    probs = {k: v for k, v in saved.items() if k not in ("y", "split")}
    assert sw.by_setting(list(probs)) == {"a": ["a-seed0", "a-seed1"],
                                          "b": ["b-seed0", "b-seed1"]}
    table = dict((tuple(c.values()), e) for c, e in sw.every_committee(probs, Y, ["a", "b"], 2))
    assert table[(1, 0)] == [2, 2] and table[(0, 1)] == [1, 0] and table[(2, 2)] == [1]
    assert len(table) == 8  # (0..2) x (0..2), not (0, 0)
    with pytest.raises(NumeralError, match="no finished trial of setting 'c'"):
        sw.every_committee(probs, Y, ["c"])
    done = subprocess.run([sys.executable, "benchmarks/committees.py", str(folder), "--max",
                           "1"], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert "| 1 a + 1 b | 0.5 (0 - 1) | 4 |" in done.stdout, done.stdout  # b outvotes a


def test_the_sweep_package_draws_no_figure_itself() -> None:
    """numeral.train may not import numeral.viz (docs/architecture.md): the figure and the
    gallery are drawn by functions the caller passes in."""
    import ast

    folder = Path(sw.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
                    a.name for a in node.names]
                assert not any(n.startswith(("numeral.viz", "numeral.report")) for n in names), \
                    path


def test_without_ray_the_command_says_how_to_install_it(
        tmp_path: Path, tibetan_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["sweep", "--data", str(tibetan_path), *TINY, "--grid", "lr=0.1,0.01",
                 "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'numeral[sweep]'" in err and err.count("\n") == 1


# ------------------------------------------------------------------ on a local Ray
@pytest.fixture(scope="module")
def study_sweep(tmp_path_factory: pytest.TempPathFactory, tibetan_path: Path) -> Path:
    """A study's two variants times two learning rates, one of which diverges."""
    folder = tmp_path_factory.mktemp("sweep")
    study = folder / "study.toml"
    study.write_text("hidden = [16]\nepochs = 2\nbatch_size = 512\n"
                     "[study.none]\n[study.l2]\nl2 = 1e-3\n")
    out = folder / "out"
    assert main(["sweep", "--config", str(study), "--data", str(tibetan_path),
                 "--grid", "lr=0.01,1e30", "--out", str(out), "--committee"]) == 0
    return out


def read_table(out: Path) -> list[dict[str, str]]:
    with open(out / "sweep.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_sweep_scores_every_trial_on_validation_data_and_records_failures(
        study_sweep: Path, tibetan_path: Path) -> None:
    table = read_table(study_sweep)
    assert [r["trial"] for r in table] == ["none,lr=0.01-seed0", "none,lr=1e+30-seed0",
                                           "l2,lr=0.01-seed0", "l2,lr=1e+30-seed0"]
    ok = [r for r in table if r["status"] == "ok"]
    failed = [r for r in table if r["status"] == "failed"]
    assert len(ok) == 2 and len(failed) == 2
    assert all("diverged" in r["message"] for r in failed)
    assert all(0 < float(r["val_error"]) < 0.5 and r["epochs"] == "2" for r in ok)
    for row in ok:  # each trial is a usual run directory, scored on its validation split
        run = study_sweep / row["trial"]
        for name in ("model.npz", "metrics.csv", "report.html", "evaluation.json"):
            assert (run / name).is_file(), name
        sizes = json.loads((run / "run.json").read_text())["sizes"]
        with np.load(run / "val_probs.npz") as saved:
            assert saved["probs"].shape == (sizes["val"], 10)
            wrong = float(np.mean(saved["probs"].argmax(1) != saved["y"]))
        assert wrong == pytest.approx(float(row["val_error"]))
        assert 0.15 < sizes["val"] / (sizes["train"] + sizes["val"]) < 0.25
    best = load_config(str(study_sweep / "best.toml"))
    winner = min(ok, key=lambda r: float(r["val_error"]))
    assert best.lr == 0.01 and best.l2 == (1e-3 if winner["setting"].startswith("l2") else 0)
    assert best.val_fraction == 0.0  # the base config's own, for the final training
    assert (study_sweep / "sweep.png").stat().st_size > 10_000
    assert "Regularisation against" in (study_sweep / "report.html").read_text()


def test_running_the_same_sweep_again_skips_finished_trials(
        study_sweep: Path, tibetan_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = read_table(study_sweep)
    started = time.perf_counter()
    assert main(["sweep", "--config", str(study_sweep.parent / "study.toml"), "--data",
                 str(tibetan_path), "--grid", "lr=0.01,1e30", "--out", str(study_sweep)]) == 0
    assert time.perf_counter() - started < 10  # no training, no Ray
    assert "4 of 4 trials already finished" in capsys.readouterr().out
    assert read_table(study_sweep) == before
    assert main(["sweep", "--config", str(study_sweep.parent / "study.toml"), "--data",
                 str(tibetan_path), "--grid", "lr=0.01", "--set", "epochs=3",
                 "--out", str(study_sweep)]) == 2  # not mixed with the other config's trials
    assert "holds a sweep of another config (epochs was 2, is 3)" in capsys.readouterr().err


def test_more_cpus_per_trial_than_ray_has_is_refused(
        tmp_path: Path, tibetan_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--data", str(tibetan_path), *TINY, "--grid", "lr=0.1",
                 "--cpus-per-trial", "4096", "--out", str(tmp_path / "s")]) == 2
    assert "--cpus-per-trial 4096 is more than" in capsys.readouterr().err


def test_ctrl_c_keeps_finished_trials_and_the_next_run_finishes_the_rest(
        tmp_path: Path, tibetan_path: Path) -> None:
    out = tmp_path / "s"
    command = [sys.executable, "-m", "numeral.cli", "sweep", "--data", str(tibetan_path),
               "--set", "hidden=[256]", "--set", "batch_size=32", "--grid", "epochs=1,6",
               "--cpus-per-trial", "2", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 300  # Ray's start and the first trial, on a busy machine
    while not (out / "epochs=6-seed0" / "checkpoint.npz").exists():  # the long trial started
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    assert (out / "epochs=1-seed0" / "result.json").is_file()  # one CPU pair: one at a time
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted: 1 of 2 trials are finished" in err and "Traceback" not in err
    assert not (out / "epochs=6-seed0" / "result.json").exists()
    assert main(command[3:]) == 0
    table = read_table(out)
    assert [r["status"] for r in table] == ["ok", "ok"] and table[1]["epochs"] == "6"
    log = (out / "epochs=6-seed0" / "log.txt").read_text()
    assert "resum" in log.lower()

