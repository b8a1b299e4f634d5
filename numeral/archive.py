"""Reading a whole archive: folders, zips and glob patterns of images, read on every core (or a
Ray cluster) and streamed to JSON Lines or CSV, one line per image as it is read.

    numeral read scans/ forms.zip 'photos/**/*.jpg' --out results.jsonl [--jobs N]
    numeral read forms.zip --out results.csv --address HEAD:6379      # spread over a cluster

    read_archive(["scans/"], Path("results.jsonl"))                    # the same from Python

Rerun with the same ``--out`` and the images already in it are skipped, so an interrupted run
(Ctrl-C, a crash, a kill) loses at most the images in flight; a partly written last line is
dropped. An image that cannot be read is one line with its ``error``, and the run goes on.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import glob
import io
import json
import os
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numeral.data.sources import IMAGE_SUFFIXES
from numeral.errors import NumeralError
from numeral.nn.parallel import set_threads
from numeral.results import with_check

CSV_COLUMNS = ["image", "text", "tibetan", "confidence", "numerals", "reason", "error"]
CHECK_COLUMN = "check"  # added with --min-confidence: "yes" when a person should look
CHUNK = 4  # images a worker takes at a time: few, so that few are in flight when stopped


@dataclass(frozen=True)
class Item:
    """One image of the archive: ``name`` in the output; a file, or a member of a zip."""

    name: str
    path: str
    member: str | None = None

    def data(self) -> bytes:
        from numeral.data.preprocess import read_path

        if self.member is None:
            return read_path(self.path)
        try:
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self.member)
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            raise NumeralError(f"cannot read {self.name}: {exc}") from None


def is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES and not Path(name).name.startswith(".")


def expand(sources: Sequence[str | Path]) -> list[Item]:
    """The images of each source in turn: a file; every image under a folder (recursively);
    every image member of a zip; every image a glob pattern matches (``**`` for any depth).
    Each source in sorted order; a folder, zip or pattern that holds no image is an error
    naming it."""
    items: list[Item] = []
    for source in map(str, sources):
        found: list[Item] = []
        if any(c in source for c in "*?[") and not Path(source).exists():
            for match in sorted(glob.glob(source, recursive=True)):
                found += expand([match]) if Path(match).is_dir() or zipfile.is_zipfile(match) \
                    else [Item(match, match)] if is_image(match) else []
        elif Path(source).is_dir():
            found = [Item(str(p), str(p)) for p in sorted(Path(source).rglob("*"))
                     if p.is_file() and is_image(p.name)]
        elif source.lower().endswith(".zip") and Path(source).is_file():
            try:
                with zipfile.ZipFile(source) as zf:
                    members = sorted(n for n in zf.namelist() if is_image(n))
            except zipfile.BadZipFile:
                raise NumeralError(f"{source} is a damaged zip archive; download or copy it "
                                   "again") from None
            found = [Item(f"{source}:{m}", source, m) for m in members]
        else:  # a file; one that is missing is named in its result, and the others read
            found = [Item(source, source)]
        if not found:
            what = "matches" if any(c in source for c in "*?[") else "holds"
            raise NumeralError(f"{source} {what} no images "
                               f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        items += found
    return list({item.name: item for item in reversed(items)}.values())[::-1]  # each once


# ---------------------------------------------------------------------- the output file
def output_format(out: Path, fmt: str | None = None) -> str:
    fmt = fmt or ("csv" if out.suffix.lower() == ".csv" else "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise NumeralError(f"unknown output format {fmt!r}: use .jsonl or .csv (or --format)")
    return fmt


def already_read(out: Path, fmt: str) -> set[str]:
    """The images an earlier run wrote to ``out``; a last line cut short by a stop is removed
    from the file (that image is read again)."""
    if not out.is_file() or out.stat().st_size == 0:
        return set()
    raw = out.read_bytes()
    if not raw.endswith(b"\n"):  # stopped while writing its last line
        raw = raw[: raw.rfind(b"\n") + 1]
        out.write_bytes(raw)
    text = raw.decode("utf-8", errors="replace")
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and "image" not in rows[0]:
            raise NumeralError(f"{out} is not a results file of numeral read (no 'image' column)")
        return {row["image"] for row in rows}
    done = set()
    for number, line in enumerate(text.splitlines(), 1):
        try:
            done.add(json.loads(line)["image"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise NumeralError(f"{out}, line {number}, is not a result of numeral read: give "
                               "another --out, or delete the file to start again") from None
    return done


def existing_columns(out: Path) -> list[str]:
    """The header of a CSV file an earlier run wrote (CSV_COLUMNS if it has none)."""
    with out.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh), None)
    return header or CSV_COLUMNS


class Results:
    """Appends one line per image to a JSON Lines or CSV file, flushed as it is written."""

    def __init__(self, out: Path, fmt: str, check: bool = False) -> None:
        self.fmt = fmt
        new = not out.is_file() or out.stat().st_size == 0
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.file = out.open("a", encoding="utf-8", newline="")
        except OSError as exc:
            raise NumeralError(f"cannot write the results to {out}: {exc.strerror}; give "
                               "another --out") from None
        # a file an earlier run began keeps its columns (one written before "check" existed)
        self.csv = None
        if fmt == "csv":
            wanted = [*CSV_COLUMNS, CHECK_COLUMN] if check else CSV_COLUMNS
            columns = wanted if new else existing_columns(out)
            self.csv = csv.DictWriter(self.file, columns, extrasaction="ignore")
            if check and CHECK_COLUMN not in columns:
                warnings.warn(f"{out} was begun without a \"check\" column: the lines added "
                              f"to it have none either (give another --out to get it)",
                              stacklevel=2)
        if self.csv is not None and new:
            self.csv.writeheader()

    def write(self, result: dict[str, Any]) -> None:
        if self.csv is not None:
            self.csv.writerow({"image": result["image"], "text": result.get("text", ""),
                               "tibetan": result.get("tibetan", ""),
                               "confidence": result.get("confidence", ""),
                               "numerals": len(result.get("digits", [])),
                               "reason": result.get("reason") or "",
                               "error": result.get("error", ""),
                               "check": "" if "check" not in result else
                               "yes" if result["check"] else "no"})
        else:
            self.file.write(json.dumps(result, ensure_ascii=False) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


# ---------------------------------------------------------------------- the readers
_READER: list[Any] = []  # the reader of this worker process, made once


def _start_worker(model: str) -> None:
    with contextlib.suppress(ImportError):  # one BLAS thread per process: the processes
        from threadpoolctl import threadpool_limits  # share the cores

        threadpool_limits(1)
    set_threads(1)  # and one part for numeral's own element-wise work
    _READER[:] = [make_reader(model)]


def make_reader(model: str) -> Any:
    from numeral.predict import Recognizer
    from numeral.read import NumberReader

    return NumberReader(Recognizer.from_file(model))


def read_one(item: Item, reader: Any = None) -> dict[str, Any]:
    """The reading of one image, or its error: never raises for a bad image."""
    return reading(reader or _READER[0], item.name, item.data)


def read_bytes(pairs: list[tuple[str, bytes]], model: str) -> list[dict[str, Any]]:
    """On a Ray worker: read images sent as (name, bytes), with the worker's own reader."""
    if not _READER:
        _READER.append(make_reader(model))
    return [reading(_READER[0], name, functools.partial(bytes, data)) for name, data in pairs]


