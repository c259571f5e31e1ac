"""synth.eye_warp.close_eye: a smooth warp that closes an eye by a known amount (real-pixel MGS check)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from mouse_facial_expressions.synth.eye_warp import EYE_KEYS, close_eye, closed_points, facemap_eyes, lid_opening

FACEMAP = Path(__file__).parent / "data" / "facemap_headfixed" / "labeled-data"  # tests/data/README.md
#: A tilted eye, 80 px wide, lid points not opposite each other (as on the real labels).
EYE = {"front": (80.0, 100.0), "back": (160.0, 112.0), "top": (122.0, 66.0), "bottom": (112.0, 140.0)}


def _dots(shape: tuple[int, int], points: list[tuple[float, float]], sigma: float = 1.2) -> np.ndarray:
    """Black uint8 image with a small bright Gaussian dot at each point."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    img = np.zeros(shape)
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.clip(np.round(255 * img), 0, 255).astype(np.uint8)


def _find_dot(img: np.ndarray, near: tuple[float, float], search: int = 15) -> np.ndarray:
    """Centroid (x, y) of the brightest dot within ``search`` px of ``near`` (argmax, then a 4 px centroid)."""
    x0, y0 = int(near[0]) - search, int(near[1]) - search
    win = img[y0: y0 + 2 * search + 1, x0: x0 + 2 * search + 1].astype(np.float64)
    iy, ix = np.unravel_index(np.argmax(win), win.shape)
    ys = slice(max(iy - 4, 0), min(iy + 5, win.shape[0]))
    xs = slice(max(ix - 4, 0), min(ix + 5, win.shape[1]))
    w = win[ys, xs]
    yy, xx = np.mgrid[ys, xs]
    return np.array([x0 + (w * xx).sum() / w.sum(), y0 + (w * yy).sum() / w.sum()])


def _noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_level_zero_is_the_identity_grey_and_colour():
    for shape in [(220, 260), (220, 260, 3)]:
        img = _noise(shape)
        out, moved = close_eye(img, EYE, 0.0)
        assert out.shape == img.shape and out.dtype == img.dtype
        assert np.array_equal(out, img)
        assert out is not img
        for k in EYE_KEYS:
            assert moved[k] == pytest.approx(EYE[k])


def test_lid_dots_land_on_the_returned_points():
    img = _dots((220, 260), [EYE["top"], EYE["bottom"]])
    for level in (0.5, 1.0, 1.5, 2.0):
        out, moved = close_eye(img, EYE, level)
        for k in ("top", "bottom"):
            found = _find_dot(out, moved[k], search=6)  # the dots are 15 px apart at level 2
            assert np.hypot(*(found - moved[k])) < 1.5, (level, k, found, moved[k])


def test_lid_gap_shrinks_monotonically_by_the_stated_fraction():
    img = _dots((220, 260), [EYE["top"], EYE["bottom"]])
    open0 = lid_opening(EYE)
    straight, measured = [], []
    for level in np.linspace(0.0, 2.0, 9):
        out, moved = close_eye(img, EYE, level, max_closure=0.8)
        assert lid_opening(moved) == pytest.approx((1 - level / 2 * 0.8) * open0, abs=1e-9)
        straight.append(math.dist(moved["top"], moved["bottom"]))
        found = [_find_dot(out, moved[k], search=6) for k in ("top", "bottom")]
        measured.append(np.hypot(*(found[0] - found[1])))
    assert np.all(np.diff(straight) < 0) and np.all(np.diff(measured) < 0)
    assert np.allclose(measured, straight, atol=2.0)
    # the top-bottom distance across the axis is what closes; at level 2 it is 20 % of the gap
    assert lid_opening(close_eye(img, EYE, 2.0)[1]) == pytest.approx(0.2 * open0)
    assert lid_opening(close_eye(img, EYE, 2.0, max_closure=0.5)[1]) == pytest.approx(0.5 * open0)


def test_lid_points_move_toward_the_axis_and_the_corners_stay():
    _, moved = close_eye(np.zeros((220, 260), np.uint8), EYE, 1.0)
    assert moved["top"][1] > EYE["top"][1]  # down in the image
    assert moved["bottom"][1] < EYE["bottom"][1]  # up
    assert moved["front"] == EYE["front"] and moved["back"] == EYE["back"]
    img = _dots((220, 260), [EYE["front"], EYE["back"]])
    for level in (1.0, 2.0):
        out, _ = close_eye(img, EYE, level)
        for k in ("front", "back"):
            assert np.hypot(*(_find_dot(out, EYE[k], search=6) - EYE[k])) < 1.0, (level, k)


def test_pixels_far_from_the_eye_are_unchanged():
    eye = {"front": (280.0, 300.0), "back": (320.0, 306.0), "top": (301.0, 285.0), "bottom": (298.0, 318.0)}
    width = math.dist(eye["front"], eye["back"])
    img = _noise((600, 600), seed=3)
    out, _ = close_eye(img, eye, 2.0)
    yy, xx = np.mgrid[:600, :600]
    cx, cy = np.mean([eye["front"], eye["back"]], axis=0)
    far = np.hypot(xx - cx, yy - cy) > 4 * width
    assert np.array_equal(out[far], img[far])
    assert not np.array_equal(out, img)
    changed = np.abs(out.astype(int) - img.astype(int)) > 0
    assert np.hypot(xx - cx, yy - cy)[changed].max() < 4 * width


