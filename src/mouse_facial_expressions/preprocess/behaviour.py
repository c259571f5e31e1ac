"""Behaviour features from body keypoints: pure numpy functions, then features per time window.

Inputs are the body tables of ``mfe behaviour import`` (``behaviour/<video>.parquet``,
:mod:`io.behaviour`): one row per frame, ``<L>_x, <L>_y, <L>_likelihood`` per body landmark,
in pixels (image y points down). The features use three landmarks: ``body_centre`` (speed,
distance, immobility), ``nose`` and ``tail_base`` (elongation), ``nose`` and
``body_centre`` (rearing, head movement; the head in the body's own frame, its axis from
``tail_base`` to ``body_centre``). The rearing proxy and the head movement are made for an
overhead camera over an open field, the usual body-tracking set-up (and ``mfe synth``'s).

Per window (frames whose time ``frame / fps`` lies in ``[start_time, end_time)``), with
points of likelihood ``<= behaviour.pcutoff`` ignored (NaN):

- ``beh_speed``: mean body-centre speed (px/s; cm/s with ``behaviour.pixels_per_cm``);
  frame t's speed is the displacement from frame ``t - lag`` to ``t`` over ``lag / fps``
  seconds, ``lag = round(SPEED_LAG_S * fps)`` (at least 1), so keypoint jitter adds little;
- ``beh_distance``: body-centre path length in the window, the sum of those speeds over its
  frames divided by fps (px; cm): frames without a speed add nothing;
- ``beh_immobile``: share of frames with a speed below ``behaviour.immobile_speed`` (px/s);
- ``beh_elongation``: mean nose-to-tail-base distance (px; cm): a hunched mouse is shorter;
- ``beh_rearing``: mean :func:`rearing_proxy`: how much shorter than usual (the video's
  median) the nose-to-body-centre distance is; a rearing mouse seen from above foreshortens;
- ``beh_head_var``: :func:`head_movement_variance` of the nose around the body centre, in
  the body's frame (px^2; cm^2).

A feature is NaN when fewer than :data:`MIN_VALID_FRAMES` frames of the window have it.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mouse_facial_expressions.io.behaviour import behaviour_path, load_behaviour

log = logging.getLogger(__name__)

#: Column names of the behaviour features, in order.
BEHAVIOUR_FEATURES: tuple[str, ...] = (
    "beh_speed", "beh_distance", "beh_immobile", "beh_elongation", "beh_rearing", "beh_head_var",
)
#: Body landmarks the features read (the keys of ``behaviour.bodyparts`` they need).
FEATURE_LANDMARKS = ("nose", "body_centre", "tail_base")
#: Seconds over which a speed is measured (a lag of ``round(SPEED_LAG_S * fps)`` frames).
SPEED_LAG_S = 0.2
#: A window feature needs at least this many frames with a value; else it is NaN.
MIN_VALID_FRAMES = 3
#: Frame times within this many seconds of a window edge count as on it (float rounding of times).
TIME_TOLERANCE_S = 1e-6

# --------------------------------------------------------------------------- features of arrays


def speed(xy: np.ndarray, fps: float, lag: int = 1) -> np.ndarray:
    """Speed of a point, px/s, ``(T,)`` from positions ``xy`` ``(T, 2)`` in px.

    ``speed[t] = |xy[t] - xy[t - lag]| * fps / lag``; NaN for the first ``lag`` frames and
    wherever either position is NaN.
    """
    if lag < 1:
        raise ValueError(f"lag must be at least 1 frame, got {lag}")
    xy = np.asarray(xy, dtype=np.float64)
    out = np.full(len(xy), np.nan)
    if len(xy) > lag:
        d = xy[lag:] - xy[:-lag]  # (T - lag, 2)
        out[lag:] = np.hypot(d[:, 0], d[:, 1]) * fps / lag
    return out


def distance_travelled(xy: np.ndarray, lag: int = 1) -> float:
    """Path length of a point, px: the sum over frames of ``|xy[t] - xy[t - lag]| / lag``.

    With ``lag=1`` the sum of the frame-to-frame steps. Steps touching a NaN position are
    skipped (they add nothing); NaN when there is no step at all.
    """
    steps = speed(xy, 1.0, lag)  # px per frame
    return float(np.nansum(steps)) if np.isfinite(steps).any() else float("nan")


def immobility_fraction(speed: np.ndarray, threshold: float) -> float:
    """Share (0..1) of the frames with a speed (not NaN) whose speed is below ``threshold``
    (same unit as ``speed``, e.g. px/s); NaN when no frame has a speed."""
    v = np.asarray(speed, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.mean(v < threshold)) if v.size else float("nan")


def elongation(nose_xy: np.ndarray, tail_xy: np.ndarray) -> np.ndarray:
    """Nose-to-tail-base distance per frame, px, ``(T,)`` (NaN where either point is NaN).

    A hunched mouse is shorter; a stretched one longer.
    """
    d = np.asarray(nose_xy, dtype=np.float64) - np.asarray(tail_xy, dtype=np.float64)
    return np.hypot(d[:, 0], d[:, 1])


def rearing_proxy(nose_xy: np.ndarray, centre_xy: np.ndarray, length: float | None = None) -> np.ndarray:
    """Foreshortening of the front of the body, per frame ``(T,)``, unitless (0..1).

    ``max(0, 1 - d / length)``, ``d`` the nose-to-body-centre distance in the image and
    ``length`` its usual value: by default the median ``d`` over the given frames (the
    video), so the animal's size and the camera's distance cancel. Seen from above, a mouse
    rearing on its hind legs brings its nose over its body: ``d`` shrinks (0.5 when half as
    long as usual); walking or sitting it is near 0. NaN where a point is NaN, or everywhere
    when no length can be found.
    """
    d = elongation(nose_xy, centre_xy)  # (T,) px
    if length is None:
        length = float(np.nanmedian(d)) if np.isfinite(d).any() else float("nan")
    if not (np.isfinite(length) and length > 0):
        return np.full(len(d), np.nan)
    return np.maximum(1.0 - d / length, 0.0)  # NaN stays NaN


def head_offset(nose_xy: np.ndarray, centre_xy: np.ndarray, tail_xy: np.ndarray | None = None) -> np.ndarray:
    """Nose position relative to the body centre, px, ``(T, 2)``.

    Without ``tail_xy``: image ``(dx, dy)``. With it: ``(along, across)`` the body axis
    from the tail base to the body centre, so that turning the whole body moves nothing
    and only the head's own movement remains (NaN where any point is NaN).
    """
    off = np.asarray(nose_xy, dtype=np.float64) - np.asarray(centre_xy, dtype=np.float64)  # (T, 2)
    if tail_xy is None:
        return off
    axis = np.asarray(centre_xy, dtype=np.float64) - np.asarray(tail_xy, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = axis / np.hypot(axis[:, 0], axis[:, 1])[:, None]  # unit body axis (T, 2)
    return np.stack([off[:, 0] * u[:, 0] + off[:, 1] * u[:, 1], off[:, 1] * u[:, 0] - off[:, 0] * u[:, 1]], axis=1)


def head_movement_variance(nose_xy: np.ndarray, centre_xy: np.ndarray, tail_xy: np.ndarray | None = None) -> float:
    """Variance of the nose position around the body centre, px^2: the summed population
    variances of both components of :func:`head_offset` over the frames where it is known.

    0 when the nose keeps its place relative to the centre (with ``tail_xy``: relative to the
    body, however the body moves or turns); NaN with fewer than 2 such frames.
    """
    off = head_offset(nose_xy, centre_xy, tail_xy)
    off = off[np.isfinite(off).all(axis=1)]
    return float(off.var(axis=0).sum()) if len(off) >= 2 else float("nan")


# --------------------------------------------------------------------------- per frame, per window


def _point(table: pd.DataFrame, frames: np.ndarray, n: int, name: str, pcutoff: float) -> np.ndarray:
    """``(n, 2)`` positions of landmark ``name`` at frames ``0..n-1``; NaN where unseen or absent."""
    xy = np.full((n, 2), np.nan)
    if f"{name}_likelihood" not in table.columns:
        return xy
    seen = table[f"{name}_likelihood"].to_numpy(np.float64) > pcutoff
    xy[frames[seen]] = table.loc[seen, [f"{name}_x", f"{name}_y"]].to_numpy(np.float64)
    return xy


def frame_features(table: pd.DataFrame, fps: float, cfg) -> dict[str, np.ndarray]:
    """Per-frame quantities of one video's body table, at frames ``0..last`` (rows filled in).

    Returns:
        ``speed``, ``immobile`` (1.0/0.0), ``elongation``, ``rearing`` ``(T,)`` and
        ``head`` ``(T, 2)`` (:func:`head_offset` in the body's frame), NaN where unknown; lengths in cm when
        ``behaviour.pixels_per_cm`` is set, else px.
    """
    b = cfg.behaviour
    absent = [lm for lm in FEATURE_LANDMARKS if f"{lm}_likelihood" not in table.columns]
    if absent:
        log.warning("body table without %s: the features that need them are NaN (behaviour.bodyparts "
                    "should map %s)", ", ".join(absent), ", ".join(FEATURE_LANDMARKS))
    frames = table["frame"].to_numpy(np.int64)
    n = int(frames.max()) + 1 if len(frames) else 0
    nose, centre, tail = (_point(table, frames, n, lm, b.pcutoff) for lm in FEATURE_LANDMARKS)
    spd = speed(centre, fps, max(1, round(SPEED_LAG_S * fps)))  # px/s
    immobile = np.where(np.isnan(spd), np.nan, (spd < b.immobile_speed).astype(np.float64))
    scale = 1.0 / b.pixels_per_cm if b.pixels_per_cm else 1.0
    return {"speed": spd * scale, "immobile": immobile, "elongation": elongation(nose, tail) * scale,
            "rearing": rearing_proxy(nose, centre), "head": head_offset(nose, centre, tail) * scale}


def _window_stats(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window ``[lo, hi)`` of ``values`` ``(T,)`` or ``(T, C)``, over the frames where every
    column is finite: their count ``(W,)``, the mean and the population variance ``(W, C)``."""
    v = values.reshape(len(values), -1)  # (T, C)
    ok = np.isfinite(v).all(axis=1)  # (T,)
    centre = v[ok].mean(axis=0) if ok.any() else np.zeros(v.shape[1])
    v = np.where(ok[:, None], v - centre, 0.0)  # centred, so the sums of squares stay accurate

    def windowed(a: np.ndarray) -> np.ndarray:  # (T, ...) -> (W, ...) sums over [lo, hi)
        cs = np.concatenate([np.zeros((1, *a.shape[1:])), np.cumsum(a, axis=0)])
        return cs[hi] - cs[lo]

    n = windowed(ok.astype(np.float64))  # (W,)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = windowed(v) / n[:, None]  # (W, C)
        var = np.clip(windowed(v ** 2) / n[:, None] - mean ** 2, 0.0, None)
    return n, mean + centre, var


def window_aggregate(per_frame: dict[str, np.ndarray], fps: float, start_time: np.ndarray,
                     end_time: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`BEHAVIOUR_FEATURES` of many windows of one video at once (cumulative sums).

    Args:
        per_frame: :func:`frame_features` of the video.
        fps: its frame rate.
        start_time, end_time: ``(W,)`` window edges in s; a window holds the frames with
            ``start_time <= frame / fps < end_time``.

    Returns:
        Feature name -> ``(W,)`` float64 (NaN with fewer than :data:`MIN_VALID_FRAMES` frames).
    """
    times = np.arange(len(per_frame["speed"])) / fps
    lo = np.searchsorted(times, np.asarray(start_time, dtype=np.float64) - TIME_TOLERANCE_S)
    hi = np.maximum(lo, np.searchsorted(times, np.asarray(end_time, dtype=np.float64) - TIME_TOLERANCE_S))
    out: dict[str, np.ndarray] = {}
    for key in ("speed", "immobile", "elongation", "rearing", "head"):
        n, mean, var = _window_stats(per_frame[key], lo, hi)
        enough = n >= MIN_VALID_FRAMES
        if key == "head":
            out["beh_head_var"] = np.where(enough, var.sum(axis=1), np.nan)
        else:
            value = mean[:, 0]
            if key != "rearing":  # cumulative sums round: keep shares in 0..1 and lengths >= 0
                value = np.clip(value, 0.0, 1.0 if key == "immobile" else None)
            out[f"beh_{key}"] = np.where(enough, value, np.nan)
        if key == "speed":  # path length: the speeds summed over the frames, times 1 / fps
            out["beh_distance"] = out["beh_speed"] * n / fps
    return {name: out[name] for name in BEHAVIOUR_FEATURES}


def window_features(table: pd.DataFrame, fps: float, start_time: float, end_time: float, cfg) -> dict[str, float]:
    """:data:`BEHAVIOUR_FEATURES` of the frames of ``table`` with time in ``[start_time, end_time)``.

    Args:
        table: a video's body table (``frame`` + ``<L>_x, <L>_y, <L>_likelihood``); the
            whole video, so that the body length of the rearing proxy is the video's.
        fps: the video's frame rate (frame time = frame / fps).
        start_time, end_time: the window, in s.
        cfg: the project config (``behaviour`` section).
    """
    values = window_aggregate(frame_features(table, fps, cfg), fps, np.array([start_time]), np.array([end_time]))
    return {name: float(v[0]) for name, v in values.items()}


def features_for_windows(cfg, windows: pd.DataFrame) -> pd.DataFrame:
    """Behaviour features of every window of a table with columns ``video, start_time, end_time``.

    Reads each ``behaviour/<video>.parquet`` once. A video without a body table gets NaN
    features and is named in one warning (a modality may be absent).

    Returns:
        A DataFrame with the index of ``windows`` and the columns :data:`BEHAVIOUR_FEATURES` (float64).

    Raises:
        KeyError: ``windows`` lacks one of the three columns.
    """
    need = [c for c in ("video", "start_time", "end_time") if c not in windows.columns]
    if need:
        raise KeyError(f"windows table needs columns video, start_time, end_time; missing {need}")
    out = np.full((len(windows), len(BEHAVIOUR_FEATURES)), np.nan)
    codes, videos = pd.factorize(windows["video"])
    starts, ends = windows["start_time"].to_numpy(np.float64), windows["end_time"].to_numpy(np.float64)
    missing = []
    for k, video in enumerate(videos):
        path = behaviour_path(cfg, str(video))
        if not path.is_file():
            missing.append(str(video))
            continue
        table, fps = load_behaviour(path)
        rows = np.flatnonzero(codes == k)
        values = window_aggregate(frame_features(table, fps, cfg), fps, starts[rows], ends[rows])
        out[rows] = np.stack([values[name] for name in BEHAVIOUR_FEATURES], axis=1)
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        log.warning("no body table in %s for %d video(s): their behaviour features are NaN (run `mfe behaviour "
                    "import`): %s", cfg.path("behaviour"), len(missing), shown)
    return pd.DataFrame(out, index=windows.index, columns=list(BEHAVIOUR_FEATURES))
