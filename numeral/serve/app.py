"""The draw-a-numeral page and its JSON API (FastAPI).

    GET  /              the page: draw or upload a numeral, see the top-3 live
    POST /api/predict   an image (multipart field ``file``, or the raw body as
                        image/png, image/jpeg, ...) or JSON {"pixels": 28x28 grey values}
                        -> {"label", "class", "probabilities", "top3", "input", "model"};
                        an image with no ink: label and class null, and the "reason"
    POST /api/read      an image of a whole number (same forms but JSON) -> {"text",
                        "digits": [{"class", "box", "top3", ...}], "confidence", "reason"}
    ?min_confidence=P   on either: "check": true when the answer is less sure than P
    GET  /api/health    {"status": "ok"}
    GET  /api/model     architecture, classes, accuracy, preprocessing, reference images
    GET  /openapi.json  the schema (FastAPI)

Every bad request gets a 4xx with ``{"error": "..."}``; a request body over
``MAX_BODY_BYTES`` gets 413 before it is read in full. At most ``MAX_UPLOADS`` bodies are in
memory at once and the decoding and recognition run on worker threads, so a crowd sending
photos neither exhausts memory nor slows ``/api/health`` or the canvases (:class:`Lanes`); a
photo kept waiting over ``QUEUE_SECONDS`` gets 503 with Retry-After.

The numerals of concurrent requests (canvases, and the numerals found in photos) go through
the network together (:mod:`numeral.serve.batch`). Under overload the server sheds load: over
``MAX_IN_FLIGHT`` requests in progress, or over ``MAX_QUEUED`` numerals waiting for the
network, a new request gets 503 with Retry-After at once; ``/api/health`` is never refused.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from numeral.data import DataError
from numeral.nn import Ensemble
from numeral.predict import Recognizer, is_blank, nothing_found
from numeral.read import NumberReader
from numeral.results import probability, with_check
from numeral.serve.batch import Batcher, Overloaded

MAX_BODY_BYTES = 40 * 1024 * 1024  # phones' photos: 3-15 MB at 12-50 megapixels, 25 at 200
MAX_UPLOADS = 8  # photos whose bodies are in memory at once; the others wait their turn
SMALL_BODY = 1024 * 1024  # bytes: a canvas or a crop, which never waits behind photos
QUEUE_SECONDS = 30.0  # a request that waits longer for its turn gets 503 and Retry-After
CPU_THREADS = os.cpu_count() or 1  # threads that decode and recognise (NumPy frees the GIL)
MAX_IN_FLIGHT = 512  # requests in progress in one server process; more get 503 at once
MAX_QUEUED = 1024  # numerals waiting for the network; more get 503 at once
MAX_BATCH = 64  # numerals the network reads in one call
INLINE_BATCH = 2  # a batch this small runs on the event loop (unless photos are being read)
RETRY_AFTER = "1"  # seconds, for a request refused under overload
IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp",
               "application/octet-stream")


class BadRequest(Exception):
    """A request the API refuses, with its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


PIXELS_SCHEMA = {
    "type": "object",
    "required": ["pixels"],
    "properties": {
        "pixels": {
            "description": "28 rows of 28 grey values, 0 (black) to 255 (white), "
                           "numeral white on black as in the dataset",
            "type": "array", "minItems": 28, "maxItems": 28,
            "items": {"type": "array", "minItems": 28, "maxItems": 28,
                      "items": {"type": "number", "minimum": 0, "maximum": 255}},
        }
    },
}
MIN_CONFIDENCE_PARAMETER: dict[str, Any] = {
    "name": "min_confidence", "in": "query", "required": False,
    "description": "answers less sure than this (calibrated probability) get \"check\": true",
    "schema": {"type": "number", "minimum": 0, "maximum": 1},
}
PREDICT_OPENAPI: dict[str, Any] = {
    "parameters": [MIN_CONFIDENCE_PARAMETER],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PIXELS_SCHEMA},
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"],
                           "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            **{t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES[:2]},
        },
    },
    "responses": {
        "200": {"description": "the recognised numeral"},
        "413": {"description": "body too large"},
        "415": {"description": "unsupported content type"},
        "422": {"description": "not an image, blank, too large in pixels, or bad JSON"},
    },
}


