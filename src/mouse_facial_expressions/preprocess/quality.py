"""Per-crop quality scores: pure functions on uint8 crops.

- sharpness: variance of the Laplacian over the face centre (the original ranking score);
  blurred or motion-smeared crops score low.
- intensity: mean grey value of the face centre (dark or over-exposed frames stand out).

Both are computed on the aligned crop, so they measure the face and not the background.

Landmark quality (can a frame's keypoints give a face at all?): :func:`outside_frame`,
:func:`below_cutoff`, :func:`implausible_geometry` and the index's flag columns
(:data:`FLAG_COLUMNS`, :func:`flagged`).
"""

from __future__ import annotations

import cv2
import numpy as np


def centre_slice(size: int, fraction: float = 0.5) -> slice:
    """Slice of the central ``fraction`` of an axis of length ``size`` (at least one pixel)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"centre fraction must be in (0, 1], got {fraction}")
    n = max(1, int(round(size * fraction)))
    start = (size - n) // 2
    return slice(start, start + n)


def sharpness(crop: np.ndarray, fraction: float = 0.5) -> float:
    """Variance of the Laplacian over the central ``fraction`` of a grey crop ``(S, S)``.

    The Laplacian (3x3, ``ksize=1``) is computed on the centre plus a one-pixel rim, so the
    centre's values do not depend on border handling.
    """
    crop = np.asarray(crop)
    if crop.ndim != 2:
        raise ValueError(f"sharpness expects a grey (H, W) crop, got shape {crop.shape}")
    ys, xs = centre_slice(crop.shape[0], fraction), centre_slice(crop.shape[1], fraction)
    y0, x0 = max(0, ys.start - 1), max(0, xs.start - 1)
    roi = crop[y0:ys.stop + 1, x0:xs.stop + 1]
    lap = cv2.Laplacian(roi, cv2.CV_32F, ksize=1)[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    _, sd = cv2.meanStdDev(lap)
    return float(sd[0, 0]) ** 2


def intensity(crop: np.ndarray, fraction: float = 0.5) -> float:
    """Mean grey value (0..255) over the central ``fraction`` of a crop."""
    crop = np.asarray(crop)
    ys, xs = centre_slice(crop.shape[0], fraction), centre_slice(crop.shape[1], fraction)
    return float(cv2.mean(np.ascontiguousarray(crop[ys, xs]))[0]) if crop.ndim == 2 else float(crop[ys, xs].mean())


def crop_quality(crop: np.ndarray, fraction: float = 0.5) -> tuple[float, float]:
    """``(sharpness, intensity)`` of one grey crop."""
    return sharpness(crop, fraction), intensity(crop, fraction)


# ----------------------------------------------------------------------------- landmark quality
# Can the keypoints of a frame give a face at all? Pure numpy on per-frame landmark arrays, in
# source pixels of the processed video (``points`` of the landmarks the alignment requires, the
# alignment's axis ``front -> back`` and crop ``centre``). ``crop_video`` drops the frames whose
# face centre is off the video frame (their crops are the frame's border, repeated) and stores
# the others with the flags below, which ``mfe task make`` leaves out.

#: Flag columns of the frame-store index (bool; True = the crop should not be trained on).
#: Stores written before they existed have none: every crop counts as unflagged.
FLAG_COLUMNS = ("flag_off_frame", "flag_low_likelihood", "flag_geometry")
#: What each flag means, for messages.
FLAG_NAMES = {"flag_off_frame": "a landmark off the frame", "flag_low_likelihood": "a likelihood below the cutoff",
              "flag_geometry": "an implausible face geometry"}
#: Smallest distance between two required landmarks, as a share of ``extract.crop_size``: closer
#: landmarks are collapsed detections (6 px of the original 300 px crop; synthetic faces: >= 0.13).
MIN_SEPARATION = 0.02
#: Largest tilt of the face axis away from the direction the visible side implies (degrees).
#: Past 90 the aligned crop would show the face upside down: the side and the axis disagree.
MAX_AXIS_TILT_DEG = 90.0


def outside_frame(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Whether any point of a frame lies outside a ``width x height`` image (pixel edges
    ``-0.5 .. width - 0.5``).

    Args:
        points: ``(N, 2)`` or ``(N, K, 2)`` source coordinates; NaN points never count as outside
            (a missing landmark is a likelihood matter).

    Returns:
        ``(N,)`` bool.
    """
    p = np.asarray(points, float)
    p = p[:, None, :] if p.ndim == 2 else p
    with np.errstate(invalid="ignore"):
        out = (p[..., 0] < -0.5) | (p[..., 0] > width - 0.5) | (p[..., 1] < -0.5) | (p[..., 1] > height - 0.5)
    return out.any(axis=1)


