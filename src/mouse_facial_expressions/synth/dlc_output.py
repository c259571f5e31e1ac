"""What DeepLabCut would have written for a synthetic take: observed keypoints and DLC's files.

:func:`_keypoints` turns the true landmarks of a take into DLC's observations (seen or hidden,
with jitter and likelihood: the DLC contract of :mod:`~mouse_facial_expressions.synth.cohort`);
:func:`dlc_table` and :func:`write_pose_files` lay them out as DLC's single-animal ``.h5`` and
``.csv``, for the face camera and for the body track. Apart from the simulation
(:mod:`~mouse_facial_expressions.synth.takes`) because it is the one place that knows DLC's
layout and scorer name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.config import CANONICAL_LANDMARKS
from mouse_facial_expressions.io.dlc import write_dlc
from mouse_facial_expressions.synth.motion import PORTRAIT_YAW
from mouse_facial_expressions.synth.render import occluded_mask

#: DeepLabCut's scorer name in every synthetic face keypoint file.
SCORER = "DLC_resnet50_mfeSynthJan1shuffle1_100000"


def _in_frame(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    return (xy[..., 0] > 2) & (xy[..., 0] < width - 3) & (xy[..., 1] > 2) & (xy[..., 1] < height - 3)


#: Least head foreshortening at which DLC still finds each facing-side point.
_MIN_YAW = {"nose": 0.5, "eye": PORTRAIT_YAW, "ear": 0.3}


def _keypoints(track, lm, bar, rng, width, height):
    """Observed DLC keypoints ``{name: (x, y, likelihood)}`` and the truth flags.

    A point is seen (likelihood 0.92-0.999, ~0.7 px jitter, 1.5 px when blurred) when it
    is on the facing side, inside the frame, not under the feeder bar and the head is not
    turned too far; otherwise it is hidden (likelihood 0.005-0.25, 3 px jitter).
    """
    n = len(track["x"])
    right = track["s"] > 0
    yaw = track["yaw"]
    blurred = track["blur_len"] >= 3
    near = np.stack([lm["nose"], np.where(right[:, None], lm["right_eye"], lm["left_eye"]),
                     np.where(right[:, None], lm["right_ear"], lm["left_ear"])], 1)  # (n, 3, 2)
    visible = (yaw >= PORTRAIT_YAW) & _in_frame(near, width, height).all(1)
    occluded = occluded_mask(near, bar).any(1)
    obs = {}
    for name in CANONICAL_LANDMARKS:
        xy = lm[name]
        part = name.split("_")[-1]
        facing = np.ones(n, bool) if part == "nose" else (right == name.startswith("right"))
        seen = facing & (yaw >= _MIN_YAW[part]) & _in_frame(xy, width, height) & ~occluded_mask(xy, bar)
        sd = np.where(seen, np.where(blurred, 1.5, 0.7), 3.0)
        lik = np.where(seen, rng.uniform(0.92, 0.999, n), rng.uniform(0.005, 0.25, n))
        obs[name] = (xy[:, 0] + rng.normal(0, 1, n) * sd, xy[:, 1] + rng.normal(0, 1, n) * sd, lik)
    return obs, visible, occluded, blurred


def dlc_table(obs: dict, scorer: str = SCORER, bodyparts=CANONICAL_LANDMARKS) -> pd.DataFrame:
    """DeepLabCut's single-animal layout: columns (scorer, bodyparts, coords), rows = frames."""
    cols = pd.MultiIndex.from_product([[scorer], list(bodyparts), ["x", "y", "likelihood"]],
                                      names=["scorer", "bodyparts", "coords"])
    data = np.stack([np.asarray(obs[b][k], dtype=np.float64) for b in bodyparts for k in range(3)], 1)
    return pd.DataFrame(data, columns=cols)


def write_pose_files(df: pd.DataFrame, folder: Path, video: str, scorer: str = SCORER) -> Path:
    """Write ``<video><scorer>.h5`` and ``.csv`` as DLC's analysis does (:func:`io.dlc.write_dlc`)."""
    stem = folder / f"{video}{scorer}"
    write_dlc(stem.with_suffix(".h5"), df)
    write_dlc(stem.with_suffix(".csv"), df)
    return stem.with_suffix(".h5")
