"""Mouse Grimace Scale action-unit targets of a task (``TaskSpec.au``; ``mfe task make --au-ratings``).

Raters score each action unit (AU: ``ot nb cb ep wc``, :data:`~mouse_facial_expressions.io.ratings.AUS`)
0, 1 or 2, and they disagree: the target of an AU is therefore the *distribution* of the raters'
scores over {0, 1, 2} (label distribution learning), not their mean. Per rated frame and AU::

    p_k = (raters whose score is k) / (raters who scored that AU),   k = 0, 1, 2

NaN for all three when nobody scored the AU. A score between two integers (a 0..9 sheet mapped
onto 0..2 by ``mfe ratings import --scale-max``) is split between its two neighbours so that the
expected score is kept (0.5 -> half 0, half 1).

A window takes the distributions of the nearest rated frame of the same video whose time lies
within ``tolerance_s`` of the window's centre (``match: nearest``), or a blend of the rated
frames just before and after the centre, weighted by closeness (``match: interpolate``); no
such frame: the window has no AU target (its ``au_mask`` is 0).

Task files written by :func:`task_au_targets` / :meth:`AUTargets.write`:

- ``au_targets.parquet`` (:data:`TARGET_COLUMNS`): one row per rated frame of a task video:
  ``item, video, frame, time_s, animal``, ``au_<code>_p0, _p1, _p2`` and ``au_<code>_n`` (raters
  who scored it);
- ``au_ratings.parquet``: the imported ratings rows (``io.ratings.COLUMNS``) of those frames, so
  that evaluation can compare a model with each rater and the raters with each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mouse_facial_expressions.data.task_files import TaskFiles
from mouse_facial_expressions.io.ratings import AUS

log = logging.getLogger(__name__)

AU_TARGETS_FILE = TaskFiles.AU_TARGETS
AU_RATINGS_FILE = TaskFiles.AU_RATINGS
#: The MGS scores an AU can take.
SCORES = (0, 1, 2)
DIST_COLUMNS = [f"au_{a}_p{k}" for a in AUS for k in SCORES]
COUNT_COLUMNS = [f"au_{a}_n" for a in AUS]
TARGET_COLUMNS = ["item", "video", "frame", "time_s", "animal", *DIST_COLUMNS, *COUNT_COLUMNS]


class AUTargetError(ValueError):
    """Ratings that cannot become a task's AU targets; the message names the file, lines and items."""


class AUTargetSpec(BaseModel):
    """The AU target of a task (``task.yaml`` key ``au``)."""

    model_config = ConfigDict(extra="forbid")

    ratings: str = Field(description="Imported ratings table (mfe ratings import: ratings/<name>.parquet), "
                                     "relative to the project folder or absolute.")
    match: Literal["nearest", "interpolate"] = Field(
        "nearest", description="nearest: the rated frame nearest the window's centre; interpolate: the rated frames "
                               "before and after it, blended by closeness.")
    tolerance_s: float = Field(0.5, gt=0, description="A rated frame further than this from the window's centre "
                                                      "(seconds) gives it no target.")


def score_distribution(scores) -> np.ndarray:
    """``(N,)`` scores on 0..2 -> ``(N, 3)`` distributions over {0, 1, 2}: one-hot for whole
    scores, split between the two neighbours (keeping the expected score) otherwise."""
    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 2.0)
    lo = np.clip(np.floor(s), 0, 1).astype(np.int64)  # 2.0 -> lower neighbour 1, weight 0
    frac = s - lo
    out = np.zeros((len(s), 3))
    rows = np.arange(len(s))
    out[rows, lo] += 1.0 - frac
    out[rows, lo + 1] += frac
    return out