READ_OPENAPI: dict[str, Any] = {
    "parameters": [MIN_CONFIDENCE_PARAMETER],
    "requestBody": {
        "required": True,
        "content": {k: v for k, v in PREDICT_OPENAPI["requestBody"]["content"].items()
                    if k != "application/json"},
    },
    "responses": {
        "200": {"description": "the numerals read left to right: text, digits (class, box, "
                               "top3, probability), confidence; an empty text with a reason "
                               "when the image holds no number on one line"},
        "413": {"description": "body too large"},
        "415": {"description": "unsupported content type"},
        "422": {"description": "not an image, or too large in pixels"},
    },
}


def model_info(recognizer: Recognizer, path: Path) -> dict[str, Any]:
    model = recognizer.model
    nets = model.members
    meta = recognizer.meta
    return {
        "file": path.name,
        "kind": "ensemble" if isinstance(model, Ensemble) else "network",
        "description": repr(model),
        "members": len(nets),
        # each network in its own terms: its input transforms, then its layers as written
        "networks": [{"inputs": net.inputs.specs, "layers": [layer.spec() for layer in net.body],
                      "parameters": net.n_params} for net in nets],
        # the first network's widths and activations, as an MLP has them (kept for old clients)
        "architecture": nets[0].sizes,
        "activations": nets[0].activation_names,
        "input_transforms": [net.input_transform for net in nets],
        "input_gamma": nets[0].input_gamma,
        "classes": recognizer.class_names,
        "config": meta.get("config"),
        "test_accuracy": meta.get("test_accuracy"),
        "train_accuracy": meta.get("train_accuracy"),
        "split": meta.get("split"),
        "preprocessing": recognizer.preprocessing.to_dict(),
    }


