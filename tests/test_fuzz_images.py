"""Every path a user's image takes, fuzzed: numeral.read, the recogniser, the CLI and both API
endpoints give a result or one clear error line (from the API a 4xx with a JSON error), never a
traceback or a 500, in bounded time.

Hypothesis draws the images (sizes 1x1 to a few hundred pixels, every Pillow mode, blank, full
ink, noise, stripes, a numeral; animated GIFs and multi-page TIFFs) with a fixed seed
(``derandomize``), so a failure reproduces; camera-sized photos are made once, outside it.
"""

from __future__ import annotations

import io
import os
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from numeral.cli import main
from numeral.errors import NumeralError
from numeral.predict import Recognizer
from numeral.read import NumberReader

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK"]
FORMATS = {"PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I"), "JPEG": ("L", "RGB", "CMYK"),
           "TIFF": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK"),
           "GIF": ("L", "P"), "BMP": ("1", "L", "P", "RGB"), "WEBP": ("L", "RGB", "RGBA")}
EXAMPLES = int(os.environ.get("NUMERAL_FUZZ_EXAMPLES", "60"))  # more for a deeper search
FUZZ = settings(derandomize=True, max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
SECONDS = 20.0  # a bound on hangs: the slowest image here reads in 0.4-1.6 s on 2 cores


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_file("tibetan")


@pytest.fixture(scope="module")
def reader(recognizer: Recognizer) -> NumberReader:
    return NumberReader(recognizer)


@pytest.fixture(scope="module")
def client() -> Any:
    from fastapi.testclient import TestClient

    from numeral.serve.app import create_app

    with TestClient(create_app("tibetan")) as c:
        yield c


def pattern(kind: str, h: int, w: int, seed: int) -> np.ndarray:
    """A grey image (h, w) uint8: blank paper, all ink, noise, stripes or a ring (a numeral)."""
    rng = np.random.default_rng(seed)
    if kind == "blank":
        return np.full((h, w), 255, np.uint8)
    if kind == "ink":
        return np.zeros((h, w), np.uint8)
    if kind == "noise":
        return rng.integers(0, 256, (h, w)).astype(np.uint8)
    if kind == "stripes":
        out = np.full((h, w), 255, np.uint8)
        out[:, :: max(1, w // 8)] = 0
        return out
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / max(h, 1), (xx - w / 2) / max(w, 1))
    return np.where(np.abs(r - 0.3) < 0.06, 0, 255).astype(np.uint8)


def encode(grey: np.ndarray, mode: str, fmt: str) -> bytes:
    img = Image.fromarray(grey)
    if mode == "I;16":
        img = Image.fromarray(grey.astype(np.uint16) * 257)
    elif mode == "I":
        img = Image.fromarray(grey.astype(np.int32) * 257)
    elif mode == "F":
        img = Image.fromarray(grey.astype(np.float32) / 255)
    else:
        img = img.convert(mode)
    buffer = io.BytesIO()
    img.save(buffer, format=fmt)
    return buffer.getvalue()


images = st.builds(
    lambda fmt_mode, kind, h, w, seed: (fmt_mode[0], fmt_mode[1], kind, h, w, seed),
    st.sampled_from([(f, m) for f, modes in FORMATS.items() for m in modes]),
    st.sampled_from(["blank", "ink", "noise", "stripes", "ring"]),
    st.integers(1, 300), st.integers(1, 300), st.integers(0, 2**16))


def check_reading(reading: dict[str, Any]) -> None:
    assert isinstance(reading["text"], str)
    assert bool(reading["text"]) != bool(reading["reason"])  # a reading or why there is none
    assert 0.0 <= reading["confidence"] <= 1.0


def check_recognition(result: dict[str, Any]) -> None:
    if result["label"] is None:
        assert result["reason"].startswith("no numeral found")
    else:
        assert len(result["top3"]) == 3 and abs(sum(result["probabilities"]) - 1) < 1e-4


@FUZZ
@given(images)
def test_any_image_is_read_or_refused_in_one_line(reader: NumberReader, recognizer: Recognizer,
                                                  image: tuple[str, str, str, int, int, int]
                                                  ) -> None:
    fmt, mode, kind, h, w, seed = image
    try:
        data = encode(pattern(kind, h, w, seed), mode, fmt)
    except (OSError, ValueError):  # Pillow cannot write this mode in this format
        return
    start = time.perf_counter()
    for work in (reader.read, recognizer.recognize):
        try:
            result = work(data, "upload")
        except NumeralError as exc:
            assert "\n" not in str(exc) and "upload" in str(exc)
            continue
        (check_reading if work == reader.read else check_recognition)(result)
    assert time.perf_counter() - start < SECONDS


@FUZZ
@given(st.sampled_from(MODES), st.sampled_from(["blank", "ink", "noise", "stripes", "ring"]),
       st.integers(1, 200), st.integers(1, 200), st.sampled_from([np.uint8, np.float32, bool]))
def test_any_array_and_pil_image_is_read(reader: NumberReader, recognizer: Recognizer, mode: str,
                                         kind: str, h: int, w: int, dtype: Any) -> None:
    grey = pattern(kind, h, w, 0)
    array = grey.astype(dtype) if dtype is not np.float32 else grey.astype(dtype) / 255
    pil = Image.open(io.BytesIO(encode(grey, mode, "TIFF")))
    for source in (array, pil):
        check_reading(reader.read(source))
        check_recognition(recognizer.recognize(source))


def frames(fmt: str, count: int) -> bytes:
    pages = [Image.fromarray(pattern(k, 60, 60, i)) for i, k in
             zip(range(count), ["ring", "blank", "noise", "stripes"] * count, strict=False)]
    buffer = io.BytesIO()
    pages[0].save(buffer, format=fmt, save_all=True, append_images=pages[1:])
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_animated_gifs_and_multipage_tiffs_read_their_first_frame(
        reader: NumberReader, recognizer: Recognizer, fmt: str) -> None:
    data = frames(fmt, 3)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    first = io.BytesIO()
    Image.fromarray(pattern("ring", 60, 60, 0)).save(first, format="PNG")
    assert reader.read(data)["text"] == reader.read(first.getvalue())["text"] != ""
    assert recognizer.recognize(data)["label"] == recognizer.recognize(first.getvalue())["label"]


@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 3), (7, 300), (300, 7), (2, 2)])
def test_images_smaller_than_the_background_grid_are_read(
        reader: NumberReader, client: Any, h: int, w: int) -> None:
    for kind in ("blank", "ink", "noise", "ring"):
        check_reading(reader.read(pattern(kind, h, w, 1)))
    response = client.post("/api/read", content=encode(pattern("noise", h, w, 1), "L", "PNG"),
                           headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text


def camera_photo(width: int, height: int, quality: int = 90) -> bytes:
    """A phone-sized JPEG: a ring (a numeral ༠) on uneven grey paper with noise, made at a
    tenth of the size and scaled up (so the test needs little time to make it)."""
    small = pattern("ring", height // 10, width // 10, 0).astype(np.float32)
    small = small * np.linspace(0.8, 1.0, small.shape[1], dtype=np.float32)[None, :]
    img = Image.fromarray(small.astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_a_48_megapixel_phone_photo_is_read(reader: NumberReader, recognizer: Recognizer,
                                            client: Any, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    photo = camera_photo(8000, 6000)
    start = time.perf_counter()
    reading = reader.read(photo)
    assert reading["text"] == "0" and time.perf_counter() - start < SECONDS
    box = reading["digits"][0]["box"]
    # in the photo's own pixels: the ring spans 0.14 to 0.86 of the width and height
    assert np.allclose(box, [1120, 840, 6880, 5160], atol=80), box
    assert recognizer.recognize(photo)["label"] == 0
    response = client.post("/api/read", content=photo, headers={"content-type": "image/jpeg"})
    assert response.status_code == 200 and response.json()["text"] == "0"
    (tmp_path / "photo.jpg").write_bytes(photo)
    assert main(["predict", str(tmp_path / "photo.jpg")]) == 0
    assert main(["read", str(tmp_path / "photo.jpg")]) == 0
    out = capsys.readouterr().out
    assert "photo.jpg: 0 " in out and "photo.jpg: 0 (༠)" in out


def test_decompression_bombs_are_refused_with_the_limit_and_the_reason(
        reader: NumberReader) -> None:
    bomb = io.BytesIO()
    Image.new("1", (10000, 6000), 1).save(bomb, format="PNG")  # 60 MP in 20 kB
    with pytest.raises(NumeralError, match=r"too large for its file: .*pixels a byte.*bomb"):
        reader.read(bomb.getvalue())
    header = io.BytesIO()
    Image.new("L", (64, 64)).save(header, format="PNG")
    huge = bytearray(header.getvalue())  # the IHDR chunk says 20000 x 20000
    huge[16:24] = (20000).to_bytes(4, "big") * 2
    huge[29:33] = zlib.crc32(bytes(huge[12:29])).to_bytes(4, "big")
    with pytest.raises(NumeralError, match=r"too large: .*more than any camera.*250"):
        reader.read(bytes(huge))


@FUZZ
@given(images)
def test_the_cli_answers_any_image_in_one_line(tmp_path_factory: pytest.TempPathFactory,
                                               capsys: pytest.CaptureFixture[str],
                                               image: tuple[str, str, str, int, int, int]
                                               ) -> None:
    fmt, mode, kind, h, w, seed = image
    try:
        data = encode(pattern(kind, h, w, seed), mode, fmt)
    except (OSError, ValueError):
        return
    path = tmp_path_factory.mktemp("cli") / f"x.{fmt.lower()}"
    path.write_bytes(data[: len(data) // (1 + seed % 3)])  # a third of them truncated
    for command in ("predict", "read"):
        status = main([command, str(path)])
        captured = capsys.readouterr()
        assert status in (0, 2)
        if status == 2:
            assert captured.err.count("\n") == 1 and captured.err.startswith("numeral: error:")
        else:
            assert captured.out.startswith(str(path)) and not captured.err


@FUZZ
@given(images, st.sampled_from(["raw", "multipart"]), st.booleans())
def test_both_endpoints_answer_any_upload_with_a_result_or_a_4xx(
        client: Any, image: tuple[str, str, str, int, int, int], how: str,
        truncate: bool) -> None:
    fmt, mode, kind, h, w, seed = image
    try:
        data = encode(pattern(kind, h, w, seed), mode, fmt)
    except (OSError, ValueError):
        return
    if truncate:
        data = data[: len(data) // 2]
    for endpoint in ("/api/predict", "/api/read"):
        if how == "raw":
            response = client.post(endpoint, content=data, headers={"content-type": "image/png"})
        else:
            response = client.post(endpoint, files={"file": ("x", data, "image/png")})
        assert response.status_code in (200, 422), response.text
        body = response.json()
        if response.status_code == 422:
            assert "\n" not in body["error"] and body["error"]

