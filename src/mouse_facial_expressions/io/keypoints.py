"""Canonical keypoint tables: user bodyparts -> landmarks, one parquet per video.

The canonical table (docs/ARCHITECTURE.md) has a column ``frame`` (int64, 0-based) and, for
each landmark ``L`` of the mapping ``cfg.keypoints.bodyparts`` (in its order), ``L_x, L_y,
L_likelihood`` (float64). By default the landmarks are ``nose, left_eye, left_ear,
right_eye, right_ear``; any other set works (its keys define it). A landmark mapped to
several bodyparts is their mean position, its likelihood the minimum of theirs, and NaN
when any of them is missing.

``import_keypoints`` turns a folder of DeepLabCut/SLEAP files into
``keypoints/canonical/<video>.parquet``, skipping outputs that are up to date. A file that
fails leaves no table to crop from: the previous ``<video>.parquet`` (made from an earlier pose
file) moves to ``<video>.parquet.stale`` and ``<video>.import-failed.json`` says why
(:func:`import_failure`; ``mfe extract`` refuses the video and ``mfe task make`` its old crops
until an import succeeds). A pose file older than its processed video is warned about
(:func:`pose_age_warning`): its keypoints may belong to an earlier cut of the video.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mouse_facial_expressions import provenance
from mouse_facial_expressions.io.atomic import atomic_path
from mouse_facial_expressions.io.dlc import Pose, PoseFileError, individuals_of, read_dlc, read_dlc_table
from mouse_facial_expressions.io.keypoint_status import import_failure, is_synthetic_project, pose_age_warning
from mouse_facial_expressions.io.pose_import import (KeypointImportError,  # noqa: F401 (re-exported)
                                                      import_pose_tables, import_settings)
from mouse_facial_expressions.io.sleap import is_sleap_analysis_h5, read_sleap, sleap_tracks

log = logging.getLogger(__name__)

#: Suffixes of pose files, by preference when one stem has several (DLC writes .h5 + .csv).
POSE_SUFFIXES = (".h5", ".slp", ".csv")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv")
#: Parquet schema-metadata key holding where a canonical table came from.
META_KEY = b"mfe.keypoints"
_SIDE_FILES = re.compile(r"_(skeleton|meta|full|assemblies)$")


# --------------------------------------------------------------------------- reading


def _read_h5(path: Path, individual: str | None) -> Pose:
    if is_sleap_analysis_h5(path):
        return read_sleap(path, individual)
    return read_dlc(path, individual)


_FORMATS = {".h5": _read_h5, ".hdf5": _read_h5, ".csv": read_dlc, ".slp": read_sleap}


def read_pose(path: str | Path, individual: str | None = None) -> Pose:
    """Read any supported pose file (DLC ``.h5``/``.csv``, SLEAP ``.slp``/analysis ``.h5``)."""
    path = Path(path)
    reader = _FORMATS.get(path.suffix.lower())
    if reader is None:
        raise PoseFileError(f"{path}: unknown pose file type (expected one of {sorted(_FORMATS)})")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return reader(path, individual)


def pose_individuals(path: str | Path) -> list[str]:
    """Individuals (DLC) or tracks (SLEAP) in a pose file; ``[]`` for single-animal files."""
    path = Path(path)
    if path.suffix.lower() == ".slp" or (path.suffix.lower() in (".h5", ".hdf5") and is_sleap_analysis_h5(path)):
        return sleap_tracks(path)
    return individuals_of(read_dlc_table(path))


def video_name(path: str | Path) -> str:
    """Name of the processed video a pose file belongs to, from the file name alone.

    - DLC analysis output ``<video>DLC_<scorer>[_filtered].h5`` -> ``<video>``;
    - DLC hand labels ``labeled-data/<video>/CollectedData_<name>.h5`` -> ``<video>``;
    - SLEAP ``<video>.mp4.predictions.slp`` / ``<labels>.000_<video>.analysis.h5`` -> ``<video>``;
    - anything else ``<video>.h5`` -> ``<video>``.
    """
    path = Path(path)
    name = path.name[: -len(path.suffix)] if path.suffix else path.name
    if name.startswith("CollectedData_"):
        return path.parent.name
    if "DLC_" in name:
        return name[: name.index("DLC_")]
    if name.endswith(".analysis"):
        name = name[: -len(".analysis")]
        m = re.match(r"^.*\.\d{3}_(.+)$", name)
        name = m.group(1) if m else name
    if name.endswith(".predictions"):
        name = name[: -len(".predictions")]
    for ext in VIDEO_SUFFIXES:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def find_pose_files(sources: Iterable[str | Path]) -> dict[str, Path]:
    """Pose files of each video in ``sources`` (files, or folders scanned non-recursively).

    Of files that differ only in suffix, ``.h5`` wins over ``.slp`` over ``.csv`` (DLC
    writes each table as both .h5 and .csv). Hidden and DLC side files (``_skeleton``,
    ``_meta``) are ignored.

    Raises:
        FileNotFoundError: a source does not exist.
        ValueError: two different files give the same video name (naming both).
    """
    by_stem: dict[Path, Path] = {}
    for src in sources:
        src = Path(src)
        if src.is_dir():
            files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in POSE_SUFFIXES)
            files = [p for p in files if not p.name.startswith(".") and not _SIDE_FILES.search(p.stem)]
        elif src.is_file():
            files = [src]
        else:
            raise FileNotFoundError(f"{src}: no such file or folder")
        for p in files:
            stem = p.with_suffix("")
            best = by_stem.get(stem)
            if best is None or _rank(p) < _rank(best):
                by_stem[stem] = p
    found: dict[str, Path] = {}
    clashes: list[str] = []
    for p in sorted(by_stem.values()):
        name = video_name(p)
        if name in found and found[name] != p:
            clashes.append(f"  video {name!r}: {found[name]} and {p}")
            continue
        found[name] = p
    if clashes:
        raise ValueError(
            "several pose files for the same video (pass the one to use as SRC, or move the other away):\n"
            + "\n".join(clashes)
        )
    return found


def _rank(path: Path) -> int:
    suffix = path.suffix.lower()
    return POSE_SUFFIXES.index(suffix) if suffix in POSE_SUFFIXES else len(POSE_SUFFIXES)


# --------------------------------------------------------------------------- canonical table


def check_mapping(mapping: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """A validated copy of a landmark -> bodyparts mapping (non-empty, no empty lists)."""
    if not mapping:
        raise ValueError("keypoints.bodyparts is empty: map at least one landmark to bodyparts")
    out: dict[str, list[str]] = {}
    for landmark, parts in mapping.items():
        parts = [parts] if isinstance(parts, str) else list(parts)
        if not parts:
            raise ValueError(f"keypoints.bodyparts: landmark {landmark!r} maps to no bodypart")
        out[str(landmark)] = [str(p) for p in parts]
    return out


def to_canonical(pose: Pose, mapping: Mapping[str, Sequence[str]], extras: bool = True) -> pd.DataFrame:
    """The canonical table of one pose: ``frame`` + ``L_x, L_y, L_likelihood`` per landmark.

    Args:
        pose: keypoints read by :func:`read_pose`.
        mapping: landmark -> the pose's bodypart names (averaged when several).
        extras: keep the bodyparts the mapping does not use as landmarks of their own (after
            the mapped ones).

    Raises:
        ValueError: bodyparts missing from the file (naming the file, the missing names and
            the names available), or a frame labelled twice (naming the frame).
    """
    mapping = check_mapping(mapping)
    available = pose.bodyparts
    used = {p for parts in mapping.values() for p in parts}
    missing = sorted(used - set(available))
    if missing:
        raise ValueError(
            f"{pose.source}: bodyparts {missing} not found (needed by keypoints.bodyparts); "
            f"the file has {available}. Map landmarks to your names in mfe.yaml: "
            f"keypoints.bodyparts: {{landmark: [bodypart, ...]}}"
        )
    if extras:
        mapping = {**mapping, **{b: [b] for b in available if b not in used and b not in mapping}}
    frames = pose.frames()
    order = np.argsort(frames, kind="stable")
    frames = frames[order]
    dup = frames[1:][frames[1:] == frames[:-1]]
    if dup.size:
        raise ValueError(f"{pose.source}: frame {int(dup[0])} appears more than once ({dup.size} duplicate rows)")
    cols: dict[str, np.ndarray] = {"frame": frames.astype(np.int64)}
    for landmark, parts in mapping.items():
        xyl = np.stack([pose.xyl(p)[order] for p in parts], axis=1)  # (F, P, 3)
        # plain mean/min: a missing (NaN) part makes the landmark NaN, as it should
        cols[f"{landmark}_x"] = xyl[..., 0].mean(axis=1)
        cols[f"{landmark}_y"] = xyl[..., 1].mean(axis=1)
        cols[f"{landmark}_likelihood"] = xyl[..., 2].min(axis=1)
    return pd.DataFrame(cols)


def landmark_names(df: pd.DataFrame) -> list[str]:
    """Landmarks of a canonical table, in column order."""
    return [c[: -len("_likelihood")] for c in df.columns if c.endswith("_likelihood")]


def validate_canonical(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """A canonical table with checked columns and dtypes; errors name ``where``."""
    if "frame" not in df.columns:
        raise ValueError(f"{where}: canonical keypoint table has no 'frame' column")
    names = landmark_names(df)
    expected = ["frame"] + [f"{n}_{c}" for n in names for c in ("x", "y", "likelihood")]
    if list(df.columns) != expected:
        raise ValueError(f"{where}: columns {list(df.columns)} are not frame + <L>_x, <L>_y, <L>_likelihood")
    df = df.astype({"frame": np.int64, **{c: np.float64 for c in expected[1:]}})
    if not df["frame"].is_monotonic_increasing or df["frame"].duplicated().any():
        raise ValueError(f"{where}: frames are not strictly increasing")
    return df


def write_canonical(df: pd.DataFrame, path: str | Path, meta: Mapping | None = None) -> Path:
    """Write a canonical table as parquet, atomically; ``meta`` goes into the file's metadata."""
    path = Path(path)
    df = validate_canonical(df.reset_index(drop=True), str(path))
    table = pa.Table.from_pandas(df, preserve_index=False)
    if meta is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta)})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def load_canonical(path: str | Path) -> pd.DataFrame:
    """Read a canonical keypoint table (validated: frame int64, landmark triplets float64)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such canonical keypoint table (run `mfe keypoints import`)")
    return validate_canonical(pd.read_parquet(path), str(path))


def canonical_meta(path: str | Path) -> dict:
    """Provenance stored by :func:`import_keypoints` (``{}`` when there is none)."""
    raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def landmark_array(df: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Landmarks as a float64 array ``(n_frames, len(names), 3)`` of x, y, likelihood.

    Raises:
        KeyError: a name that is not a landmark of the table (naming the ones it has).
    """
    have = landmark_names(df)
    unknown = [n for n in names if n not in have]
    if unknown:
        raise KeyError(f"landmarks {unknown} not in the keypoint table; it has {have}")
    cols = [f"{n}_{c}" for n in names for c in ("x", "y", "likelihood")]
    return df[cols].to_numpy(np.float64).reshape(len(df), len(names), 3)


