"""Face alignment geometry: pure numpy on keypoint arrays, one 2x3 affine matrix per frame.

Conventions (image coordinates, x right, y down, pixel centres at integers):

- The LEFT side of the face is visible when the snout points image-left; the RIGHT side when
  it points image-right.
- A canonical crop always looks like a left-facing face: the snout points left (-x), the
  back of the head right (+x), the top of the head up. Right-facing frames are mirrored
  horizontally (a mirror, never a 180 degree turn, so the dorsal side stays up).
- The alignment axis goes from front to back (eye -> ear for the DLC face model, nose -> eye
  when there are no ears); after alignment it points along ``target_angle`` (0 = +x).
- The crop is a square of ``crop_size`` source pixels centred on the landmark centroid,
  resampled to ``out_size`` pixels. The centroid lands on the crop centre
  ``((out_size - 1) / 2, (out_size - 1) / 2)``.

Everything is composed into one 2x3 matrix per frame (mirror, rotate, scale, translate), so
a frame costs one ``cv2.warpAffine`` straight to ``out_size x out_size``.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Side codes returned by :func:`visible_side`.
NO_SIDE, LEFT, RIGHT = -1, 0, 1
SIDE_NAMES = {LEFT: "left", RIGHT: "right"}

#: Landmarks per side of the canonical (DLC face model) set: (front, back) of the axis and
#: the landmarks whose mean is the crop centre.
SIDE_LANDMARKS = {
    LEFT: {"nose": "nose", "eye": "left_eye", "ear": "left_ear"},
    RIGHT: {"nose": "nose", "eye": "right_eye", "ear": "right_ear"},
}


def visible_side(lik_left: np.ndarray, lik_right: np.ndarray, pcutoff: float) -> np.ndarray:
    """Which side of the face the camera sees, per frame.

    A side is visible when every landmark of that side (nose, eye, ear) has a likelihood
    above ``pcutoff``; NaN counts as not seen. Frames where both or neither side are visible
    are not side portraits.

    Args:
        lik_left: ``(N, K)`` likelihoods of the left-side landmarks.
        lik_right: ``(N, K)`` likelihoods of the right-side landmarks.
        pcutoff: a landmark counts as seen when its likelihood exceeds this.

    Returns:
        ``(N,)`` int8: :data:`LEFT`, :data:`RIGHT` or :data:`NO_SIDE`.
    """
    lik_left = np.asarray(lik_left, dtype=float)
    lik_right = np.asarray(lik_right, dtype=float)
    with np.errstate(invalid="ignore"):
        left = np.all(lik_left > pcutoff, axis=1)
        right = np.all(lik_right > pcutoff, axis=1)
    side = np.full(len(left), NO_SIDE, dtype=np.int8)
    side[left & ~right] = LEFT
    side[right & ~left] = RIGHT
    return side


def rotation_angle(axis_from: np.ndarray, axis_to: np.ndarray, mirror: np.ndarray | None = None) -> np.ndarray:
    """Angle (radians) of the axis ``axis_from -> axis_to`` after the optional mirror.

    Args:
        axis_from, axis_to: ``(N, 2)`` points.
        mirror: ``(N,)`` bool, frames that are mirrored horizontally first.

    Returns:
        ``(N,)`` angles in ``(-pi, pi]``; NaN where a point is NaN.
    """
    v = np.asarray(axis_to, float) - np.asarray(axis_from, float)
    vx = v[:, 0].copy()
    if mirror is not None:
        vx[np.asarray(mirror, bool)] *= -1
    return np.arctan2(v[:, 1], vx)


def align_matrices(
    axis_from: np.ndarray,
    axis_to: np.ndarray,
    centre: np.ndarray,
    crop_size: float | np.ndarray,
    out_size: int,
    mirror: np.ndarray | None = None,
    target_angle: float = 0.0,
) -> np.ndarray:
    """Source-image -> crop affine matrices, one per frame.

    ``M @ [x, y, 1]`` is the position in the ``out_size`` crop of source pixel ``(x, y)``:
    ``u = s * R(target - angle) @ F @ (p - centre) + (out_size - 1) / 2`` where ``F`` mirrors x
    for mirrored frames, ``angle`` is the axis direction after ``F``, and
    ``s = out_size / crop_size``.

    Args:
        axis_from, axis_to: ``(N, 2)`` points defining the alignment axis (front -> back).
        centre: ``(N, 2)`` crop centres in source pixels.
        crop_size: side of the source square (scalar, or ``(N,)`` per frame).
        out_size: side of the output crop in pixels.
        mirror: ``(N,)`` bool, mirror horizontally (right-facing frames).
        target_angle: direction of the axis in the crop (0 = +x).

    Returns:
        ``(N, 2, 3)`` float64 matrices, usable by ``cv2.warpAffine``; NaN rows where the
        input is NaN.
    """
    centre = np.asarray(centre, float)
    n = len(centre)
    mirror = np.zeros(n, bool) if mirror is None else np.asarray(mirror, bool)
    fx = np.where(mirror, -1.0, 1.0)  # (N,)
    rot = target_angle - rotation_angle(axis_from, axis_to, mirror)  # (N,)
    s = out_size / np.broadcast_to(np.asarray(crop_size, float), (n,))  # (N,)
    cos, sin = np.cos(rot) * s, np.sin(rot) * s
    # A = s * R @ F, with F = diag(fx, 1)
    m = np.empty((n, 2, 3))
    m[:, 0, 0] = cos * fx
    m[:, 0, 1] = -sin
    m[:, 1, 0] = sin * fx
    m[:, 1, 1] = cos
    half = (out_size - 1) / 2.0
    m[:, :, 2] = half - np.einsum("nij,nj->ni", m[:, :, :2], centre)
    return m


def transform_points(matrices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply per-frame affine matrices ``(N, 2, 3)`` to points ``(N, 2)`` or ``(N, K, 2)``."""
    pts = np.asarray(points, float)
    single = pts.ndim == 2
    if single:
        pts = pts[:, None, :]
    out = np.einsum("nij,nkj->nki", matrices[:, :, :2], pts) + matrices[:, None, :, 2]
    return out[:, 0, :] if single else out


