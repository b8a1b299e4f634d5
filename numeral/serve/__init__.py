"""numeral.serve — a page to draw a numeral and see it recognised, and a JSON API.

    numeral serve runs/best/model.npz --port 8000 [--workers 2]

FastAPI with uvicorn: a maintained ASGI framework with request parsing, an
OpenAPI schema and a test client, the ecosystem's convention for model APIs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from numeral.errors import InputError
from numeral.serve.app import create_app
from numeral.serve.workers import balanced_by_kernel, listening_socket, serve_processes

__all__ = ["app_from_environment", "create_app", "serve"]
MODEL_VARIABLE = "NUMERAL_SERVE_MODEL"  # the model the worker processes of serve() load
WORKERS_VARIABLE = "NUMERAL_SERVE_WORKERS"  # how many there are


def serve(model_path: str | Path, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1) -> None:
    """Load the model (failing at once with a clear message) and serve until Ctrl-C, in
    ``workers`` processes sharing the port (one event loop runs Python on one core at a time,
    so a crowd of canvases needs a process per core)."""
    import uvicorn

    if workers < 1:
        raise InputError(f"--workers {workers}: give 1 or more (processes serving the model)")
    os.environ[MODEL_VARIABLE] = str(model_path)
    os.environ[WORKERS_VARIABLE] = str(workers)
    app = app_from_environment()  # a missing or corrupt model fails here, before any worker
    listening_socket(host, port, reuse_port=False).close()  # so does a port in use
    print(f"numeral: serving {model_path} on http://{host}:{port}/ in {workers} "
          f"process{'es' if workers > 1 else ''}  (Ctrl-C stops)", flush=True)
    if workers == 1:  # this process serves the app it made
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    del app  # each worker process makes its own
    if balanced_by_kernel():  # a socket each: the kernel shares the connections out evenly
        serve_processes(host, port, workers)
        return
    uvicorn.run("numeral.serve:app_from_environment", factory=True, host=host, port=port,
                workers=workers, log_level="warning")


def app_from_environment() -> Any:
    """The app for the model named by $NUMERAL_SERVE_MODEL: what each worker process of
    :func:`serve` builds."""
    # the event loop asks for the GIL back from the worker threads within 1 ms instead of 5:
    # /api/health and the reading of requests stay quick while photos are decoded
    sys.setswitchinterval(0.001)
    workers = int(os.environ.get(WORKERS_VARIABLE, "1"))
    if workers > 1:  # the cores are shared out as processes: one BLAS thread each, or the
        # processes' BLAS threads take the cores from each other (measured: 240 req/s with two
        # processes of two threads, against 336 with one process)
        from threadpoolctl import threadpool_limits

        threadpool_limits(max(1, (os.cpu_count() or 1) // workers))
    return create_app(os.environ.get(MODEL_VARIABLE, "tibetan"))