def rater_distributions(ratings: pd.DataFrame) -> pd.DataFrame:
    """Per rated item (frame), per AU, the raters' distribution over {0, 1, 2}.

    Args:
        ratings: a ratings table (``io.ratings.COLUMNS``: ``item, video, frame, time_s, animal,
            rater, au, score``; one row per scored cell).

    Returns:
        :data:`TARGET_COLUMNS`, one row per item (sorted by video, time, item): each AU's
        ``p0, p1, p2`` sum to 1, or are NaN where nobody scored it (``au_<code>_n`` = 0).
    """
    if ratings.empty:
        return pd.DataFrame(columns=TARGET_COLUMNS)
    dist = pd.DataFrame(score_distribution(ratings["score"]), columns=["p0", "p1", "p2"], index=ratings.index)
    dist["item"], dist["au"] = ratings["item"].astype(str).to_numpy(), ratings["au"].to_numpy()
    g = dist.groupby(["item", "au"])
    per = g[["p0", "p1", "p2"]].mean().join(g.size().rename("n"))  # (item, au) -> mean one-hot = counts / raters
    wide = per.unstack("au")
    items = ratings.assign(item=ratings["item"].astype(str)).drop_duplicates("item").set_index("item")
    out = items[["video", "frame", "time_s", "animal"]].reindex(wide.index)
    for a in AUS:
        for k in SCORES:
            out[f"au_{a}_p{k}"] = wide[(f"p{k}", a)] if (f"p{k}", a) in wide.columns else np.nan
    for a in AUS:
        out[f"au_{a}_n"] = wide[("n", a)].fillna(0).astype(np.int64) if ("n", a) in wide.columns else 0
    out = out.reset_index()
    out = out.sort_values(["video", "time_s", "item"], kind="stable", na_position="last").reset_index(drop=True)
    return out[TARGET_COLUMNS]


def _lines(rows: pd.DataFrame, limit: int = 6) -> str:
    """``video x (line 3, item x:12)`` for the first rows, one per item."""
    first = rows.drop_duplicates("item").head(limit)
    parts = [f"{r.video if isinstance(r.video, str) else 'no video'} (line {int(r.line)}, item {r.item})"
             for r in first.itertuples(index=False)]
    more = rows["item"].nunique() - len(first)
    return ", ".join(parts) + (f" and {more} more item(s)" if more > 0 else "")


def _fps_by_video(frames: pd.DataFrame) -> dict[str, float]:
    """Each task video's frame rate from its frame rows (``time = frame / fps``)."""
    f = frames[(frames["frame"] > 0) & (frames["time"] > 0)]
    ratio = (f["frame"].astype(float) / f["time"].astype(float)).groupby(f["video"].astype(str)).median()
    return ratio.to_dict()


@dataclass
class AUTargets:
    """What :func:`task_au_targets` made: the targets, the ratings rows behind them, README lines."""

    targets: pd.DataFrame
    ratings: pd.DataFrame
    source: Path
    notes: list[str] = field(default_factory=list)

    def write(self, task_dir: Path) -> None:
        """``au_targets.parquet`` and ``au_ratings.parquet`` into ``task_dir`` (a folder being written)."""
        self.targets.to_parquet(Path(task_dir) / AU_TARGETS_FILE, index=False)
        self.ratings.to_parquet(Path(task_dir) / AU_RATINGS_FILE, index=False)


def resolve_ratings(spec: AUTargetSpec, root: str | Path) -> Path:
    """The ratings parquet of ``spec``: absolute, or relative to the project folder ``root``."""
    p = Path(spec.ratings).expanduser()
    return p if p.is_absolute() else Path(root) / p