# --------------------------------------------------------------------------- import


def import_status(out: Path, src: Path, mapping: dict, individual: str | None) -> list[str]:
    """Why ``out`` must be (re)imported from ``src``: ``[]`` when fresh (see :mod:`provenance`)."""
    if import_failure(out) is not None:
        return ["last import failed"]
    if not out.is_file():
        return ["new"]
    try:
        recorded = canonical_meta(out).get("provenance")
    except Exception as err:  # unreadable/corrupt output: redo it
        return [f"unreadable ({err})"]
    return provenance.changes(recorded, {"pose file": src}, import_settings(mapping, individual))


def _plan(cfg, sources, individual, out) -> tuple[Path, dict, str | None, dict[str, Path]]:
    sources = [cfg.path("dlc")] if not sources else list(sources)
    out_dir = Path(out) if out is not None else cfg.path("keypoints")
    individual = individual if individual is not None else cfg.keypoints.individual
    mapping = check_mapping(cfg.keypoints.bodyparts)
    files = find_pose_files(sources)
    if not files:
        raise FileNotFoundError(
            f"no pose files ({', '.join(POSE_SUFFIXES)}) in {', '.join(str(s) for s in sources)}"
        )
    return out_dir, mapping, individual, files


def describe_import(cfg, sources: Sequence[str | Path] | None = None, individual: str | None = None,
                    out: str | Path | None = None) -> str:
    """``mfe keypoints import --dry-run``: which tables are fresh and which would be (re)written, and why."""
    out_dir, mapping, individual, files = _plan(cfg, sources, individual, out)
    lines, todo = [], 0
    for video, src in sorted(files.items()):
        reasons = import_status(out_dir / f"{video}.parquet", src, mapping, individual)
        todo += bool(reasons)
        lines.append(f"  {'import' if reasons else 'skip  '} {video}: {', '.join(reasons) or 'fresh'} ({src.name})")
    return f"keypoints -> {out_dir}: {todo} to import, {len(files) - todo} fresh\n" + "\n".join(lines)


