"""Frame-store access for the data stage (``preprocess.store``) and a tiny fake-store writer.

``write_fake_video`` writes one video in the documented store format through
``preprocess.store.write_video_frames``; tests and the loader benchmark use it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.preprocess.store import (  # noqa: F401  (re-exported)
    index_path,
    load_index,
    open_frames,
    write_store_json,
    write_video_frames,
)


def write_fake_video(
    frames_dir: str | Path,
    video: str,
    frames: np.ndarray,
    times: np.ndarray,
    runs: np.ndarray | None = None,
    fps: float = 30.0,
) -> pd.DataFrame:
    """Write one video in the frame-store format (for tests and benchmarks).

    Args:
        frames: ``(N, S, S) uint8`` crops in time order.
        times: ``(N,)`` seconds.
        runs: ``(N,)`` run ids (default: a new run after each gap > 0.5 s).

    Returns:
        The index rows written.
    """
    n, s = frames.shape[0], frames.shape[1]
    times = np.asarray(times, dtype=np.float64)
    if runs is None:
        runs = np.concatenate([[0], np.cumsum(np.diff(times) > 0.5)]) if n else np.zeros(0, int)
    index = pd.DataFrame(
        {
            "video": video,
            "row": np.arange(n),
            "frame": np.round(times * fps).astype(np.int64),
            "time": times,
            "side": "left",
            "sharpness": 100.0,
            "intensity": frames.reshape(n, -1).mean(axis=1) if n else np.zeros(0),
            "min_likelihood": 0.99,
            "run": np.asarray(runs, dtype=np.int64),
            **{c: float(s) / 2 for c in ("eye_x", "eye_y", "ear_x", "ear_y", "nose_x", "nose_y")},
        }
    )
    settings = {"out_size": s, "crop_size": 300, "policy": "temporal", "target_fps": 10.0}
    write_video_frames(frames_dir, video, frames, index, meta={"fps": fps, **settings})
    write_store_json(frames_dir, settings)
    return index
