"""The live training page: ``numeral train ... --live [PORT]``.

    GET /             the page (numeral/serve/static/live.html, no CDN, no library)
    GET /events       server-sent events: ``setup`` once (classes, the shown test images),
                      ``epoch`` after every epoch, ``done`` when the model is saved
    GET /api/state    every event so far as JSON (a page opened late catches up from /events
                      too: each connection first receives everything already sent)

The training thread only copies the weights after each epoch (:meth:`LiveView.epoch`); a
worker thread runs the probe (numeral.train.watch.Probe: latent features, histograms,
guesses on fixed test images) on its own copy of the network and publishes the event, and
uvicorn serves it from a third thread. The probe shares the cores with training, so it runs
only while its time so far stays under ``BUDGET`` (3 %) of the training time: on fast epochs
the pictures are drawn every few epochs (the numbers always), and once more at the end. A
page that closes, or never opens, changes nothing for the run; the server stops a moment
after the run has finished.
"""

from __future__ import annotations

import asyncio
import copy
import json
import queue
import threading
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from numeral.errors import NumeralError
from numeral.nn import Ensemble, Network
from numeral.train.config import member_epochs
from numeral.train.loop import set_weights, weights_of
from numeral.train.watch import Probe

HEARTBEAT_SECONDS = 15.0
BUDGET = 0.03  # the share of the training time the page's pictures may take (2 cores: the
# probe runs beside training on the same cores, so its time is the run's loss)


def rounded(values: np.ndarray, digits: int = 4) -> list[Any]:
    return list(np.round(values.astype(np.float64), digits).tolist())


class LiveView:
    """An observer that serves the live page on ``host:port`` (port 0: any free port)."""

    def __init__(self, port: int = 8001, host: str = "127.0.0.1",
                 log: Any = print, linger: float = 1.0) -> None:
        self.host, self.port = host, port
        self.log = log
        self.linger = linger  # seconds the server stays up after the run, to send "done"
        self.events: list[str] = []  # each a complete SSE message
        self.clients: set[asyncio.Queue[int]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.work: queue.Queue[Any] = queue.Queue()
        self.probe: Probe | None = None
        self.nets: dict[int, Network] = {}  # the worker's own copy of each committee member
        self.worker: threading.Thread | None = None
        self.spent = 0.0  # seconds the probe has taken
        self.trained = 0.0  # seconds of training so far (the rows' "seconds")
        # (member, weights) whose pictures were skipped for time
        self.unseen: tuple[int, dict[str, np.ndarray]] | None = None
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.url = ""

    # ------------------------------------------------------------ the server
    def app(self) -> FastAPI:
        app = FastAPI(title="numeral live training", docs_url=None, redoc_url=None)
        page = (resources.files("numeral.serve") / "static" / "live.html").read_text()

        @app.get("/", response_class=HTMLResponse)
        def index() -> str:
            return page

        @app.get("/api/state")
        def state() -> JSONResponse:
            return JSONResponse([json.loads(e.split("data: ", 1)[1]) for e in self.events])

        @app.get("/events")
        async def events(request: Request) -> StreamingResponse:
            return StreamingResponse(self.stream(request), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})

        return app

    async def stream(self, request: Request) -> AsyncIterator[str]:
        """Everything sent so far, then each new event as it is published."""
        self.loop = asyncio.get_running_loop()  # the server's loop, which publish() wakes
        wake: asyncio.Queue[int] = asyncio.Queue()
        self.clients.add(wake)
        sent = 0
        try:
            while True:
                while sent < len(self.events):
                    yield self.events[sent]
                    sent += 1
                try:
                    await asyncio.wait_for(wake.get(), timeout=HEARTBEAT_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": heartbeat\n\n"
        finally:
            self.clients.discard(wake)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Add an event (from any thread) and wake every connected page."""
        self.events.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n")
        if self.loop is not None:
            for wake in list(self.clients):
                self.loop.call_soon_threadsafe(wake.put_nowait, len(self.events))

    def serve(self) -> None:
        """Start uvicorn in a thread and wait until it listens."""
        import uvicorn

        config = uvicorn.Config(self.app(), host=self.host, port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="numeral-live",
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise NumeralError(f"the live page could not listen on {self.host}:{self.port}"
                                   f" (in use?); give another port: --live PORT")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{port}/"
        self.log(f"live page: {self.url}")

    # ------------------------------------------------------------ the observer
    def start(self, config: Any, data: Any) -> None:
        self.probe = Probe.of(data, config.latent_layer, config.split_seed)
        images = self.probe.shown_images
        self.serve()
        self.worker = threading.Thread(target=self.run_worker, name="numeral-live-probe",
                                       daemon=True)
        self.worker.start()
        self.publish("setup", {
            "name": config.name, "epochs": member_epochs(config), "members": config.ensemble,
            "classes": list(data.train.class_names),
            "shown": {"labels": self.probe.shown_y.tolist(),
                      "images": np.round(255 * images).astype(int).tolist()},
            "latent_labels": self.probe.y.tolist()})

    def epoch(self, row: dict[str, float], net: Network) -> None:
        """In the training thread: copy the weights (and once per member, the network: the
        members of a committee may differ) and return."""
        member = int(row.get("member", 0))
        if member not in self.nets:
            self.nets[member] = copy.deepcopy(net)
        self.work.put((dict(row), (member, weights_of(net))))

    def run_worker(self) -> None:
        """Publish each epoch: its numbers always, its pictures when the probe's time so far
        stays within BUDGET of the training time (and the worker is not behind)."""
        while True:
            item = self.work.get()
            if item is None:
                return
            row, weights = item
            self.trained += float(row.get("seconds", 0.0))
            behind = not self.work.empty()
            if behind or self.spent > BUDGET * self.trained:
                self.publish("epoch", {"row": row})  # the numbers now, pictures later
                self.unseen = weights
                continue
            self.publish("epoch", {"row": row, **self.pictures(weights)})
            self.unseen = None

    def pictures(self, weights: tuple[int, dict[str, np.ndarray]]) -> dict[str, Any]:
        """The probe's view of a member's weights, as JSON-ready lists (never raises)."""
        assert self.probe is not None
        started = time.perf_counter()
        try:
            member, values = weights
            set_weights(self.nets[member], values)
            view = self.probe.measure(self.nets[member])
        except Exception as exc:  # the page must never stop the run
            return {"problem": f"{type(exc).__name__}: {exc}"}
        finally:
            self.spent += time.perf_counter() - started
        return {"latent": rounded(view.latent, 3), "latent_layer": view.latent_layer,
                "histograms": [{"activation": name, "counts": counts.tolist(),
                                "edges": rounded(edges)}
                               for name, counts, edges in view.histograms],
                "guesses": view.guesses.tolist(), "confidence": rounded(view.confidence, 3)}

    def finish(self, model: Network | Ensemble, data: Any, evaluation: dict[str, Any],
               out: Path) -> None:
        self.work.put(None)
        if self.worker is not None:
            self.worker.join()
        if self.unseen is not None:  # the last epoch's pictures, skipped for time
            self.publish("view", self.pictures(self.unseen))
        self.publish("done", {"accuracy": evaluation.get("accuracy"),
                              "report": str(out / "report.html")})
        self.close()

    def close(self) -> None:
        """Stop the server (after ``linger`` seconds, so pages receive the last event)."""
        if self.server is None:
            return
        time.sleep(self.linger)
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.server = None
