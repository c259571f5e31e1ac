"""Can a canonical keypoint table be cropped from? Failed imports and pose files older than their video.

- A failed ``mfe keypoints import`` of a video moves its previous table ``<video>.parquet`` (made
  from an earlier pose file) to ``<video>.parquet.stale`` and writes ``<video>.import-failed.json``
  (``pose file``, ``error``, ``stale_table``, ``time``): :func:`import_failure` reads it back,
  ``mfe extract`` refuses the video with :func:`failure_message` and ``mfe task make`` refuses its
  old crops, until an import of the video succeeds (:func:`clear_failed`).
- Pose files are made from the processed video, so one older than its video was made from an
  earlier cut of it (a re-trimmed and replaced video keeps its name): :func:`pose_age_warning`.
  Projects made by ``mfe synth`` are not checked: their pose files are written before
  ``mfe prepare`` cuts the videos they label.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mouse_facial_expressions.io.atomic import write_json

#: Beside ``<video>.parquet``: the record of a failed import, and the table it replaced.
FAILED_SUFFIX, STALE_SUFFIX = ".import-failed.json", ".parquet.stale"
#: Marks a project made by ``mfe synth`` (``preprocess.domain.SYNTH_MARKER``).
_SYNTH_MARKER = Path("truth") / "synth.json"


def failure_path(table: str | Path) -> Path:
    """``<video>.import-failed.json`` beside the canonical table ``<video>.parquet``."""
    table = Path(table)
    return table.with_name(table.stem + FAILED_SUFFIX)


def import_failure(table: str | Path) -> dict | None:
    """The record of the last failed import of ``table`` (``pose file``, ``error``, ``time``,
    ``stale_table``: where the previous table went, or None), or None when its last import did not fail."""
    path = failure_path(table)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return {"pose file": None, "error": f"unreadable record {path.name} ({err})", "stale_table": None}


def mark_failed(table: Path, src: Path, error: str) -> None:
    """A failed import: move the previous table aside (never cropped from again) and say why."""
    table.parent.mkdir(parents=True, exist_ok=True)
    stale = table.with_name(table.stem + STALE_SUFFIX)
    if table.is_file():
        os.replace(table, stale)
    write_json(failure_path(table), {"pose file": str(src), "error": error,
                                      "stale_table": stale.name if stale.is_file() else None,
                                      "time": _mtime_text(time.time_ns())})


def clear_failed(table: Path) -> None:
    """A successful import: forget the failure and the table it moved aside."""
    failure_path(table).unlink(missing_ok=True)
    table.with_name(table.stem + STALE_SUFFIX).unlink(missing_ok=True)


def failure_message(table: str | Path, record: dict) -> str:
    """One sentence naming the table, the pose file and the error of a failed import."""
    table, pose = Path(table), record.get("pose file")
    error = str(record.get("error", "")).strip()
    error = error[len(f"{pose}: "):] if error.startswith(f"{pose}: ") else error  # the file is named once
    moved = f"the previous table was moved to {record['stale_table']} and " if record.get("stale_table") else ""
    return (f"{table}: the last `mfe keypoints import` of {pose} failed "
            f"({error}); {moved}no keypoints of this video are used until an import "
            "succeeds (fix the pose file or keypoints.bodyparts and run `mfe keypoints import` again)")


def _mtime_text(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ns / 1e9))


def pose_age_warning(pose: str | Path, video: str | Path, pose_mtime_ns: int | None = None) -> str | None:
    """A warning when the pose file was last modified before its processed video, else None.

    Pose files are made from the processed video, so an older one was made from an earlier cut
    of it (a re-trimmed and replaced video keeps its name). ``pose_mtime_ns``: the pose file's
    recorded mtime when the file itself is gone.
    """
    pose, video = Path(pose), Path(video)
    if pose.is_file():
        pose_mtime_ns = pose.stat().st_mtime_ns
    if pose_mtime_ns is None or not video.is_file():
        return None
    video_ns = video.stat().st_mtime_ns
    if pose_mtime_ns >= video_ns:
        return None
    minutes = (video_ns - pose_mtime_ns) / 60e9
    return (f"{video.name}: its pose file {pose} (modified {_mtime_text(pose_mtime_ns)}) is older than the video "
            f"{video} (modified {_mtime_text(video_ns)}, {minutes:.1f} min later): the keypoints may belong to an "
            "earlier cut of the video; rerun `mfe keypoints detect` (or DeepLabCut) on the current video and "
            "`mfe keypoints import`")


def is_synthetic_project(cfg) -> bool:
    """``mfe synth`` made the project (pose-file ages are not checked there)."""
    return getattr(cfg, "root", None) is not None and (Path(cfg.root) / _SYNTH_MARKER).is_file()
