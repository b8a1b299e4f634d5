"""How well and how fast numeral reads whole numbers.

    NUMERAL_DATA=…/TibetanMNIST.zip python benchmarks/bench_read.py [MODEL] [--numbers 200]
        [--picture docs/figures/read-example.png]
    NUMERAL_DATA=… python benchmarks/bench_read.py tibetan --archive [--images 300]

Numbers of 2 to 6 numerals are composed (numeral.data.compose) from the test images of the
writer-independent split: writers the model never saw, when MODEL was trained on that split's
training part (the default: runs/tibetan-sheet/model.npz, the shipped recipe trained by
``python3 tasks.py ship`` on the sheet split). Each is written dark on paper with random sizes,
spacing from apart to overlapping, baseline jitter, uneven lighting, grain and specks.

Reported per length: string accuracy (every numeral right, none missing or extra), digit
accuracy (numerals right after aligning the strings: length minus edit distance), and, for
comparison, the model's accuracy on the same numerals one by one (the composed numbers draw
their numerals at random, so this varies from row to row). Then the time to read a
6-numeral 1200x400 photo (median of 30).

``--archive``: a folder of composed 4-numeral PNGs read by ``numeral read DIR --out FILE``
in fresh processes, with ``--jobs 1``, ``--jobs 2`` and on a local Ray cluster (``--address
local``), each timed from the command's start to its end (process start and model loading
included), in rounds interleaved: images per second and the scaling over one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from numeral.data import load, resolve_data_path, split, vectorize
from numeral.data.compose import compose_number
from numeral.predict import Recognizer
from numeral.read import NumberReader


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def draw(image: np.ndarray, reading: dict, path: Path) -> None:
    """The photo with each numeral's box and guess drawn on it."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(image).convert("RGB")
    pen = ImageDraw.Draw(picture)
    for digit in reading["digits"]:
        x0, y0, x1, y1 = digit["box"]
        pen.rectangle((x0, y0, x1, y1), outline=(47, 111, 219), width=3)
        pen.text((x0 + 2, y1 + 4), f"{digit['class']} {digit['probability']:.0%}",
                 fill=(200, 30, 30), font_size=max(14, (y1 - y0) // 5))
    pen.text((8, 6), f"read: {reading['text']}   confidence {reading['confidence']:.0%}",
             fill=(20, 20, 20), font_size=max(16, image.shape[0] // 12))
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)


def archive(model: str, count: int, rounds: int) -> None:
    """Images per second of numeral read over a folder, on 1 and 2 processes and on Ray."""
    import subprocess
    import tempfile

    from PIL import Image

    ds = load(resolve_data_path(None))
    _, test = split(ds.y, ds.groups, "sheet", 0.2, 0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "scans"
        folder.mkdir()
        for i in range(count):
            pick = rng.choice(test, 4, replace=False)
            Image.fromarray(compose_number(ds.images[pick], rng)).save(folder / f"{i:05d}.png")
        ways = {"1 process": ["--jobs", "1"], "2 processes": ["--jobs", "2"],
                "Ray, local cluster (1 node)": ["--address", "local"]}
        seconds: dict[str, list[float]] = {name: [] for name in ways}
        for r in range(rounds):
            for name, flags in ways.items():
                out = Path(tmp) / f"{r}-{name.split()[0].strip(',')}.jsonl"  # a new file each
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "numeral.cli", "read", str(folder),
                                "--model", model, "--out", str(out), "--quiet", *flags],
                               check=True, capture_output=True)
                seconds[name].append(time.perf_counter() - started)
    one = count / statistics.median(seconds["1 process"])
    print(f"numeral read over {count} 4-numeral PNGs (about 500x180), model {model}, "
          f"{os.cpu_count()} cores; median of {rounds} rounds, process start included\n")
    print("| how | images/s | against 1 process |\n|---|---|---|")
    for name, times in seconds.items():
        rate = count / statistics.median(times)
        print(f"| {name} | {rate:.1f} | {rate / one:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="runs/tibetan-sheet/model.npz")
    parser.add_argument("--numbers", type=int, default=200, help="numbers of each length")
    parser.add_argument("--picture", type=Path, help="PNG of one 4-numeral number, read")
    parser.add_argument("--archive", action="store_true",
                        help="images per second of numeral read DIR on 1 and 2 processes, Ray")
    parser.add_argument("--images", type=int, default=300, help="with --archive")
    parser.add_argument("--rounds", type=int, default=3, help="with --archive")
    args = parser.parse_args()
    if args.archive:
        archive(args.model, args.images, args.rounds)
        return
    recognizer = Recognizer.from_file(args.model)
    reader = NumberReader(recognizer)
    ds = load(resolve_data_path(None))
    _, test = split(ds.y, ds.groups, "sheet", 0.2, 0)
    images, labels = ds.images[test], ds.y[test]
    alone = recognizer.model.predict(vectorize(images)) == labels  # each numeral read alone
    single = float(np.mean(alone))
    rng = np.random.default_rng(0)
    print(f"model {args.model}; writer-independent test images: {len(labels)}, read one by one: "
          f"{single:.2%}\n")
    print("| numerals | numbers | string accuracy | digit accuracy | the same numerals one by one "
          "| mean confidence |")
    print("|---|---|---|---|---|---|")
    for length in range(2, 7):
        right = digits = total = singly = 0
        confidence = []
        for _ in range(args.numbers):
            pick = rng.choice(len(labels), length, replace=False)
            truth = "".join(recognizer.class_names[c] for c in labels[pick])
            reading = reader.read(compose_number(images[pick], rng))
            right += reading["text"] == truth
            digits += max(0, length - edit_distance(reading["text"], truth))
            total += length
            singly += int(alone[pick].sum())
            confidence.append(reading["confidence"])
        print(f"| {length} | {args.numbers} | {right / args.numbers:.1%} | {digits / total:.2%} | "
              f"{singly / total:.2%} | {statistics.mean(confidence):.1%} |", flush=True)
    if args.picture:  # the first 4-numeral number of a fixed series read right, at 2x
        from PIL import Image

        shown = np.random.default_rng(1)
        while True:
            pick = shown.choice(len(labels), 4, replace=False)
            photo = compose_number(images[pick], shown)
            photo = np.asarray(Image.fromarray(photo).resize((2 * photo.shape[1],
                                                              2 * photo.shape[0])))
            reading = reader.read(photo)
            if reading["text"] == "".join(recognizer.class_names[c] for c in labels[pick]):
                break
        draw(photo, reading, args.picture)
        print(f"\npicture: {args.picture} ({reading['text']})")
    from PIL import Image

    times = []
    for _ in range(30):
        pick = rng.choice(len(labels), 6, replace=False)
        photo = np.asarray(Image.fromarray(compose_number(images[pick], rng)).resize((1200, 400)))
        started = time.perf_counter()
        reader.read(photo)
        times.append(time.perf_counter() - started)
    print(f"\nreading a 6-numeral 1200x400 photo: median {1000 * statistics.median(times):.0f} ms, "
          f"slowest {1000 * max(times):.0f} ms (30 photos)")


if __name__ == "__main__":
    main()