def test_warp_is_smooth_and_does_not_fold():
    """A smooth horizontal-stripe ramp stays monotone in every column: no folding, no tearing."""
    ramp = np.tile(np.linspace(0, 255, 600)[:, None], (1, 260)).astype(np.float32)
    eye = {k: (x, y + 200) for k, (x, y) in EYE.items()}  # far from the image edge (mirrored there)
    out, _ = close_eye(ramp, eye, 2.0)
    slope = 255 / 599
    # down every column the ramp still rises: no fold; the stretch above the lids keeps the slope above the
    # documented 1 - 0.61 c = 0.51 of the original (0.45: room for remap's 1/32 px map rounding)
    assert np.diff(out, axis=0).min() > 0.45 * slope
    assert np.abs(np.diff(out, axis=1)).max() < 2.5 * slope  # neighbours along a row stay close: a smooth field


def test_grey_and_colour_agree():
    grey = _noise((220, 260), seed=1)
    colour = np.stack([grey, _noise((220, 260), seed=2), 255 - grey], axis=2)
    out_grey, moved_grey = close_eye(grey, EYE, 1.3)
    out_colour, moved_colour = close_eye(colour, EYE, 1.3)
    assert out_colour.shape == colour.shape and out_colour.dtype == np.uint8
    assert np.array_equal(out_colour[..., 0], out_grey)
    assert np.abs(out_colour[..., 2].astype(int) - (255 - out_grey.astype(int))).max() <= 1  # rounding only
    assert moved_grey == moved_colour


@pytest.mark.parametrize("level", [-0.1, 2.01, float("nan"), float("inf"), "high", None])
def test_bad_level_is_an_error(level):
    with pytest.raises(ValueError, match="level"):
        close_eye(np.zeros((50, 50), np.uint8), EYE, level)


def test_bad_points_are_errors():
    img = np.zeros((220, 260), np.uint8)
    with pytest.raises(ValueError, match=r"missing: \['bottom'\]"):
        close_eye(img, {k: v for k, v in EYE.items() if k != "bottom"}, 1.0)
    with pytest.raises(ValueError, match="'top' is not finite"):
        close_eye(img, {**EYE, "top": (np.nan, 66.0)}, 1.0)
    with pytest.raises(ValueError, match="opposite sides"):
        close_eye(img, {**EYE, "bottom": (115.0, 80.0)}, 1.0)
    with pytest.raises(ValueError, match="beyond the corners"):
        close_eye(img, {**EYE, "top": (60.0, 66.0)}, 1.0)
    with pytest.raises(ValueError, match="coincide"):
        close_eye(img, {**EYE, "back": EYE["front"]}, 1.0)
    with pytest.raises(ValueError, match="max_closure"):
        close_eye(img, EYE, 1.0, max_closure=1.0)
    with pytest.raises(ValueError, match="image must be"):
        close_eye(np.zeros((4, 220, 260), np.uint8), EYE, 1.0)


def _facemap_folders() -> list[Path]:
    folders = sorted(p.parent for p in FACEMAP.glob("*/CollectedData_AVS.h5"))
    assert len(folders) == 2, FACEMAP
    return folders


def test_every_real_facemap_frame_warps_and_its_gap_matches_the_level():
    folders = _facemap_folders()
    n = 0
    for folder in folders:
        items = facemap_eyes(folder)
        assert items and all(set(eye) == set(EYE_KEYS) for _, eye in items)
        for path, eye in items:
            img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            assert img is not None, path
            open0 = lid_opening(eye)
            assert open0 > 50  # the labelled eye is open (~100 px gap)
            out, moved = close_eye(img, eye, 2.0)
            assert out.shape == img.shape
            assert lid_opening(moved) == pytest.approx(0.2 * open0)
            assert math.dist(moved["top"], moved["bottom"]) < math.dist(eye["top"], eye["bottom"])
            for level in (0.5, 1.0, 1.5):
                assert lid_opening(closed_points(eye, level)) == pytest.approx((1 - level * 0.4) * open0)
            # the pixels at the lid points moved with them (3x3 patches; level 1, where the eye side of
            # the lid margin is not yet squeezed much)
            grey = img.astype(np.float32)
            out, moved = close_eye(grey, eye, 1.0)
            assert moved == closed_points(eye, 1.0)
            for k in ("top", "bottom"):
                before = cv2.getRectSubPix(grey, (3, 3), eye[k])
                after = cv2.getRectSubPix(out, (3, 3), moved[k])
                stayed = cv2.getRectSubPix(out, (3, 3), eye[k])
                assert np.abs(after - before).mean() < 3.0, (path.name, k)
                assert np.abs(after - before).mean() < np.abs(stayed - before).mean(), (path.name, k)
            n += 1
    assert n == 4  # 30 labelled frames per recording, of which 2 have their image committed (tests/data)
