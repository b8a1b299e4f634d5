"""Readers for every dataset layout, chosen from the path by :func:`read_source`.

=========================  ==============================================================
path                       read as
=========================  ==============================================================
``*.zip``                  images inside the archive, read without extracting
folder                     images below it (TibetanMNIST layout, a GitHub archive of it,
                           or one subfolder per class)
``*.npz``                  arrays ``image`` (n, 28, 28) and ``label`` (the publishers' file)
``*idx3-ubyte[.gz]``       MNIST IDX images, labels from the matching ``idx1`` file
folder of IDX files        every images/labels pair inside it
=========================  ==============================================================

Labels of image files: ``<label>_<sheet>_<index>.jpg`` (TibetanMNIST: the sheet
is the writer proxy), ``<label>.jpg`` (label known, sheet unknown), otherwise
the name of the class folder the file sits in.

A zip that is truncated or whose directory is damaged is refused as a damaged archive (which
images it held is not known); an image whose data is damaged (a bad CRC) or cannot be decoded
is skipped and named in the notes, and when none can be read the error names them.
"""

from __future__ import annotations

import gzip
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numeral.data.dataset import IMAGE_SIZE, Dataset
from numeral.data.preprocess import (
    Preprocessing,
    grey_to_input,
    preprocess_image,
    require_pillow,
)
from numeral.errors import DataError
from numeral.nn.files import one_line

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TIBETAN_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)\.[A-Za-z]+$")
LABEL_ONLY_NAME = re.compile(r"^(\d+)\.[A-Za-z]+$")
PARALLEL_MIN_IMAGES = 2000  # below this, starting worker processes costs more than it saves
MNIST_FRAMING = Preprocessing(margin=0.15)  # MNIST numerals sit in 20x20 of the 28x28 frame


@dataclass
class ImageEntry:
    name: str  # path inside the archive or folder
    label_text: str  # class as written (file-name label or folder name)
    group: int  # sheet id, -1 when unknown


