"""`numeral data download` end to end against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from numeral.cli import main
from numeral.data import DataError
from numeral.data.download import download


class Server:
    """Serves one payload with Range support; the first full response is cut halfway."""

    def __init__(self, payload: bytes, drop_first: bool) -> None:
        self.payload, self.drop_first = payload, drop_first
        self.requests: list[str | None] = []  # the Range header of each request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                server.requests.append(rng)
                start = int(rng.split("=")[1].rstrip("-")) if rng else 0
                body = server.payload[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drop_first and len(server.requests) == 1:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.close()  # the connection drops halfway
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/TibetanMNIST.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def payload(tibetan_path: Path) -> bytes:
    return tibetan_path.read_bytes()


@pytest.fixture
def dropping_server(payload: bytes) -> Iterator[Server]:
    server = Server(payload, drop_first=True)
    yield server
    server.close()


def test_download_resumes_after_a_dropped_connection_and_verifies(
    dropping_server: Server, tmp_path: Path, payload: bytes
) -> None:
    dest = tmp_path / "TibetanMNIST.zip"
    assert download(dropping_server.url, dest, progress=False) == dest
    assert dest.read_bytes() == payload
    assert not dest.with_name(dest.name + ".part").exists()
    first, second = dropping_server.requests[:2]
    assert first is None and second == f"bytes={len(payload) // 2}-"  # resumed, not restarted


def test_the_command_downloads_into_the_cache(dropping_server: Server, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NUMERAL_CACHE", str(tmp_path))
    assert main(["data", "download", "--url", dropping_server.url]) == 0
    assert (tmp_path / "TibetanMNIST.zip").is_file()
    assert "numeral train --data" in capsys.readouterr().out


def test_a_wrong_file_is_rejected_and_not_kept(tmp_path: Path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("TibetanMnist/1_1_1.jpg", b"x")
    server = Server(buffer.getvalue(), drop_first=False)
    try:
        dest = tmp_path / "TibetanMNIST.zip"
        with pytest.raises(DataError, match="not TibetanMNIST"):
            download(server.url, dest, progress=False)
        assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    finally:
        server.close()


def test_an_unreachable_server_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="run the command again to resume"):
        download("http://127.0.0.1:9/none.zip", tmp_path / "t.zip", progress=False, retries=2)
