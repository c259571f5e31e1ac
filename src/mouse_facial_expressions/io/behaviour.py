"""Body keypoints -> one canonical body table per processed video (``mfe behaviour import``).

DeepLabCut or SLEAP body-part files of the processed videos (``paths.body_dlc``, named like
the face ones: ``<video>DLC_<scorer>.h5|.csv``) become ``behaviour/<video>.parquet``
(``paths.behaviour``): a canonical keypoint table (:mod:`io.keypoints`) whose landmarks are
the keys of ``behaviour.bodyparts`` (default ``nose, left_ear, right_ear, body_centre,
tail_base``), then the file's other bodyparts. The parquet metadata (key ``mfe.keypoints``,
:func:`~mouse_facial_expressions.io.keypoints.canonical_meta`) holds ``fps`` and
``n_video_frames`` of the processed video, ``source`` and the ``provenance`` record (pose
file and video fingerprints, mapping, individual): a rerun skips fresh tables.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from difflib import get_close_matches
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions import provenance
from mouse_facial_expressions.io.dlc import Pose
from mouse_facial_expressions.io.keypoints import (
    POSE_SUFFIXES,
    canonical_meta,
    check_mapping,
    find_pose_files,
    load_canonical,
    read_pose,
    to_canonical,
    write_canonical,
)
from mouse_facial_expressions.io.pose_import import import_pose_tables, import_settings
from mouse_facial_expressions.io.video import count_frames, probe

log = logging.getLogger(__name__)


def behaviour_path(cfg, video: str) -> Path:
    """``behaviour/<video>.parquet`` of a project."""
    return cfg.path("behaviour") / f"{video}.parquet"


def load_behaviour(path: str | Path) -> tuple[pd.DataFrame, float]:
    """A body table and the frame rate of its video (from the table's metadata).

    Raises:
        FileNotFoundError: no such table (the message says how to make one).
        ValueError: a table without a recorded frame rate (not written by ``mfe behaviour import``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such body table (run `mfe behaviour import`)")
    fps = canonical_meta(path).get("fps")
    if not fps or fps <= 0:
        raise ValueError(f"{path}: no frame rate in the table's metadata (rerun `mfe behaviour import --overwrite`)")
    return load_canonical(path), float(fps)


def _missing_bodyparts(pose: Pose, mapping: dict[str, list[str]]) -> None:
    """Raise when a mapped bodypart is not in the file: what it has, and a mapping to copy."""
    missing = sorted({p for parts in mapping.values() for p in parts} - set(pose.bodyparts))
    if missing:
        have = pose.bodyparts
        example = "\n".join(f"      {lm}: [{(get_close_matches(lm, have, 1, 0.4) or ['<name in the file>'])[0]}]"
                            for lm in mapping)
        raise ValueError(
            f"{pose.source}: bodyparts {missing} not found (needed by behaviour.bodyparts); the file has "
            f"{have}. Map the body landmarks to your names in mfe.yaml, e.g.\n  behaviour:\n    bodyparts:\n{example}")


def _video_path(cfg, video: str) -> Path:
    """The processed video a body file belongs to (it gives the table its frame rate)."""
    path = cfg.path("processed_videos") / f"{video}.mp4"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such processed video, needed for the frame rate of the body table (run `mfe prepare`, "
            "or name the body file after its processed video: <video>DLC_<scorer>.h5)")
    return path


def _video_frames(path: Path) -> tuple[float, int]:
    """Frame rate and frame count of a video (decoded when the header lacks the count)."""
    info = probe(path)
    if info.fps <= 0:
        raise ValueError(f"{path}: the header gives no frame rate")
    return info.fps, info.n_frames or count_frames(path)


def _check_table(table: pd.DataFrame, src: Path, n_video: int, video_path: Path, mapped: list[str], cfg) -> None:
    """Frame count close to the video's, and some frame with a landmark above ``pcutoff``."""
    limit = cfg.extract.max_count_mismatch
    if abs(len(table) - n_video) > limit:
        raise ValueError(
            f"{src}: {len(table)} rows but {video_path.name} has {n_video} frames (difference "
            f"{abs(len(table) - n_video)} > extract.max_count_mismatch={limit}): is it the body file of this video?")
    lik = table[[f"{lm}_likelihood" for lm in mapped]].to_numpy(np.float64)
    if not (lik > cfg.behaviour.pcutoff).any():
        best = ", ".join(f"{lm} {np.nanmax(lik[:, j], initial=0.0):.2f}" for j, lm in enumerate(mapped))
        raise ValueError(
            f"{src}: no usable frames: no mapped landmark has likelihood > behaviour.pcutoff="
            f"{cfg.behaviour.pcutoff:g} in any of its {len(table)} rows (highest: {best})")


def _status(cfg, video: str, src: Path, mapping: dict, dst: Path, overwrite: bool) -> list[str]:
    """Why one body table must be (re)written (``[]``: fresh); its processed video must exist."""
    inputs = {"pose file": src, "video": _video_path(cfg, video)}
    if overwrite or not dst.is_file():
        return ["overwrite" if dst.is_file() else "new"]
    try:
        return provenance.changes(canonical_meta(dst).get("provenance"), inputs,
                                  import_settings(mapping, cfg.behaviour.individual))
    except Exception as err:  # unreadable/corrupt output: redo it
        return [f"unreadable ({err})"]


def _body_table(cfg, video: str, src: Path, mapping: dict) -> tuple[pd.DataFrame, dict]:
    """One body table and its metadata (fps, frame count, provenance), checked against its video."""
    individual = cfg.behaviour.individual
    video_path = _video_path(cfg, video)
    inputs = {"pose file": src, "video": video_path}
    made_from = provenance.record(inputs, import_settings(mapping, individual))  # fingerprinted before reading
    pose = read_pose(src, individual)
    _missing_bodyparts(pose, mapping)
    table = to_canonical(pose, mapping)
    fps, n_video = _video_frames(video_path)
    _check_table(table, src, n_video, video_path, list(mapping), cfg)
    return table, {"provenance": made_from, "source": str(src.resolve()), "fps": fps, "n_video_frames": n_video}


def import_behaviour(cfg, sources: Sequence[str | Path] | None = None, overwrite: bool = False) -> list[Path]:
    """Write ``behaviour/<video>.parquet`` for every body pose file in ``sources``.

    The loop is :func:`~mouse_facial_expressions.io.pose_import.import_pose_tables`, as for the
    face keypoints: a video that fails moves its previous table to ``<video>.parquet.stale``
    (it was made from another pose file) and ``<video>.import-failed.json`` says why.

    Args:
        cfg: the project :class:`~mouse_facial_expressions.config.Config` (``behaviour.bodyparts``,
            ``behaviour.individual``, ``behaviour.pcutoff``, ``extract.max_count_mismatch``, folders).
        sources: DLC ``.h5``/``.csv`` or SLEAP files, or folders of them (default ``paths.body_dlc``).
        overwrite: rewrite tables that are up to date.

    Returns:
        The body tables of all videos found (written now or already up to date).

    Raises:
        FileNotFoundError: a source is missing or holds no pose file.
        ValueError: two files for one video (before anything is written), or an empty mapping.
        KeypointImportError: after the other files are done, listing each file that failed and
            why (processed video missing, a mapped bodypart absent, a row count off by more than
            ``extract.max_count_mismatch``, no frame above ``pcutoff``, an unreadable file).
    """
    sources = list(sources) if sources else [cfg.path("body_dlc")]
    mapping = check_mapping(cfg.behaviour.bodyparts)
    files = find_pose_files(sources)
    if not files:
        raise FileNotFoundError(f"no body pose files ({', '.join(POSE_SUFFIXES)}) in {', '.join(map(str, sources))}")
    return import_pose_tables(
        files, lambda video: behaviour_path(cfg, video),
        lambda video, src, dst: _status(cfg, video, src, mapping, dst, overwrite),
        lambda video, src: _body_table(cfg, video, src, mapping), write_canonical,
        what="behaviour", files_name="body pose files", name_by_video=True)
