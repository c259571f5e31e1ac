"""Which labelled crops a task trains on: no flagged crop, no video too short for a window.

``mfe extract`` flags crops whose keypoints cannot give a face (``preprocess.quality``: a
landmark off the frame, a likelihood below the cutoff, an implausible face geometry; crops whose
face centre is off the frame are never stored). :func:`usable_frames` leaves the flagged rows out
of a task's labelled frame table and then every video they leave with too few rows for one window,
and :func:`quality_notes` says so per video, for the log and the task README.
Indexes written before the flags existed have none of their columns: every crop counts as usable.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.data.sequences import make_windows, window_span
from mouse_facial_expressions.preprocess import store
from mouse_facial_expressions.preprocess.quality import FLAG_COLUMNS, FLAG_NAMES, flagged

log = logging.getLogger(__name__)

#: Columns of the per-video report of :func:`usable_frames`.
REPORT_COLUMNS = ["video", "labelled", *FLAG_COLUMNS, "flagged", "usable", "left_out"]


def too_short(frames: pd.DataFrame, num_frames: int, frame_stride: int, max_gap_s: float, short_runs: str,
              lost: bool = True) -> str:
    """Why one video's usable rows cannot give a window (``""`` when they can).

    No usable row never can. A video that ``lost`` rows to quality flags needs ``num_frames`` of
    them left (one window of distinct crops: its keypoints are suspect, and a few survivors would
    only be repeated); a video without flags keeps the spec's ``short_runs`` rule (``resample``: a
    short video gives one resampled window, as the original did). With ``short_runs: drop`` every
    video needs one run of ``window_span(num_frames, frame_stride)`` rows (``data.sequences``).
    """
    n = len(frames)
    if n == 0:
        return "no usable crop"
    if lost and n < num_frames:
        return f"{n} usable crop{'s' if n > 1 else ''} left, fewer than the {num_frames} of one window"
    if short_runs == "drop" and make_windows(frames, num_frames, frame_stride, max_gap_s, "drop").empty:
        return (f"no run of {window_span(num_frames, frame_stride)} usable crops for a window "
                "(short_runs: drop)")
    return ""


def usable_frames(frames: pd.DataFrame, spec, empty_videos: list[str] | tuple = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The labelled frames a task keeps, and a report of what it left out.

    Args:
        frames: labelled frame rows (frame-store index columns + labels), any quality flags.
        spec: the :class:`~mouse_facial_expressions.data.tasks.TaskSpec` (window settings).
        empty_videos: videos with no crop in the frame store at all (reported as left out).

    Returns:
        ``(kept, report)``: ``kept`` the rows without a flag, of videos with enough of them for a
        window; ``report`` one row per video that lost rows or was left out
        (:data:`REPORT_COLUMNS`; ``left_out`` the reason, ``""`` when the video stays).
    """
    bad = flagged(frames)
    rows, keep = [], np.ones(len(frames), bool)
    for video, idx in frames.groupby("video", sort=True).indices.items():
        ok = idx[~bad[idx]]
        reason = too_short(frames.iloc[ok], spec.num_frames, spec.frame_stride, spec.max_gap_s, spec.short_runs,
                           lost=bool(bad[idx].any()))
        if reason:
            keep[idx] = False
        else:
            keep[idx[bad[idx]]] = False
        if reason or bad[idx].any():
            counts = {c: int(frames[c].iloc[idx].eq(True).sum()) if c in frames.columns else 0 for c in FLAG_COLUMNS}
            rows.append({"video": video, "labelled": len(idx), **counts, "flagged": int(bad[idx].sum()),
                         "usable": len(ok), "left_out": reason})
    for video in sorted(set(empty_videos) - set(frames["video"])):
        rows.append({"video": video, "labelled": 0, **dict.fromkeys(FLAG_COLUMNS, 0), "flagged": 0, "usable": 0,
                     "left_out": "no crop in the frame store (see the warnings of mfe extract)"})
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    return frames[keep].reset_index(drop=True), report


def quality_notes(report: pd.DataFrame) -> list[str]:
    """One line per video of a :func:`usable_frames` report (for the log and the README notes)."""
    out = []
    for r in report.itertuples(index=False):
        r = r._asdict()
        parts = []
        if r["flagged"]:
            kinds = ", ".join(f"{FLAG_NAMES[c]} {r[c]}" for c in FLAG_COLUMNS if r[c])
            parts.append(f"{r['flagged']} of {r['labelled']} labelled crops flagged and left out ({kinds})")
        if r["left_out"]:
            parts.append(f"video left out: {r['left_out']}")
        out.append(f"frame quality: {r['video']}: " + "; ".join(parts))
    return out


def leave_out_unusable(frames: pd.DataFrame, spec, index: pd.DataFrame, videos: pd.DataFrame,
                       frames_dir: str | Path | None) -> tuple[pd.DataFrame, list[str]]:
    """What ``make_task`` keeps of its labelled ``frames``, and the lines that say what it left out.

    Runs :func:`usable_frames` and logs each line of :func:`quality_notes` as a warning. With the
    frame store ``frames_dir``, also names its videos without a single crop (every frame dropped
    by ``mfe extract``; those with metadata the spec does not exclude) and, in one line, those
    extracted before crops carried flags.
    """
    empty, unchecked = [], []
    if frames_dir is not None and Path(frames_dir).is_dir():
        known = set(videos["video"]) - set(spec.exclude_videos)
        known -= set(videos.loc[videos["animal"].astype(str).isin(spec.exclude_animals), "video"])
        empty = _labelled(videos, sorted((set(store.complete_videos(frames_dir)) - set(index["video"])) & known), spec)
        unchecked = [v for v in sorted(set(frames["video"])) if "quality" not in _meta(frames_dir, v)]
    kept, report = usable_frames(frames, spec, empty)
    notes = quality_notes(report)
    for line in notes:
        log.warning("%s", line)
    if len(report):
        log.info("frame quality: %d flagged crops and %d video(s) left out", int(report["flagged"].sum()),
                 int((report["left_out"] != "").sum()))
    if unchecked:
        notes.append(f"frame quality: {len(unchecked)} video(s) were extracted before crops carried quality flags "
                     f"(every crop counted as usable): {', '.join(unchecked[:5])}{' ...' if len(unchecked) > 5 else ''}; "
                     "`mfe extract --overwrite` checks them")
    return kept, notes


def _labelled(videos: pd.DataFrame, names: list[str], spec) -> list[str]:
    """The videos of ``names`` that a rule of ``spec`` would label (all of them when the rules
    need more than the metadata columns)."""
    from mouse_facial_expressions.data.rules import parse_rule

    rows = videos[videos["video"].isin(names)].reset_index(drop=True)
    try:
        hit = np.any([parse_rule(r).mask(rows).to_numpy(bool) for r in spec.rules], axis=0)
    except Exception:  # a rule over frame-store columns: cannot tell without crops
        return names
    return sorted(set(rows.loc[hit, "video"]))


def _meta(frames_dir: str | Path, video: str) -> dict:
    try:
        return store.video_meta(frames_dir, video)
    except Exception:  # an unreadable record: as if written before the flags
        return {}
