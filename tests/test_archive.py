"""numeral read over folders, zips and glob patterns, streamed to JSON Lines or CSV, on every
core or a Ray cluster; a rerun skips what is already read, even after a SIGKILL."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numeral.archive import expand, read_archive
from numeral.cli import main
from numeral.data import Dataset, split
from numeral.data.compose import compose_number

N_FILES, N_MEMBERS = 14, 12


@pytest.fixture(scope="module")
def archive(tibetan: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of PNGs in a subfolder, and a zip of PNGs with one damaged member: numbers of
    3 numerals by writers the model never saw, their truth in their names."""
    root = tmp_path_factory.mktemp("archive")
    _, test = split(tibetan.y, tibetan.groups, "sheet", 0.2, 0)
    rng = np.random.default_rng(0)
    (root / "scans" / "day1").mkdir(parents=True)
    with zipfile.ZipFile(root / "forms.zip", "w") as zf:
        for i in range(N_FILES + N_MEMBERS):
            pick = rng.choice(test, 3, replace=False)
            buffer = io.BytesIO()
            Image.fromarray(compose_number(tibetan.images[pick], rng)).save(buffer, "PNG")
            name = f"{i:03d}-{''.join(map(str, tibetan.y[pick]))}.png"
            if i < N_FILES:
                (root / "scans" / "day1" / name).write_bytes(buffer.getvalue())
            else:
                zf.writestr(f"forms/{name}", buffer.getvalue())
        zf.writestr("forms/damaged.png", b"\x89PNG not really")
        zf.writestr("forms/notes.txt", "not an image")
    return root


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folders_zips_and_patterns_stream_one_line_per_image(
        archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.jsonl"
    sources = [str(archive / "scans"), str(archive / "forms.zip"),
               str(archive / "scans" / "**" / "*.png")]  # the pattern repeats the folder
    assert len(expand(sources)) == N_FILES + N_MEMBERS + 1  # each image once; no notes.txt
    assert main(["read", *sources, "--out", str(out), "--jobs", "2", "--quiet"]) == 2
    assert "26 images read, 1 unreadable" in capsys.readouterr().out
    results = lines(out)
    assert len(results) == N_FILES + N_MEMBERS + 1
    assert len({r["image"] for r in results}) == len(results)
    bad = [r for r in results if "error" in r]
    assert len(bad) == 1 and bad[0]["image"].endswith("forms.zip:forms/damaged.png")
    assert "not a readable image" in bad[0]["error"]
    right = [r["text"] == Path(r["image"]).stem.split("-")[1] for r in results if "text" in r]
    assert sum(right) >= 22  # measured: 24 of 26


def test_a_rerun_skips_what_is_read_and_repairs_a_cut_line(archive: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl"
    read_archive([archive / "forms.zip"], whole, jobs=1, progress=False)
    out = tmp_path / "part.jsonl"
    text = whole.read_text().splitlines(keepends=True)
    out.write_text("".join(text[:5]) + text[5][:40])  # stopped while writing line 6
    logged: list[str] = []
    counts = read_archive([archive / "forms.zip"], out, jobs=1, progress=False,
                          log=logged.append)
    assert counts == {"images": N_MEMBERS + 1, "skipped": 5, "read": N_MEMBERS - 5,
                      "failed": 1}
    assert logged == [f"5 of {N_MEMBERS + 1} images are already in {out}: reading the others"]
    assert lines(out) == lines(whole)  # the same lines, each image once, in the same order


def test_csv_and_one_or_two_processes_give_the_same_readings(archive: Path,
                                                              tmp_path: Path) -> None:
    read_archive([archive / "scans"], tmp_path / "one.csv", jobs=1, progress=False)
    read_archive([archive / "scans"], tmp_path / "two.csv", jobs=2, progress=False)
    one = list(csv.DictReader((tmp_path / "one.csv").open()))
    two = list(csv.DictReader((tmp_path / "two.csv").open()))
    assert len(one) == len(two) == N_FILES
    assert set(one[0]) == {"image", "text", "tibetan", "confidence", "numerals", "reason",
                           "error"} and one[0]["numerals"] == "3"
    for a, b in zip(one, two, strict=True):  # a worker uses one BLAS thread: rounding differs
        assert abs(float(a.pop("confidence")) - float(b.pop("confidence"))) < 1e-5
        assert a == b


def test_a_run_killed_with_sigkill_continues_where_it_stopped(archive: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "killed.jsonl"
    command = [sys.executable, "-m", "numeral.cli", "read", str(archive / "scans"),
               str(archive / "forms.zip"), "--out", str(out), "--jobs", "2", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while (not out.is_file() or len(out.read_bytes().splitlines()) < 6) and \
            time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the command and its workers, at once
    process.wait()
    first = out.read_bytes().count(b"\n")
    assert 6 <= first < N_FILES + N_MEMBERS + 1, first
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and f"{first} of 27 images are already in" in done.stdout
    results = lines(out)
    assert len(results) == N_FILES + N_MEMBERS + 1 == len({r["image"] for r in results})


def test_a_local_ray_cluster_reads_the_same(archive: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    read_archive([archive / "forms.zip"], tmp_path / "here.jsonl", jobs=1, progress=False)
    read_archive([archive / "forms.zip"], tmp_path / "ray.jsonl", address="local",
                 progress=False)
    here, there = lines(tmp_path / "here.jsonl"), lines(tmp_path / "ray.jsonl")
    assert [r.get("text") for r in there] == [r.get("text") for r in here]
    assert [r["image"] for r in there] == [r["image"] for r in here]


def test_bad_sources_are_one_line_errors(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 cut")
    (tmp_path / "other.jsonl").write_text("not json\n")
    (tmp_path / "x.png").write_bytes(b"")
    for args, message in (
            ([str(tmp_path / "empty")], "holds no images"),
            ([str(tmp_path / "nothing-*.png")], "matches no images"),
            ([str(tmp_path / "broken.zip")], "damaged zip archive"),
            ([str(tmp_path / "x.png"), "--out", str(tmp_path / "other.jsonl")],
             "line 1, is not a result of numeral read"),
            ([str(tmp_path / "x.png"), "--jobs", "0"], "--jobs must be at least 1")):
        assert main(["read", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
