#!/usr/bin/env python3
"""Project tasks that need nothing but Python 3.11+: they make ``.venv`` themselves.

    python3 tasks.py report   # train the `best` preset on TibetanMNIST, write runs/best/report.html
    python3 tasks.py test     # the whole test suite
    python3 tasks.py lint     # ruff and mypy
    python3 tasks.py bench    # the benchmarks (PyTorch comparison when torch is installed)
    python3 tasks.py ship     # train the shipped model on both splits, write numeral/models/
    python3 tasks.py docs     # the documentation site (README, docs/, course, API) in build/docs/

Data: ``$NUMERAL_DATA`` if set, else ``../shared/data/tibetan-mnist/TibetanMNIST.zip``
if present, else `numeral data download` fetches TibetanMNIST into the user cache.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
SHARED_DATA = ROOT.parent / "shared" / "data" / "tibetan-mnist" / "TibetanMNIST.zip"


def run(*command: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(map(str, command)), flush=True)
    result = subprocess.run([str(c) for c in command], cwd=ROOT, env=env)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    """Create .venv and install numeral with its development extras, once per pyproject."""
    stamp = VENV / ".installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    stamp.write_text(digest)


def data_env() -> dict[str, str]:
    env = dict(os.environ)
    if "NUMERAL_DATA" not in env and SHARED_DATA.is_file():
        env["NUMERAL_DATA"] = str(SHARED_DATA)
    return env


def task_report(args: list[str]) -> None:
    env = data_env()
    if "NUMERAL_DATA" not in env:
        run(BIN / "numeral", "data", "download", env=env)
    run(BIN / "numeral", "train", "--config", "best", "--out", "runs/best", *args, env=env)


def task_test(args: list[str]) -> None:
    run(PYTHON, "-m", "pytest", *args, env=data_env())


def task_lint(args: list[str]) -> None:
    run(BIN / "ruff", "check", "numeral", "tests", "benchmarks", "tasks.py")
    run(BIN / "mypy")


def task_bench(args: list[str]) -> None:
    env = data_env()
    for script in ("bench_core.py", "bench_data.py"):
        run(PYTHON, f"benchmarks/{script}", *args, env=env)


def task_ship(args: list[str]) -> None:
    """Train the shipped model's recipe on both splits (unless done) and write it."""
    env = data_env()
    runs = [ROOT / "runs" / f"tibetan-{split}" for split in ("random", "sheet")]
    for split, out in zip(("random", "sheet"), runs, strict=True):
        if not (out / "model.npz").is_file():
            run(BIN / "numeral", "train", "--config", "tibetan", "--split", split, "--quiet",
                "--out", out, *args, env=env)
    run(PYTHON, "-m", "numeral.models.ship", *runs, env=env)


def task_docs(args: list[str]) -> None:
    """Build the documentation site into build/docs/ (warnings are errors), to open from disk."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # Material's banner about MkDocs 2
    run(PYTHON, "-m", "mkdocs", "build", "--strict", *args, env=env)
    print(f"open {ROOT / 'build' / 'docs' / 'index.html'} (works from disk, no server needed)")


TASKS = {"report": task_report, "test": task_test, "lint": task_lint, "bench": task_bench,
         "ship": task_ship, "docs": task_docs}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        print(f"usage: python3 tasks.py {{{','.join(TASKS)}}} [args...]", file=sys.stderr)
        sys.exit(2)
    ensure_venv()
    TASKS[sys.argv[1]](sys.argv[2:])
