"""A bounded load test of ``POST /api/predict`` on 127.0.0.1.

    python benchmarks/bench_serve.py runs/best/model.npz [--clients 50] [--seconds 10]

Starts ``numeral serve`` on a free local port and drives it with asyncio clients
over keep-alive HTTP/1.1 connections, each posting a 280x280 PNG canvas (a real
numeral from the data when NUMERAL_DATA is set, else a drawn ring):

* paced: ``--clients`` users, each sending one request every ``--interval``
  seconds (about what the page does while someone draws: it debounces at
  150 ms and waits for each answer) -> latency p50 / p99 under that load;
* saturated: the same clients sending back to back -> the server's maximum
  requests per second (and the queueing latency that comes with it).

Every loop is bounded in requests and in time, and only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numeral.serve.local import local_server

MAX_REQUESTS = 200_000


def canvas_png() -> bytes:
    """A 280x280 white-on-black canvas like the page sends."""
    data = os.environ.get("NUMERAL_DATA", "")
    if data.endswith(".zip") and Path(data).is_file():
        with zipfile.ZipFile(data) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".jpg"))
            image = Image.open(io.BytesIO(zf.read(name))).convert("L").resize((280, 280))
    else:
        image = Image.new("L", (280, 280))
        ImageDraw.Draw(image).ellipse((60, 40, 220, 240), outline=255, width=26)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def client(port: int, body: bytes, interval: float, stop: float,
                 latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    next_at = time.perf_counter() + np.random.default_rng().uniform(0, max(interval, 1e-3))
    try:
        while time.perf_counter() < stop and len(latencies) < MAX_REQUESTS:
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def load(port: int, clients: int, interval: float, seconds: float) -> dict[str, float]:
    body = canvas_png()
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    stop = started + seconds
    await asyncio.gather(*(client(port, body, interval, stop, latencies, errors)
                           for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ms = sorted(1e3 * x for x in latencies)
    return {"requests": len(ms), "errors": len(errors), "rps": len(ms) / elapsed,
            "p50": statistics.median(ms), "p99": ms[int(0.99 * (len(ms) - 1))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.25,
                        help="seconds between one client's requests in the paced run")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with local_server(args.model) as url:
        port = int(url.rsplit(":", 1)[1])
        asyncio.run(load(port, 4, 0.0, 1.0))  # warm up
        print(f"POST /api/predict, 280x280 PNG canvas, {args.clients} clients, "
              f"{os.cpu_count()} cores, one uvicorn process")
        for name, interval in (("paced", args.interval), ("saturated", 0.0)):
            r = asyncio.run(load(port, args.clients, interval, args.seconds))
            pace = f"1 request / {interval:g} s each" if interval else "back to back"
            print(f"{name:>9} ({pace}): {r['rps']:.0f} req/s, p50 {r['p50']:.1f} ms, "
                  f"p99 {r['p99']:.1f} ms, {r['requests']} requests, {r['errors']} errors")


if __name__ == "__main__":
    main()