def map_raw_videos(ratings: pd.DataFrame, sources: pd.DataFrame, known) -> tuple[pd.DataFrame, list[str]]:
    """Ratings keyed by the RAW camera files (a sheet named after the camera's files, e.g. through
    ``ratings.pattern``) placed in the processed videos cut from them (``mfe prepare``'s record,
    :func:`preprocess.prepare.raw_sources`).

    A row whose ``video`` is not a known processed video but is a raw file's name (with or
    without its extension) is moved to the processed video whose cut holds its time (``time_s``,
    else ``frame / fps``) in the raw file: ``time_s`` becomes the time in that video
    (``t - start_s``) and ``frame`` its frame there (``frame - start_frame``). A rated raw frame
    outside every cut (trimmed away by ``start``/``end``) keeps ``video = None`` and becomes a
    still image, listed in the returned notes.

    Returns:
        ``(ratings, notes)``.
    """
    if sources is None or sources.empty or ratings.empty:
        return ratings, []
    known = set(map(str, known))
    by_raw: dict[str, pd.DataFrame] = {}
    for raw, cuts in sources.groupby("raw", sort=False):
        by_raw[str(raw)] = cuts
        by_raw.setdefault(Path(str(raw)).stem, cuts)
    video = ratings["video"].where(ratings["video"].notna(), None)
    candidates = video.notna() & ~video.astype(str).isin(known) & video.astype(str).isin(set(by_raw))
    if not candidates.any():
        return ratings, []
    out = ratings.copy()
    out["time_s"] = pd.to_numeric(out["time_s"], errors="coerce").astype(float)
    out["frame"] = pd.to_numeric(out["frame"], errors="coerce").astype(float)
    moved, lost, untimed = 0, [], []
    for i in np.flatnonzero(candidates.to_numpy()):
        idx = out.index[i]
        cuts = by_raw[str(video.iloc[i])]
        t, f = out.at[idx, "time_s"], out.at[idx, "frame"]
        fps = float(cuts["fps"].iloc[0])
        t_raw = t if np.isfinite(t) else f / fps if np.isfinite(f) else np.nan
        if not np.isfinite(t_raw):
            untimed.append(idx)
            continue
        hit = cuts[(cuts["start_s"] - 1e-9 <= t_raw) & (t_raw < cuts["end_s"] - 1e-9)]
        if hit.empty:
            lost.append(idx)
            out.at[idx, "video"] = None
            continue
        cut = hit.iloc[0]
        out.at[idx, "video"] = str(cut["video"])
        out.at[idx, "time_s"] = t_raw - float(cut["start_s"])
        out.at[idx, "frame"] = f - float(cut["start_frame"]) if np.isfinite(f) else np.nan
        moved += 1
    notes = [f"AU ratings: {out.loc[candidates[candidates].index, 'item'].nunique()} rated frame(s) named after raw "
             f"camera files placed in the processed videos cut from them (mfe prepare's record): {moved} rating rows moved"]
    if untimed:
        notes.append(f"AU ratings: {len(untimed)} rating row(s) of raw camera files have neither a time nor a frame "
                     f"number and stay unplaced: {_lines(ratings.loc[untimed])}")
    if lost:
        notes.append(f"AU ratings: {len(lost)} rating row(s) are rated at times of their raw camera file that no "
                     f"processed video covers (trimmed away by start/end), kept as still images: {_lines(ratings.loc[lost])}")
    return out, notes