def below_cutoff(likelihood: np.ndarray, cutoff: float) -> np.ndarray:
    """``(N,)`` bool: the likelihood is below ``cutoff`` (NaN counts as below)."""
    lk = np.asarray(likelihood, float)
    with np.errstate(invalid="ignore"):
        return ~(lk >= cutoff)


def min_separation(points: np.ndarray) -> np.ndarray:
    """``(N,)`` smallest distance between two of the ``K`` points ``(N, K, 2)`` of a frame (inf for K < 2)."""
    p = np.asarray(points, float)
    if p.shape[1] < 2:
        return np.full(len(p), np.inf)
    d = np.linalg.norm(p[:, :, None, :] - p[:, None, :, :], axis=-1)  # (N, K, K)
    iu = np.triu_indices(p.shape[1], k=1)
    return d[:, iu[0], iu[1]].min(axis=1)


def axis_tilt_deg(front: np.ndarray, back: np.ndarray, mirror: np.ndarray | None = None) -> np.ndarray:
    """``(N,)`` angle (degrees, -180..180) of the axis ``front -> back`` after the mirror of
    right-side frames; 0 = the direction the alignment turns it to (snout left, axis along +x)."""
    v = np.asarray(back, float) - np.asarray(front, float)
    vx = v[:, 0] * (np.where(np.asarray(mirror, bool), -1.0, 1.0) if mirror is not None else 1.0)
    return np.degrees(np.arctan2(v[:, 1], vx))


def behind_front(front: np.ndarray, back: np.ndarray, point: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: ``point`` projects behind the axis front (towards the back), i.e.
    ``(point - front) . (back - front) > 0``. The snout of a face lies in front of the axis."""
    f = np.asarray(front, float)
    return np.einsum("ni,ni->n", np.asarray(point, float) - f, np.asarray(back, float) - f) > 0


def outside_crop(crop_points: np.ndarray, out_size: int) -> np.ndarray:
    """``(N,)`` bool: any of the crop coordinates ``(N, K, 2)`` lies outside the ``out_size`` crop."""
    return outside_frame(crop_points, out_size, out_size)


def implausible_geometry(points: np.ndarray, front: np.ndarray, back: np.ndarray, crop_points: np.ndarray, *,
                         crop_size: float, out_size: int, mirror: np.ndarray | None = None,
                         snout: np.ndarray | None = None) -> np.ndarray:
    """Frames whose landmarks cannot be the face the alignment expects (``(N,)`` bool): two
    required landmarks closer than :data:`MIN_SEPARATION` x ``crop_size``; a required landmark
    outside its own crop (the face does not fit ``crop_size``); the axis tilted more than
    :data:`MAX_AXIS_TILT_DEG` from the direction of the visible side; the ``snout`` (the nose,
    when the alignment requires it off the axis) behind the axis front.

    Args:
        points: ``(N, K, 2)`` source coordinates of the required landmarks (visible side).
        front, back: ``(N, 2)`` the alignment axis in source coordinates.
        crop_points: ``(N, K, 2)`` the same landmarks in crop coordinates.
        crop_size, out_size: ``extract.crop_size`` and ``extract.out_size``.
        mirror: ``(N,)`` right-side frames (mirrored before alignment).
        snout: ``(N, 2)`` or None.
    """
    with np.errstate(invalid="ignore"):
        bad = min_separation(points) < MIN_SEPARATION * crop_size
        bad |= outside_crop(crop_points, out_size)
        bad |= np.abs(axis_tilt_deg(front, back, mirror)) > MAX_AXIS_TILT_DEG
        if snout is not None:
            bad |= behind_front(front, back, snout)
    return bad


def flagged(index) -> np.ndarray:
    """``(N,)`` bool: rows of a frame-store index with any quality flag; a missing column or a
    missing value (stores written before the flags) counts as unflagged."""
    out = np.zeros(len(index), bool)
    for c in FLAG_COLUMNS:
        if c in index.columns:
            out |= index[c].eq(True).to_numpy()
    return out
