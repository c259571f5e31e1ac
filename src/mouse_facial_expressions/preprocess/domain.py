"""Domain check: do new face crops look like the crops a model was trained on?

A model trained on one cohort scores anything it is given, however different: a model trained
on the synthetic cohort scored a real infrared face at p1 0.54 and said nothing. This module
summarises the crops of each video (:func:`video_summary`, recorded by ``mfe extract`` in the
frame store and computed by ``mfe predict`` on the crops it scores), pools the training
videos' summaries (:func:`pool_summaries`, carried by each checkpoint) and lists the reasons a
new video lies outside them (:func:`compare`).

What is summarised, per video:

- ``histogram``: the grey-level histogram of the crops, :data:`HIST_BINS` bins over 0..255,
  normalised to sum 1 (at most :data:`MAX_HIST_CROPS` evenly spaced crops are counted);
  ``mean_intensity`` its mean grey level;
- ``sharpness`` (variance of the Laplacian, index column ``sharpness``), ``face_px`` (length
  of the alignment axis in source pixels, index column ``axis_px``) and ``likelihood`` (the
  smallest keypoint likelihood of each crop, index column ``min_likelihood``): the quantiles
  :data:`QUANTILES` of each over the video's crops;
- ``n_crops`` and ``video``;
- ``face``: the face check's record (:func:`preprocess.facecheck.face_summary`: quantiles of
  each crop's grey mean, grey SD and sharpness and of the crop-space landmark ratios), from
  which ``mfe predict`` marks windows that do not look like a training face.

What :func:`compare` checks, against the pooled training summary. Each limit scales with the
spread between the training videos, with a floor, so a cohort recorded like the training
cohort stays silent and a change of lighting or zoom fires:

- synthetic model, real video (always), and real model, synthetic video;
- intensity histogram: the Hellinger distance (0 = same, 1 = disjoint) from the video's
  histogram to the nearest training video's exceeds ``max(HIST_FLOOR, HIST_FACTOR x d)``, where
  ``d`` is the largest distance from a training video to its nearest other training video
  (nearest, not the mean: a training set of two lighting cohorts keeps a tight limit);
- face size, sharpness: the video's median lies outside the training videos' range of
  medians widened by a factor ``max(floor, sqrt(max / min))`` (:data:`SIZE_RATIO`,
  :data:`SHARPNESS_RATIO`) on both sides;
- keypoint likelihood: the video's median is below the lowest training median by more than
  ``max(LIKELIHOOD_FLOOR, the training range)``.

Pure functions on numpy arrays and JSON-able dicts, except those at the end of the module that
read a frame store (:func:`store_summaries`, :func:`check_store`) or look for the ``mfe synth``
marker (:func:`is_synthetic_project`, :func:`video_is_synthetic`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.preprocess import facecheck

#: Grey-level bins of the intensity histogram (over 0..255).
HIST_BINS = 32
#: At most this many crops (evenly spaced) enter a video's histogram.
MAX_HIST_CROPS = 2000
#: Quantiles kept per video for sharpness, face size and likelihood (keys ``q05`` ...).
QUANTILES = (0.05, 0.5, 0.95)
#: Index column -> summary key of the per-crop quantities.
QUANTITIES = {"sharpness": "sharpness", "axis_px": "face_px", "min_likelihood": "likelihood"}
#: Histogram distance limit: ``max(HIST_FLOOR, HIST_FACTOR x the largest nearest-neighbour distance
#: between training videos)``. On tiny synthetic cohorts (6 s videos) a second cohort with the same
#: settings lay at most 0.32 from its nearest training video, one with the camera gain x 0.8 at least 0.64.
HIST_FACTOR = 1.5
HIST_FLOOR = 0.4
#: Least widening factor of the training range of median face sizes (source pixels).
SIZE_RATIO = 1.2
#: Least widening factor of the training range of median sharpness.
SHARPNESS_RATIO = 2.0
#: Least drop of the median keypoint likelihood below the training videos' lowest.
LIKELIHOOD_FLOOR = 0.1
#: Marker of a project made by ``mfe synth`` (``synth.cohort.MARKER`` under ``truth/``).
SYNTH_MARKER = Path("truth") / "synth.json"
#: Version of the summary layout (in every summary; 2 added ``face``).
VERSION = 2


def _key(q: float) -> str:
    return f"q{round(100 * q):02d}"


def _round(x: float, digits: int = 5) -> float | None:
    """``x`` to ``digits`` significant digits (small JSON); None when not finite (valid JSON)."""
    return float(f"{x:.{digits}g}") if np.isfinite(x) else None


def intensity_histogram(crops: np.ndarray, bins: int = HIST_BINS, max_crops: int = MAX_HIST_CROPS) -> np.ndarray:
    """Normalised grey-level histogram ``(bins,)`` of uint8 crops ``(N, S, S)`` (zeros when N = 0)."""
    n = len(crops)
    if n == 0:
        return np.zeros(bins)
    take = np.unique(np.linspace(0, n - 1, min(n, max_crops)).round().astype(np.int64))
    counts = np.zeros(256, np.int64)
    for i in take:  # one crop at a time: no (N, S, S) copy of a memmap
        counts += np.bincount(np.asarray(crops[i], dtype=np.uint8).ravel(), minlength=256)
    h = counts.reshape(bins, 256 // bins).sum(axis=1).astype(float)
    return h / h.sum()


def hellinger(p, q) -> float:
    """Hellinger distance of two normalised histograms: 0 = identical, 1 = disjoint."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    return float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(p * q)))))


