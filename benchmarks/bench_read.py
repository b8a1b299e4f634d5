"""How well and how fast numeral reads whole numbers.

    NUMERAL_DATA=…/TibetanMNIST.zip python benchmarks/bench_read.py [MODEL] [--numbers 200]
        [--picture docs/figures/read-example.png]
    NUMERAL_DATA=… python benchmarks/bench_read.py tibetan --archive [--images 300]
    NUMERAL_DATA=… python benchmarks/bench_read.py [MODEL] --photos [--numbers 100]
        [--picture docs/figures/read-photos.png]

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
included), in rounds interleaved: images per second and the scaling over one core, over the
whole run and at the margin (a run over the first quarter of the images timed too: what the
further images cost, the start left out).

``--photos``: numbers of 3 to 5 numerals from the same unseen writers, made into colour phone
photos (numeral.data.photo): plain, ruled and squared paper, black or blue ink, tilted, a
shadow across, blurred, JPEG-compressed, strokes broken, small numerals on squares, and all of
them mixed; read from the JPEG bytes. A table per condition (whole numbers right, numerals
right, the same numerals one by one, milliseconds a photo), a picture of each condition with
the reader's boxes (``--picture``), and the time to read a 12-megapixel photo of 5 numerals.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from numeral.data import load, resolve_data_path, split, vectorize
from numeral.data.compose import compose_number
from numeral.data.photo import CONDITIONS, Photo, photo_number
from numeral.data.splits import group_split
from numeral.nn.calibration import expected_calibration_error
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
    """Images per second of numeral read over a folder, on 1 and 2 processes and on Ray: over
    the whole run (process start and model loading included), and at the margin (the time a
    run of ``count`` images takes beyond one of a quarter as many, per image: what every
    further image of a large archive costs, the start left out)."""
    import subprocess
    import tempfile

    from PIL import Image

    ds = load(resolve_data_path(None))
    _, test = split(ds.y, ds.groups, "sheet", 0.2, 0)
    rng = np.random.default_rng(0)
    small = max(1, count // 4)
    with tempfile.TemporaryDirectory() as tmp:
        folders = {count: Path(tmp) / "scans", small: Path(tmp) / "first-quarter"}
        for folder in folders.values():
            folder.mkdir()
        for i in range(count):
            pick = rng.choice(test, 4, replace=False)
            image = Image.fromarray(compose_number(ds.images[pick], rng))
            for size, folder in folders.items():
                if i < size:
                    image.save(folder / f"{i:05d}.png")
        ways = {"1 process": ["--jobs", "1"], "2 processes": ["--jobs", "2"],
                "Ray, local cluster (1 node)": ["--address", "local"]}
        seconds: dict[tuple[str, int], list[float]] = {
            (name, size): [] for name in ways for size in folders}
        for r in range(rounds):
            for name, flags in ways.items():
                for size, folder in folders.items():
                    out = Path(tmp) / f"{r}-{name.split()[0].strip(',')}-{size}.jsonl"  # new
                    started = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "numeral.cli", "read", str(folder),
                                    "--model", model, "--out", str(out), "--quiet", *flags],
                                   check=True, capture_output=True)
                    seconds[name, size].append(time.perf_counter() - started)

    def rates(name: str) -> tuple[float, float]:
        whole = statistics.median(seconds[name, count])
        margin = whole - statistics.median(seconds[name, small])
        return count / whole, (count - small) / margin

    one_whole, one_margin = rates("1 process")
    print(f"numeral read over {count} 4-numeral PNGs (about 500x180), model {model}, "
          f"{os.cpu_count()} cores; median of {rounds} rounds; the margin: ({count} - {small} "
          f"images) / (the time for {count} - the time for {small})\n")
    print("| how | images/s, whole run (start included) | against 1 process | images/s at the "
          "margin (start left out) | against 1 process |\n|---|---|---|---|---|")
    for name in ways:
        whole, margin = rates(name)
        print(f"| {name} | {whole:.1f} | {whole / one_whole:.2f}x | {margin:.1f} | "
              f"{margin / one_margin:.2f}x |")


# --numerals: what the photos are made of, their description, and their photos' seed
NUMERALS = {"test": ("by unseen writers", 2), "val": ("by the validation writers (tuning)", 4),
            "train": ("from the training part", 3)}


def unseen_numerals(recognizer: Recognizer, part: str = "test"
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The writer-independent split's test numerals (or, ``part="val"``, its validation
    writers': the 10 % of the training sheets a run with ``val_fraction = 0.1`` keeps out, which
    the sheet run's model never saw, so the reader's constants are tuned on those; or
    ``part="train"``, its training numerals), their labels, and whether the model reads each
    right on its own."""
    ds = load(resolve_data_path(None))
    train, test = split(ds.y, ds.groups, "sheet", 0.2, 0)
    _, val = group_split(ds.groups[train], 0.1, 1)  # as numeral.train.experiment carves it
    chosen = {"test": test, "val": train[val], "train": train}[part]
    images, labels = ds.images[chosen], ds.y[chosen]
    return images, labels, recognizer.model.predict(vectorize(images)) == labels


