"""Serving a crowd: micro-batching of the network, shedding load with 503, several processes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from images import png

from numeral.predict import Recognizer
from numeral.serve.app import ShedLoad
from numeral.serve.batch import Batcher, Overloaded
from numeral.serve.local import free_port, local_server, local_server_process
from numeral.serve.workers import balanced_by_kernel

# The served probabilities are rounded to 6 decimals. A batch's float32 products differ from one
# row's by about 1e-7 (a few float32 ulps of values <= 1), which flips the 6th decimal where it
# crosses a rounding boundary: measured over 512 test numerals in batches of 2-64, the largest
# difference was 1.0e-6. Another request's rows would differ by up to 1.
BATCH_ATOL = 2e-6


class Doubling:
    """A stand-in model: rows of 2 * input, and the size of every batch it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.sizes: list[int] = []
        self.fail = fail

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.sizes.append(len(batch))
        if self.fail:
            raise ValueError("the model broke")
        return 2 * batch


def test_concurrent_callers_share_batches_and_each_gets_its_own_rows() -> None:
    model = Doubling()

    async def crowd() -> list[np.ndarray]:
        batcher = Batcher(model, max_batch=8)
        inputs = [np.full((1 + i % 3, 2), float(i)) for i in range(20)]  # 1-3 rows each
        return [*await asyncio.gather(*(batcher(x) for x in inputs))]

    answers = asyncio.run(crowd())
    for i, rows in enumerate(answers):
        np.testing.assert_array_equal(rows, np.full((1 + i % 3, 2), 2.0 * i))
    assert sum(model.sizes) == sum(1 + i % 3 for i in range(20))
    assert len(model.sizes) < 20 and max(model.sizes) <= 8  # batched, never over max_batch
    lone = Doubling()
    np.testing.assert_array_equal(asyncio.run(Batcher(lone)(np.ones((1, 2)))), 2 * np.ones((1, 2)))
    assert lone.sizes == [1]  # a caller alone waits for nobody


def test_a_full_queue_refuses_and_a_model_error_reaches_every_caller() -> None:
    async def overfull() -> list[Any]:
        batcher = Batcher(Doubling(), max_batch=4, max_queue=5)
        calls = [batcher(np.ones((2, 1))) for _ in range(4)]  # 8 rows: over 5 wait
        return [*await asyncio.gather(*calls, return_exceptions=True)]

    results = asyncio.run(overfull())
    assert [type(r) for r in results] == [np.ndarray, np.ndarray, Overloaded, Overloaded]

    async def broken() -> list[Any]:
        batcher = Batcher(Doubling(fail=True))
        return [*await asyncio.gather(*(batcher(np.ones((1, 1))) for _ in range(3)),
                                      return_exceptions=True)]

    assert all(isinstance(r, ValueError) for r in asyncio.run(broken()))


def test_over_the_limit_requests_get_503_with_retry_after_and_health_still_answers() -> None:
    release = asyncio.Event()

    async def slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] != "/api/health":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def request(app: ShedLoad, path: str) -> tuple[int, dict[str, str]]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        await app({"type": "http", "path": path, "method": "POST", "headers": []},
                  receive, send)
        headers = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
        return sent[0]["status"], headers

    async def crowd() -> tuple[list[Any], tuple[int, dict[str, str]], int]:
        app = ShedLoad(slow_app, limit=3)
        waiting = [asyncio.create_task(request(app, "/api/predict")) for _ in range(3)]
        await asyncio.sleep(0.01)  # the three are in progress
        refused = await asyncio.gather(*(request(app, "/api/predict") for _ in range(2)))
        health = await request(app, "/api/health")
        release.set()
        done = await asyncio.gather(*waiting)
        return [*refused, *done], health, app.in_flight

    answers, health, left = asyncio.run(crowd())
    assert [status for status, _ in answers] == [503, 503, 200, 200, 200]
    assert answers[0][1]["retry-after"] == "1"
    assert health[0] == 200 and left == 0


