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

import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.connection import wait
from typing import Any

from numeral.errors import InputError, NumeralError

BACKLOG = 2048  # connections waiting to be accepted, per worker (uvicorn's default)
SETTLED = 5.0  # seconds: a worker that dies sooner after its start is not started again
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


def balanced_by_kernel() -> bool:
    """Whether each worker can have its own socket on one port, balanced by the kernel."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A TCP socket listening on host:port as uvicorn binds one for its workers (IPv6 when the
    host has a colon, else IPv4: "" is every interface, "localhost" 127.0.0.1), with
    ``reuse_port`` one of several on that port; or an InputError saying why it cannot."""
    sock = None
    try:
        # (IPPROTO_TCP named: asyncio turns Nagle's algorithm off only on sockets that say
        # so, and with it on each answer waited 40 ms for the client's delayed ACK)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        if sock is not None:
            sock.close()  # (not left to the garbage collector)
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose "
                         "another --port or --host") from None
    return sock


def worker(host: str, port: int, parent: int) -> None:
    """One server process: its own socket on the port, the app of numeral.serve's
    environment variables, uvicorn's event loop until SIGINT or SIGTERM, or until the parent
    process ends, however it ends (the kernel's parent-death signal)."""
    import uvicorn

    with contextlib.suppress(OSError, AttributeError):  # Linux: SIGTERM when the parent dies
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before the signal was asked for
        sys.exit(0)
    try:
        sock = listening_socket(host, port, reuse_port=True)
    except InputError as exc:
        print(f"numeral: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    config = uvicorn.Config("numeral.serve:app_from_environment", factory=True, host=host,
                            port=port, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def serve_processes(host: str, port: int, workers: int) -> None:
    """Run ``workers`` processes of :func:`worker` until Ctrl-C or SIGTERM; a worker that dies
    after it settled is replaced, one that dies at its start stops the server with an error."""
    if port == 0:
        raise InputError(f"--port 0 with --workers {workers}: each process would listen on a "
                         "port of its own; choose a port")
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads of ours

    def start() -> tuple[Any, float]:
        process = context.Process(target=worker, args=(host, port, os.getpid()), daemon=True)
        process.start()
        return process, time.monotonic()

    stopping: list[bool] = []  # (the handlers first: a signal while starting stops them too)
    previous = {s: signal.signal(s, lambda *_: stopping.append(True))
                for s in (signal.SIGINT, signal.SIGTERM)}
    running: list[tuple[Any, float]] = []
    try:
        running += [start() for _ in range(workers)]
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
