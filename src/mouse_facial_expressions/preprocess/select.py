"""Which frames of a video go into the frame store: pure functions on per-frame arrays.

Two policies, in two steps each (candidates before decoding, the final choice after the
crops are scored):

- ``seed`` (the original): every ``every_k``-th frame that is a side portrait, then the
  ``n_sharpest`` of them per video. Kept frames can be minutes apart.
- ``temporal`` (default): every side-portrait frame on a ``target_fps`` time grid that passes
  the quality thresholds, in time order. Consecutive kept frames form runs; a run breaks
  where two kept frames are more than ``max_gap_s`` apart, so later windows never bridge a gap.
"""

from __future__ import annotations

import numpy as np

POLICIES = ("temporal", "seed")


def time_grid(n_frames: int, fps: float, target_fps: float) -> np.ndarray:
    """Bool mask ``(n_frames,)`` of the frames nearest to the times ``j / target_fps``.

    With ``target_fps >= fps`` every frame is on the grid.
    """
    if fps <= 0 or target_fps <= 0:
        raise ValueError(f"frame rates must be positive (fps={fps}, target_fps={target_fps})")
    mask = np.zeros(n_frames, bool)
    if target_fps >= fps:
        mask[:] = True
        return mask
    step = fps / target_fps
    idx = np.floor(np.arange(int(np.ceil(n_frames / step)) + 1) * step + 0.5).astype(np.int64)
    mask[idx[idx < n_frames]] = True
    return mask


def seed_candidates(usable: np.ndarray, every_k: int) -> np.ndarray:
    """Frame indices (sorted) of every ``every_k``-th frame that is usable."""
    usable = np.asarray(usable, bool)
    on_grid = np.arange(len(usable)) % every_k == 0
    return np.flatnonzero(usable & on_grid)


def temporal_candidates(usable: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """Frame indices (sorted) of usable frames on the ``target_fps`` time grid."""
    usable = np.asarray(usable, bool)
    return np.flatnonzero(usable & time_grid(len(usable), fps, target_fps))


def n_sharpest(sharpness: np.ndarray, n: int) -> np.ndarray:
    """Bool mask of the ``n`` highest sharpness values (ties: the earlier one wins; NaN never)."""
    s = np.asarray(sharpness, float)
    keep = np.zeros(len(s), bool)
    valid = np.flatnonzero(np.isfinite(s))
    order = valid[np.argsort(-s[valid], kind="stable")]
    keep[order[:n]] = True
    return keep


def passes_thresholds(sharpness: np.ndarray, min_likelihood_seen: np.ndarray,
                      min_sharpness: float, min_likelihood: float) -> np.ndarray:
    """Bool mask of frames whose sharpness and minimum landmark likelihood reach the thresholds."""
    s = np.asarray(sharpness, float)
    lk = np.asarray(min_likelihood_seen, float)
    with np.errstate(invalid="ignore"):
        return (s >= min_sharpness) & (lk >= min_likelihood)


def split_runs(times: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Run id per kept frame ``(N,)`` (times sorted): a new run starts after a gap > ``max_gap_s``."""
    t = np.asarray(times, float)
    if len(t) == 0:
        return np.zeros(0, np.int64)
    gaps = np.diff(t) > max_gap_s + 1e-9
    return np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64)


def candidates(policy: str, usable: np.ndarray, fps: float, *, target_fps: float, every_k: int) -> np.ndarray:
    """Frames to decode and score for ``policy`` (see the module docstring)."""
    if policy == "seed":
        return seed_candidates(usable, every_k)
    if policy == "temporal":
        return temporal_candidates(usable, fps, target_fps)
    raise ValueError(f"unknown selection policy {policy!r} (choose one of {', '.join(POLICIES)})")


def final_choice(policy: str, sharpness: np.ndarray, min_likelihood_seen: np.ndarray, *,
                 n_keep: int, min_sharpness: float, min_likelihood: float) -> np.ndarray:
    """Bool mask over the scored candidates: which are stored (kept in time order by the caller)."""
    if policy == "seed":
        return n_sharpest(sharpness, n_keep)
    if policy == "temporal":
        return passes_thresholds(sharpness, min_likelihood_seen, min_sharpness, min_likelihood)
    raise ValueError(f"unknown selection policy {policy!r} (choose one of {', '.join(POLICIES)})")
