"""Close an eye in a real image by a known amount: orbital tightening with a known answer.

``close_eye(image, eye, level)`` warps a photograph so that the lids of one eye move toward
each other by a known fraction, which turns hand-labelled real frames into Mouse Grimace Scale
orbital-tightening levels 0 (open) to 2 (closed by ``max_closure`` of the lid gap) on real fur,
real lighting and real camera noise. ``facemap_eyes(folder)`` reads a DeepLabCut
``labeled-data/<video>`` folder into ``(image path, eye points)`` pairs.

Model of the squint. The eye is four points: the two corners (``front``, ``back``) and the
two lid points (``top``, ``bottom``). Its axis runs from ``front`` to ``back``; ``v`` is the
signed distance from that axis, toward ``top``. At level ``L`` each lid point moves along the
axis normal toward the axis by ``s = L / 2 * max_closure`` of its distance to it; the corners
stay put. The lid gap measured across the axis (``lid_opening``) is therefore exactly
``(1 - s)`` times the original; the straight top-bottom distance shrinks too (monotonically),
by a little less where the two lid points are not opposite each other.

The warp is a backward map (``cv2.remap``) that moves pixels along the axis normal only. A
column at relative position ``t`` along the axis (0 at ``front``, 1 at ``back``) gets a model
lid height ``h(t) = a sqrt(sin(pi tau))`` (``a``: the lid point's distance to the axis; ``tau``
maps the corners to 0 and 1 and the lid point's column to 1/2), an almond through the corners
and the lid point, and a closure ``c(t) = s (1 - (1 - sin(pi tau))**3)``: ``s`` over most of
the eye, falling smoothly to 0 at the corners (0 beyond them), so the eye narrows evenly into
a slit that tapers to its corners. In a column, with ``m = h (1 - c)`` where the lid ends up,
the output pixel at distance ``y`` from the axis shows the source pixel at ``y + e(y)``:

- ``e = c h sin(pi y / (2 m))`` for ``y <= m`` (inside the eye: the aperture is squeezed,
  most at its middle, not at all at the lid margin),
- ``e = c h exp(-(y - m)**2 / (2 r**2))`` above the lid, ``r = max(eye width / 2, a)``: the lid
  and the fur above it slide toward the axis, the shift largest at the lid and fading over about
  an eye width, so pixels a few eye widths away do not move.

The upper half uses the top point (its ``a`` and column), the lower half the bottom point,
mirrored. The map is continuous, smooth (C1) except along the axis itself between the corners
(inside the eye, where the two halves meet), and one-to-one: it only moves pixels along the
normal, and its derivative along the normal stays positive (``r >= a`` keeps it above
``1 - 0.61 c``), so nothing folds or tears. Level 0 returns the image unchanged. Where the
sliding fur comes from beyond the image edge (an eye near the edge), the image is mirrored there.

Limits: this is a geometric proxy for a squint, not a model of one. The eyeball is squeezed
rather than covered by the lid, skin and fur are stretched rather than folded or bunched, the
lid margin keeps its thickness, no shadow or wrinkle appears, and the cheek and brow
(which also move in a real grimace) stay still. Use it to check that a model reads eye-opening
from real pixels; it does not show that the model would read a real squint.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

#: The eye points ``close_eye`` needs.
EYE_KEYS = ("top", "bottom", "front", "back")
#: DeepLabCut bodypart names of the eye points in the facemap head-fixed labels.
FACEMAP_EYE = {"top": "eye_top", "bottom": "eye_bottom", "front": "eye_front", "back": "eye_back"}
#: The Gaussian tail above the lid is cut where it is below ``exp(-CUT**2 / 2)`` (~1e-6) of the lid's shift.
_CUT = 5.3
_DTYPES = (np.uint8, np.uint16, np.float32)


def _points(eye: dict) -> dict[str, np.ndarray]:
    if not isinstance(eye, dict):
        raise ValueError(f"eye must be a dict of (x, y) points with keys {EYE_KEYS}, got {type(eye).__name__}")
    missing = [k for k in EYE_KEYS if k not in eye]
    if missing:
        raise ValueError(f"eye points missing: {missing} (need {list(EYE_KEYS)}, got {sorted(eye)})")
    out = {}
    for k in EYE_KEYS:
        try:
            p = np.asarray(eye[k], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"eye point {k!r} is not an (x, y) pair of numbers: {eye[k]!r}") from None
        if p.shape != (2,):
            raise ValueError(f"eye point {k!r} must be an (x, y) pair, got {eye[k]!r}")
        if not np.isfinite(p).all():
            raise ValueError(f"eye point {k!r} is not finite: {tuple(p)} (a missing label?)")
        out[k] = p
    return out


class _EyeFrame:
    """Axis frame of one eye: origin ``front``, unit ``u`` toward ``back``, unit ``n`` toward ``top``."""

    def __init__(self, pts: dict[str, np.ndarray]):
        self.origin = pts["front"]
        axis = pts["back"] - pts["front"]
        self.width = float(np.hypot(*axis))
        if self.width < 1e-6:
            raise ValueError(f"eye corners front and back coincide at {tuple(pts['front'])}")
        self.u = axis / self.width
        n = np.array([-self.u[1], self.u[0]])
        self.n = n if np.dot(pts["top"] - self.origin, n) >= 0 else -n

    def tv(self, p: np.ndarray) -> tuple[float, float]:
        """(t, v): position along the axis in eye widths (0 front, 1 back), signed distance to it (toward top)."""
        d = p - self.origin
        return float(np.dot(d, self.u) / self.width), float(np.dot(d, self.n))


def lid_opening(eye: dict) -> float:
    """Lid gap across the eye's axis: distance from ``top`` to ``bottom`` along the axis normal, px."""
    pts = _points(eye)
    frame = _EyeFrame(pts)
    return frame.tv(pts["top"])[1] - frame.tv(pts["bottom"])[1]


