"""Face alignment geometry on hand-made numbers and on the real facemap images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.preprocess import geometry as g

FACEMAP = Path(__file__).parent / "data" / "facemap_headfixed" / "labeled-data"  # tests/data/README.md


def _rot(pts, angle, about):
    c, s = np.cos(angle), np.sin(angle)
    r = np.array([[c, -s], [s, c]])
    return (np.asarray(pts, float) - about) @ r.T + about


def test_visible_side_needs_exactly_one_side():
    left = np.array([[0.9, 0.9, 0.9], [0.9, 0.9, 0.9], [0.9, 0.5, 0.9], [0.9, np.nan, 0.9], [0.1, 0.1, 0.1]])
    right = np.array([[0.1, 0.1, 0.1], [0.9, 0.9, 0.9], [0.9, 0.9, 0.9], [0.1, 0.1, 0.1], [0.1, 0.1, 0.1]])
    side = g.visible_side(left, right, 0.6)
    assert side.tolist() == [g.LEFT, g.NO_SIDE, g.RIGHT, g.NO_SIDE, g.NO_SIDE]


def test_known_rotation_is_undone():
    # A left-facing face: eye at (100, 100), ear 30 px behind it, turned by 35 degrees.
    eye0, ear0 = np.array([100.0, 100.0]), np.array([130.0, 100.0])
    centre = np.array([110.0, 105.0])
    angle = np.radians(35)
    eye, ear = _rot([eye0], angle, centre)[0], _rot([ear0], angle, centre)[0]
    m = g.align_matrices(eye[None], ear[None], centre[None], crop_size=100, out_size=100)
    e, a = g.transform_points(m, eye[None])[0], g.transform_points(m, ear[None])[0]
    assert a[1] == pytest.approx(e[1], abs=1e-9)  # eye -> ear horizontal again
    assert a[0] - e[0] == pytest.approx(30.0)  # pointing +x, scale 1
    # and it equals the unrotated layout, shifted so the centre is the crop centre
    np.testing.assert_allclose(e, eye0 - centre + 49.5, atol=1e-9)


def test_crop_is_centred_and_scaled():
    centre = np.array([[321.0, 123.0]])
    m = g.align_matrices(centre - [10, 0], centre + [10, 0], centre, crop_size=200, out_size=50)
    np.testing.assert_allclose(g.transform_points(m, centre)[0], [24.5, 24.5])
    # the crop's corners come from the source square of side 200 around the centre
    corner = g.transform_points(m, centre + [[100.0, 100.0]])[0]
    np.testing.assert_allclose(corner, [24.5 + 25, 24.5 + 25])


def test_mirroring_makes_right_facing_look_left_facing_and_keeps_up_up():
    # Right-facing: snout (nose) to the right of the eye, ear to the left and ABOVE (smaller y).
    nose, eye, ear = np.array([[160.0, 110.0]]), np.array([[140.0, 100.0]]), np.array([[110.0, 90.0]])
    centre = (nose + eye + ear) / 3
    m = g.align_matrices(eye, ear, centre, 100, 100, mirror=np.array([True]))
    n, e, a = (g.transform_points(m, p)[0] for p in (nose, eye, ear))
    assert a[1] == pytest.approx(e[1]) and a[0] > e[0]  # eye -> ear along +x
    assert n[0] < e[0]  # snout now points left
    assert n[1] > e[1]  # nose stays below the eye: a mirror, not a 180 degree turn
    assert np.linalg.det(m[0, :, :2]) < 0  # orientation reversed = a reflection


def test_mirrored_pair_gives_identical_crops():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 160), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    flipped = img[:, ::-1].copy()
    eye, ear = np.array([[60.0, 50.0]]), np.array([[90.0, 58.0]])
    centre = np.array([[75.0, 60.0]])
    flip = lambda p: np.column_stack([159 - p[:, 0], p[:, 1]])  # noqa: E731
    m_left = g.align_matrices(eye, ear, centre, 64, 64)
    m_right = g.align_matrices(flip(eye), flip(ear), flip(centre), 64, 64, mirror=np.array([True]))
    a = g.warp_crop(img, m_left[0], 64, antialias=False).astype(int)
    b = g.warp_crop(flipped, m_right[0], 64, antialias=False).astype(int)
    assert np.abs(a - b).max() <= 1


def test_warp_puts_a_marked_pixel_where_transform_points_says():
    img = np.zeros((200, 300), np.uint8)
    cv2.circle(img, (180, 70), 4, 255, -1)
    eye, ear = np.array([[180.0, 70.0]]), np.array([[150.0, 110.0]])
    centre = np.array([[160.0, 95.0]])
    m = g.align_matrices(eye, ear, centre, 120, 60)
    crop = g.warp_crop(img, m[0], 60)
    ys, xs = np.nonzero(crop > 60)
    expected = g.transform_points(m, eye)[0]
    assert abs(xs.mean() - expected[0]) < 0.5 and abs(ys.mean() - expected[1]) < 0.5


def test_antialias_keeps_geometry_of_strong_downscale():
    img = np.zeros((600, 800), np.uint8)
    cv2.circle(img, (500, 260), 12, 255, -1)
    p, centre = np.array([[500.0, 260.0]]), np.array([[420.0, 300.0]])
    m = g.align_matrices(centre - [[1, 1]], centre + [[2, 1]], centre, 400, 64)
    expected = g.transform_points(m, p)[0]
    for aa in (True, False):
        crop = g.warp_crop(img, m[0], 64, antialias=aa).astype(float)
        ys, xs = np.mgrid[:64, :64]
        w = crop / crop.sum()
        assert abs((xs * w).sum() - expected[0]) < 0.3 and abs((ys * w).sum() - expected[1]) < 0.3


def test_side_geometry_uses_the_visible_side_and_nan_for_no_side():
    xy = {
        "nose": np.array([[50.0, 60.0], [150.0, 60.0], [0.0, 0.0]]),
        "left_eye": np.array([[70.0, 50.0], [0.0, 0.0], [1.0, 1.0]]),
        "left_ear": np.array([[100.0, 45.0], [0.0, 0.0], [2.0, 2.0]]),
        "right_eye": np.array([[0.0, 0.0], [130.0, 50.0], [3.0, 3.0]]),
        "right_ear": np.array([[0.0, 0.0], [100.0, 45.0], [4.0, 4.0]]),
    }
    side = np.array([g.LEFT, g.RIGHT, g.NO_SIDE])
    m, pts = g.side_geometry(xy, side, 100, 100)
    # frame 1 is the exact mirror image of frame 0 about x = 100: identical crop coordinates
    for role in ("nose", "eye", "ear"):
        np.testing.assert_allclose(pts[role][0], pts[role][1], atol=1e-9)
    centre = (pts["nose"][0] + pts["eye"][0] + pts["ear"][0]) / 3
    np.testing.assert_allclose(centre, [49.5, 49.5], atol=1e-9)
    assert np.isnan(m[2]).all() and np.isnan(pts["eye"][2]).all()


def test_invert_matrices_round_trips():
    m = g.align_matrices(np.array([[3.0, 4.0]]), np.array([[20.0, -7.0]]), np.array([[10.0, 0.0]]), 50, 80,
                         mirror=np.array([True]))
    p = np.array([[12.0, 34.0]])
    back = g.transform_points(g.invert_matrices(m), g.transform_points(m, p))
    np.testing.assert_allclose(back, p, atol=1e-9)


# ----------------------------------------------------------------------------- real facemap images

EYE = ["eye_top", "eye_front", "eye_bottom", "eye_back"]


def _facemap():
    files = sorted(FACEMAP.glob("*/CollectedData_AVS.csv"))
    assert len(files) == 2, FACEMAP
    df = pd.concat([pd.read_csv(p, header=[0, 1, 2], index_col=[0, 1, 2]) for p in files])
    df.columns = df.columns.droplevel(0)  # scorer
    parts = sorted(set(df.columns.get_level_values(0)))
    xy = {bp: df[bp][["x", "y"]].to_numpy(float) for bp in parts}
    paths = [FACEMAP / rec / img for _, rec, img in df.index]
    return xy, paths


def test_facemap_alignment_puts_the_eye_at_one_canonical_spot():
    xy, paths = _facemap()
    assert len(paths) == 60
    crop, out = 700, 128
    m, pts = g.landmark_geometry(xy, axis=("nose_tip", EYE), centre=["nose_tip", EYE], crop_size=crop, out_size=out)
    eye = np.mean([pts[n] for n in EYE], axis=0)  # (60, 2) crop coords of the eye centre
    nose = pts["nose_tip"]
    # the axis is horizontal, nose left of the eye, centred
    np.testing.assert_allclose(eye[:, 1], (out - 1) / 2, atol=1e-6)
    np.testing.assert_allclose((eye + nose) / 2, (out - 1) / 2, atol=1e-6)
    assert (nose[:, 0] < eye[:, 0]).all()
    # the eye sits at the same spot within a few output pixels in every image
    spread = np.abs(eye - np.median(eye, axis=0)).max()
    assert spread < 4.0, spread  # 4 px of 128 (the nose tip moves ~15 px between images)
    # and on the real pixels (the 4 labelled images committed, 2 per recording): the eye region of
    # every aligned crop matches the mean template
    eye_box = np.median(eye, axis=0).round().astype(int)
    crops = []
    with_image = [k for k, p in enumerate(paths) if p.is_file()]
    assert len(with_image) == 4
    for k in with_image:
        img = cv2.imread(str(paths[k]), cv2.IMREAD_GRAYSCALE)
        assert img is not None, paths[k]
        crops.append(g.warp_crop(img, m[k], out).astype(np.float32))
    crops = np.stack(crops)
    x, y = eye_box
    patches = crops[:, y - 12:y + 13, x - 12:x + 13]
    template = patches.mean(axis=0)
    # locate the template in a search window of each crop: the best offset is within 3 px
    offsets = []
    for c in crops:
        win = c[y - 20:y + 21, x - 20:x + 21]
        res = cv2.matchTemplate(win, template, cv2.TM_CCOEFF_NORMED)
        _, _, _, (bx, by) = cv2.minMaxLoc(res)
        offsets.append((bx - 8, by - 8))
    assert np.abs(np.array(offsets)).max() <= 4, offsets
