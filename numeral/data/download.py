"""``numeral data download``: fetch TibetanMNIST from its public GitHub repository.

Streams into ``<cache>/TibetanMNIST.zip.part`` with a progress bar, resumes a
broken transfer with an HTTP Range request, verifies the archive (17,768
images, the published class counts) and renames it into place only then.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from numeral.data.cache import cache_dir
from numeral.data.sources import LABEL_ONLY_NAME, TIBETAN_NAME, open_zip
from numeral.errors import DataError

URL = "https://codeload.github.com/bat67/TibetanMNIST/zip/refs/heads/master"
EXPECTED_FILES = 17768
EXPECTED_COUNTS = {0: 1996, 1: 2134, 2: 1872, 3: 1816, 4: 1967,
                   5: 1350, 6: 1618, 7: 1302, 8: 1642, 9: 2071}
CHUNK = 1 << 16


def verify_archive(path: Path) -> dict[int, int]:
    """Count the numeral images per class; raise DataError unless they match the publication."""
    with open_zip(path) as zf:  # a truncated or damaged archive: a DataError that says so
        names = [Path(n).name for n in zf.namelist() if n.lower().endswith(".jpg")]
    counts: Counter[int] = Counter()
    for name in names:
        match = TIBETAN_NAME.match(name) or LABEL_ONLY_NAME.match(name)
        if match:
            counts[int(match.group(1))] += 1
    if sum(counts.values()) != EXPECTED_FILES or dict(counts) != EXPECTED_COUNTS:
        raise DataError(
            f"{path}: found {sum(counts.values())} numeral images {dict(sorted(counts.items()))}, "
            f"expected {EXPECTED_FILES} {EXPECTED_COUNTS}; the download is not TibetanMNIST"
        )
    return dict(sorted(counts.items()))


def download(
    url: str = URL,
    dest: Path | None = None,
    *,
    retries: int = 5,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download, resume on dropped connections, verify, and move into place."""
    dest = dest or cache_dir() / "TibetanMNIST.zip"
    if dest.is_file():
        verify_archive(dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            _fetch(url, part, progress, timeout)
            break
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            if attempt == retries:
                raise DataError(
                    f"download from {url} failed after {retries} tries ({exc}); run the command "
                    f"again to resume, or download the zip yourself and pass --data PATH"
                ) from None
            time.sleep(min(2.0 * attempt, 10.0) if "127.0.0.1" not in url else 0.05)
    try:
        verify_archive(part)
    except DataError:
        part.unlink(missing_ok=True)  # a complete but wrong file cannot be resumed
        raise
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, progress: bool, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:
            have = 0  # the server ignored the Range header: start over
        total = response.headers.get("Content-Length")
        total_bytes = int(total) + have if total is not None else None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total_bytes, initial=have, unit="B", unit_scale=True,
                       desc="TibetanMNIST")
        try:
            with open(part, "ab" if have else "wb") as fh:
                while chunk := response.read(CHUNK):
                    fh.write(chunk)
                    if bar:
                        bar.update(len(chunk))
        finally:
            if bar:
                bar.close()
        if total_bytes is not None and part.stat().st_size < total_bytes:
            raise OSError(f"connection closed after {part.stat().st_size} of {total_bytes} bytes")
