"""The draw-a-numeral page and its JSON API (FastAPI).

    GET  /              the page: draw or upload a numeral, see the top-3 live
    POST /api/predict   an image (multipart field ``file``, or the raw body as
                        image/png, image/jpeg, ...) or JSON {"pixels": 28x28 grey values}
                        -> {"label", "class", "probabilities", "top3", "input", "model"}
    POST /api/read      an image of a whole number (same forms but JSON) -> {"text",
                        "digits": [{"class", "box", "top3", ...}], "confidence", "reason"}
    GET  /api/health    {"status": "ok"}
    GET  /api/model     architecture, classes, accuracy, preprocessing, reference images
    GET  /openapi.json  the schema (FastAPI)

Every bad request gets a 4xx with ``{"error": "..."}``; a request body over
``MAX_BODY_BYTES`` gets 413 before it is read in full.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from numeral.data import DataError
from numeral.nn import Ensemble
from numeral.predict import Recognizer

MAX_BODY_BYTES = 8 * 1024 * 1024
BLANK_RANGE = 16  # an image whose grey values span less than this holds no numeral
IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp",
               "application/octet-stream")


class BadRequest(Exception):
    """A request the API refuses, with its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


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
PREDICT_OPENAPI: dict[str, Any] = {
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
        "members": len(nets),
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
    from numeral.read import NumberReader

    path = resolve_model(model_path)
    recognizer = Recognizer.from_file(path)  # a missing or corrupt file fails here
    reader = NumberReader(recognizer)
    info = model_info(recognizer, path)
    exemplars = recognizer.meta.get("exemplars") or []
    app = FastAPI(title="numeral", version="1", summary="Recognise handwritten numerals",
                  description="A NumPy network trained by hand-written back-propagation.")

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: {exc.errors()}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (resources.files("numeral.serve") / "static" / "index.html").read_text()

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/model")
    def model() -> dict[str, Any]:
        return {**info, "reference": exemplars}

    @app.post("/api/predict", openapi_extra=PREDICT_OPENAPI)
    async def predict(request: Request) -> dict[str, Any]:
        image28 = await read_input(request, recognizer)
        result = recognizer.recognize_image(image28)
        return {**result, "input": image28.tolist(), "model": info}

    @app.post("/api/read", openapi_extra=READ_OPENAPI)
    async def read(request: Request) -> dict[str, Any]:
        data = await image_bytes(request)
        try:
            return reader.read(data, "the uploaded file")
        except DataError as exc:
            raise BadRequest(422, str(exc)) from None
        except Exception as exc:  # a truncated image fails while decoding, in varied ways
            raise BadRequest(422, f"the uploaded file is not a readable image ({exc})") from None

    return app


async def image_bytes(request: Request) -> bytes:
    """The image a request carries (multipart field 'file', or the raw body)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request)
    if not body:
        raise BadRequest(422, "empty request: send an image file")
    if content_type == "multipart/form-data":
        return await uploaded_file(request, body)
    if content_type in IMAGE_TYPES or content_type.startswith("image/"):
        return body
    raise BadRequest(415, f"unsupported content type {content_type or 'none'!r}: send "
                          "multipart/form-data with a 'file', or an image body")


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


async def read_input(request: Request, recognizer: Recognizer) -> np.ndarray:
    """The 28x28 image the network will see, from whichever form the request used."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request)
    if not body:
        raise BadRequest(422, "empty request: send an image file or JSON {\"pixels\": ...}")
    if content_type == "application/json":
        return pixels_from_json(body)
    if content_type == "multipart/form-data":
        image = await uploaded_file(request, body)
    elif content_type in IMAGE_TYPES or content_type.startswith("image/"):
        image = body
    else:
        raise BadRequest(415, f"unsupported content type {content_type or 'none'!r}: send "
                              "multipart/form-data with a 'file', an image body, or JSON")
    return image_from_bytes(image, recognizer)


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


def image_from_bytes(data: bytes, recognizer: Recognizer) -> np.ndarray:
    """Decode once, preprocess as in training; refuse images that hold no numeral."""
    from numeral.data.preprocess import open_image

    try:
        image28 = recognizer.image_to_input(open_image(data, "the uploaded file"))
    except DataError as exc:
        raise BadRequest(422, str(exc)) from None
    except Exception as exc:  # a truncated image fails while decoding, in varied ways
        raise BadRequest(422, f"the uploaded file is not a readable image ({exc})") from None
    if int(np.ptp(image28)) < BLANK_RANGE:  # a blank page stays blank after preprocessing
        raise BadRequest(422, "the image is blank: draw or upload a numeral")
    return image28


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
    image = np.array(values, np.float64).reshape(28, 28)
    if np.ptp(image) < BLANK_RANGE:
        raise BadRequest(422, "the image is blank: draw a numeral")
    return np.rint(image).astype(np.uint8)
