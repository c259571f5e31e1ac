"""Per-crop quality scores: pure functions on uint8 crops.

- sharpness: variance of the Laplacian over the face centre (the original ranking score);
  blurred or motion-smeared crops score low.
- intensity: mean grey value of the face centre (dark or over-exposed frames stand out).

Both are computed on the aligned crop, so they measure the face and not the background.
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
