"""Which face region the score depends on: mask each region in turn and measure how ``p1`` moves.

Grad-CAM at 64 px from the last convolution is a 2x2 map (one cell per quadrant); it cannot
tell the eye from the ear. Occlusion asks the model directly: every frame of a window gets one
region replaced by that frame's mean grey, and the drop ``p1(original) - p1(masked)`` says how
much the class-1 score leaned on it (negative: the region pulled the score down).

Regions, from the crop-space landmarks of each frame (frame store columns ``eye_x`` ...):

- ``eye``, ``ear``, ``nose``: a disk of radius :data:`RADIUS` x the crop side around the landmark;
- ``cheek``: the same disk below the middle of eye and nose (whisker pad and cheek);
- ``background``: everything farther than :data:`FACE_RADIUS` x the side from the landmarks' centre.

A landmark the alignment does not have (``ear`` on a head-fixed rig) gives no row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mouse_facial_expressions.bootstrap import draw_groups, percentile_ci

REGIONS = ("eye", "ear", "nose", "cheek", "background")
#: Disk radius of the eye/ear/nose/cheek regions, as a share of the crop side.
RADIUS = 0.12
#: Beyond this distance from the landmarks' centre (share of the crop side) is background.
FACE_RADIUS = 0.45


def region_masks(points: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """``(T, size, size)`` bool masks per region from ``(T, 2)`` crop coordinates (in ``size`` px)
    of ``eye``, ``ear`` and ``nose``; regions whose landmarks are NaN are left out."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    r = RADIUS * size

    def disk(p: np.ndarray) -> np.ndarray:  # (T, 2) -> (T, S, S)
        return (xx[None] - p[:, 0, None, None]) ** 2 + (yy[None] - p[:, 1, None, None]) ** 2 <= r ** 2

    out = {}
    for role in ("eye", "ear", "nose"):
        p = points.get(role)
        if p is not None and np.isfinite(p).all():
            out[role] = disk(p)
    if "eye" in out and "nose" in out:
        out["cheek"] = disk((points["eye"] + points["nose"]) / 2 + np.array([0.0, 1.2 * r], np.float32))
    known = [points[k] for k in ("eye", "ear", "nose") if k in out]
    if known:
        c = np.mean(known, axis=0)  # (T, 2)
        out["background"] = (xx[None] - c[:, 0, None, None]) ** 2 + (yy[None] - c[:, 1, None, None]) ** 2 > (FACE_RADIUS * size) ** 2
    return {k: out[k] for k in REGIONS if k in out}


def occluded(clip, mask: np.ndarray):
    """``clip`` ``(T, C, H, W)`` with ``mask`` ``(T, H, W)`` set to each frame's mean value."""
    import torch

    m = torch.as_tensor(mask, dtype=torch.bool)[:, None].expand_as(clip)  # (T, C, H, W)
    fill = clip.mean(dim=(2, 3), keepdim=True).expand_as(clip)
    return torch.where(m, fill, clip)


def region_importance(model, clips: list, points: list[dict[str, np.ndarray]], labels: np.ndarray,
                      class_names=("class 0", "class 1"), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean drop of ``p1`` when each region is masked, per true class, with a 95% bootstrap CI over windows.

    Args:
        model: ``(B, T, C, H, W)`` -> logits ``(B, 2)``, in eval mode.
        clips: normalised clips ``(T, C, H, W)``.
        points: per clip, ``eye``/``ear``/``nose`` ``(T, 2)`` crop coordinates in input pixels.
        labels: ``(W,)`` true class of each clip.

    Returns:
        ``class, region, n_windows, mean_drop, low, high`` rows.
    """
    import torch

    drops: dict[tuple[int, str], list[float]] = {}
    with torch.no_grad():
        for clip, pts, y in zip(clips, points, labels):
            masks = region_masks(pts, clip.shape[-1])
            batch = torch.stack([clip] + [occluded(clip, m) for m in masks.values()]).float()  # (1 + R, T, C, H, W)
            p1 = torch.softmax(model(batch), dim=1)[:, 1].numpy()
            for k, region in enumerate(masks):
                drops.setdefault((int(y), region), []).append(float(p1[0] - p1[k + 1]))
    rng = np.random.default_rng(seed)
    rows = []
    for (y, region), d in sorted(drops.items(), key=lambda kv: (kv[0][0], REGIONS.index(kv[0][1]))):
        d = np.asarray(d)
        boot = d[draw_groups(len(d), n_boot, rng)].mean(axis=1) if len(d) > 1 else d  # (n_boot,), windows drawn
        ci = percentile_ci(float(d.mean()), boot)
        rows.append({"class": class_names[y], "region": region, "n_windows": len(d), "mean_drop": ci.value,
                     "low": ci.low, "high": ci.high})
    return pd.DataFrame(rows, columns=["class", "region", "n_windows", "mean_drop", "low", "high"])
