"""Temporal windows over the frame store.

A window is ``num_frames`` kept frames taken ``frame_stride`` apart inside one *segment*:
consecutive rows of one video with the same ``run`` id and no time gap longer than
``max_gap_s`` between neighbours. So a window never bridges a gap, and its frames are
``frame_stride`` kept frames apart (at a 10 fps store and stride 2: 0.2 s apart).

Segments shorter than a window (``(num_frames - 1) * frame_stride + 1`` rows) are either
``resample``d (one window whose indices are spread evenly over the segment, repeating
frames: the original behaviour for short videos) or ``drop``ped.

Window table columns: ``video, animal, label, soft, start_time, end_time, rows`` (list of
``num_frames`` .npy row indices), plus ``segment`` and ``resampled``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

WINDOW_COLUMNS = ["video", "animal", "label", "soft", "start_time", "end_time", "rows"]


def segments(frames: pd.DataFrame, max_gap_s: float) -> pd.Series:
    """Segment id per row (rows must be sorted by video, time): new id at a new video, a new
    ``run`` or a time gap ``> max_gap_s``."""
    video = frames["video"].to_numpy()
    time = frames["time"].to_numpy(dtype=np.float64)
    run = frames["run"].to_numpy() if "run" in frames.columns else np.zeros(len(frames), int)
    brk = np.ones(len(frames), dtype=bool)
    if len(frames) > 1:
        brk[1:] = (video[1:] != video[:-1]) | (run[1:] != run[:-1]) | (np.diff(time) > max_gap_s)
    return pd.Series(np.cumsum(brk) - 1, index=frames.index)


def make_windows(
    frames: pd.DataFrame,
    num_frames: int,
    frame_stride: int,
    max_gap_s: float,
    short_runs: Literal["resample", "drop"] = "resample",
    step: int = 1,
) -> pd.DataFrame:
    """Every window of the labelled frame table, start positions ``step`` rows apart.

    Args:
        frames: labelled frame rows (``video, animal, row, time, run, label, soft``).
        num_frames: frames per window (T).
        frame_stride: kept frames between consecutive window frames.
        max_gap_s: largest time gap allowed between neighbouring rows inside a window.
        short_runs: ``resample`` or ``drop`` segments shorter than a window.
        step: rows between window starts (1 = every start; the span = non-overlapping).

    Returns:
        The window table (columns :data:`WINDOW_COLUMNS` + ``segment``, ``resampled``),
        ordered by video and time.
    """
    if num_frames < 1 or frame_stride < 1 or step < 1:
        raise ValueError("num_frames, frame_stride and step must be >= 1")
    if short_runs not in ("resample", "drop"):
        raise ValueError(f"short_runs must be 'resample' or 'drop', got {short_runs!r}")
    f = frames.sort_values(["video", "time"], kind="stable").reset_index(drop=True)
    seg = segments(f, max_gap_s).to_numpy()
    span = (num_frames - 1) * frame_stride + 1
    offsets = np.arange(num_frames) * frame_stride  # (T,)
    bounds = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1], True]) if len(f) else np.array([0])
    pos_parts, resampled_parts, seg_parts = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        n = b - a
        if n >= span:
            starts = np.arange(0, n - span + 1, step)
            pos = a + starts[:, None] + offsets[None, :]  # (W, T)
            res = np.zeros(len(starts), dtype=bool)
        elif short_runs == "resample":
            pos = (a + np.round(np.linspace(0, n - 1, num_frames)).astype(np.int64))[None, :]  # (1, T)
            res = np.ones(1, dtype=bool)
        else:
            continue
        pos_parts.append(pos)
        resampled_parts.append(res)
        seg_parts.append(np.full(len(pos), seg[a]))
    if not pos_parts:
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in WINDOW_COLUMNS})
        out["segment"], out["resampled"] = pd.Series(dtype=np.int64), pd.Series(dtype=bool)
        return out
    pos = np.concatenate(pos_parts)  # (W, T) positions into f
    first, last = pos[:, 0], pos[:, -1]
    soft = f["soft"].to_numpy(dtype=np.float64)[pos].mean(axis=1) if "soft" in f.columns else np.nan
    out = pd.DataFrame(
        {
            "video": f["video"].to_numpy()[first],
            "animal": f["animal"].to_numpy()[first] if "animal" in f.columns else None,
            "label": f["label"].to_numpy()[first] if "label" in f.columns else -1,
            "soft": soft,
            "start_time": f["time"].to_numpy(dtype=np.float64)[first],
            "end_time": f["time"].to_numpy(dtype=np.float64)[last],
            "rows": list(f["row"].to_numpy(dtype=np.int64)[pos].tolist()),
            "segment": np.concatenate(seg_parts),
            "resampled": np.concatenate(resampled_parts),
        }
    )
    return out


def select_per_video(windows: pd.DataFrame, per_video: int | None) -> pd.DataFrame:
    """Deterministic evaluation subset: all windows (``None``) or ``per_video`` windows per
    video, evenly spaced over the video's windows in time order."""
    if per_video is None:
        return windows.reset_index(drop=True)
    if per_video < 1:
        raise ValueError("per_video must be >= 1 or None")
    keep = []
    for _, idx in windows.groupby("video", sort=True).indices.items():
        idx = np.sort(idx)
        pick = np.unique(np.round(np.linspace(0, len(idx) - 1, min(per_video, len(idx)))).astype(int))
        keep.append(idx[pick])
    if not keep:
        return windows.reset_index(drop=True)
    return windows.iloc[np.concatenate(keep)].reset_index(drop=True)


def window_span(num_frames: int, frame_stride: int) -> int:
    """Rows of the store one window covers."""
    return (num_frames - 1) * frame_stride + 1