def task_au_targets(task_spec, root: str | Path, frames: pd.DataFrame, project_videos,
                    raw_sources: pd.DataFrame | None = None) -> AUTargets:
    """The AU targets of a task's videos from an imported ratings table.

    Args:
        task_spec: the :class:`~mouse_facial_expressions.data.tasks.TaskSpec`; its ``au`` (an
            :class:`AUTargetSpec`) names the ratings; its window settings count the
            non-overlapping windows that get a target (a README line).
        root: the project folder (``au.ratings`` may be relative to it).
        frames: the task's labelled frame rows (``video, frame, time``; ``row, run`` for the count).
        project_videos: every video the project knows (frame store and metadata): a rated video
            outside them is an error (a misspelt name, another project's sheet); one that the
            task leaves out (excluded, or no rule labels it) is noted and not used.
        raw_sources: which raw camera file each processed video was cut from
            (:func:`preprocess.prepare.raw_sources`): ratings named after raw files are placed
            in those videos (:func:`map_raw_videos`).

    Raises:
        AUTargetError: naming the file and the lines/items: videos unknown to the project, rated
            frames with neither a time nor a frame number, no rated frame in any task video.
    """
    from mouse_facial_expressions.io.ratings import load_ratings

    spec = task_spec.au
    path = resolve_ratings(spec, root)
    if not path.is_file():
        raise AUTargetError(f"AU ratings {path} not found (import a rating sheet first: mfe ratings import SHEET "
                            "--name NAME writes ratings/NAME.parquet)")
    ratings = load_ratings(path)
    if ratings.empty:
        raise AUTargetError(f"{path}: the ratings table is empty")
    task_videos = set(frames["video"].astype(str))
    known = set(map(str, project_videos)) | task_videos
    ratings, raw_notes = map_raw_videos(ratings, raw_sources, known)
    video = ratings["video"].where(ratings["video"].notna(), None)
    stills = video.isna()
    unknown = ~stills & ~video.astype(str).isin(known)
    if unknown.any():
        names = sorted(set(video[unknown].astype(str)))
        raise AUTargetError(f"{path}: {len(names)} rated video(s) are not in this project (neither in the frame store "
                            f"nor in the video metadata): {_lines(ratings[unknown])}. AU targets need the processed video's "
                            "name (e.g. m1_rec1_preinjection) and times within it: check the sheet's video column or "
                            "ratings.pattern (a sheet keyed by raw camera files is placed in the processed videos that "
                            "mfe prepare cut from them: prepare the videos first)")
    outside = ~stills & ~unknown & ~video.astype(str).isin(task_videos)
    in_task = ratings[~stills & ~outside].copy()
    notes = list(raw_notes)
    if stills.any():
        notes.append(f"AU ratings: {ratings.loc[stills, 'item'].nunique()} rated still image(s) without a video are not "
                     f"AU targets (no window to match): {_lines(ratings[stills], 3)}")
    if outside.any():
        names = sorted(set(video[outside].astype(str)))
        notes.append(f"AU ratings: {len(names)} rated video(s) of the project are not in this task (excluded, or no "
                     f"rule labels them), their {ratings.loc[outside, 'item'].nunique()} rated frame(s) unused: "
                     f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
    if in_task.empty:
        rated = sorted(set(video[~stills].astype(str)))
        raise AUTargetError(f"{path}: no rated frame is in a video of this task ({len(task_videos)} videos, e.g. "
                            f"{', '.join(sorted(task_videos)[:3])}); rated videos: {', '.join(rated[:6]) or 'none (still images only)'}")
    in_task["video"] = in_task["video"].astype(str)
    untimed = in_task["time_s"].isna()
    if untimed.any():
        fps = _fps_by_video(frames)
        frame_of = pd.to_numeric(in_task["frame"], errors="coerce").astype(float)
        rate = in_task["video"].map(fps).astype(float)
        in_task.loc[untimed, "time_s"] = frame_of[untimed] / rate[untimed]
        lost = in_task["time_s"].isna()
        if lost.any():
            raise AUTargetError(f"{path}: {in_task.loc[lost, 'item'].nunique()} rated frame(s) have neither a time nor a "
                                f"frame number to place them in their video: {_lines(in_task[lost])}")
    targets = rater_distributions(in_task)
    notes.insert(0, f"AU targets (`au_targets.parquet`) from `{path}`: {len(targets)} rated frames in "
                    f"{targets['video'].nunique()} videos, {in_task['rater'].nunique()} rater(s); a window takes the "
                    f"{spec.match} rated frame(s) within {spec.tolerance_s:g} s of its centre")
    if {"row", "run"} <= set(frames.columns):
        from mouse_facial_expressions.data.sequences import make_windows, window_span

        t, s = task_spec.num_frames, task_spec.frame_stride
        windows = make_windows(frames, t, s, task_spec.max_gap_s, task_spec.short_runs, step=window_span(t, s))
        _, mask = match_windows(windows, targets, spec.tolerance_s, spec.match)
        has = mask.any(axis=1)
        notes.append(f"AU targets: {int(has.sum())} of {len(windows)} non-overlapping windows have one; per AU: "
                     + ", ".join(f"{a} {int(mask[:, j].sum())}" for j, a in enumerate(AUS)))
    return AUTargets(targets, in_task.reset_index(drop=True), path, notes)


def load_au_targets(task_dir: str | Path) -> pd.DataFrame | None:
    """A task folder's ``au_targets.parquet`` (None when the task has no AU target)."""
    p = Path(task_dir) / AU_TARGETS_FILE
    return pd.read_parquet(p) if p.is_file() else None


def load_au_ratings(task_dir: str | Path) -> pd.DataFrame | None:
    """A task folder's ``au_ratings.parquet`` (None when the task has no AU target)."""
    p = Path(task_dir) / AU_RATINGS_FILE
    return pd.read_parquet(p) if p.is_file() else None


def match_windows(windows: pd.DataFrame, targets: pd.DataFrame, tolerance_s: float,
                  match: str = "nearest") -> tuple[np.ndarray, np.ndarray]:
    """Each window's AU target from the rated frames of its video.

    Args:
        windows: ``video, start_time, end_time`` (the centre ``(start + end) / 2`` is matched).
        targets: :func:`rater_distributions` rows (``video, time_s`` and :data:`DIST_COLUMNS`).
        tolerance_s: largest distance between the centre and a rated frame that is used.
        match: ``nearest`` (ties: the earlier frame) or ``interpolate``.

    Returns:
        ``(au, mask)``: ``(W, 5, 3)`` float32 distributions (0 where there is no target) and
        ``(W, 5)`` float32, 1 where the window has a target for that AU.
    """
    if match not in ("nearest", "interpolate"):
        raise ValueError(f"match must be nearest or interpolate, got {match!r}")
    n_w = len(windows)
    au = np.zeros((n_w, len(AUS), 3), dtype=np.float32)
    mask = np.zeros((n_w, len(AUS)), dtype=np.float32)
    if not n_w or targets is None or not len(targets):
        return au, mask
    dist = targets[DIST_COLUMNS].to_numpy(np.float64).reshape(len(targets), len(AUS), 3)  # (R, 5, 3)
    times = targets["time_s"].to_numpy(np.float64)
    centre = (windows["start_time"].to_numpy(np.float64) + windows["end_time"].to_numpy(np.float64)) / 2.0
    rated = targets.groupby(targets["video"].astype(str)).indices
    tol = float(tolerance_s) + 1e-9
    for video, idx in windows.groupby(windows["video"].astype(str)).indices.items():
        r = rated.get(video)
        if r is None:
            continue
        r = r[np.argsort(times[r], kind="stable")]
        t = times[r]  # (n,) sorted
        c = centre[idx]  # (k,)
        j = np.searchsorted(t, c)
        left, right = np.clip(j - 1, 0, len(t) - 1), np.clip(j, 0, len(t) - 1)
        d_l, d_r = np.abs(c - t[left]), np.abs(t[right] - c)
        if match == "nearest":
            pick = np.where(d_r < d_l, right, left)
            ok = np.minimum(d_l, d_r) <= tol
            got = dist[r[pick[ok]]]  # (k_ok, 5, 3)
            has = np.isfinite(got).all(-1)  # (k_ok, 5)
        else:
            dl, dr = dist[r[left]], dist[r[right]]  # (k, 5, 3)
            use_l = (d_l <= tol)[:, None] & np.isfinite(dl).all(-1)  # (k, 5)
            use_r = (d_r <= tol)[:, None] & np.isfinite(dr).all(-1)
            span = d_l + d_r
            w_l = np.where(span > 0, d_r / np.where(span > 0, span, 1.0), 0.5)[:, None] * use_l  # closer = heavier
            w_r = np.where(span > 0, d_l / np.where(span > 0, span, 1.0), 0.5)[:, None] * use_r
            w_l, w_r = np.where(use_l & ~use_r, 1.0, w_l), np.where(use_r & ~use_l, 1.0, w_r)
            tot = w_l + w_r
            got = (np.nan_to_num(dl) * w_l[..., None] + np.nan_to_num(dr) * w_r[..., None]) / np.where(tot > 0, tot, 1.0)[..., None]
            has = use_l | use_r
            ok = np.ones(len(idx), dtype=bool)
        rows = idx[ok]
        au[rows] = np.where(has[..., None], np.nan_to_num(got), 0.0)
        mask[rows] = has
    return au, mask


__all__ = [
    "AU_RATINGS_FILE", "AU_TARGETS_FILE", "AUTargetError", "AUTargetSpec", "AUTargets", "COUNT_COLUMNS", "DIST_COLUMNS",
    "TARGET_COLUMNS", "load_au_ratings", "load_au_targets", "match_windows", "rater_distributions", "resolve_ratings",
    "score_distribution", "task_au_targets",
]