def import_keypoints(
    cfg,
    sources: Sequence[str | Path] | None = None,
    individual: str | None = None,
    out: str | Path | None = None,
    check: Callable[[pd.DataFrame, Path], None] | None = None,
) -> list[Path]:
    """Write ``<out>/<video>.parquet`` for every DLC/SLEAP file in ``sources``.

    The loop (skip fresh tables, collect failures, stale markers) is
    :func:`~mouse_facial_expressions.io.pose_import.import_pose_tables`.

    Args:
        cfg: the project :class:`~mouse_facial_expressions.config.Config` (mapping
            ``keypoints.bodyparts``, default ``keypoints.individual``, default folders).
        sources: files or folders (default ``cfg.path("dlc")``).
        individual: multi-animal files: which individual (default ``cfg.keypoints.individual``).
        out: output folder (default ``cfg.path("keypoints")``).
        check: called with each new table and its pose file before it is written; a
            ``ValueError`` it raises fails that file (``preprocess.alignment.import_check``:
            can the frames be aligned?).

    Returns:
        The canonical tables of all videos found (written now or already up to date).

    Raises:
        FileNotFoundError: a source is missing or holds no pose file.
        ValueError: two files for one video (before anything is written).
        KeypointImportError: after the other files are done, listing each file that failed.
    """
    out_dir, mapping, individual, files = _plan(cfg, sources, individual, out)
    videos_dir = None if is_synthetic_project(cfg) else cfg.path("processed_videos")

    def warn_if_old(video: str, src: Path) -> None:
        if videos_dir is not None and (old := pose_age_warning(src, videos_dir / f"{video}.mp4")):
            log.warning(old)

    def make(video: str, src: Path) -> tuple[pd.DataFrame, dict]:
        meta = {"provenance": provenance.record({"pose file": src}, import_settings(mapping, individual)),
                "source": str(src.resolve())}  # fingerprinted before reading
        table = to_canonical(read_pose(src, individual), mapping)
        if check is not None:
            check(table, src)
        return table, meta

    return import_pose_tables(
        files, lambda video: out_dir / f"{video}.parquet",
        lambda video, src, dst: import_status(dst, src, mapping, individual), make, write_canonical,
        what="keypoints", before=warn_if_old)
