"""Per-crop quality scores."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mouse_facial_expressions.preprocess.quality import centre_slice, crop_quality, intensity, sharpness


def _texture(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size), dtype=np.uint8)


def test_blur_lowers_sharpness():
    img = _texture()
    blurred = cv2.GaussianBlur(img, (0, 0), 2.0)
    assert sharpness(blurred) < 0.2 * sharpness(img)


def test_flat_crop_has_zero_sharpness():
    assert sharpness(np.full((32, 32), 128, np.uint8)) == 0.0


def test_sharpness_only_looks_at_the_centre():
    img = np.full((64, 64), 100, np.uint8)
    img[:8] = _texture(1)[:8]  # texture only in the border rows
    assert sharpness(img, fraction=0.5) == 0.0
    assert sharpness(img, fraction=1.0) > 0.0


def test_intensity_is_the_mean_of_the_centre():
    img = np.zeros((40, 40), np.uint8)
    img[10:30, 10:30] = 200
    assert intensity(img, 0.5) == pytest.approx(200.0)
    assert intensity(img, 1.0) == pytest.approx(200.0 * 400 / 1600)


def test_centre_slice_is_centred():
    assert centre_slice(100, 0.5) == slice(25, 75)
    assert centre_slice(5, 0.01) == slice(2, 3)
    with pytest.raises(ValueError):
        centre_slice(10, 0.0)


def test_crop_quality_returns_both_scores():
    img = _texture(2)
    assert crop_quality(img) == (sharpness(img), intensity(img))
