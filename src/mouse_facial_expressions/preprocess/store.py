"""The frame store written by ``mfe extract`` (see docs/ARCHITECTURE.md, "Frame store").

Per video ``<video>``, inside ``frames_dir``:

- ``<video>.npy``: uint8 ``(N, S, S)`` aligned grey crops, memory-mappable;
- ``<video>/frameNNNNN.png`` (optional, ``--format png``): the same crops as PNGs, the
  original layout, ``NNNNN`` = frame of the processed video;
- ``<video>.parquet``: one row per crop (video, row, frame, time, side, sharpness,
  intensity, min_likelihood, run, eye/ear/nose crop coordinates, NaN where the alignment has no
  such landmark; then optionally axis_px, the face size in source pixels, the crop
  coordinates of the other landmarks and the quality flags ``flag_off_frame``,
  ``flag_low_likelihood``, ``flag_geometry``: :mod:`preprocess.quality`). Written last: its presence
  marks the video complete. Its schema metadata carries the video's fps and the settings.

Every file is written under a temporary name beside the old one and renamed when all are
written (PNG folder, then ``.npy``, then ``.parquet``), so a failed or killed run leaves the
previous outputs in place, plus at most temporary files (cleaned by :func:`clean_partial`).
The ``.parquet`` records the fingerprint of its ``.npy``: a ``.npy`` renamed without its
``.parquet`` (a run killed between the two renames) no longer matches it, and the video is
incomplete and redone. The parquet metadata also holds the provenance record of the video
(:mod:`~mouse_facial_expressions.provenance`: the keypoint table, the processed video and
every extract setting). ``store.json`` is rebuilt from the complete videos; it records the
store-wide settings (:data:`STORE_SETTINGS`, e.g. ``alignment`` and ``normalize``, the
intensity normalisation of the crops: :func:`normalization_of`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mouse_facial_expressions.io.atomic import atomic_path, write_json
from mouse_facial_expressions.preprocess.quality import FLAG_COLUMNS
from mouse_facial_expressions.provenance import fingerprint, same_file

STORE_JSON = "store.json"
META_KEY = b"mfe"

#: Index columns in order (docs/ARCHITECTURE.md).
INDEX_COLUMNS = [
    "video", "row", "frame", "time", "side", "sharpness", "intensity", "min_likelihood", "run",
    "eye_x", "eye_y", "ear_x", "ear_y", "nose_x", "nose_y",
]
#: Optional index columns after :data:`INDEX_COLUMNS`: the face size, the crop coordinates
#: (``<name>_x``, ``<name>_y``) of other alignment landmarks and of extra landmarks (whiskers, mouth),
#: and the landmark-quality flags (bool; absent in stores written before them: unflagged).
OPTIONAL_COLUMNS = ("axis_px", *FLAG_COLUMNS)


def index_columns(index: pd.DataFrame) -> list[str]:
    """:data:`INDEX_COLUMNS`, then the optional columns ``index`` has, in its order."""
    extra = [c for c in index.columns if c not in INDEX_COLUMNS
             and (c in OPTIONAL_COLUMNS or c.endswith(("_x", "_y")))]
    return INDEX_COLUMNS + extra


#: Settings that must agree across the videos of one store.
STORE_SETTINGS = ("out_size", "crop_size", "policy", "target_fps", "alignment", "normalize")


def npy_path(frames_dir: str | Path, video: str) -> Path:
    return Path(frames_dir) / f"{video}.npy"


def index_path(frames_dir: str | Path, video: str) -> Path:
    return Path(frames_dir) / f"{video}.parquet"


def png_dir(frames_dir: str | Path, video: str) -> Path:
    return Path(frames_dir) / video


def is_complete(frames_dir: str | Path, video: str) -> bool:
    """A video is complete when its ``.parquet`` (written last) and ``.npy`` both exist and the
    ``.npy`` is the one the ``.parquet`` records."""
    pq_file, npy = index_path(frames_dir, video), npy_path(frames_dir, video)
    if not (pq_file.is_file() and npy.is_file()):
        return False
    try:
        recorded = video_meta(frames_dir, video).get("npy")
    except Exception:  # an unreadable parquet: redo the video
        return False
    return recorded is None or same_file(recorded, npy)  # stores written before the record: as before


def clean_partial(frames_dir: str | Path, video: str, all_outputs: bool = False) -> list[Path]:
    """Remove temporary files of ``video`` (and an orphan ``.npy``/PNG folder without its parquet).

    Args:
        all_outputs: also remove complete outputs (``--overwrite``).

    Returns:
        The paths removed.
    """
    d = Path(frames_dir)
    removed: list[Path] = []
    if not d.is_dir():
        return removed
    prefixes = (f".{video}.tmp-", f".{video}.npy.tmp-", f".{video}.parquet.tmp-", f".{video}.png-tmp-", f".{video}.old-")
    for p in d.iterdir():
        if p.name.startswith(prefixes):
            removed.append(p)
    if all_outputs or not index_path(d, video).is_file():
        removed += [p for p in (npy_path(d, video), png_dir(d, video)) if p.exists()]
    if all_outputs and index_path(d, video).is_file():
        removed.append(index_path(d, video))
    for p in removed:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return removed


def write_video_frames(
    frames_dir: str | Path,
    video: str,
    crops: np.ndarray,
    index: pd.DataFrame,
    meta: dict,
    png: bool = False,
) -> None:
    """Write one video's crops and index atomically (the ``.parquet`` is renamed last).

    Args:
        frames_dir: the store folder (created if needed).
        video: video name (file stem).
        crops: uint8 ``(N, S, S)``.
        index: ``N`` rows with :data:`INDEX_COLUMNS` (``row`` must be ``0..N-1``); optional
            columns (:func:`index_columns`) are kept, others dropped.
        meta: JSON-able settings kept in the parquet metadata (``fps``, ``out_size``, ...).
        png: also write ``<video>/frameNNNNN.png``.
    """
    d = Path(frames_dir)
    d.mkdir(parents=True, exist_ok=True)
    crops = np.ascontiguousarray(crops, dtype=np.uint8)
    if crops.ndim != 3 or len(crops) != len(index):
        raise ValueError(f"{video}: {len(index)} index rows for crops of shape {crops.shape}")
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise ValueError(f"{video}: index lacks columns {missing}")
    if not np.array_equal(index["row"].to_numpy(), np.arange(len(index))):
        raise ValueError(f"{video}: index 'row' must be 0..N-1")

    npy, pq_path = npy_path(d, video), index_path(d, video)
    # Renames in order PNGs, .npy, .parquet, each only once everything is written.
    with atomic_path(pq_path) as tmp_pq:
        with atomic_path(npy) as tmp_npy:
            with open(tmp_npy, "wb") as fh:
                np.save(fh, crops)
            if png:
                with atomic_path(png_dir(d, video)) as tmp_dir:
                    tmp_dir.mkdir()
                    for crop, frame in zip(crops, index["frame"].to_numpy()):
                        if not cv2.imwrite(str(tmp_dir / f"frame{int(frame):05d}.png"), crop):
                            raise OSError(f"{tmp_dir}: cannot write PNG for frame {frame}")
            meta = {**meta, "npy": {**fingerprint(tmp_npy), "name": npy.name}}  # the rename keeps size and mtime
            table = pa.Table.from_pandas(index[index_columns(index)].reset_index(drop=True), preserve_index=False)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta, default=str).encode()})
            pq.write_table(table, tmp_pq)


def video_meta(frames_dir: str | Path, video: str) -> dict:
    """Settings stored with a complete video (``fps``, ``out_size``, ``crop_size``, ...)."""
    md = pq.read_schema(index_path(frames_dir, video)).metadata or {}
    return json.loads(md.get(META_KEY, b"{}"))


def complete_videos(frames_dir: str | Path) -> list[str]:
    """Sorted names of the complete videos in a store."""
    d = Path(frames_dir)
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.parquet")
                  if not p.name.startswith(".") and npy_path(d, p.stem).is_file())


def read_store_json(frames_dir: str | Path) -> dict | None:
    p = Path(frames_dir) / STORE_JSON
    return json.loads(p.read_text()) if p.is_file() else None


def normalization_of(frames_dir: str | Path) -> str:
    """The ``extract.normalize`` a store's crops were written with (``store.json`` ``normalize``):
    ``none`` for stores written before the setting existed, or with no ``store.json``."""
    data = read_store_json(frames_dir) or {}
    return str(data.get("normalize", "none"))


def write_store_json(frames_dir: str | Path, settings: dict) -> dict:
    """Rebuild ``store.json`` from ``settings`` and the fps of every complete video (atomic)."""
    d = Path(frames_dir)
    d.mkdir(parents=True, exist_ok=True)
    fps = {v: video_meta(d, v).get("fps") for v in complete_videos(d)}
    data = {k: settings[k] for k in STORE_SETTINGS if k in settings}
    data.update({k: v for k, v in settings.items() if k not in data and k != "fps"})
    data["fps"] = fps
    write_json(d / STORE_JSON, data)
    return data


def load_index(frames_dir: str | Path) -> pd.DataFrame:
    """The index of every complete video, concatenated (sorted by video, then row).

    Returns an empty frame with :data:`INDEX_COLUMNS` when the store holds no complete video.
    Videos written before the quality flags existed count as unflagged (False) when other
    videos of the store have them.

    Raises:
        FileNotFoundError: ``frames_dir`` does not exist.
    """
    d = Path(frames_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no frame store here (run `mfe extract` first)")
    parts = [pd.read_parquet(index_path(d, v)) for v in complete_videos(d)]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("video", "side") else float)
                             for c in INDEX_COLUMNS})
    index = pd.concat(parts, ignore_index=True)
    for c in FLAG_COLUMNS:
        if c in index.columns:
            index[c] = index[c].eq(True)  # missing (older videos) = unflagged
    return index


def open_frames(frames_dir: str | Path, video: str) -> np.ndarray:
    """Memory-mapped uint8 crops ``(N, S, S)`` of one video (read-only)."""
    p = npy_path(frames_dir, video)
    if not index_path(frames_dir, video).is_file():
        raise FileNotFoundError(f"{p}: not a complete video in the frame store (no {p.stem}.parquet)")
    return np.load(p, mmap_mode="r")
