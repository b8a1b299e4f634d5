"""Run ``numeral serve`` in a child process on a free port of 127.0.0.1 (tests, benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from numeral.errors import NumeralError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_server(model_path: str | Path, timeout: float = 30.0, workers: int = 1,
                 checkout: Path | None = None) -> Iterator[str]:
    """Start the server for ``model_path`` (in ``workers`` processes), wait until /api/health
    answers, yield its URL; stop it on exit. ``checkout``: run the numeral of that source
    tree instead of this one (a benchmark's side-by-side comparison)."""
    with local_server_process(model_path, timeout, workers, checkout) as (url, _):
        yield url


@contextmanager
def local_server_process(model_path: str | Path, timeout: float = 30.0, workers: int = 1,
                         checkout: Path | None = None
                         ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`local_server`, yielding the server's process too (to measure its memory)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = None
    if checkout is not None:  # its package first, for this process and its workers
        paths = [str(Path(checkout).resolve()), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    process = subprocess.Popen([sys.executable, "-m", "numeral.cli", "serve", str(model_path),
                                "--port", str(port), "--workers", str(workers)],
                               cwd=checkout, env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/health", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise NumeralError(f"numeral serve {model_path} did not start") from None
                time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)
