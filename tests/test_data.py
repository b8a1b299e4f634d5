"""numeral.data: every source format on real files, preprocessing, splits, bad input."""

from __future__ import annotations

import gzip
import io
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numeral.data import (
    DataError,
    Dataset,
    DataWarning,
    load,
    preprocess_image,
    resolve_data_path,
)
from numeral.data.augment import Augmentation, Augmenter
from numeral.data.preprocess import blank_reason, box_blur
from numeral.data.splits import group_split, kfold, stratified_split
from tests.conftest import mnist_dir

COUNTS = {0: 1996, 1: 2134, 2: 1872, 3: 1816, 4: 1967, 5: 1350, 6: 1618, 7: 1302, 8: 1642,
          9: 2071}


def test_tibetan_zip_is_read_completely(tibetan: Dataset) -> None:
    assert tibetan.X.shape == (17768, 784) and tibetan.X.dtype == np.float32
    assert tibetan.X.min() >= 0.0 and tibetan.X.max() == 1.0
    assert tibetan.y.dtype == np.int64 and tibetan.images.shape == (17768, 28, 28)
    assert tibetan.images.dtype == np.uint8
    assert tibetan.class_counts() == COUNTS
    # sheets 1..31 (the data README says 32; the published file names hold 31)
    assert sorted(set(tibetan.groups.tolist())) == [-1, *range(1, 32)]
    odd = np.flatnonzero(tibetan.groups < 0)
    assert [Path(str(n)).name for n in tibetan.names[odd]] == ["6.jpg"]
    assert tibetan.y[odd][0] == 6
    np.testing.assert_allclose(tibetan.X[5].reshape(28, 28), tibetan.images[5] / 255.0, rtol=1e-6)


def test_the_odd_file_is_named_in_one_warning_and_strict_mode_refuses(tibetan_path: Path,
                                                                       tmp_path: Path) -> None:
    sub = tmp_path / "TibetanMnist"
    sub.mkdir()
    with zipfile.ZipFile(tibetan_path) as zf:
        names = [n for n in zf.namelist() if n.endswith(".jpg")]
        for name in [*names[:40:4], "TibetanMnist/6.jpg"]:
            (sub / Path(name).name).write_bytes(zf.read(name))
    (sub / "notes.jpg").write_bytes(b"not an image at all")
    (sub / "3_1_999.jpg").write_bytes(b"\xff\xd8\xff broken jpeg")
    with pytest.warns(DataWarning) as caught:
        ds = load(sub, cache=False)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "6.jpg" in message and "notes.jpg" in message and "3_1_999.jpg" in message
    assert len(ds) == 11  # 10 regular files + 6.jpg; the corrupt and unlabelled are skipped
    with pytest.raises(DataError, match=r"strict mode.*6\.jpg"):
        load(sub, strict=True, cache=False)


def test_the_cache_makes_the_second_load_fast(tibetan_path: Path, tibetan: Dataset) -> None:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = load(tibetan_path)
    assert time.perf_counter() - started < 1.0
    np.testing.assert_array_equal(again.images, tibetan.images)
    np.testing.assert_array_equal(again.groups, tibetan.groups)


def test_github_archive_layout_keeps_only_the_numeral_folder(tibetan_path: Path,
                                                             tmp_path: Path) -> None:
    archive = tmp_path / "TibetanMNIST-master.zip"
    with zipfile.ZipFile(tibetan_path) as src, zipfile.ZipFile(archive, "w") as dst:
        names = [n for n in src.namelist() if n.endswith(".jpg")][::900]
        for name in names:
            dst.writestr(f"TibetanMNIST-master/Datasets/TibetanMnist/{Path(name).name}",
                         src.read(name))
        dst.writestr("TibetanMNIST-master/README.md", "# readme")
        dst.writestr("TibetanMNIST-master/img/logo.jpg", src.read(names[0]))
    ds = load(archive, cache=False)
    assert len(ds) == len(names)
    assert all("Datasets/TibetanMnist" in str(n) for n in ds.names)


def test_the_same_function_preprocesses_training_data_and_a_user_image(
    tibetan_path: Path, tibetan: Dataset
) -> None:
    i = 1234
    with zipfile.ZipFile(tibetan_path) as zf:
        raw = zf.read(str(tibetan.names[i]))
    np.testing.assert_array_equal(preprocess_image(raw), tibetan.images[i])
    # the same numeral drawn dark on light paper, as a big RGB PNG, is recognised as the same
    grey = np.asarray(Image.open(io.BytesIO(raw)).convert("L"))
    paper = Image.fromarray(255 - grey).convert("RGB").resize((700, 700))
    buffer = io.BytesIO()
    paper.save(buffer, format="PNG")
    inverted = preprocess_image(buffer.getvalue()).astype(float)
    assert np.abs(inverted - tibetan.images[i]).mean() < 6.0