def reading(reader: Any, name: str, data: Callable[[], bytes]) -> dict[str, Any]:
    try:
        return {"image": name, **reader.read(data(), name)}
    except NumeralError as exc:
        return {"image": name, "error": str(exc)}


def read_items(items: Sequence[Item], model: str = "tibetan", jobs: int | None = None,
               address: str | None = None) -> Iterator[dict[str, Any]]:
    """Each item's result, in order: in this process (``jobs`` 1), on ``jobs`` worker
    processes (default: every core), or on a Ray cluster (``address``; "local" starts one
    on this machine)."""
    if address:
        yield from _read_on_ray(items, model, address)
        return
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or len(items) < 2 * CHUNK:
        reader = make_reader(model)
        for item in items:
            yield read_one(item, reader)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # a clean process: no threads of ours
    with context.Pool(jobs, initializer=_start_worker, initargs=(model,)) as pool:
        yield from pool.imap(read_one, items, chunksize=CHUNK)


def _read_on_ray(items: Sequence[Item], model: str, address: str) -> Iterator[dict[str, Any]]:
    """Batches of images sent to Ray tasks (the bytes travel, so the nodes need not see the
    files); results come back in order, at most twice the cluster's CPUs batches in flight."""
    from numeral.train.sweep import require_ray

    ray = require_ray()
    if address == "local":
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    try:
        task = ray.remote(read_bytes).options(num_cpus=1)
        window = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
        batches = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
        pending: list[Any] = []
        for batch in batches:
            pending.append(task.remote([(it.name, it.data()) for it in batch], model))
            if len(pending) >= window:
                yield from ray.get(pending.pop(0))
        for ref in pending:
            yield from ray.get(ref)
    finally:
        ray.shutdown()


def read_archive(sources: Sequence[str | Path], out: Path, *, model: str = "tibetan",
                 jobs: int | None = None, address: str | None = None, fmt: str | None = None,
                 progress: bool = True, log: Callable[[str], None] = print,
                 min_confidence: float | None = None) -> dict[str, int]:
    """Read every image of ``sources`` into ``out`` (JSON Lines or CSV), skipping those an
    earlier run already wrote there; with ``min_confidence``, each line says whether a person
    should check it (:func:`numeral.results.with_check`). Returns the counts: images, skipped,
    read, failed and (with ``min_confidence``) to check."""
    fmt = output_format(out, fmt)
    items = expand(sources)
    done = already_read(out, fmt)
    todo = [item for item in items if item.name not in done]
    if done:
        log(f"{len(items) - len(todo)} of {len(items)} images are already in {out}: "
            "reading the others")
    counts = {"images": len(items), "skipped": len(items) - len(todo), "read": 0, "failed": 0}
    if min_confidence is not None:
        counts["check"] = 0
    results = Results(out, fmt, check=min_confidence is not None)
    try:
        for result in _progress(read_items(todo, model, jobs, address), len(todo), progress):
            result = with_check(result, min_confidence)
            results.write(result)
            counts["failed" if "error" in result else "read"] += 1
            if min_confidence is not None:
                counts["check"] += bool(result.get("check"))
    finally:
        results.close()
    return counts


def _progress(results: Iterable[dict[str, Any]], total: int,
              show: bool) -> Iterable[dict[str, Any]]:
    if not show:
        return results
    from tqdm import tqdm

    return tqdm(results, total=total, unit="image", smoothing=0.1, dynamic_ncols=True)
