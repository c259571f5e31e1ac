"""Face check: no score without a face.

A model scores whatever crop it is given. A top-view open-field video whose body keypoints were
mapped onto the face landmarks (snout as nose, an ear as eye, the tail base as ear) was aligned,
cropped and scored: 72 windows, 32% called sick. This module says, per window, whether its crops
look like the faces the model was trained on, from two kinds of evidence:

- **landmark geometry**, scale-free ratios of distances between the crop-space landmarks of the
  frame store (index columns ``eye_*``, ``ear_*``, ``nose_*``): ``nose_eye`` =
  ``|nose - eye| / |eye - ear|`` and ``nose_ear`` = ``|nose - ear| / |eye - ear|``. Together they
  fix the shape of the nose-eye-ear triangle whatever the zoom. On a face (synthetic cohort:
  ``nose_eye`` 1.17-1.49, ``nose_ear`` 2.16-2.48, 5 %-95 %) the nose lies beyond the eye, about
  1.3 eye-ear lengths away; with body points mapped onto the face the "ear" (tail base) lies far
  behind the "eye" (an ear), and ``nose_eye`` falls to about 0.3. An alignment without the three
  landmarks (``headfixed_eye_nose``: no ear) has no geometry: crop statistics only;
- **crop statistics** per crop: ``grey_mean`` and ``grey_sd`` (grey level mean and standard
  deviation of the crop as the model sees it, normalised) and ``sharpness`` (the index column:
  variance of the Laplacian before normalisation).

:func:`face_summary` records, per training video, the 5 %, 50 % and 95 % quantiles of each
quantity (``preprocess.domain.video_summary`` key ``face``; checkpoints carry it with the domain
summary). :func:`training_limits` turns the training videos' summaries into an accepted range per
quantity, widened because the training range only spans the training cohort:

- ratios, ``grey_sd`` and ``sharpness``: ``[lo / f, hi * f]``, ``lo`` the lowest 5 % quantile
  and ``hi`` the highest 95 % quantile over training videos, ``f`` = :data:`GEOMETRY_FACTOR`
  (1.5: half again beyond the most extreme training faces; the mapped open-field body lies at
  a quarter of it), :data:`SD_FACTOR` (2: a contrast halved or doubled still passes) and
  :data:`SHARPNESS_FACTOR` (8: zoom, blur and compression move sharpness by large factors; only
  a crop of an order of magnitude apart is suspect);
- ``grey_mean``: ``[lo - m, hi + m]`` with ``m = max(GREY_MARGIN, hi - lo)`` (64 grey levels:
  a lighting change of a quarter of the range passes).

A window (:func:`check_windows`) fails when the median over its crops of any quantity lies
outside; its reason names the quantity, the value and the limits. A video with more than
:data:`MAX_NO_FACE` of its windows failing gets no score (:func:`video_verdict`).

Checkpoints trained before ``face`` was recorded: ``grey_mean`` from the videos' mean grey level
(:func:`preprocess.domain.video_summary` ``mean_intensity``) and ``sharpness`` from their
quantiles; no geometry (:data:`NO_GEOMETRY`, said once).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Crop-space landmark ratios: name -> (numerator pair, denominator pair) of index landmark roles.
RATIOS = {"nose_eye": (("nose", "eye"), ("eye", "ear")), "nose_ear": (("nose", "ear"), ("eye", "ear"))}
#: Per-crop statistics (``sharpness`` comes from the index).
CROP_STATS = ("grey_mean", "grey_sd", "sharpness")
#: Quantiles recorded per video and quantity.
QUANTILES = (0.05, 0.5, 0.95)
#: Crops (evenly spaced) a video's grey statistics are summarised from.
MAX_CROPS = 2000
#: Widening factors of the training ranges (see the module docstring).
GEOMETRY_FACTOR = 1.5
SD_FACTOR = 2.0
SHARPNESS_FACTOR = 8.0
GREY_MARGIN = 64.0
#: A video with more than this share of its windows failing the check gets no score.
MAX_NO_FACE = 0.5
#: Words for each quantity in reasons.
LABELS = {"nose_eye": "landmark geometry nose-eye/eye-ear", "nose_ear": "landmark geometry nose-ear/eye-ear",
          "grey_mean": "grey level mean", "grey_sd": "grey level SD", "sharpness": "sharpness"}
#: Said once for a checkpoint whose training summary has no landmark geometry.
NO_GEOMETRY = ("the model's training summary has no landmark geometry (trained before mfe recorded it, or an "
               "alignment without nose, eye and ear): the face check uses crop statistics only")
#: Said once for a checkpoint without any training summary.
NO_CHECK = "no training summary in this checkpoint: face check skipped (every window is scored)"


def _q(q: float) -> str:
    return f"q{round(100 * q):02d}"


def landmark_ratios(index: pd.DataFrame) -> dict[str, np.ndarray]:
    """:data:`RATIOS` per crop ``(N,)`` from the index's crop-space landmarks (NaN where one is missing)."""
    def pt(role):
        if f"{role}_x" not in index.columns:
            return np.full((len(index), 2), np.nan)
        return index[[f"{role}_x", f"{role}_y"]].to_numpy(float)

    out = {}
    for name, ((a, b), (c, d)) in RATIOS.items():
        den = np.hypot(*(pt(c) - pt(d)).T)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(den > 0, np.hypot(*(pt(a) - pt(b)).T) / den, np.nan)
    return out


