"""``mfe keypoints info``: a text summary of a pose file or a canonical keypoint table.

Bodyparts or landmarks, individuals, frames and likelihood statistics, for a person to read.
It only reads (through ``io.keypoints``), so it is kept apart from the reading and import code there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mouse_facial_expressions.io.keypoints import (
    canonical_meta,
    landmark_array,
    landmark_names,
    load_canonical,
    pose_individuals,
    read_pose,
    video_name,
)


def _stats_lines(names: Sequence[str], xyl: np.ndarray, pcutoff: float) -> list[str]:
    """One line per point: share present, mean likelihood, share above ``pcutoff``."""
    width = max([len("point")] + [len(n) for n in names])
    lines = [f"  {'point':<{width}}  present  mean_lik  lik>{pcutoff:g}"]
    n = max(len(xyl), 1)
    for j, name in enumerate(names):
        lik = xyl[:, j, 2]
        present = ~np.isnan(lik)
        mean = float(np.nanmean(lik)) if present.any() else float("nan")
        above = float(np.sum(lik > pcutoff)) / n
        lines.append(f"  {name:<{width}}  {present.sum() / n:6.1%}  {mean:8.3f}  {above:7.1%}")
    return lines


def _frames_line(frames: np.ndarray) -> str:
    if frames.size == 0:
        return "  rows: 0"
    return f"  rows: {frames.size} (frames {int(frames.min())}..{int(frames.max())})"


def describe(path: str | Path, individual: str | None = None, pcutoff: float = 0.6) -> str:
    """A text summary of a pose file or canonical table: bodyparts, individuals, frames and
    likelihood statistics (for ``mfe keypoints info``)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        df = load_canonical(path)
        names = landmark_names(df)
        lines = [f"{path}: canonical keypoint table", f"  landmarks: {', '.join(names)}"]
        lines.append(_frames_line(df["frame"].to_numpy()))
        meta = canonical_meta(path)
        if meta:
            lines.append(f"  imported from: {meta.get('source')}")
        return "\n".join(lines + _stats_lines(names, landmark_array(df, names), pcutoff))
    everyone = pose_individuals(path)
    picks = [individual] if individual is not None or not everyone else [i for i in everyone if i != "single"]
    lines = [f"{path}: video {video_name(path)!r}"]
    if everyone:
        lines.append(f"  individuals: {', '.join(everyone)}")
    for pick in picks:
        pose = read_pose(path, pick)
        if pick is not None:
            lines.append(f"individual {pick}:")
        lines.append(f"  scorer: {pose.scorer}; likelihood in file: {'yes' if pose.has_likelihood else 'no (1.0 where labelled)'}")
        lines.append(f"  bodyparts: {', '.join(pose.bodyparts)}")
        lines.append(_frames_line(pose.frames()))
        xyl = np.stack([pose.xyl(b) for b in pose.bodyparts], axis=1)
        lines += _stats_lines(pose.bodyparts, xyl, pcutoff)
    return "\n".join(lines)
