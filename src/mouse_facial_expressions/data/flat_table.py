"""Read a flat per-frame task table like the original ``lps_task1_dataset_table.csv``.

That table has one row per kept PNG (``image = <video>/frameNNNNN.png``) joined with the
video metadata. Where the metadata CSV held several rows for one video (re-recordings,
discarded takes), the join repeated that video's frames, so some videos carry 2-3x their
frames. :func:`read_flat_table` reports that instead of counting them silently.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Columns that describe one frame (not the video); dropped from the video table.
FRAME_COLUMNS = ("image", "Unnamed: 0", "label", "frame", "time", "row", "run")


class DuplicateRowsError(ValueError):
    """Metadata rows repeated for one video; the message names the videos and row counts."""


def duplicate_report(flat: pd.DataFrame, key: str = "image") -> pd.DataFrame:
    """Per video with repeated frames: rows, distinct frames, and the columns that differ."""
    dup = flat[flat.duplicated(subset=[key], keep=False)]
    rows = []
    for video, g in dup.groupby("video", sort=True):
        whole = flat[flat["video"] == video]
        differ = [c for c in g.columns if c != key and g.groupby(key)[c].nunique(dropna=False).max() > 1]
        rows.append(
            {
                "video": video,
                "rows": len(whole),
                "frames": whole[key].nunique(),
                "metadata_rows": int(whole.groupby(key).size().max()),
                "differing_columns": ", ".join(c for c in differ if c != "Unnamed: 0"),
            }
        )
    return pd.DataFrame(rows, columns=["video", "rows", "frames", "metadata_rows", "differing_columns"])


def read_flat_table(
    path: str | Path, *, dedupe: bool = False, fps: float = 30.0, max_gap_s: float = 0.5
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split a flat per-frame table into a video table and a frame index.

    Args:
        path: CSV with at least ``video, animal, image`` (``<video>/frameNNNNN.png``).
        dedupe: keep one row per image where metadata rows were repeated (preferring rows
            whose ``discard`` is not 1), instead of raising.
        fps: frame rate to turn frame numbers into ``time`` (the original videos: 30).
        max_gap_s: gap that starts a new ``run``.

    Returns:
        ``(videos, index, duplicates)``: one row per video (metadata columns), one row per
        distinct frame (``video, frame, time, run, image`` and the table's ``label`` as
        ``table_label``), and the :func:`duplicate_report` (empty when clean).

    Raises:
        DuplicateRowsError: repeated frames and ``dedupe`` is False, naming each video with
            its row and frame counts.
    """
    path = Path(path)
    flat = pd.read_csv(path)
    for col in ("video", "image"):
        if col not in flat.columns:
            raise ValueError(f"{path}: no {col!r} column (columns: {', '.join(flat.columns)})")
    if "animal" not in flat.columns and "mouse" in flat.columns:
        flat["animal"] = flat["mouse"]
    report = duplicate_report(flat)
    if len(report) and not dedupe:
        lines = [
            f"  {r.video}: {r.rows} rows for {r.frames} frames ({r.metadata_rows} metadata rows; differ in {r.differing_columns})"
            for r in report.itertuples()
        ]
        raise DuplicateRowsError(
            f"{path}: {len(report)} videos carry duplicated metadata rows (their frames would be counted "
            "several times):\n" + "\n".join(lines) + "\nuse dedupe (--dedupe) to keep one row per frame"
        )
    if len(report):
        log.warning("%s: dropped duplicated metadata rows of %s", path, ", ".join(report["video"]))
        order = flat["discard"].fillna(0).ne(1).map({True: 0, False: 1}) if "discard" in flat.columns else 0
        flat = (
            flat.assign(_pref=order).sort_values(["_pref"], kind="stable")
            .drop_duplicates(subset=["image"], keep="first").drop(columns="_pref").sort_index()
        )
    frame = flat["image"].astype(str).map(_frame_number)
    bad = frame.isna()
    if bad.any():
        i = flat.index[bad][0]
        raise ValueError(f"{path}: row {i}: cannot read a frame number from image {flat.loc[i, 'image']!r}")
    meta_cols = [c for c in flat.columns if c not in FRAME_COLUMNS]
    videos = flat[meta_cols].drop_duplicates(subset=["video"]).reset_index(drop=True)
    index = pd.DataFrame(
        {"video": flat["video"].to_numpy(), "frame": frame.astype(np.int64).to_numpy(), "image": flat["image"].to_numpy()}
    )
    if "label" in flat.columns:
        index["table_label"] = flat["label"].to_numpy()
    index = index.sort_values(["video", "frame"], kind="stable").reset_index(drop=True)
    index["time"] = index["frame"] / fps
    gap = (index["video"] != index["video"].shift()) | (index["time"].diff() > max_gap_s)
    index["run"] = gap.groupby(index["video"]).cumsum().astype(np.int64) - 1
    return videos, index, report


def _frame_number(image: str) -> float:
    m = re.search(r"(\d+)\.\w+$", image)
    return float(m.group(1)) if m else np.nan