def photos(model: str, count: int, picture: Path | None, part: str = "test",
           only: list[str] | None = None) -> None:
    """Numbers photographed in each condition of numeral.data.photo, read: a table."""
    from PIL import Image

    recognizer = Recognizer.from_file(model)
    reader = NumberReader(recognizer)
    images, labels, alone = unseen_numerals(recognizer, part)
    names = recognizer.class_names
    who, seed = NUMERALS[part]
    print(f"model {model}; {count} photos of 3-5 numerals {who} per condition\n")
    print("| condition | whole numbers right | numerals right | the same numerals one by one "
          "| ms a photo (median) |\n|---|---|---|---|---|")
    shown: list[tuple[str, bytes, dict]] = []
    totals = np.zeros(4)
    sure: list[float] = []  # each photo's confidence, and whether it was read right
    whole: list[bool] = []
    conditions = [(c, name, photo) for c, (name, photo) in enumerate(CONDITIONS.items())
                  if not only or name in only]
    for c, condition, photo in conditions:
        rng = np.random.default_rng([seed, c])
        right = digits = total = singly = 0
        times = []
        for i in range(count):
            pick = rng.choice(len(labels), int(rng.integers(3, 6)), replace=False)
            truth = "".join(names[k] for k in labels[pick])
            jpeg = photo_number(images[pick], rng, photo)
            started = time.perf_counter()
            reading = reader.read(jpeg)
            times.append(time.perf_counter() - started)
            right += reading["text"] == truth
            sure.append(float(reading["confidence"]) if reading["text"] else 0.0)
            whole.append(reading["text"] == truth)
            digits += max(0, len(truth) - edit_distance(reading["text"], truth))
            total += len(truth)
            singly += int(alone[pick].sum())
            if i == 0:
                shown.append((condition, jpeg, reading))
        totals += (right, digits, total, singly)
        print(f"| {condition} | {right / count:.1%} | {digits / total:.1%} | {singly / total:.1%} "
              f"| {1000 * statistics.median(times):.0f} |", flush=True)
    n = count * len(conditions)
    print(f"| all | {totals[0] / n:.1%} | {totals[1] / totals[2]:.1%} | "
          f"{totals[3] / totals[2]:.1%} | |")
    if picture:
        photo_sheet(shown, picture)
        print(f"\npicture: {picture}")
    flagged_table(np.array(sure), np.array(whole), recognizer.temperature)
    rng = np.random.default_rng(5)
    times = []
    for _ in range(10):  # a 12-megapixel phone photo of 5 numerals
        pick = rng.choice(len(labels), 5, replace=False)
        small = Image.open(io.BytesIO(photo_number(images[pick], rng, Photo(height=(90, 110)))))
        big = io.BytesIO()
        small.resize((4000, 3000), Image.Resampling.BICUBIC).save(big, "JPEG", quality=90)
        started = time.perf_counter()
        reader.read(big.getvalue())
        times.append(time.perf_counter() - started)
    print(f"\nreading a 12-megapixel JPEG (4000x3000) of 5 numerals, from its bytes: median "
          f"{1000 * statistics.median(times):.0f} ms, slowest {1000 * max(times):.0f} ms (10)")


def flagged_table(sure: np.ndarray, right: np.ndarray, temperature: float) -> None:
    """What --min-confidence P does on these photos: the share of numbers flagged for a person
    to check, and how many of the others are wrong; and how well the numbers' confidence is
    calibrated (ECE over the photos, the confidence as the chance the whole number is right)."""
    conf = np.stack([1 - sure, sure], axis=1)
    ece = expected_calibration_error(conf, right.astype(np.int64))
    print(f"\nthe model's temperature {temperature:g}; numbers' confidence against their being "
          f"right: ECE {ece:.1%} over {len(right)} photos; wrong overall {1 - right.mean():.1%}")
    print("\n| --min-confidence | numbers flagged | wrong among those not flagged | "
          "wrong numbers caught |\n|---|---|---|---|")
    for p in (0.5, 0.7, 0.8, 0.9):
        flagged = sure < p
        kept = ~flagged
        wrong_kept = float(np.mean(~right[kept])) if kept.any() else 0.0
        caught = float(np.sum(flagged & ~right) / max(np.sum(~right), 1))
        print(f"| {p} | {flagged.mean():.1%} | {wrong_kept:.1%} | {caught:.0%} |")


def photo_sheet(shown: list[tuple[str, bytes, dict]], path: Path) -> None:
    """One photo of each condition with the reader's boxes, in a grid, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    cols = 3
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 1.9 * rows))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (condition, jpeg, reading) in zip(axes.ravel(), shown, strict=False):
        ax.imshow(np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")))
        for digit in reading["digits"]:
            x0, y0, x1, y1 = digit["box"]
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.2,
                                       color="#e8590c"))
        ax.set_title(f"{condition}: read {reading['text'] or '-'}", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="runs/tibetan-sheet/model.npz")
    parser.add_argument("--numbers", type=int, default=200, help="numbers of each length")
    parser.add_argument("--picture", type=Path, help="PNG of one 4-numeral number, read")
    parser.add_argument("--archive", action="store_true",
                        help="images per second of numeral read DIR on 1 and 2 processes, Ray")
    parser.add_argument("--photos", action="store_true",
                        help="photos of numbers in each condition of numeral.data.photo")
    parser.add_argument("--numerals", choices=list(NUMERALS), default="test",
                        help="with --photos: the sheet split's test numerals, its validation "
                             "writers' (to tune the reader on), or its training ones")
    parser.add_argument("--only", action="append", help="with --photos: this condition only")
    parser.add_argument("--images", type=int, default=300, help="with --archive")
    parser.add_argument("--rounds", type=int, default=3, help="with --archive")
    args = parser.parse_args()
    if args.archive:
        archive(args.model, args.images, args.rounds)
        return
    if args.photos:
        photos(args.model, args.numbers, args.picture, args.numerals, args.only)
        return
    recognizer = Recognizer.from_file(args.model)
    reader = NumberReader(recognizer)
    images, labels, alone = unseen_numerals(recognizer)
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
