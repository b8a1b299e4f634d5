"""How fast the exported page is: first prediction after opening, and each drawing update.

    NUMERAL_DATA=…/TibetanMNIST.zip python benchmarks/bench_web.py [MODEL.npz ...]

Without models it measures the architectures of the baseline, cnn and best presets (trained
for one epoch on 2,000 images: the time of a forward pass depends on the architecture, not on
how well it was trained). Each model is exported with ``numeral export --web``, served as plain
files, and opened in a fresh headless Chromium (Debian's ``chromium``), where a numeral is
drawn with 60 mouse moves; the page records when its first prediction was ready (ms since
navigation started: loading model.js, decoding the weights, one forward pass) and how long each
recognition took (preprocessing excluded; ``performance.now()`` around ``numeral.predict``).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import numeral
from numeral.data import load, resolve_data_path
from numeral.export.web import export_web
from numeral.train.config import load_config, with_epochs
from numeral.train.loop import Split, Trainer


def briefly_trained(name: str) -> Any:
    ds = load(resolve_data_path(None))
    keep = np.random.default_rng(0).permutation(len(ds))[:2000]
    config = with_epochs(load_config(name), 1).replace(batch_size=200)
    return Trainer(config, Split(ds.X[keep], ds.y[keep]), n_classes=10, progress=False).run().model


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def measure(model: Any, folder: Path) -> tuple[float, float, float, int]:
    from playwright.sync_api import sync_playwright

    export_web(model, folder)
    size = (folder / "model.js").stat().st_size
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            page.wait_for_selector("body[data-ready='1']")
            box = page.locator("#pad").bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + 100, box["y"] + 40)
            page.mouse.down()
            for step in range(60):  # a loop: down, across, up
                angle = step / 60 * 2 * np.pi
                page.mouse.move(box["x"] + 140 + 80 * np.sin(angle),
                                box["y"] + 140 - 100 * np.cos(angle))
                page.wait_for_timeout(16)
            page.mouse.up()
            page.wait_for_timeout(300)
            timings = page.evaluate("window.numeralState.timings")
            browser.close()
    finally:
        server.shutdown()
    updates = timings["updates"]
    return timings["ready"], statistics.median(updates), max(updates), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", type=Path)
    args = parser.parse_args()
    models = ({str(p): numeral.load_model(str(p)) for p in args.models} if args.models else
              {f"{name} preset": briefly_trained(name) for name in ("baseline", "cnn", "best")})
    print("| model | model.js | first prediction | update, median | update, slowest |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model) in enumerate(models.items()):
            ready, median, worst, size = measure(model, Path(tmp) / str(i))
            print(f"| {name} | {size / 1e6:.1f} MB | {ready:.0f} ms | {median:.1f} ms | "
                  f"{worst:.1f} ms |", flush=True)


if __name__ == "__main__":
    main()