def _lid(frame: _EyeFrame, p: np.ndarray, name: str) -> tuple[float, float]:
    t, v = frame.tv(p)
    if not 0.0 < t < 1.0:
        raise ValueError(f"eye point {name!r} lies beyond the corners (at {t:.2f} of the front->back axis, "
                         f"expected between 0 and 1): are front/back the eye corners?")
    if abs(v) < 1e-6 or (name == "bottom" and v > 0):
        where = "on the axis" if abs(v) < 1e-6 else f"{v:.2f} px from it, on the top's side"
        raise ValueError(f"eye points top and bottom must lie on opposite sides of the front-back axis "
                         f"({name!r} is {where})")
    return t, abs(v)


def _column(t: np.ndarray, t_peak: float, a: float, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Lid height ``h(t)`` (px) and closure ``c(t)`` (fraction of ``h``) per column; both 0 beyond the corners."""
    tau = np.where(t <= t_peak, 0.5 * t / t_peak, 0.5 + 0.5 * (t - t_peak) / (1.0 - t_peak))
    bump = np.where((t > 0.0) & (t < 1.0), np.sin(np.pi * np.clip(tau, 0.0, 1.0)), 0.0)  # 0 at corners, 1 at the lid
    return a * np.sqrt(bump), s * (1.0 - (1.0 - bump) ** 3)


def _shift(y: np.ndarray, h: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    """Backward shift ``e(y) >= 0`` toward the lid, in px, for distances ``y >= 0`` from the axis."""
    m = h * (1.0 - c)  # where the lid ends up (c <= s < 1)
    amp = c * h  # how far the lid moves
    inside = amp * np.sin(np.pi / 2 * np.minimum(y / np.maximum(m, 1e-12), 1.0))
    above = amp * np.exp(-((y - m) ** 2) / (2 * r * r))
    return np.where(y <= m, inside, above)


def _moved(pts: dict[str, np.ndarray], frame: _EyeFrame, s: float) -> dict[str, tuple[float, float]]:
    a_top, a_bot = frame.tv(pts["top"])[1], -frame.tv(pts["bottom"])[1]
    moved = {k: (float(pts[k][0]), float(pts[k][1])) for k in EYE_KEYS}
    moved["top"] = tuple(float(x) for x in pts["top"] - s * a_top * frame.n)
    moved["bottom"] = tuple(float(x) for x in pts["bottom"] + s * a_bot * frame.n)
    return moved


def _check_level(level, max_closure: float) -> float:
    try:
        level = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"level must be a number in [0, 2], got {level!r}") from None
    if not math.isfinite(level) or not 0.0 <= level <= 2.0:
        raise ValueError(f"level must be in [0, 2] (MGS orbital tightening), got {level}")
    if not 0.0 <= max_closure < 1.0:
        raise ValueError(f"max_closure must be in [0, 1), got {max_closure}")
    return level


def closed_points(eye: dict[str, tuple[float, float]], level: float, *,
                  max_closure: float = 0.8) -> dict[str, tuple[float, float]]:
    """Where :func:`close_eye` puts the eye points at ``level`` (no image needed; same checks)."""
    level = _check_level(level, max_closure)
    pts = _points(eye)
    frame = _EyeFrame(pts)
    _lid(frame, pts["top"], "top")
    _lid(frame, pts["bottom"], "bottom")
    return _moved(pts, frame, level / 2.0 * max_closure)


def close_eye(image: np.ndarray, eye: dict[str, tuple[float, float]], level: float, *,
              max_closure: float = 0.8) -> tuple[np.ndarray, dict[str, tuple[float, float]]]:
    """Warp ``image`` so that the eye closes by ``level / 2 * max_closure`` of its lid gap.

    Args:
        image: ``(H, W)`` grey or ``(H, W, C)`` colour image (uint8; uint16 and float32 work too).
        eye: pixel ``(x, y)`` of the eye's ``top`` and ``bottom`` lid points and its ``front`` and
            ``back`` corners (other keys are ignored). ``top`` and ``bottom`` must lie on opposite
            sides of the front-back axis, between the corners.
        level: orbital tightening on the Mouse Grimace Scale's 0-2 range (fractions allowed):
            0 = open (the image is returned unchanged), 2 = closed by ``max_closure``.
        max_closure: fraction of the lid gap closed at level 2, in ``[0, 1)``.

    Returns:
        The warped image (same shape and dtype) and the moved points, keys ``top``, ``bottom``,
        ``front``, ``back``: the lid points moved toward the axis by ``level / 2 * max_closure``
        of their distance to it, the corners unchanged. See the module docstring for the model
        of the squint and its limits.

    Raises:
        ValueError: level outside [0, 2], max_closure outside [0, 1), missing or non-finite eye
            points, a degenerate eye (coinciding corners, both lid points on one side of the
            axis, a lid point beyond the corners), or an image that is not 2-D grey or colour.
    """
    level = _check_level(level, max_closure)
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"image must be (H, W) grey or (H, W, C) colour with C <= 4, got shape {image.shape}")
    if image.dtype not in _DTYPES:
        raise ValueError(f"image dtype must be one of {[np.dtype(d).name for d in _DTYPES]}, got {image.dtype}")
    pts = _points(eye)
    frame = _EyeFrame(pts)
    t_top, a_top = _lid(frame, pts["top"], "top")
    t_bot, a_bot = _lid(frame, pts["bottom"], "bottom")
    s = level / 2.0 * max_closure
    moved = _moved(pts, frame, s)
    if s == 0.0:
        return image.copy(), moved
    r_top, r_bot = max(frame.width / 2, a_top), max(frame.width / 2, a_bot)

    # Region that moves: the band between the corners' normals, up to the Gaussian cut above each lid.
    h, w = image.shape[:2]
    f, b = pts["front"], pts["back"]
    up, down = (a_top + _CUT * r_top) * frame.n, (a_bot + _CUT * r_bot) * frame.n
    box = np.stack([f + up, b + up, f - down, b - down])
    x0, y0 = np.clip(np.floor(box.min(0)).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(box.max(0)).astype(int) + 1, 0, [w, h])
    out = image.copy()
    if x1 <= x0 or y1 <= y0:
        return out, moved
    gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    dx, dy = gx - frame.origin[0], gy - frame.origin[1]
    t = (dx * frame.u[0] + dy * frame.u[1]) / frame.width
    v = dx * frame.n[0] + dy * frame.n[1]
    upper = v >= 0
    e = np.where(upper,
                 _shift(np.abs(v), *_column(t, t_top, a_top, s), r_top),
                 -_shift(np.abs(v), *_column(t, t_bot, a_bot, s), r_bot))  # signed, along n (away from the axis)
    map_x = (gx + e * frame.n[0]).astype(np.float32)
    map_y = (gy + e * frame.n[1]).astype(np.float32)
    roi = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    out[y0:y1, x0:x1] = roi.reshape(out[y0:y1, x0:x1].shape)
    return out, moved


def facemap_eyes(folder: str | Path) -> list[tuple[Path, dict[str, tuple[float, float]]]]:
    """Labelled images of a DeepLabCut ``labeled-data/<video>`` folder with their eye points.

    Reads the folder's ``CollectedData_*.h5`` (else ``CollectedData_*.csv``) with the project's
    DLC reader and maps bodyparts ``eye_top/eye_bottom/eye_front/eye_back`` (:data:`FACEMAP_EYE`)
    to the ``top/bottom/front/back`` points :func:`close_eye` takes. Frames with any eye point
    missing (NaN), and rows whose image file is not in the folder, are skipped.

    Returns:
        ``[(image path, {"top": (x, y), ...}), ...]`` in the label file's order.

    Raises:
        FileNotFoundError: no label file in the folder.
        ValueError: the label file lacks one of the eye bodyparts (a PoseFileError for a file
            that is not a DLC table).
    """
    from mouse_facial_expressions.io.dlc import read_dlc_table

    folder = Path(folder)
    files = sorted(folder.glob("CollectedData_*.h5")) or sorted(folder.glob("CollectedData_*.csv"))
    if not files:
        raise FileNotFoundError(f"{folder}: no DeepLabCut label file CollectedData_*.h5 or .csv")
    table = read_dlc_table(files[0])  # columns (scorer, [individuals,] bodyparts, coords), float64
    parts = table.columns.get_level_values("bodyparts")
    absent = [bp for bp in FACEMAP_EYE.values() if bp not in set(parts)]
    if absent:
        raise ValueError(f"{files[0]}: no bodyparts {absent} (found {sorted(set(parts))})")
    xy = {k: np.stack([table.loc[:, (parts == bp) & (table.columns.get_level_values("coords") == c)].iloc[:, 0]
                       .to_numpy(np.float64) for c in ("x", "y")], axis=1) for k, bp in FACEMAP_EYE.items()}
    out = []
    for i, label in enumerate(table.index):
        path = folder / str(label).replace("\\", "/").rsplit("/", 1)[-1]
        pts = {k: xy[k][i] for k in EYE_KEYS}
        if any(not np.isfinite(p).all() for p in pts.values()) or not path.is_file():
            continue
        out.append((path, {k: (float(p[0]), float(p[1])) for k, p in pts.items()}))
    return out