def post(url: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(f"{url}/api/predict", data=body,
                                     headers={"Content-Type": "image/png"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return dict(json.loads(answer.read()))


def test_two_server_processes_answer_a_crowd_as_one_request_alone_is_answered(
        test_images: tuple[np.ndarray, np.ndarray]) -> None:
    """`numeral serve --workers 2`: 48 concurrent canvases (batched in each process) get the
    answers the model gives each alone, to the rounding of float32 products."""
    recognizer = Recognizer.from_file("tibetan")
    bodies = [png(image) for image in test_images[0][:12]]
    alone = [recognizer.recognize(body) for body in bodies]
    with local_server("tibetan", workers=2) as url, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: post(url, bodies[i % 12]), range(48)))
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as health:
            assert json.loads(health.read()) == {"status": "ok"}
    for i, answer in enumerate(answers):
        expected = alone[i % 12]
        assert answer["class"] == expected["class"]
        # a batch's float32 products round unlike one row's (the kernel tiles rows)
        np.testing.assert_allclose(answer["probabilities"], expected["probabilities"],
                                   rtol=0, atol=BATCH_ATOL)


def test_workers_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    from numeral.cli import main

    assert main(["serve", "tibetan", "--workers", "0"]) != 0
    assert capsys.readouterr().err.strip() == ("numeral: error: --workers 0: give 1 or more "
                                              "(processes serving the model)")


def connections_of(pid: int) -> int:
    """The TCP sockets (listening or connected) the process ``pid`` holds."""
    links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    return sum(link.startswith("socket:") for link in links)


def health_answer(client: socket.socket) -> bytes:
    """The whole answer to GET /api/health on ``client`` (headers and body may come apart)."""
    answer = b""
    while not answer.endswith(b'{"status":"ok"}'):
        chunk = client.recv(4096)
        assert chunk, f"the connection closed after {answer!r}"
        answer += chunk
    return answer


@pytest.mark.skipif(not balanced_by_kernel(), reason="SO_REUSEPORT balances on Linux only")
def test_the_connections_of_a_crowd_arriving_at_once_are_shared_by_the_processes() -> None:
    """40 keep-alive clients connecting at once: each of 2 processes takes at least 10 (with
    one socket for all, one process took 40-46 of 60 and the other 14-20). A socket each, the
    kernel spreads them by hash: fewer than 10 of 40 has a chance of about 3 in 10,000."""
    with local_server_process("tibetan", workers=2) as (url, server):
        workers = [int(pid) for pid in subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()]
        workers = [pid for pid in workers if connections_of(pid) > 0]  # not a helper process
        assert len(workers) == 2
        before = [connections_of(pid) for pid in workers]
        port = int(url.rsplit(":", 1)[1])
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        try:
            for client in clients:  # each connection answered, so each is accepted by now
                client.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            for client in clients:
                assert health_answer(client).startswith(b"HTTP/1.1 200")
            waits = []  # one client's requests, one after another on its connection: each
            for _ in range(9):  # answered at once (with Nagle's algorithm on, 40 ms or more)
                started = time.perf_counter()
                clients[0].sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert health_answer(clients[0]).startswith(b"HTTP/1.1 200")
                waits.append(time.perf_counter() - started)
            assert sorted(waits)[4] < 0.02, waits
            taken = [connections_of(pid) - was for pid, was in zip(workers, before, strict=True)]
        finally:
            for client in clients:
                client.close()
    assert sum(taken) == 40 and min(taken) >= 10, taken


def test_a_port_in_use_is_one_line_naming_it() -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        for workers in ("1", "2"):
            result = subprocess.run([sys.executable, "-m", "numeral.cli", "serve", "tibetan",
                                     "--port", str(port), "--workers", workers],
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode != 0
            assert result.stderr.strip() == (f"numeral: error: cannot listen on 127.0.0.1:{port} "
                                             "(Address already in use); choose another --port "
                                             "or --host")
