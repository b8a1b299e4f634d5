"""``numeral serve --workers N`` on Linux: N processes, each listening on the port with a
socket of its own (SO_REUSEPORT), so that the kernel shares the connections out evenly.

uvicorn's own supervisor hands one listening socket to all its workers, and a worker woken by
a burst of connections accepts every one waiting (asyncio accepts up to its backlog at a
wake-up). 50 keep-alive clients connecting at once were measured split 40-46 against 14-20
between two workers: one process saturated while the other idled half the time. With a
socket each, the kernel picks the process by a hash of each connection's addresses.

The parent starts the workers, starts a new one in place of one that dies (as uvicorn's
supervisor does), and stops them all on Ctrl-C or SIGTERM. Elsewhere (no SO_REUSEPORT, or not
Linux, where it does not balance) :func:`numeral.serve.serve` uses uvicorn's supervisor.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.connection import wait
from typing import Any

from numeral.errors import InputError, NumeralError

BACKLOG = 2048  # connections waiting to be accepted, per worker (uvicorn's default)
SETTLED = 5.0  # seconds: a worker that dies sooner after its start is not started again


def balanced_by_kernel() -> bool:
    """Whether each worker can have its own socket on one port, balanced by the kernel."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A TCP socket listening on host:port (``reuse_port``: one of several on that port), or
    an InputError saying why it cannot."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose "
                         "another --port or --host") from None
    return sock


def worker(host: str, port: int) -> None:
    """One server process: its own socket on the port, the app of numeral.serve's
    environment variables, uvicorn's event loop until SIGINT or SIGTERM."""
    import uvicorn

    sock = listening_socket(host, port, reuse_port=True)
    config = uvicorn.Config("numeral.serve:app_from_environment", factory=True, host=host,
                            port=port, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def serve_processes(host: str, port: int, workers: int) -> None:
    """Run ``workers`` processes of :func:`worker` until Ctrl-C or SIGTERM; a worker that dies
    after it settled is replaced, one that dies at its start stops the server with an error."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads of ours

    def start() -> tuple[Any, float]:
        process = context.Process(target=worker, args=(host, port), daemon=True)
        process.start()
        return process, time.monotonic()

    running = [start() for _ in range(workers)]
    stopping = []
    previous = {s: signal.signal(s, lambda *_: stopping.append(True))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            wait([process.sentinel for process, _ in running], timeout=0.5)
            for i, (process, started) in enumerate(running):
                if process.is_alive() or stopping:
                    continue
                if time.monotonic() - started < SETTLED:
                    raise NumeralError(f"a server process stopped at its start (exit code "
                                       f"{process.exitcode}); see its message above")
                print(f"numeral: a server process ended (exit code {process.exitcode}); "
                      "starting another", file=sys.stderr, flush=True)
                running[i] = start()
    finally:
        for process, _ in running:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in progress
        for process, _ in running:
            process.join(10)
            if process.is_alive():
                process.kill()
        for s, handler in previous.items():
            signal.signal(s, handler)