def hellinger_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hellinger distances ``(n, m)`` between the rows of ``a`` ``(n, bins)`` and ``b`` ``(m, bins)``."""
    bc = np.sqrt(np.clip(a, 0, None)) @ np.sqrt(np.clip(b, 0, None)).T  # Bhattacharyya coefficients
    return np.sqrt(np.clip(1.0 - bc, 0.0, None))


def nearest_distance(hist, train_hists) -> float:
    """Hellinger distance from ``hist`` to the nearest of ``train_hists`` ``(n, bins)``."""
    return float(hellinger_matrix(np.asarray(hist, float)[None], np.asarray(train_hists, float)).min())


def video_summary(crops: np.ndarray, index: pd.DataFrame) -> dict:
    """JSON-able summary of one video's crops (see the module docstring).

    Args:
        crops: uint8 ``(N, S, S)`` (array or memmap).
        index: the ``N`` index rows (``sharpness``, ``min_likelihood``, ``axis_px`` used when present;
            ``video`` names the summary).
    """
    hist = intensity_histogram(crops)
    centres = (np.arange(HIST_BINS) + 0.5) * (256 / HIST_BINS)
    out: dict = {"version": VERSION, "n_crops": int(len(crops)),
                 "video": str(index["video"].iloc[0]) if "video" in index.columns and len(index) else None,
                 "histogram": [_round(v) for v in hist],
                 "mean_intensity": _round(float(hist @ centres)) if len(crops) else None}
    for col, key in QUANTITIES.items():
        if col not in index.columns:
            continue
        v = pd.to_numeric(index[col], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v)]
        if len(v):
            out[key] = {_key(q): _round(float(x)) for q, x in zip(QUANTILES, np.quantile(v, QUANTILES))}
    out["face"] = facecheck.face_summary(crops, index)
    return out


def _expand(summaries) -> list[dict]:
    """Per-video summaries; pooled ones contribute their ``videos`` (one per video name)."""
    seen, out = set(), []
    for s in summaries:
        for v in (s.get("videos") or []) if "videos" in s else [s]:
            name = v.get("video")
            if name is not None and name in seen:
                continue
            seen.add(name)
            out.append(v)
    return out


def pool_summaries(summaries: list[dict]) -> dict:
    """The training set's summary, pooled over videos, keeping the spread between them.

    Args:
        summaries: per-video summaries (:func:`video_summary`, optionally with ``synthetic``), or
            pooled ones (their videos are pooled again, once per video name: the folds of an
            ensemble).

    Returns:
        ``{"version", "n_videos", "n_crops", "synthetic" (None: unknown or mixed), "histogram"
        (mean of the videos'),
        "hist_distance" ({"max", "median"} of each video's Hellinger distance to its nearest
        other video; 0 for one video),
        "mean_intensity", "sharpness", "face_px", "likelihood" ({"min", "max"} over the
        videos' medians) and "videos"}`` (the per-video summaries).
    """
    videos = [v for v in _expand(summaries) if v.get("n_crops", 0) > 0]
    flags = [v.get("synthetic") for v in _expand(summaries) if v.get("synthetic") is not None]
    pooled: dict = {"version": VERSION, "n_videos": len(videos), "n_crops": int(sum(v["n_crops"] for v in videos)),
                    "synthetic": flags[0] if len(set(flags)) == 1 else None, "videos": videos}
    if not videos:
        return pooled
    hists = np.array([v["histogram"] for v in videos], float)  # (n, bins)
    d = hellinger_matrix(hists, hists)
    np.fill_diagonal(d, np.inf)
    dist = d.min(axis=1) if len(videos) > 1 else np.zeros(1)  # (n,) nearest other video
    pooled["histogram"] = [_round(x) for x in hists.mean(axis=0)]
    pooled["hist_distance"] = {"max": _round(max(dist)), "median": _round(float(np.median(dist)))}
    pooled["mean_intensity"] = _range([v.get("mean_intensity") for v in videos])
    for key in QUANTITIES.values():
        medians = [v[key]["q50"] for v in videos if key in v]
        if len(medians) == len(videos):  # a quantity some training videos lack is not checked
            pooled[key] = _range(medians)
    return pooled


def _range(values) -> dict:
    v = np.asarray([x for x in values if x is not None], float)
    v = v[np.isfinite(v)]
    return {"min": _round(float(v.min())), "max": _round(float(v.max()))} if len(v) else {}


def _outside_ratio(value: float, lo: float, hi: float, floor: float) -> tuple[bool, float, float]:
    """Is ``value`` outside ``[lo / r, hi * r]`` with ``r = max(floor, sqrt(hi / lo))``? -> (outside, low, high)."""
    if not (lo > 0 and hi > 0 and np.isfinite(value)):
        return False, lo, hi
    r = max(floor, math.sqrt(hi / lo))
    return not (lo / r <= value <= hi * r), lo / r, hi * r


def compare(train: dict, video: dict, *, video_synthetic: bool | None = None) -> list[str]:
    """Reasons why ``video`` lies outside the training summary ``train`` (empty: in domain).

    Args:
        train: :func:`pool_summaries` of the training videos.
        video: :func:`video_summary` of the new video.
        video_synthetic: whether the new video comes from ``mfe synth`` (None: unknown; falls
            back to ``video["synthetic"]``).

    Returns:
        One line per reason, with the numbers, e.g. ``"face size 120 px (training 280–320 px)"``.
    """
    reasons = []
    vsyn = video.get("synthetic") if video_synthetic is None else video_synthetic
    if train.get("synthetic") is True and vsyn is False:
        reasons.append("synthetic model, real video: the model was trained on a synthetic cohort (mfe synth) only")
    elif train.get("synthetic") is False and vsyn is True:
        reasons.append("real model, synthetic video: the model was trained on real video only")
    if not video.get("n_crops") or not train.get("n_videos"):
        return reasons
    if "hist_distance" in train and video.get("histogram"):
        d = nearest_distance(video["histogram"], [v["histogram"] for v in train["videos"]])
        dmax = train["hist_distance"]["max"]
        limit = max(HIST_FLOOR, HIST_FACTOR * dmax)
        if d > limit:
            mi = train.get("mean_intensity") or {}
            grey = (f"; mean grey level {video['mean_intensity']:.0f} (training {mi['min']:.0f}–{mi['max']:.0f})"
                    if mi and video.get("mean_intensity") is not None else "")
            reasons.append(f"intensity histogram distance {d:.2f} to the nearest training video (between "
                           f"training videos: max {dmax:.2f}, limit {limit:.2f}){grey}")
    checks = (("face_px", "face size", SIZE_RATIO, "{:.0f}", " px"),
              ("sharpness", "sharpness", SHARPNESS_RATIO, "{:.3g}", ""))
    for key, label, floor, f, unit in checks:
        if key in train and "min" in train[key] and key in video:
            value, lo, hi = video[key]["q50"], train[key]["min"], train[key]["max"]
            outside, low, high = _outside_ratio(value, lo, hi, floor)
            if outside:
                reasons.append(f"{label} {f.format(value)}{unit} (training {f.format(lo)}–{f.format(hi)}{unit}, "
                               f"limits {f.format(low)}–{f.format(high)}{unit})")
    if "likelihood" in train and "min" in train["likelihood"] and "likelihood" in video:
        value, lo, hi = video["likelihood"]["q50"], train["likelihood"]["min"], train["likelihood"]["max"]
        if value < lo - max(LIKELIHOOD_FLOOR, hi - lo):
            reasons.append(f"keypoint likelihood {value:.2f} (training {lo:.2f}–{hi:.2f})")
    return reasons


#: What the check says, once, for a checkpoint without a training summary.
NO_SUMMARY = ("no training summary in this checkpoint (trained before mfe recorded one with each fold): "
              "domain check skipped")


def training_summary(hparams: list[dict]) -> tuple[dict | None, str | None]:
    """The pooled training summary of a model's members (their checkpoint ``hparams``).

    Each fold's checkpoint carries the summary of its training videos (``data["domain"]``);
    an ensemble is compared with the pool of all of them (each video once).

    Returns:
        ``(summary, None)``, or ``(None, NO_SUMMARY)`` when a member has none.
    """
    parts = [(h.get("data") or {}).get("domain") for h in hparams]
    if not parts or any(not p for p in parts):
        return None, NO_SUMMARY
    return pool_summaries(parts), None


# ----------------------------------------------------------------------------- edges (files)

def is_synthetic_project(root: str | Path | None) -> bool | None:
    """True when ``root`` is a project made by ``mfe synth``; None when ``root`` is None."""
    return None if root is None else (Path(root) / SYNTH_MARKER).is_file()


def video_is_synthetic(video: str | Path, root: str | Path | None = None) -> bool:
    """Whether a video comes from ``mfe synth``: the project ``root`` is synthetic, or so is the
    folder holding the video or one up to three levels above it
    (``<project>/videos/processed/<video>.mp4``). Any other video counts as real."""
    if root is not None and is_synthetic_project(root):
        return True
    return any(is_synthetic_project(p) for p in Path(video).resolve().parents[:4])


def check_store(train: dict, frames_dir: str | Path, videos) -> dict[str, list[str]]:
    """:func:`compare` of each stored video with ``train``: ``{video: reasons}`` (only videos outside)."""
    found = {v: compare(train, s) for v, s in store_summaries(frames_dir, videos).items()}
    return {v: r for v, r in found.items() if r}


def store_summaries(frames_dir: str | Path, videos) -> dict[str, dict]:
    """Each video's summary as ``mfe extract`` recorded it, with ``synthetic``.

    A video stored before the domain check existed is summarised from its stored crops and
    index (without ``axis_px`` in older stores); ``synthetic`` then comes from the project
    around the store (``frames_dir/../truth/synth.json``). A summary recorded before the face
    check (no ``face``) gets it from the stored crops and index, so a model trained on an
    older store still carries it.
    """
    from mouse_facial_expressions.preprocess import store

    frames_dir = Path(frames_dir)
    around = is_synthetic_project(frames_dir.resolve().parent)
    out = {}
    for v in videos:
        meta = store.video_meta(frames_dir, v)
        s = meta.get("domain")
        if s is None:
            s = video_summary(store.open_frames(frames_dir, v), pd.read_parquet(store.index_path(frames_dir, v)))
        elif "face" not in s:
            s = {**s, "face": facecheck.face_summary(store.open_frames(frames_dir, v),
                                                     pd.read_parquet(store.index_path(frames_dir, v)))}
        out[v] = {**s, "synthetic": meta.get("synthetic", around)}
    return out