def create_app(model_path: str | Path) -> FastAPI:
    """The app serving the model at ``model_path`` (loaded once, at start)."""
    from numeral.models import resolve_model

    path = resolve_model(model_path)
    recognizer = Recognizer.from_file(path)  # a missing or corrupt file fails here
    batcher = Batcher(recognizer.probabilities, max_batch=MAX_BATCH, max_queue=MAX_QUEUED,
                      inline=lambda size: size <= INLINE_BATCH and not lanes.reading)
    info = model_info(recognizer, path)
    model_part = '"model":' + to_json(info)  # in every answer: encoded once
    exemplars = recognizer.meta.get("exemplars") or []
    lanes = Lanes()
    app = FastAPI(title="numeral", version="1", summary="Recognise handwritten numerals",
                  description="A NumPy network trained by hand-written back-propagation.")
    app.add_middleware(ShedLoad, limit=MAX_IN_FLIGHT)

    async def network(inputs: np.ndarray) -> np.ndarray:
        try:
            return await batcher(inputs)
        except Overloaded as exc:
            raise BadRequest(503, f"the server is busy ({exc}); try again shortly",
                             headers={"Retry-After": RETRY_AFTER}) from None

    def batched(inputs: np.ndarray) -> np.ndarray:
        """The batcher's probabilities, asked from a worker thread (the reader's)."""
        assert lanes.loop is not None
        return asyncio.run_coroutine_threadsafe(network(inputs), lanes.loop).result()

    reader = NumberReader(recognizer, probabilities=batched)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: {exc.errors()}"}, status_code=422)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:  # never the user's fault
        return JSONResponse({"error": f"internal error in numeral ({type(exc).__name__}: "
                                      f"{exc}); please report it"}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (resources.files("numeral.serve") / "static" / "index.html").read_text()

    @app.get("/api/health")
    async def health() -> dict[str, str]:  # on the event loop: never behind recognition
        return {"status": "ok"}

    @app.get("/api/model")
    def model() -> dict[str, Any]:
        return {**info, "reference": exemplars}

    @app.post("/api/predict", openapi_extra=PREDICT_OPENAPI)
    async def predict(request: Request) -> Response:
        threshold = min_confidence(request)
        async with lanes.admitted(request) as on_cpu:
            content = await request_image(request, allow_json=True)
            image28, reason = await on_cpu(input_of, content, recognizer)
        if reason:
            result = nothing_found(reason)
        else:
            proba = None if is_blank(image28) else (await network(image28[None]))[0]
            result = recognizer.recognition_of_image(image28, proba).to_dict()
        result = with_check(result, threshold)
        return json_answer(result, '"input":' + grid_json(image28), model_part)

    @app.post("/api/read", openapi_extra=READ_OPENAPI)
    async def read(request: Request) -> JSONResponse:
        threshold = min_confidence(request)
        async with lanes.admitted(request) as on_cpu:
            data = await request_image(request, allow_json=False)
            # on a thread always: its numerals wait for the batcher on the event loop
            answer = await on_cpu(read_upload, data, reader, thread=True)
            return JSONResponse(with_check(answer, threshold))

    return app


class Lanes:
    """Where a request's work runs. A large body (a photo: over SMALL_BODY bytes, or of no
    declared length) waits for one of MAX_UPLOADS places, so that a crowd's photos do not all
    sit in memory at once (the others' bytes are held back by the server's flow control), and
    is decoded and recognised on one of CPU_THREADS worker threads; a small one (a canvas)
    is recognised at once on the event loop, or, while photos are read, on a thread of its own:
    it never queues behind photos, and /api/health is answered between them. A photo kept
    waiting over QUEUE_SECONDS gets 503 with Retry-After."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.reading = 0  # photos admitted and not yet answered

    def _bind(self) -> None:  # asyncio's primitives belong to the loop that made them
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop = loop
            self.uploads = asyncio.Semaphore(MAX_UPLOADS)
            self.photos = anyio.CapacityLimiter(CPU_THREADS)
            self.canvases = anyio.CapacityLimiter(1)
            self.reading = 0  # photos admitted and not yet answered

    @asynccontextmanager
    async def admitted(self, request: Request) -> AsyncIterator[Any]:
        self._bind()
        declared = request.headers.get("content-length", "")
        large = not declared.isdigit() or int(declared) > SMALL_BODY

        async def on_cpu(work: Any, *args: Any, thread: bool = False) -> Any:
            """``work(*args)``: a photo's on a worker thread; a canvas's here, a few
            milliseconds (less than the hand-over to a thread costs), unless photos are being
            read (or ``thread``): then on its own thread, so that health checks are not kept
            waiting behind canvases and photos both. An image the decoder refuses is a 422."""
            try:
                if not large and not self.reading and not thread:
                    return work(*args)
                limiter = self.photos if large else self.canvases
                return await anyio.to_thread.run_sync(lambda: work(*args), limiter=limiter)
            except DataError as exc:
                raise BadRequest(422, str(exc)) from None

        if not large:
            yield on_cpu
            return
        try:
            await asyncio.wait_for(self.uploads.acquire(), QUEUE_SECONDS)
        except TimeoutError:
            raise BadRequest(503, f"the server is busy (over {MAX_UPLOADS} photos in progress "
                                  f"for {QUEUE_SECONDS:.0f} s); try again shortly",
                             headers={"Retry-After": "5"}) from None
        self.reading += 1
        try:
            yield on_cpu
        finally:
            self.reading -= 1
            self.uploads.release()


def input_of(content: bytes | np.ndarray, recognizer: Recognizer
             ) -> tuple[np.ndarray, str | None]:
    """The 28x28 input an upload gives, and why it holds no numeral (None when it has ink).
    JSON pixels are the input already (the recognition says when a drawn canvas is blank)."""
    if isinstance(content, np.ndarray):
        return content, None
    return recognizer.prepare(content, "the uploaded file")


class ShedLoad:
    """ASGI middleware: over ``limit`` requests in progress, a new one gets 503 with
    Retry-After at once instead of a place in an unbounded queue; /api/health always runs."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit, self.in_flight = app, limit, 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/api/health":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            refusal = JSONResponse(
                {"error": f"the server is busy ({self.in_flight} requests in progress); try "
                          "again shortly"}, status_code=503, headers={"Retry-After": RETRY_AFTER})
            await refusal(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def to_json(content: Any) -> str:
    """JSON as FastAPI's JSONResponse writes it (compact, UTF-8, no NaN)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_answer(content: dict[str, Any], *encoded: str) -> Response:
    """A JSON answer: ``content`` with members already ``encoded`` ('"key":value') at its end
    (what every answer repeats is encoded once, not once a request; a grid of pixels by
    :func:`grid_json`)."""
    body = to_json(content)[1:-1]
    return Response("{" + ",".join(([body] if body else []) + list(encoded)) + "}",
                    media_type="application/json")


DECIMALS = np.array([str(v) for v in range(256)], dtype=object)  # "0" ... "255"


def grid_json(image: np.ndarray) -> str:
    """A uint8 image as JSON rows of numbers, as json.dumps(image.tolist()) writes it compact,
    in a fifth of its time (each value's text looked up, not formatted)."""
    return "[[" + "],[".join([",".join(row) for row in DECIMALS[image].tolist()]) + "]]"


def min_confidence(request: Request) -> float | None:
    """The ``?min_confidence=P`` of a request (answers less sure than P get "check": true)."""
    text = request.query_params.get("min_confidence")
    if text is None:
        return None
    try:
        return probability(text, example="?min_confidence=0.9")
    except ValueError as exc:
        raise BadRequest(422, f"min_confidence={exc}") from None


def read_upload(data: bytes, reader: NumberReader) -> dict[str, Any]:
    return reader.read(data, "the uploaded file")


async def request_image(request: Request, allow_json: bool) -> bytes | np.ndarray:
    """The image a request carries: multipart field 'file', the raw body, or (``allow_json``)
    JSON {"pixels": 28x28}, which gives the input array itself."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request)
    json_too = " or JSON {\"pixels\": ...}" if allow_json else ""
    if not body:
        raise BadRequest(422, f"empty request: send an image file{json_too}")
    if allow_json and content_type == "application/json":
        return pixels_from_json(body)
    if content_type == "multipart/form-data":
        return await uploaded_file(request, body)
    if content_type in IMAGE_TYPES or content_type.startswith("image/"):
        return body
    raise BadRequest(415, f"unsupported content type {content_type or 'none'!r}: send "
                          "multipart/form-data with a 'file', an image body"
                          + (", or JSON" if allow_json else ""))


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes MAX_BODY_BYTES."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(413, f"request body of {declared} bytes is over the limit of "
                              f"{MAX_BODY_BYTES} bytes; send a smaller image")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(413, f"request body is over the limit of {MAX_BODY_BYTES} bytes; "
                                  "send a smaller image")
        chunks.append(chunk)
    return b"".join(chunks)


async def uploaded_file(request: Request, body: bytes) -> bytes:
    from starlette.datastructures import UploadFile
    from starlette.requests import Request as StarletteRequest

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await StarletteRequest(request.scope, replay).form()
    except Exception as exc:  # malformed multipart: the parser's own error types vary
        raise BadRequest(422, f"malformed multipart body ({exc})") from None
    upload = form.get("file") or form.get("image")
    if not isinstance(upload, UploadFile):
        raise BadRequest(422, "multipart body has no file: send the image as field 'file'")
    return await upload.read()


def pixels_from_json(body: bytes) -> np.ndarray:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(422, f"body is not valid JSON ({exc})") from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise BadRequest(422, 'JSON must be an object {"pixels": [[28 numbers] x 28 rows]}')
    rows = payload["pixels"]
    if (not isinstance(rows, list) or len(rows) != 28
            or not all(isinstance(r, list) and len(r) == 28 for r in rows)):
        raise BadRequest(422, "pixels must be 28 rows of 28 numbers (a 28x28 grey image)")
    values = [v for r in rows for v in r]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise BadRequest(422, "pixels must hold numbers only")
    if not all(math.isfinite(v) and 0 <= v <= 255 for v in values):
        raise BadRequest(422, "pixel values must be between 0 and 255")
    return np.rint(np.array(values, np.float64).reshape(28, 28)).astype(np.uint8)
