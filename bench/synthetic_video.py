"""A synthetic face video with keypoints on every frame, for the speed benchmarks (no torch imported:
decode worker processes that re-import a benchmark stay light)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mouse_facial_expressions.config import CANONICAL_LANDMARKS
from mouse_facial_expressions.io.video import VideoWriter

FPS, W, H = 30.0, 640, 480


def synthetic_video(path: Path, n: int) -> pd.DataFrame:
    """Write a textured moving 'face' video; return its canonical keypoints (left side visible)."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (H, W), dtype=np.uint8), (0, 0), 3)
    rows = []
    with VideoWriter(path, FPS, W, H) as vw:
        for i in range(n):
            cx, cy = W / 2 + 100 * np.sin(i / 40), H / 2 + 30 * np.cos(i / 29)
            img = (texture // 2).copy()
            cv2.ellipse(img, (int(cx), int(cy)), (90, 60), 10 * np.sin(i / 23), 0, 360, 200, -1)
            cv2.circle(img, (int(cx - 20), int(cy - 12)), 8, 30, -1)
            vw.write(img)
            pts = {"nose": (cx - 70, cy + 18), "left_eye": (cx - 20, cy - 12), "left_ear": (cx + 40, cy - 32),
                   "right_eye": (np.nan, np.nan), "right_ear": (np.nan, np.nan)}
            row = {"frame": i}
            for lm in CANONICAL_LANDMARKS:
                x, y = pts[lm]
                row.update({f"{lm}_x": x, f"{lm}_y": y, f"{lm}_likelihood": 0.99 if np.isfinite(x) else 0.01})
            rows.append(row)
    return pd.DataFrame(rows)