def test_the_blank_tests_box_blur_is_pillows_exactly() -> None:
    from PIL import ImageFilter

    rng = np.random.default_rng(0)
    for shape in [(3, 3), (3, 8), (9, 4), (31, 17), (280, 280)]:
        noise = rng.integers(0, 256, shape).astype(np.uint8)  # every rounding case is met
        strokes = (rng.random(shape) > 0.5).astype(np.uint8) * 255
        for g in (noise, strokes, np.full(shape, 255, np.uint8)):
            pillow = np.asarray(Image.fromarray(g).filter(ImageFilter.BoxBlur(1)))
            np.testing.assert_array_equal(box_blur(g), pillow)
    # a lone bright pixel is not ink; a 3x3 dot is
    dot = np.zeros((40, 40), np.float32)
    dot[20, 20] = 255
    assert blank_reason(dot) is not None
    dot[19:22, 19:22] = 255
    assert blank_reason(dot) is None


def test_grey_images_give_the_same_input_in_uint8_as_in_float32(tibetan_path: Path,
                                                                  tibetan: Dataset) -> None:
    from numeral.data.preprocess import Preprocessing, grey_to_input, load_grey

    with zipfile.ZipFile(tibetan_path) as zf:
        grey = np.asarray(Image.open(io.BytesIO(zf.read(str(tibetan.names[3])))).convert("L"))
    params = Preprocessing()
    shapes = [(280, 280), (90, 300), (60, 2000)]  # the last is shrunk before it is framed
    for k, shape in enumerate(shapes):
        image = Image.fromarray(255 - grey if k % 2 else grey).resize(shape[::-1])
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        as_float = load_grey(buffer.getvalue(), params)
        as_uint8 = load_grey(buffer.getvalue(), params, dtype=np.uint8)
        assert as_float.dtype == np.float32 and as_uint8.dtype == np.uint8
        expected = grey_to_input(as_float, params)
        np.testing.assert_array_equal(grey_to_input(as_uint8, params), expected)
        assert blank_reason(as_uint8) == blank_reason(as_float)