def crop_stats(crops: np.ndarray, index: pd.DataFrame, rows=None) -> dict[str, np.ndarray]:
    """``grey_mean``, ``grey_sd`` and ``sharpness`` of the crops ``rows`` (default all) ``(n,)``."""
    rows = np.arange(len(crops)) if rows is None else np.asarray(rows, np.int64)
    mean, sd = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    for k, i in enumerate(rows):  # one crop at a time: no float copy of a memmap
        c = np.asarray(crops[i], np.float32)
        mean[k], sd[k] = c.mean(), c.std()
    sharp = (pd.to_numeric(index["sharpness"], errors="coerce").to_numpy(float)[rows]
             if "sharpness" in index.columns else np.full(len(rows), np.nan))
    return {"grey_mean": mean, "grey_sd": sd, "sharpness": sharp}


def frame_features(crops: np.ndarray, index: pd.DataFrame) -> pd.DataFrame:
    """Every quantity of the check per crop: ``(N, 5)`` (rows as the crops)."""
    return pd.DataFrame({**crop_stats(crops, index), **landmark_ratios(index)})


def _quantiles(v: np.ndarray) -> dict | None:
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    return {_q(q): float(f"{x:.5g}") for q, x in zip(QUANTILES, np.quantile(v, QUANTILES))}


def face_summary(crops: np.ndarray, index: pd.DataFrame) -> dict:
    """One video's record: ``{quantity: {q05, q50, q95}}`` for the quantities it has (JSON-able)."""
    n = len(crops)
    take = np.unique(np.linspace(0, n - 1, min(n, MAX_CROPS)).round().astype(np.int64)) if n else np.zeros(0, np.int64)
    values = {**crop_stats(crops, index, take), **{k: v[take] for k, v in landmark_ratios(index).items()}} if n else {}
    return {k: q for k, v in values.items() if (q := _quantiles(np.asarray(v, float))) is not None}


def training_limits(train: dict | None) -> tuple[dict[str, tuple[float, float]] | None, str | None]:
    """Accepted range ``{quantity: (low, high)}`` from a pooled training summary
    (``preprocess.domain.pool_summaries``), or ``(None, NO_CHECK)`` without one; the note is
    :data:`NO_GEOMETRY` when the ranges hold no landmark ratio."""
    videos = [v for v in ((train or {}).get("videos") or []) if v.get("n_crops")]
    if not videos:
        return None, NO_CHECK
    limits: dict[str, tuple[float, float]] = {}
    if all("face" in v for v in videos):
        for name in (*CROP_STATS, *RATIOS):
            qs = [v["face"][name] for v in videos if name in v["face"]]
            if len(qs) != len(videos):
                continue  # a quantity some training videos lack is not checked
            lo, hi = min(q["q05"] for q in qs), max(q["q95"] for q in qs)
            limits[name] = _widen(name, lo, hi)
    else:  # summaries recorded before the face check: crop statistics that the domain summary has
        means = [v["mean_intensity"] for v in videos if v.get("mean_intensity") is not None]
        if len(means) == len(videos):
            limits["grey_mean"] = _widen("grey_mean", min(means), max(means))
        sharp = [v["sharpness"] for v in videos if "sharpness" in v]
        if len(sharp) == len(videos):
            limits["sharpness"] = _widen("sharpness", min(s["q05"] for s in sharp), max(s["q95"] for s in sharp))
    note = None if any(k in limits for k in RATIOS) else NO_GEOMETRY
    return (limits or None), (note if limits else NO_CHECK)


def _widen(name: str, lo: float, hi: float) -> tuple[float, float]:
    if name == "grey_mean":
        m = max(GREY_MARGIN, hi - lo)
        return lo - m, hi + m
    f = SHARPNESS_FACTOR if name == "sharpness" else SD_FACTOR if name == "grey_sd" else GEOMETRY_FACTOR
    return lo / f, hi * f


def check_windows(features: pd.DataFrame, windows: pd.DataFrame, limits: dict | None) -> list[str]:
    """Per window, why it does not look like a training face ('' = it does, or no limits).

    Args:
        features: :func:`frame_features` of the video's crops.
        windows: the window table (``rows``: indices into the crops).
        limits: :func:`training_limits`.
    """
    if not limits or not len(windows):
        return [""] * len(windows)
    out = []
    for rows in windows["rows"]:
        med = features.iloc[np.unique(np.asarray(rows, np.int64))].median(skipna=True)
        why = []
        for name, (lo, hi) in limits.items():
            v = float(med.get(name, np.nan))
            if np.isfinite(v) and not lo <= v <= hi:
                why.append(f"{LABELS[name]} {v:.3g} (limits {lo:.3g}-{hi:.3g})")
        out.append("; ".join(why))
    return out


def video_verdict(reasons: list[str]) -> str | None:
    """Why a video gets no score (more than :data:`MAX_NO_FACE` of its windows failed), else None."""
    marked = [r for r in reasons if r]
    if not reasons or len(marked) <= MAX_NO_FACE * len(reasons):
        return None
    counts: dict[str, int] = {}
    for r in marked:
        for part in r.split("; "):
            label = part.rsplit(" (", 1)[0].rsplit(" ", 1)[0]
            counts[label] = counts.get(label, 0) + 1
    which = ", ".join(f"{k} in {n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return (f"no face: {len(marked)} of {len(reasons)} windows do not look like the faces the model was trained on "
            f"(more than {MAX_NO_FACE:.0%}), so the video gets no score; outside the training range: {which}; "
            f"e.g. {marked[0]}")