def read_source(path: Path, params: Preprocessing, strict: bool) -> Dataset:
    """Read the dataset at ``path`` whatever its layout."""
    if not path.exists():
        raise DataError(
            f"{path} does not exist; pass --data PATH or set NUMERAL_DATA "
            "(`numeral data download` fetches TibetanMNIST)"
        )
    name = path.name.lower()
    if path.is_file():
        if name.endswith(".npz"):
            return read_npz(path)
        if "idx3-ubyte" in name:
            return read_idx(path)
        if zipfile.is_zipfile(path) or looks_like_zip(path):
            return read_images(path, zip_members(path), params, strict)
        raise DataError(
            f"{path}: unknown dataset format; give a folder or .zip of images, an .npz with "
            "'image' and 'label', or an MNIST *-idx3-ubyte[.gz] file"
        )
    idx_files = sorted(path.rglob("*idx3-ubyte*"))
    if idx_files:
        return concatenate([read_idx(p) for p in idx_files], str(path))
    members = sorted(
        str(p.relative_to(path)).replace(os.sep, "/")
        for p in path.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    return read_images(path, members, params, strict)


# -------------------------------------------------------------------- zips
def looks_like_zip(path: Path) -> bool:
    """Named .zip, or beginning as a zip does: what to call damaged rather than unknown."""
    if path.suffix.lower() == ".zip":
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def damaged_zip(path: Path | str, why: object) -> DataError:
    return DataError(f"{path} is a damaged zip archive ({one_line(why)}); download it again")


def open_zip(path: Path | str) -> zipfile.ZipFile:
    """The archive at ``path``, or a DataError saying that it is damaged."""
    if not zipfile.is_zipfile(path):
        raise damaged_zip(path, "it has no end-of-archive record: it is truncated, or not a zip")
    try:
        return zipfile.ZipFile(path)
    except Exception as exc:  # BadZipFile, NotImplementedError, struct.error...
        raise damaged_zip(path, exc) from None


def directory_count(path: Path) -> int | None:
    """How many members the zip's end-of-archive record says its directory lists (None when
    it cannot say: no record found, or a zip64 archive, which keeps the count elsewhere)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - (22 + 0xFFFF)))  # the record, then a comment of <= 64 KiB
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    return None if count == 0xFFFF else count


def zip_members(path: Path) -> list[str]:
    """The images in the zip at ``path``, once its directory has been checked.

    A damaged directory can lose members (a name's length that swallows the entries after it)
    or rename them (``0_1_2.jpg`` to ``0_1_2.jpw``, or out of its folder) so that they would be
    skipped unseen. So the member count is compared with the end-of-archive record's, and each
    member's name with the copy in its own header (a few milliseconds per thousand members);
    any difference, or a member the zip cannot open, makes the whole archive damaged: which
    images it held is not known any more.
    """
    with open_zip(path) as zf:
        listed, infos = directory_count(path), zf.infolist()
        if listed is not None and listed != len(infos):
            raise damaged_zip(path, f"its directory should list {listed} members but "
                                    f"{len(infos)} can be read")
        for info in infos:
            try:
                zf.open(info).close()
            except Exception as exc:  # whatever a damaged entry makes zipfile raise
                raise damaged_zip(path, f"member {info.filename!r}: {one_line(exc, 300)}"
                                  ) from None
    return [i.filename for i in infos
            if not i.is_dir() and Path(i.filename).suffix.lower() in IMAGE_SUFFIXES]


def read_member(archive: zipfile.ZipFile | None, root: str, name: str) -> bytes:
    """The bytes of image ``name`` of a zip or a folder; a DataError when the zip's copy is
    damaged (a bad CRC, a name that differs from its header's, data it cannot inflate)."""
    if archive is None:
        return (Path(root) / name).read_bytes()
    try:
        return archive.read(name)
    except Exception as exc:  # BadZipFile, zlib.error, NotImplementedError...
        raise DataError(f"{name}: damaged in the zip ({one_line(exc, 120)})") from None


# ------------------------------------------------------------------ images
def decode_images(root: str, names: list[str], params: dict[str, object]) -> list[np.ndarray | str]:
    """Preprocess the named images of a folder or zip; an error message for each bad one."""
    prep = Preprocessing(**params)  # type: ignore[arg-type]
    archive = open_zip(root) if Path(root).is_file() else None
    out: list[np.ndarray | str] = []
    try:
        for name in names:
            try:
                out.append(preprocess_image(read_member(archive, root, name), prep, name=name))
            except (DataError, OSError) as exc:
                out.append(one_line(exc, 400))
    finally:
        if archive:
            archive.close()
    return out


def decode_in_parallel(
    root: str, names: list[str], params: dict[str, object]
) -> list[np.ndarray | str]:
    """:func:`decode_images` over chunks of ``names`` in one process per core.

    JPEG decoding holds the GIL for part of its work, so processes (not threads)
    use both cores; small inputs are decoded in this process.
    """
    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or len(names) < PARALLEL_MIN_IMAGES:
        return decode_images(root, names, params)
    chunk = -(-len(names) // (workers * 4))
    parts = [names[i : i + chunk] for i in range(0, len(names), chunk)]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        decoded = pool.map(decode_images, [root] * len(parts), parts, [params] * len(parts))
        return [item for part in decoded for item in part]


def label_entries(members: list[str]) -> tuple[list[ImageEntry], list[str]]:
    """Label each image path; returns the labelled entries and notes on what was done."""
    notes: list[str] = []
    tibetan = [m for m in members if TIBETAN_NAME.match(Path(m).name)]
    if members and len(tibetan) >= len(members) / 2:
        # TibetanMNIST layout: keep the folder(s) holding the numerals, e.g. Datasets/TibetanMnist
        folders = {str(Path(m).parent) for m in tibetan}
        entries, odd = [], []
        for m in members:
            if str(Path(m).parent) not in folders:
                continue
            base = Path(m).name
            if match := TIBETAN_NAME.match(base):
                entries.append(ImageEntry(m, match.group(1), int(match.group(2))))
            elif match := LABEL_ONLY_NAME.match(base):
                entries.append(ImageEntry(m, match.group(1), -1))
                notes.append(f"{base}: name is not <label>_<sheet>_<index>; read as class "
                             f"{match.group(1)}, sheet unknown")
            else:
                odd.append(base)
        if odd:
            notes.append(f"skipped {len(odd)} file(s) with no label in the name: "
                         + ", ".join(odd[:10]) + (" ..." if len(odd) > 10 else ""))
        return entries, notes
    entries, loose = [], []
    for m in members:
        parts = m.split("/")
        if len(parts) < 2:
            loose.append(m)
            continue
        entries.append(ImageEntry(m, parts[-2], -1))
    if loose:
        notes.append(f"skipped {len(loose)} image(s) outside any class folder: "
                     + ", ".join(loose[:10]) + (" ..." if len(loose) > 10 else ""))
    return entries, notes


def class_index(label_texts: list[str]) -> list[str]:
    """Sorted class names; numeric names 0..k-1 keep their own value as the label."""
    names = sorted(
        set(label_texts), key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)
    )
    if all(s.isdigit() for s in names):
        top = max(int(s) for s in names)
        return [str(i) for i in range(top + 1)]
    return names


def read_images(
    root: Path,
    members: list[str],
    params: Preprocessing,
    strict: bool,
) -> Dataset:
    """Decode, preprocess and label every image; bad files are named in the notes."""
    if not members:
        raise DataError(f"{root} holds no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    entries, notes = label_entries(members)
    if not entries:
        raise DataError(f"{root}: no image has a label (file name <label>_<sheet>_<index>.jpg "
                        "or one subfolder per class)")

    require_pillow()  # once, here: per image its message would be lost among the failures
    results = decode_in_parallel(str(root), [e.name for e in entries], params.to_dict())
    bad = [(e.name, r) for e, r in zip(entries, results, strict=True) if isinstance(r, str)]
    which = "; ".join(f"{Path(n).name} ({why.split(': ', 1)[-1][:80]})" for n, why in bad[:5]
                      ) + (" ..." if len(bad) > 5 else "")
    if bad:
        notes.append(f"{len(bad)} unreadable image(s) skipped: {which}")
    if strict and notes:
        raise DataError(f"{root}: strict mode: " + " | ".join(notes))
    keep = [i for i, r in enumerate(results) if not isinstance(r, str)]
    if not keep:
        damage = any("damaged in the zip" in why for _, why in bad)
        raise DataError(f"{root}: none of the {len(entries)} images could be read: {which}"
                        + ("; the zip is damaged: download it again" if damage else ""))
    classes = class_index([entries[i].label_text for i in keep])
    lookup = {c: i for i, c in enumerate(classes)}
    lookup.update({c: int(c) for c in (entries[i].label_text for i in keep) if c.isdigit()})
    images = [r for r in results if not isinstance(r, str)]
    return Dataset(
        images=np.stack(images).astype(np.uint8),
        y=np.array([lookup[entries[i].label_text] for i in keep], np.int64),
        groups=np.array([entries[i].group for i in keep], np.int64),
        names=np.array([entries[i].name for i in keep]),
        source=str(root),
        class_names=classes,
        notes=notes,
        preprocessing=params.to_dict(),
    )


# --------------------------------------------------------------------- npz
NPZ_KEYS = (("image", "label"), ("images", "labels"), ("x", "y"), ("X", "y"))


def read_npz(path: Path) -> Dataset:
    """The publishers' TibetanMNIST.npz: ``image`` (n, 28, 28) uint8 and ``label`` (n,)."""
    if not zipfile.is_zipfile(path):  # else NumPy takes it for a pickle
        raise DataError(f"{path} is not a readable .npz file (not a zip archive: truncated, "
                        "damaged or another kind of file)")
    try:
        with np.load(path, allow_pickle=False) as data:
            files = list(data.files)
            keys = next(((a, b) for a, b in NPZ_KEYS if a in files and b in files), None)
            if keys is not None:
                images, labels = data[keys[0]], data[keys[1]]
    except Exception as exc:  # reading only: BadZipFile, zlib.error, EOFError...
        raise DataError(f"{path} is not a readable .npz file ({one_line(exc)})") from None
    if keys is None:
        raise DataError(f"{path}: expected arrays 'image' and 'label', found {files}")
    labels = np.asarray(labels).reshape(-1)
    if len(images) != len(labels):
        raise DataError(f"{path}: {len(images)} images but {len(labels)} labels")
    if images.ndim == 2 and images.shape[1] == IMAGE_SIZE * IMAGE_SIZE:
        images = images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    if images.ndim != 3:
        raise DataError(f"{path}: 'image' has shape {images.shape}; expected (n, 28, 28)")
    if images.dtype != np.uint8:
        scale = 255.0 if images.size and float(images.max()) <= 1.0 else 1.0
        images = np.clip(images * scale, 0, 255).astype(np.uint8)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        images = np.stack([grey_to_input(im, Preprocessing(frame=False, invert="no"))
                           for im in images])
    return _array_dataset(path, images, labels, Preprocessing())


# --------------------------------------------------------------------- IDX
IDX_TYPES: dict[int, str] = {
    0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"
}


def read_idx_array(path: Path) -> np.ndarray:
    """One IDX file: magic 0 0 <type> <ndim>, ndim big-endian int32 sizes, then the data."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # a damaged .gz: BadGzipFile, zlib.error
        raise DataError(f"{path}: cannot read IDX file ({one_line(exc)})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header is truncated")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: header says shape {shape} ({expected} bytes of data) but the file "
            f"has {len(raw) - header}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def read_idx(path: Path) -> Dataset:
    """MNIST images file plus its labels file (idx3 -> idx1, images -> labels)."""
    label_name = path.name.replace("idx3", "idx1").replace("images", "labels")
    label_path = path.with_name(label_name)
    if not label_path.exists():
        raise DataError(f"{path}: labels file {label_name} not found beside it")
    images, labels = read_idx_array(path), read_idx_array(label_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{path}: expected (n, rows, cols) images and (n,) labels")
    if len(images) != len(labels):
        raise DataError(f"{path}: {len(images)} images but {label_name} has {len(labels)} labels")
    images = images.astype(np.uint8)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        images = np.stack([grey_to_input(im, Preprocessing(frame=False, invert="no"))
                           for im in images])
    return _array_dataset(path, images, labels, MNIST_FRAMING)


def _array_dataset(
    path: Path, images: np.ndarray, labels: np.ndarray, framing: Preprocessing
) -> Dataset:
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise DataError(f"{path}: labels must be >= 0, found {labels.min()}")
    k = int(labels.max()) + 1 if labels.size else 10
    return Dataset(
        images=np.ascontiguousarray(images, np.uint8),
        y=labels,
        groups=np.full(len(labels), -1, np.int64),
        names=np.array([f"{path.name}[{i}]" for i in range(len(labels))]),
        source=str(path),
        class_names=[str(i) for i in range(max(k, 2))],
        preprocessing=framing.to_dict(),
    )


def concatenate(parts: list[Dataset], source: str) -> Dataset:
    return Dataset(
        images=np.concatenate([p.images for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        groups=np.concatenate([p.groups for p in parts]),
        names=np.concatenate([p.names for p in parts]),
        source=source,
        class_names=max((p.class_names for p in parts), key=len),
        notes=[n for p in parts for n in p.notes],
        preprocessing=parts[0].preprocessing,
    )
