"""numeral.serve — a page to draw a numeral and see it recognised, and a JSON API.

    numeral serve runs/best/model.npz --port 8000

FastAPI with uvicorn: a maintained ASGI framework with request parsing, an
OpenAPI schema and a test client, the ecosystem's convention for model APIs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from numeral.serve.app import create_app

__all__ = ["create_app", "serve"]


def serve(model_path: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load the model (failing at once with a clear message) and serve until Ctrl-C."""
    import uvicorn

    app = create_app(model_path)
    # the event loop asks for the GIL back from the worker threads within 1 ms instead of 5:
    # /api/health and the reading of requests stay quick while photos are decoded
    sys.setswitchinterval(0.001)
    print(f"numeral: serving {model_path} on http://{host}:{port}/  (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
