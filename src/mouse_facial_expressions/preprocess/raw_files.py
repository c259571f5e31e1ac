"""Finding a recording's raw camera file: the file-name convention and the match by camera and time.

Raw files are named ``<camera>__<serial>__YYYYMMDD_HHMMSS[fff].<ext>``; a metadata row names a camera
and a start time. This lookup reads only file names, no video, so it is kept apart from the cutting
and record-keeping of ``preprocess.prepare``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")


@dataclass(frozen=True)
class RawFile:
    """A raw camera file and what its name says."""

    path: Path
    camera: str
    serial: str
    time: datetime  # whole seconds from the name (sub-second digits are dropped)


def parse_raw_name(path: str | Path) -> RawFile | None:
    """``<camera>__<serial>__YYYYMMDD_HHMMSS[fff].<ext>`` -> :class:`RawFile`; None if not one."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES or path.name.startswith("."):
        return None
    parts = path.stem.rsplit("__", 2)
    if len(parts) != 3 or not all(parts):
        return None
    camera, serial, stamp = parts
    date, _, clock = stamp.partition("_")
    if len(date) != 8 or len(clock) < 6 or not (date + clock).isdigit():
        return None
    try:
        time = datetime.strptime(date + clock[:6], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return RawFile(path, camera, serial, time)


def index_raw_videos(folder: str | Path) -> list[RawFile]:
    """Every raw camera file in ``folder`` and its sub-folders (e.g. one per day), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: raw video folder does not exist (paths.raw_videos)")
    files = (parse_raw_name(p) for p in sorted(folder.rglob("*")) if p.is_file())
    return [f for f in files if f is not None]


def match_raw_video(files: Sequence[RawFile], camera: str, timestamp: datetime,
                    tolerance_s: float = 2.0) -> tuple[RawFile | None, list[RawFile]]:
    """The raw file of ``camera`` recorded at ``timestamp``.

    An exact match (to the second) wins. Otherwise a single file within ``tolerance_s``
    matches. Returns ``(match, candidates)``: ``match`` is None when there is no candidate
    (missing) or several (ambiguous; ``candidates`` lists them).
    """
    same_cam = [f for f in files if f.camera == camera]
    exact = [f for f in same_cam if f.time == timestamp]
    if exact:
        return (exact[0] if len(exact) == 1 else None), exact
    near = [f for f in same_cam if abs((f.time - timestamp).total_seconds()) <= tolerance_s]
    return (near[0] if len(near) == 1 else None), near
