"""A bounded load test of ``POST /api/predict`` on 127.0.0.1, and of a crowd sending photos.

    python benchmarks/bench_serve.py runs/best/model.npz [--clients 50] [--seconds 10]
    python benchmarks/bench_serve.py tibetan --crowd [--clients 50] [--photo-mb 10]

Starts ``numeral serve`` on a free local port and drives it with asyncio clients
over keep-alive HTTP/1.1 connections, each posting a 280x280 PNG canvas (a real
numeral from the data when NUMERAL_DATA is set, else a drawn ring):

* paced: ``--clients`` users, each sending one request every ``--interval``
  seconds (about what the page does while someone draws: it debounces at
  150 ms and waits for each answer) -> latency p50 / p99 under that load;
* saturated: the same clients sending back to back -> the server's maximum
  requests per second (and the queueing latency that comes with it).

* crowd (``--crowd``): ``--clients`` clients each posting a phone photo of about
  ``--photo-mb`` MB (a 48-megapixel JPEG of a written number) to ``/api/read``, while 8
  others post canvases to ``/api/predict`` and one asks ``/api/health`` every 50 ms ->
  the statuses of every answer, health's latency, the photos' latency and the server
  process's peak memory (VmHWM).

* floor (``--floor``): the same load against a FastAPI app on the same uvicorn that reads
  the body and answers a fixed JSON, with no decoding and no network: what HTTP, ASGI and
  FastAPI alone allow on this machine, the ceiling of any numeral server built on them.
* sweep (``--sweep 1,5,20,50,100 --figure F.png``): the saturated run for each number of
  clients -> a figure of throughput and latency against the number of clients.
* side by side (``--against DIR --rounds N``): DIR is another checkout of numeral (a git
  worktree of an older commit); its server and this one's, each in a fresh process, in turn,
  for N rounds -> each run's line and the ratio of the saturated medians. A model given by
  name (``tibetan``) is each checkout's own shipped file; a path is the same file for both.

``--body grey|rgba|json``: what is posted (a grey PNG; an opaque RGBA PNG, as a browser's
canvas sends it; the 28x28 input as JSON). Each line gives the server's CPU time a request
(its processes' user + system time over the run) and the load generator's own.

Every loop is bounded in requests and in time, and only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, Response  # the floor app's (annotations resolved here)
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numeral.serve.local import free_port, local_server_process

MAX_REQUESTS = 200_000


def canvas_png(mode: str = "L") -> bytes:
    """A 280x280 white-on-black canvas, a grey PNG; with mode "RGBA", opaque RGBA as a
    browser's canvas.toBlob writes it (the page's own uploads)."""
    data = os.environ.get("NUMERAL_DATA", "")
    if data.endswith(".zip") and Path(data).is_file():
        with zipfile.ZipFile(data) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".jpg"))
            image = Image.open(io.BytesIO(zf.read(name))).convert("L").resize((280, 280))
    else:
        image = Image.new("L", (280, 280))
        ImageDraw.Draw(image).ellipse((60, 40, 220, 240), outline=255, width=26)
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


class Answers(asyncio.Protocol):
    """One keep-alive connection's HTTP/1.1 responses, read off the socket as they arrive: a
    protocol rather than asyncio streams, so that the load generator's own cost stays small
    beside the server's (a header found in the buffer, not one coroutine step a line)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.end: int | None = None  # where the response being read ends in the buffer
        self.status = 0
        self.waiting: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.end is None:
                head_end = self.buffer.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = bytes(self.buffer[: head_end + 2]).lower()  # each line ends in CRLF
                self.status = int(head[9:12])
                at = head.find(b"content-length:")
                length = int(head[at + 15 : head.find(b"\r\n", at)]) if at >= 0 else 0
                self.end = head_end + 4 + length
            if len(self.buffer) < self.end:
                return
            del self.buffer[: self.end]
            self.end = None
            if self.waiting is not None and not self.waiting.done():
                self.waiting.set_result(self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True  # (the server closes a connection idle for 5 s: the client reopens)
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(exc or ConnectionError("the server closed the connection"))


async def client(port: int, body: bytes, interval: float, stop: float,
                 latencies: list[float], errors: list[int], path: str = "/api/predict",
                 content_type: str = "image/png", limit: int = MAX_REQUESTS,
                 statuses: list[int] | None = None) -> None:
    loop = asyncio.get_running_loop()
    transport, answers = await loop.create_connection(Answers, "127.0.0.1", port)
    method = b"GET" if path == "/api/health" else b"POST"
    request = (method + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: " + content_type.encode() + b"\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    next_at = time.perf_counter() + np.random.default_rng().uniform(0, max(interval, 1e-3))
    sent = 0
    try:
        while time.perf_counter() < stop and len(latencies) < MAX_REQUESTS and sent < limit:
            sent += 1
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval
            if answers.closed:  # closed while idle: a new connection, as a browser makes
                transport, answers = await loop.create_connection(Answers, "127.0.0.1", port)
            started = time.perf_counter()
            answers.waiting = loop.create_future()
            transport.write(request)
            status = await answers.waiting
            latencies.append(time.perf_counter() - started)
            if statuses is not None:
                statuses.append(status)
            if status != 200:
                errors.append(status)
    finally:
        transport.close()


def canvas_json() -> bytes:
    """The canvas as the 28x28 input the page could send instead: {"pixels": rows}."""
    from numeral.predict import Recognizer

    image28, _ = Recognizer.from_file("tibetan").prepare(canvas_png(), "the canvas")
    return json.dumps({"pixels": image28.tolist()}).encode()


BODIES = {"grey": "280x280 grey PNG canvas", "rgba": "280x280 RGBA PNG canvas (as a browser "
          "sends it)", "json": "28x28 JSON pixels"}


def canvas_body(kind: str) -> tuple[bytes, str]:
    """The request body of each kind in BODIES, and its content type."""
    if kind == "json":
        return canvas_json(), "application/json"
    return canvas_png("RGBA" if kind == "rgba" else "L"), "image/png"


async def load(port: int, clients: int, interval: float, seconds: float,
               body_kind: str = "grey") -> dict[str, float]:
    body, kind = canvas_body(body_kind)
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    stop = started + seconds
    await asyncio.gather(*(client(port, body, interval, stop, latencies, errors,
                                  content_type=kind) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ms = sorted(1e3 * x for x in latencies)
    return {"requests": len(ms), "errors": len(errors), "rps": len(ms) / elapsed,
            "seconds": elapsed,
            "p50": statistics.median(ms), "p99": ms[int(0.99 * (len(ms) - 1))]}


def phone_photo(megabytes: float, size: tuple[int, int] = (8000, 6000)) -> bytes:
    """A 48-megapixel (8000x6000) JPEG of a written number on grey paper with sensor noise,
    its quality chosen so that the file is about ``megabytes`` MB (phones: 3-15 MB)."""
    from numeral.data.compose import Layout, compose_number

    rng = np.random.default_rng(0)
    rings = np.zeros((3, 28, 28), np.uint8)
    yy, xx = np.mgrid[:28, :28]
    for i, r in enumerate((8, 10, 12)):
        rings[i][np.abs(np.hypot(yy - 14, xx - 14) - r) < 2] = 255
    small = compose_number(rings, rng, Layout(height=(60, 60), specks=0))
    page = np.full((600, 800), float(np.median(small)), np.float32)
    page[200 : 200 + small.shape[0], 50 : 50 + min(small.shape[1], 700)] = small[:, :700]
    big = np.asarray(Image.fromarray(page.astype(np.uint8)).resize(size), np.float32)
    noisy = np.clip(big + rng.normal(0, 10, big.shape), 0, 255).astype(np.uint8)
    best = b""
    for quality in (60, 75, 85, 92, 97):
        buffer = io.BytesIO()
        Image.fromarray(noisy).save(buffer, format="JPEG", quality=quality)
        best = buffer.getvalue()
        if len(best) >= megabytes * 1e6:
            break
    return best


def peak_memory_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e3
    return float("nan")


async def crowd(port: int, photo: bytes, photo_clients: int, photos_each: int,
                canvas_clients: int = 8, seconds: float = 120.0) -> dict[str, Any]:
    """Photo clients post ``photos_each`` photos to /api/read while canvas clients post to
    /api/predict and a prober asks /api/health every 50 ms, until the photos are done."""
    stop = time.perf_counter() + seconds
    read_ms: list[float] = []
    read_status: list[int] = []
    predict_ms: list[float] = []
    predict_status: list[int] = []
    health_ms: list[float] = []
    health_status: list[int] = []
    ignored: list[int] = []
    photos = [client(port, photo, 0.0, stop, read_ms, ignored, "/api/read", "image/jpeg",
                     photos_each, read_status) for _ in range(photo_clients)]
    canvas = canvas_png()

    async def others() -> None:
        side = [client(port, canvas, 0.1, stop, predict_ms, ignored, "/api/predict",
                       statuses=predict_status) for _ in range(canvas_clients)]
        side.append(client(port, b"", 0.05, stop, health_ms, ignored, "/api/health",
                           statuses=health_status))
        await asyncio.gather(*side)

    background = asyncio.ensure_future(others())
    started = time.perf_counter()
    await asyncio.gather(*photos)
    elapsed = time.perf_counter() - started
    background.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await background

    def pct(ms: list[float], q: float) -> float:
        values = sorted(1e3 * x for x in ms)
        return values[int(q * (len(values) - 1))] if values else float("nan")

    return {"photos": len(read_ms), "seconds": elapsed,
            "read_status": Counter(read_status), "predict_status": Counter(predict_status),
            "health_status": Counter(health_status), "health_p50": pct(health_ms, 0.5),
            "health_p99": pct(health_ms, 0.99), "health_max": pct(health_ms, 1.0),
            "read_p50": pct(read_ms, 0.5), "read_max": pct(read_ms, 1.0)}


def floor_app() -> Any:
    """The least a FastAPI endpoint does: read the posted body, answer a fixed JSON."""
    app = FastAPI()
    answer = json.dumps({"digit": 0, "probabilities": [0.1] * 10}).encode()

    @app.post("/api/predict")
    async def predict(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type="application/json")

    @app.get("/api/health")
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


@contextlib.contextmanager
def floor_server(workers: int) -> Any:
    """:func:`floor_app` served by uvicorn as ``numeral serve`` runs it, on a free port."""
    port = free_port()
    here = Path(__file__).resolve().parent
    process = subprocess.Popen(
        [sys.executable, "-c", "import uvicorn; uvicorn.run('bench_serve:floor_app', "
         f"factory=True, host='127.0.0.1', port={port}, workers={workers}, "
         f"log_level='warning', app_dir={str(here)!r})"])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the floor server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=10)


def sweep_figure(rows: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients = [r["clients"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(clients, [r["rps"] for r in rows], "o-")
    left.set(xscale="log", xlabel="clients sending back to back", ylabel="requests / s",
             title="throughput")
    left.set_ylim(bottom=0)
    right.plot(clients, [r["p50"] for r in rows], "o-", label="p50")
    right.plot(clients, [r["p99"] for r in rows], "s--", label="p99")
    right.set(xscale="log", yscale="log", xlabel="clients sending back to back",
              ylabel="latency (ms)", title="latency")
    right.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.25,
                        help="seconds between one client's requests in the paced run")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--crowd", action="store_true",
                        help="photos to /api/read beside canvases and health checks")
    parser.add_argument("--photo-mb", type=float, default=10.0)
    parser.add_argument("--photos-each", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--body", choices=sorted(BODIES), default="grey",
                        help="what each request posts: " + "; ".join(
                            f"{k}: {v}" for k, v in BODIES.items()))
    parser.add_argument("--json", action="store_true", help="the same as --body json")
    parser.add_argument("--floor", action="store_true",
                        help="a FastAPI app that only reads the body (MODEL is ignored)")
    parser.add_argument("--sweep", help="numbers of clients, e.g. 1,5,20,50,100: the "
                                        "saturated run for each")
    parser.add_argument("--figure", type=Path, help="with --sweep: write the figure here")
    parser.add_argument("--against", type=Path, help="another checkout of numeral (a git "
                        "worktree of an older commit): its server measured in turn with this one")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, each server fresh")
    args = parser.parse_args()
    if args.against and (args.floor or args.crowd or args.sweep):
        parser.error("--against compares two checkouts' numeral serve: not with --floor, "
                     "--crowd or --sweep")
    if args.crowd:
        photo = phone_photo(args.photo_mb)
        with local_server_process(args.model) as (url, process):
            port = int(url.rsplit(":", 1)[1])
            idle = peak_memory_mb(process.pid)
            r = asyncio.run(crowd(port, photo, args.clients, args.photos_each, seconds=600))
            peak = peak_memory_mb(process.pid)
        print(f"crowd: {args.clients} clients x {args.photos_each} photos of "
              f"{len(photo) / 1e6:.1f} MB (8000x6000 JPEG) to /api/read, 8 canvas clients "
              f"(10 req/s each) to /api/predict, /api/health every 50 ms; {os.cpu_count()} "
              "cores, one uvicorn process")
        print(f"  photos: {r['photos']} in {r['seconds']:.1f} s, statuses "
              f"{dict(r['read_status'])}, p50 {r['read_p50']:.0f} ms, max {r['read_max']:.0f} ms")
        print(f"  predict statuses {dict(r['predict_status'])}; health statuses "
              f"{dict(r['health_status'])}, p50 {r['health_p50']:.1f} ms, p99 "
              f"{r['health_p99']:.1f} ms, max {r['health_max']:.1f} ms")
        print(f"  server memory: {idle:.0f} MB at rest, peak {peak:.0f} MB")
        return
    body_kind = "json" if args.json else args.body
    sent = BODIES[body_kind]
    who = "the floor app (body read, fixed answer)" if args.floor else str(args.model)
    print(f"POST /api/predict to {who}, {sent}, {args.clients} clients, "
          f"{os.cpu_count()} cores, {args.workers} uvicorn process(es)")
    if args.sweep:
        sweep(args, body_kind, f"POST /api/predict to {who}, {sent}, {args.workers} "
                               f"process(es), {os.cpu_count()} cores")
        return
    # each server in a fresh process, the rounds interleaved: (name, its start) in turn
    starts: list[tuple[str, Any]] = [("this checkout", lambda: start_server(args, None))]
    if args.against:
        starts.append((f"{args.against}", lambda: start_server(args, args.against)))
    saturated: dict[str, list[float]] = {name: [] for name, _ in starts}
    for round_ in range(args.rounds):
        for name, start in starts:
            with start() as (url, process):
                port = int(url.rsplit(":", 1)[1])
                asyncio.run(load(port, 4, 0.0, 1.0, body_kind))  # warm up
                for kind, interval in (("paced", args.interval), ("saturated", 0.0)):
                    r = measured_load(port, process.pid, args.clients, interval,
                                      args.seconds, body_kind)
                    pace = f"1 request / {interval:g} s each" if interval else "back to back"
                    print(f"  round {round_ + 1}, {name}: {kind:>9} ({pace}): {r['rps']:.0f} "
                          f"req/s, p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, "
                          f"{r['requests']} requests, {r['errors']} errors; the server's CPU "
                          f"{r['server_ms']:.2f} ms a request ({r['server_cores']:.2f} cores), "
                          f"the load generator's {r['own_ms']:.2f} ms ({r['own_cores']:.0%} of "
                          "a core)")
                    if kind == "saturated":
                        saturated[name].append(r["rps"])
    medians = {name: statistics.median(v) for name, v in saturated.items()}
    print("saturated, median of rounds: " + "; ".join(
        f"{name} {m:.0f} req/s" for name, m in medians.items()))
    if args.against:
        this, other = medians["this checkout"], medians[f"{args.against}"]
        print(f"this checkout / {args.against}: {this / other:.2f}x")


@contextlib.contextmanager
def start_server(args: argparse.Namespace, checkout: Path | None) -> Any:
    """A fresh server process for the run: the floor app, or ``numeral serve`` of this
    checkout or of ``checkout``."""
    if args.floor:
        with floor_server(args.workers) as served:
            yield served
    else:
        model = args.model.resolve() if args.model.exists() else args.model  # (another cwd)
        with local_server_process(model, workers=args.workers, checkout=checkout) as served:
            yield served


def sweep(args: argparse.Namespace, body_kind: str, title: str) -> None:
    with start_server(args, None) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        asyncio.run(load(port, 4, 0.0, 1.0, body_kind))  # warm up
        rows = []
        for clients in (int(c) for c in args.sweep.split(",")):
            r = asyncio.run(load(port, clients, 0.0, args.seconds, body_kind))
            rows.append({"clients": clients, **r})
            print(f"  {clients:>4} clients back to back: {r['rps']:.0f} req/s, p50 "
                  f"{r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, {r['errors']} errors")
    if args.figure:
        sweep_figure(rows, args.figure, title)
        print(f"figure: {args.figure}")


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by the process ``pid`` and its children (the
    worker processes of ``numeral serve --workers N``)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # it ended meanwhile
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += int(stats[current][11]) + int(stats[current][12])  # utime, stime
        todo += children.get(current, [])
    return total / os.sysconf("SC_CLK_TCK")


def measured_load(port: int, pid: int, clients: int, interval: float, seconds: float,
                  body_kind: str) -> dict[str, float]:
    """:func:`load`, with the CPU time the server's processes and the load generator used,
    per request and in cores."""
    server, own = process_tree_cpu(pid), time.process_time()
    r = asyncio.run(load(port, clients, interval, seconds, body_kind))
    server, own = process_tree_cpu(pid) - server, time.process_time() - own
    n = max(r["requests"], 1)
    return {**r, "server_ms": 1e3 * server / n, "server_cores": server / r["seconds"],
            "own_ms": 1e3 * own / n, "own_cores": own / r["seconds"]}


if __name__ == "__main__":
    main()
