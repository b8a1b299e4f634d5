"""numeral.data.paper: the page under the numerals (light, shadow, lines) taken away (#27)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from numeral.data.paper import dark_ink, lift_ink, page_angle, remove_lines
from numeral.read import edge_strip


def page(h: int = 300, w: int = 600) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.full((h, w), 225.0) + rng.normal(0, 3, (h, w))


def test_ink_in_a_shadow_is_as_strong_as_in_the_light_and_the_edge_is_not_ink() -> None:
    grey = page()
    grey[:, 100:110] = 60.0  # a stroke in the light
    grey[:, 450:460] = 60.0  # one in the shadow, below
    light = np.ones_like(grey)
    light[:, 240:] = 0.5  # a shadow over the right 60 %, and the border mostly in it
    ink, dark = lift_ink(grey * light)
    assert dark  # dark ink, although the border is mostly shadow (darker than mid-grey)
    lit, shaded = ink[150, 100:110].mean(), ink[150, 450:460].mean()
    assert shaded == pytest.approx(lit, rel=0.1), (lit, shaded)  # divided by the page's light
    assert ink[:, 220:260].max() < 0.1 * lit  # the shadow's edge: no ink


def test_light_ink_on_a_dark_page_is_found_too() -> None:
    grey = 255.0 - page()
    grey[100:200, 200:210] = 230.0
    ink, dark = lift_ink(grey)
    assert not dark and ink[150, 205] > 150 and ink[20, 20] < 10
    assert dark_ink(np.full((1, 1), 200.0)) is True  # a flat image: the border's rule


@pytest.mark.parametrize("angle", [-5.3, -1.0, 0.0, 2.2, 6.0])
def test_the_page_angle_is_found_from_its_lines(angle: float) -> None:
    ink = np.zeros((400, 800), np.float32)
    ink[100:102], ink[200:202], ink[300:302] = 50.0, 50.0, 50.0
    ink[150:250, 350:362] = 200.0  # a stroke across them
    turned = np.asarray(Image.fromarray(ink).rotate(angle, Image.Resampling.BILINEAR))
    assert page_angle(turned) == pytest.approx(angle, abs=0.15)


def ruled(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Bright ink: faint lines 2 pixels thick, 60 apart, and a pen stroke 12 wide crossing
    one; turned by ``angle``. Also where the stroke is."""
    ink = np.zeros((300, 900), np.float32)
    for y in range(30, 300, 60):
        ink[y : y + 2] = 60.0
    ink[60:160, 400:412] = 220.0
    stroke = np.zeros(ink.shape, bool)
    stroke[60:160, 400:412] = True
    turn = Image.Resampling.BILINEAR
    return (np.asarray(Image.fromarray(ink).rotate(angle, turn)),
            np.asarray(Image.fromarray(stroke.astype(np.float32)).rotate(angle, turn)) > 0.5)


@pytest.mark.parametrize("angle", [0.0, 3.0, -4.5])
def test_printed_lines_are_taken_out_and_the_stroke_that_crosses_them_kept(angle: float) -> None:
    from scipy import ndimage

    ink, stroke = ruled(angle)
    out = remove_lines(ink)
    away = ~ndimage.binary_dilation(stroke, iterations=3)  # (the stroke's blurred edge)
    assert ink[away].max() > 50 and out[away].max() < 0.35 * 60.0, out[away].max()  # gone
    assert np.median(out[stroke]) > 0.7 * 220.0  # the stroke, where it crosses them too
    assert (out <= ink + 1e-3).all()  # only taken away


def test_a_thick_bar_across_a_tight_crop_is_a_stroke_not_a_printed_line() -> None:
    ink = np.zeros((60, 70), np.float32)
    ink[10:18, 2:68] = 220.0  # the bar of a numeral, 8 wide, nearly the whole width
    ink[18:55, 30:38] = 220.0
    assert np.array_equal(remove_lines(ink), ink)


def test_a_thick_ring_filling_a_tight_crop_is_a_stroke_not_printed_lines() -> None:
    """A single zero scaled up to fill its image: the straight cores of its top and bottom (a
    quarter of the side long, thinner than the pen) are not printed lines, because the ink
    across them is as thick as the pen."""
    yy, xx = np.mgrid[:140, :140]
    radius = np.hypot((yy - 70) * 1.2, xx - 70)
    ink = np.where((radius > 40) & (radius < 62), 240.0, 0.0).astype(np.float32)
    assert np.array_equal(remove_lines(ink), ink)


def test_dark_printed_lines_do_not_make_a_thick_pen_stroke_page() -> None:
    """The page is found a second time with squares a few times the thickest ink: thin dark
    grid lines must not make that square narrower than the pen (the mean stroke width did,
    and a 36-pixel ring was taken for page and lost)."""
    grey = page(600, 900)
    for k in (0, 1):  # dark grid lines, 2 pixels
        grey[k::40, :] = grey[:, k::40] = 225.0 - 140.0
    yy, xx = np.mgrid[:600, :900]
    radius = np.hypot(yy - 300, xx - 450)
    ring = (radius > 120) & (radius < 156)
    grey[ring] = 30.0
    ink, _ = lift_ink(grey)
    assert np.median(ink[ring]) > 150.0, np.median(ink[ring])


def test_a_mark_along_the_border_is_an_edge_a_numeral_touching_it_is_not() -> None:
    shape = (300, 600)
    assert edge_strip((slice(0, 12), slice(0, 400)), shape)  # the page's edge along the top
    assert edge_strip((slice(40, 300), slice(594, 600)), shape)  # along the right side
    assert not edge_strip((slice(0, 80), slice(100, 170)), shape)  # a numeral cut by the top
    assert not edge_strip((slice(100, 104), slice(100, 400)), shape)  # inside: not an edge
