"""Region occlusion on hand-made landmarks and a hand-made model."""

from __future__ import annotations

import numpy as np
import torch

from mouse_facial_expressions.inference.occlusion import RADIUS, occluded, region_importance, region_masks


def _points(t=2):
    return {"eye": np.array([[40.0, 20.0]] * t), "ear": np.array([[56.0, 16.0]] * t), "nose": np.array([[10.0, 30.0]] * t)}


def test_region_masks_are_disks_at_the_landmarks_and_the_background_outside_the_face():
    m = region_masks(_points(), 64)
    assert list(m) == ["eye", "ear", "nose", "cheek", "background"]
    assert m["eye"][0, 20, 40] and not m["eye"][0, 20, 40 + int(RADIUS * 64) + 2]
    assert m["nose"][1, 30, 10] and not m["nose"][1, 20, 40]
    assert m["cheek"][0, int(25 + 1.2 * RADIUS * 64), 25]  # below the eye-nose midpoint
    assert m["background"][0, 63, 0] and not m["background"][0, 22, 35]


def test_a_missing_landmark_gives_no_region():
    pts = _points()
    pts["ear"] = np.full((2, 2), np.nan)
    assert "ear" not in region_masks(pts, 64) and "eye" in region_masks(pts, 64)


def test_occluded_sets_the_masked_pixels_to_the_frame_mean():
    clip = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    mask = np.zeros((2, 4, 4), bool)
    mask[:, 0, 0] = True
    out = occluded(clip, mask)
    assert torch.allclose(out[:, :, 0, 0], clip.mean(dim=(2, 3)))
    assert torch.equal(out[:, :, 1:, :], clip[:, :, 1:, :])


class EyeModel(torch.nn.Module):
    """p1 rises with the brightness around (x=40, y=20): a model that only looks at the eye."""

    def forward(self, x):  # (B, T, C, H, W)
        eye = x[:, :, 0, 17:24, 37:44].mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(eye), eye], dim=1)


def test_region_importance_finds_the_region_the_model_uses():
    clips = [torch.zeros(2, 3, 64, 64) for _ in range(4)]
    for c in clips:
        c[:, :, 17:24, 37:44] = 3.0  # a bright eye
    df = region_importance(EyeModel(), clips, [_points()] * 4, np.array([1, 1, 1, 0]), ("healthy", "sick"), n_boot=50)
    sick = df[df["class"] == "sick"].set_index("region")
    assert sick.loc["eye", "mean_drop"] > 0.4 and abs(sick.loc["ear", "mean_drop"]) < 1e-6
    assert sick.loc["eye", "n_windows"] == 3 and set(df["class"]) == {"healthy", "sick"}