def test_an_opaque_canvas_in_colour_reads_as_its_grey_and_transparency_as_white_paper(
    tibetan_path: Path, tibetan: Dataset
) -> None:
    with zipfile.ZipFile(tibetan_path) as zf:
        grey = Image.open(io.BytesIO(zf.read(str(tibetan.names[7])))).convert("L")
    grey = grey.resize((280, 280))

    def png(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    # a browser's canvas.toBlob: RGBA, every pixel opaque
    expected = preprocess_image(png(grey))
    np.testing.assert_array_equal(preprocess_image(png(grey.convert("RGBA"))), expected)
    np.testing.assert_array_equal(preprocess_image(png(grey.convert("LA"))), expected)
    # dark ink on a transparent sheet: the transparent pixels become white paper
    ink = Image.new("RGBA", grey.size, (0, 0, 0, 0))
    ink.putalpha(grey)
    np.testing.assert_array_equal(preprocess_image(png(ink)), expected)


def test_publishers_npz_and_separate_train_test_files(tibetan: Dataset, tmp_path: Path) -> None:
    np.savez(tmp_path / "TibetanMNIST.npz", image=tibetan.images[:300], label=tibetan.y[:300])
    ds = load(tmp_path / "TibetanMNIST.npz")
    np.testing.assert_array_equal(ds.images, tibetan.images[:300])
    np.testing.assert_array_equal(ds.y, tibetan.y[:300])
    assert (ds.groups == -1).all()
    np.savez(tmp_path / "train.npz", image=tibetan.images[:200], label=tibetan.y[:200])
    np.savez(tmp_path / "test.npz", image=tibetan.images[200:300], label=tibetan.y[200:300])
    assert len(load(tmp_path / "train.npz")) == 200 and len(load(tmp_path / "test.npz")) == 100


def test_real_mnist_idx_files() -> None:
    folder = mnist_dir()
    ds = load(folder / "t10k-images-idx3-ubyte.gz")
    assert ds.X.shape == (10000, 784)
    assert ds.class_counts() == {0: 980, 1: 1135, 2: 1032, 3: 1010, 4: 982, 5: 892, 6: 958,
                                 7: 1028, 8: 974, 9: 1009}
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as fh:
        raw = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    np.testing.assert_array_equal(ds.images, raw)  # 28x28 already: pixels untouched
    assert len(load(folder)) == 10000  # a folder of IDX files works too


def test_a_folder_with_one_subfolder_per_class(tmp_path: Path) -> None:
    for cls, colour in (("cat", (200, 30, 30)), ("dog", (20, 20, 20))):
        (tmp_path / cls).mkdir()
        for i, size in enumerate((40, 64, 300)):
            img = Image.new("RGB", (size, size + 7), "white")
            pixels = np.asarray(img).copy()
            pixels[size // 4 : size // 2, size // 3 : size // 2] = colour
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.{['png', 'jpg', 'bmp'][i]}")
    ds = load(tmp_path, cache=False)
    assert ds.class_names == ["cat", "dog"] and ds.class_counts() == {0: 3, 1: 3}
    assert ds.images.shape == (6, 28, 28)
    assert (ds.images[:, 14, 14] > 150).all()  # dark ink on white paper became white on black


def test_without_pillow_the_error_says_how_to_install_it(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        (tmp_path / "7").mkdir(exist_ok=True)
        Image.new("L", (30, 30), 255).save(tmp_path / "7" / f"{i}.png")
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now fails
    with pytest.raises(DataError, match=r"needs Pillow: pip install 'numeral\[images\]'"):
        load(tmp_path, cache=False)


def test_bad_inputs_give_one_line_errors_naming_the_file(tmp_path: Path) -> None:
    def error(path: Path) -> str:
        with pytest.raises(DataError) as info:
            load(path, cache=False)
        message = str(info.value)
        assert "\n" not in message
        return message

    assert "does not exist" in error(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert "holds no images" in error(tmp_path / "empty")
    with zipfile.ZipFile(tmp_path / "text.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert "text.zip holds no images" in error(tmp_path / "text.zip")
    header = np.array([0x00000803, 5, 28, 28], ">u4").tobytes()
    (tmp_path / "bad-images-idx3-ubyte").write_bytes(header + bytes(28 * 28 * 3))
    (tmp_path / "bad-labels-idx1-ubyte").write_bytes(
        np.array([0x00000801, 5], ">u4").tobytes() + bytes(5))
    assert "truncated or corrupt" in error(tmp_path / "bad-images-idx3-ubyte")
    np.savez(tmp_path / "keys.npz", pixels=np.zeros((2, 28, 28)))
    assert "expected arrays 'image' and 'label'" in error(tmp_path / "keys.npz")
    np.savez(tmp_path / "count.npz", image=np.zeros((3, 28, 28), np.uint8), label=np.zeros(2))
    assert "3 images but 2 labels" in error(tmp_path / "count.npz")
    (tmp_path / "data.csv").write_text("1,2,3")
    assert "unknown dataset format" in error(tmp_path / "data.csv")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=r"broken\.png is not a readable image") as info:
        preprocess_image(tmp_path / "broken.png")
    assert "0x" not in str(info.value)  # no object addresses from the decoder


def test_no_dataset_anywhere_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("NUMERAL_DATA", raising=False)
    monkeypatch.setenv("NUMERAL_CACHE", str(tmp_path))
    with pytest.raises(DataError, match="numeral data download"):
        resolve_data_path(None)


def test_splits(tibetan: Dataset) -> None:
    y, groups = tibetan.y, tibetan.groups
    train, test = stratified_split(y, 0.2, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(y)
    for label, count in COUNTS.items():
        assert abs(np.sum(y[test] == label) - 0.2 * count) <= 1
    assert np.array_equal(stratified_split(y, 0.2, seed=0)[1], test)
    train, test = group_split(groups, 0.2, seed=0)
    assert not set(groups[train]) & set(groups[test])
    assert 0.1 < len(test) / len(y) < 0.3 and -1 in set(groups[train])
    folds = kfold(y, k=5, seed=0)
    held = np.sort(np.concatenate([t for _, t in folds]))
    assert np.array_equal(held, np.arange(len(y)))
    for tr, te in kfold(y, k=4, seed=0, groups=groups):
        assert not set(groups[tr]) & set(groups[te])


def test_augmentation_is_seeded_and_moves_the_numeral(tibetan: Dataset) -> None:
    X = tibetan.X[:64]
    augment = Augmenter(Augmentation(elastic_alpha=1.5))
    a = augment(X, np.random.default_rng(5))
    b = augment(X, np.random.default_rng(5))
    assert a.shape == X.shape and a.dtype == X.dtype and np.array_equal(a, b)
    assert a.min() >= 0.0 and a.max() <= 1.0 + 1e-6
    assert np.abs(a - X).mean() > 0.02
    still = Augmenter(Augmentation(shift=0, rotate=0, scale=0, shear=0))
    np.testing.assert_allclose(still(X, np.random.default_rng(0)), X, atol=1e-5)
    right = Augmenter(Augmentation(shift=3, rotate=0, scale=0, shear=0))
    moved = right(X, np.random.default_rng(1)).reshape(-1, 28, 28)
    cols = np.arange(28)

    def centre(images: np.ndarray) -> np.ndarray:
        return (images.sum(axis=1) * cols).sum(axis=1) / images.sum(axis=(1, 2))

    assert np.abs(centre(moved) - centre(X.reshape(-1, 28, 28))).max() > 0.5


def test_pens_of_other_writers_thicken_thin_and_lighten_the_strokes(tibetan: Dataset) -> None:
    X = tibetan.X[:200]
    still = {"shift": 0, "rotate": 0, "scale": 0, "shear": 0}
    plain = Augmenter(Augmentation(**still))(X, np.random.default_rng(3))
    # the other settings draw the same random numbers as before: a run without these is unchanged
    again = Augmenter(Augmentation(**still, stroke=0.0, ink=0.0))(X, np.random.default_rng(3))
    assert np.array_equal(plain, again)
    pen = Augmenter(Augmentation(**still, stroke=1.0))(X, np.random.default_rng(3))
    ink = pen.sum(axis=1) / plain.sum(axis=1)
    thicker, thinner = (ink > 1.02).sum(), (ink < 0.98).sum()
    assert thicker > 60 and thinner > 60 and thicker + thinner > 170  # about half each way
    assert ink.max() < 2.5 and ink.min() > 0.3  # a pixel's width at most, nothing wiped out
    far = np.ones((200, 28, 28), bool)  # no ink appears beyond a pixel's reach of the strokes
    grown = plain.reshape(-1, 28, 28) > 0
    for dy, dx in ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0)):
        far &= ~np.roll(np.roll(grown, dy, axis=1), dx, axis=2)
    assert pen.reshape(-1, 28, 28)[far].max() == 0
    faint = Augmenter(Augmentation(**still, ink=0.5))(X, np.random.default_rng(3))
    ratio = faint.sum(axis=1) / plain.sum(axis=1)
    assert 0.5 - 1e-5 <= ratio.min() < 0.6 and 0.9 < ratio.max() <= 1 + 1e-5


def test_a_skipping_pen_cuts_one_gap_across_a_stroke_of_the_chosen_share(tibetan: Dataset) -> None:
    X = tibetan.X[:300]
    still = {"shift": 0, "rotate": 0, "scale": 0, "shear": 0}
    plain = Augmenter(Augmentation(**still))(X, np.random.default_rng(3))
    cut = Augmenter(Augmentation(**still, breaks=0.5))(X.copy(), np.random.default_rng(3))
    assert np.array_equal(Augmenter(Augmentation(**still))(X, np.random.default_rng(3)), plain)
    lost = plain - cut
    assert lost.min() >= 0  # only erased, never drawn
    hit = (lost > 0).any(axis=1)
    assert 120 < hit.sum() < 180  # about half of the 300
    for before, gap in zip(plain[hit].reshape(-1, 28, 28), lost[hit].reshape(-1, 28, 28),
                           strict=True):
        ys, xs = np.nonzero(gap)
        assert np.ptp(ys) <= 4 and np.ptp(xs) <= 4  # one disc of radius 2.5 at most
        centre = before[round(ys.mean()), round(xs.mean())]
        assert centre > 0.5 * before.max()  # around a point of the stroke
    assert Augmenter(Augmentation(**still, breaks=1.0))(np.zeros((3, 784), np.float32),
                                                         np.random.default_rng(0)).max() == 0
    # the gaps' numbers are drawn after the distortions': the same distortions as without gaps
    loss = (Augmenter(Augmentation(elastic_alpha=1.0))(X, np.random.default_rng(3))
            - Augmenter(Augmentation(elastic_alpha=1.0, breaks=0.5))(X, np.random.default_rng(3)))
    assert loss.min() >= 0 and 120 < (loss > 0).any(axis=1).sum() < 180


def test_augmentation_of_batches_larger_than_the_field_bank(monkeypatch) -> None:
    monkeypatch.setattr("numeral.data.augment.ELASTIC_FIELDS", 8)
    monkeypatch.setattr("numeral.data.augment.MAX_BATCH", 7)
    X = np.random.default_rng(0).random((20, 784), dtype=np.float32)
    out = Augmenter(Augmentation(elastic_alpha=1.5))(X, np.random.default_rng(1))
    assert out.shape == X.shape and np.isfinite(out).all() and np.abs(out - X).mean() > 0.01
