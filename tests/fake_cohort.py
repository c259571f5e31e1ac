"""A tiny fake cohort for the data-stage tests: a frame store in tmp_path + a video table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.data._store import write_fake_video


def video_table(n_high: int = 4, n_saline: int = 4, recordings=(1, 4)) -> pd.DataFrame:
    """One row per video: half the mice get 'high', half 'saline'; recordings 1 and 4."""
    rows = []
    for i in range(n_high + n_saline):
        animal = f"m{i + 1}"
        treatment = "high" if i < n_high else "saline"
        for rec in recordings:
            rows.append({"video": f"{animal}_rec{rec}", "animal": animal, "recording": rec,
                         "treatment": treatment, "sex": "m", "cohort": "A"})
    return pd.DataFrame(rows)


def frame_store(frames_dir: Path, videos: pd.DataFrame, n: int = 40, size: int = 16, fps: float = 10.0,
                gap_after: int = 20, gap_s: float = 5.0) -> pd.DataFrame:
    """Write each video of ``videos``: ``n`` crops at ``fps`` with one gap of ``gap_s`` after
    ``gap_after`` frames. Pixel value of row k = k (so tests can see which rows were read)."""
    parts = []
    for v in videos["video"]:
        times = np.arange(n) / fps
        times[gap_after:] += gap_s
        frames = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, size, size)).copy()
        parts.append(write_fake_video(frames_dir, v, frames, times, fps=fps))
    return pd.concat(parts, ignore_index=True)