def invert_matrices(matrices: np.ndarray) -> np.ndarray:
    """Inverse affine maps (crop -> source), ``(N, 2, 3)``."""
    a = matrices[:, :, :2]
    inv = np.linalg.inv(a)
    out = np.empty_like(matrices)
    out[:, :, :2] = inv
    out[:, :, 2] = -np.einsum("nij,nj->ni", inv, matrices[:, :, 2])
    return out


def side_geometry(
    xy: dict[str, np.ndarray],
    side: np.ndarray,
    crop_size: float,
    out_size: int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Alignment of the canonical DLC face model (nose, left/right eye and ear).

    The axis is eye -> ear of the visible side, the centre the mean of (nose, eye, ear) of
    that side; right-facing frames are mirrored.

    Args:
        xy: landmark name -> ``(N, 2)`` source coordinates (the five canonical landmarks).
        side: ``(N,)`` side codes from :func:`visible_side`.
        crop_size, out_size: see :func:`align_matrices`.

    Returns:
        ``(matrices (N, 2, 3), crop_points)`` where ``crop_points`` maps ``eye``, ``ear`` and
        ``nose`` to ``(N, 2)`` crop coordinates. Frames without a side get NaN.
    """
    side = np.asarray(side)
    right = side == RIGHT
    pick = {}
    for role in ("nose", "eye", "ear"):
        left_pts = np.asarray(xy[SIDE_LANDMARKS[LEFT][role]], float)
        right_pts = np.asarray(xy[SIDE_LANDMARKS[RIGHT][role]], float)
        pts = np.where(right[:, None], right_pts, left_pts)
        pts[side == NO_SIDE] = np.nan
        pick[role] = pts
    centre = (pick["nose"] + pick["eye"] + pick["ear"]) / 3.0
    m = align_matrices(pick["eye"], pick["ear"], centre, crop_size, out_size, mirror=right)
    return m, {role: transform_points(m, pts) for role, pts in pick.items()}


def landmark_geometry(
    xy: dict[str, np.ndarray],
    axis: tuple[str | list[str], str | list[str]],
    centre: list[str | list[str]],
    crop_size: float,
    out_size: int,
    mirror: np.ndarray | None = None,
    target_angle: float = 0.0,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Alignment from any landmark set: the axis and centre are named landmarks or means of several.

    Example (head-fixed facemap data, no ears)::

        eye = ["eye_top", "eye_front", "eye_bottom", "eye_back"]
        m, pts = landmark_geometry(xy, axis=("nose_tip", eye), centre=["nose_tip", eye], ...)

    Args:
        xy: landmark name -> ``(N, 2)`` source coordinates.
        axis: ``(front, back)``; each a landmark name or a list of names averaged.
        centre: items (names or lists of names) whose mean is the crop centre.
        crop_size, out_size, mirror, target_angle: see :func:`align_matrices`.

    Returns:
        ``(matrices (N, 2, 3), crop_points)``: every landmark in ``xy`` in crop coordinates.
    """
    def point(spec):
        names = [spec] if isinstance(spec, str) else list(spec)
        return np.mean([np.asarray(xy[n], float) for n in names], axis=0)

    front, back = point(axis[0]), point(axis[1])
    c = np.mean([point(spec) for spec in centre], axis=0)
    m = align_matrices(front, back, c, crop_size, out_size, mirror=mirror, target_angle=target_angle)
    return m, {name: transform_points(m, np.asarray(p, float)) for name, p in xy.items()}


def warp_crop(image: np.ndarray, matrix: np.ndarray, out_size: int, antialias: bool = True) -> np.ndarray:
    """One aligned crop: ``cv2.warpAffine`` of ``image`` with a 2x3 ``matrix`` to ``out_size``.

    When the crop shrinks the image by more than 2x, the source region around the crop is
    first halved with a 2x2 box filter (``cv2.resize``, ``INTER_AREA``), so fine texture does
    not alias; only that region is filtered, which keeps the cost per frame small.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` uint8 source frame.
        matrix: ``(2, 3)`` source -> crop affine map.
        out_size: side of the output.
        antialias: low-pass before strong downscaling.

    Returns:
        ``(out_size, out_size[, C])`` array of the image's dtype. Pixels outside the image
        repeat the border.
    """
    m = np.asarray(matrix, float)
    a = m[:, :2]
    scale = float(np.sqrt(abs(a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0])))
    while antialias and scale < 0.5:
        # Source bounding box of the crop: inverse-map the output square, plus a margin.
        inv = cv2.invertAffineTransform(m)
        half = (out_size + 1) / 2.0
        cx, cy = inv[:, :2] @ np.array([half - 1, half - 1]) + inv[:, 2]
        r = half * (abs(inv[0, 0]) + abs(inv[0, 1])) + 4  # half extent along x (= along y)
        h, w = image.shape[:2]
        x0, y0 = max(0, int(cx - r)), max(0, int(cy - r))
        x1, y1 = min(w, int(cx + r) + 2), min(h, int(cy + r) + 2)
        x1, y1 = x0 + (x1 - x0) // 2 * 2, y0 + (y1 - y0) // 2 * 2  # even sizes: exact 2x2 boxes
        if x1 - x0 < 2 or y1 - y0 < 2:
            break  # the crop lies outside the image: nothing to filter
        image = cv2.resize(image[y0:y1, x0:x1], ((x1 - x0) // 2, (y1 - y0) // 2), interpolation=cv2.INTER_AREA)
        # box (i, j) averages source pixels 2i, 2i+1 (+ x0): source p = 2 q + 0.5 + (x0, y0)
        m = np.concatenate([a * 2.0, (m[:, 2] + a @ np.array([x0 + 0.5, y0 + 0.5]))[:, None]], axis=1)
        a = m[:, :2]
        scale *= 2.0
    return cv2.warpAffine(image, m, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
