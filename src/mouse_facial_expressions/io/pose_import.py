"""The one loop that turns pose files into per-video tables: :func:`import_pose_tables`.

``mfe keypoints import`` (face, :mod:`io.keypoints`) and ``mfe behaviour import`` (body,
:mod:`io.behaviour`) both go over ``{video: pose file}`` the same way: skip a table that is
fresh, otherwise make it and write it; a file that fails does not stop the others, and after
the last one every failure is listed in one :class:`KeypointImportError`. What differs (the
freshness test, the mapping and checks that make the table, where it goes) is passed in.

A failed video's previous table was made from another pose file, so it is never used again:
it moves to ``<video>.parquet.stale`` and ``<video>.import-failed.json`` says why
(:func:`io.keypoint_status.mark_failed`); a later success removes both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from mouse_facial_expressions import provenance
from mouse_facial_expressions.io.keypoint_status import FAILED_SUFFIX, STALE_SUFFIX, clear_failed, mark_failed

log = logging.getLogger(__name__)

#: Errors that fail one pose file (the others go on); anything else is a bug and stops the loop.
FILE_ERRORS = (ValueError, ImportError, OSError)


class KeypointImportError(ValueError):
    """Some files could not be imported; the message lists each file and why."""


def import_settings(mapping: dict, individual: str | None) -> dict:
    """The settings a table's provenance records besides its input files (face and body alike)."""
    return {"bodyparts": mapping, "individual": individual}


def failure_line(msg: str, src: Path, video: str | None = None) -> str:
    """One indented line of the failure list: ``msg``, led by ``src`` unless it names the file
    already (or ``video``, when given)."""
    named = str(src) in msg or (video is not None and video in msg)
    return f"  {msg}" if named else f"  {src}: {msg}"


def import_pose_tables(
    files: Mapping[str, Path],
    out_path: Callable[[str], Path],
    status: Callable[[str, Path, Path], list[str]],
    make: Callable[[str, Path], tuple[pd.DataFrame, dict]],
    write: Callable[[pd.DataFrame, Path, dict], object],
    *,
    what: str = "keypoints",
    files_name: str = "pose files",
    name_by_video: bool = False,
    before: Callable[[str, Path], None] | None = None,
) -> list[Path]:
    """Write ``out_path(video)`` for every ``video -> pose file`` of ``files`` that is not fresh.

    Args:
        files: pose file of each video (:func:`io.keypoints.find_pose_files`).
        out_path: the table of a video.
        status: ``(video, src, dst) -> reasons`` to (re)make the table; ``[]``: fresh, kept.
            May raise a :data:`FILE_ERRORS` error, which fails the video.
        make: ``(video, src) -> (table, meta)``: read, map and check one pose file.
        write: ``(table, dst, meta)``: write the table (atomically).
        what: name of the tables in the progress bar and the log line.
        files_name: the files in the error message ("pose files", "body pose files").
        name_by_video: an error message that names the video counts as naming the file.
        before: called first for each video (warnings that do not fail it).

    Returns:
        The tables of all videos, written now or already fresh, in video order.

    Raises:
        KeypointImportError: after every other file is done, listing each file that failed.
    """
    from tqdm import tqdm

    out_dir = None
    written, skipped, outputs, failures, redone = 0, 0, [], [], {}
    for video, src in tqdm(sorted(files.items()), desc=what, unit="file", disable=None):
        dst = out_path(video)
        out_dir = dst.parent
        if before is not None:
            before(video, src)
        try:
            reasons = status(video, src, dst)
            if reasons:
                table, meta = make(video, src)
        except FILE_ERRORS as err:
            msg = str(err)
            failures.append(failure_line(msg, src, video if name_by_video else None))
            mark_failed(dst, src, msg)  # the old table is of another pose file: never use it again
            continue
        if not reasons:
            skipped += 1
            outputs.append(dst)
            continue
        write(table, dst, meta)
        clear_failed(dst)
        written += 1
        outputs.append(dst)
        if reasons != ["new"]:
            redone[video] = reasons
    log.info("%s: %d written, %d up to date, %d failed -> %s%s", what, written, skipped, len(failures), out_dir,
             f"; {provenance.summarise(redone)}" if redone else "")
    if failures:
        raise KeypointImportError(f"{len(failures)} of {len(files)} {files_name} failed (their previous tables, if any, "
                                  f"moved to <video>{STALE_SUFFIX}; see <video>{FAILED_SUFFIX} in {out_dir}):\n"
                                  + "\n".join(failures))
    return outputs
