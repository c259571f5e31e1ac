"""Keypoints of still images (``mfe predict --images``): read a DeepLabCut hand-label file or a
table with an ``image`` column, and match its rows to the image files.

Moved out of :mod:`inference.images` (which re-exports every name) to keep modules small.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.io.keypoints import read_pose, to_canonical


def label_name(label) -> str:
    """The file name in a keypoint row label (``labeled-data/v/img3.png`` -> ``img3.png``)."""
    return str(label).replace("\\", "/").rsplit("/", 1)[-1]


def keypoint_file(path: str | Path) -> Path:
    """``path``, or for a folder (a DeepLabCut labeled-data folder) its one
    ``CollectedData_<scorer>`` file (``.h5`` before ``.csv``)."""
    folder = Path(path)
    if not folder.is_dir():
        return folder
    for suffix in (".h5", ".csv"):
        found = sorted(folder.glob(f"CollectedData_*{suffix}"))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"{folder}: several label files ({', '.join(p.name for p in found)}); pass the one "
                             "to use as --keypoints")
    raise FileNotFoundError(f"{folder}: no CollectedData_<scorer>.h5|.csv; pass the keypoint file itself")


def _is_dlc_csv(path: Path) -> bool:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = next(csv.reader(fh), [""])
    return bool(first) and first[0].strip() == "scorer"


def _canonical_images(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``image`` + landmark triplets from a user table with ``image`` and ``<L>_x, <L>_y[, <L>_likelihood]``."""
    if "image" not in df.columns:
        raise ValueError(f"{path}: no 'image' column; a keypoint table for images has an image column (the file "
                         "name) and <landmark>_x, <landmark>_y[, <landmark>_likelihood] columns, or is a DeepLabCut "
                         "CollectedData file")
    names = [c[:-2] for c in df.columns if c.endswith("_x") and f"{c[:-2]}_y" in df.columns]
    if not names:
        raise ValueError(f"{path}: no <landmark>_x, <landmark>_y column pairs (columns: {list(df.columns)})")
    out = pd.DataFrame({"image": df["image"].astype(str).map(label_name)})
    for n in names:
        x = pd.to_numeric(df[f"{n}_x"], errors="coerce").to_numpy(np.float64)
        y = pd.to_numeric(df[f"{n}_y"], errors="coerce").to_numpy(np.float64)
        given = np.isfinite(x) & np.isfinite(y)
        lik = (pd.to_numeric(df[f"{n}_likelihood"], errors="coerce").to_numpy(np.float64)
               if f"{n}_likelihood" in df.columns else np.ones(len(df)))
        out[f"{n}_x"], out[f"{n}_y"] = np.where(given, x, np.nan), np.where(given, y, np.nan)
        out[f"{n}_likelihood"] = np.where(given, lik, np.nan)
    return out.reset_index(drop=True)


def read_image_keypoints(path: str | Path, cfg: Config | None = None, individual: str | None = None) -> pd.DataFrame:
    """The keypoints of still images as one table: ``image`` (the file name each row labels) and
    ``<L>_x, <L>_y, <L>_likelihood`` per landmark (float64), row ``i`` = data row ``i`` of the file.

    Args:
        path: a DeepLabCut hand-label file (``CollectedData_<scorer>.h5|.csv``; its bodyparts are
            mapped with ``cfg.keypoints.bodyparts``; no likelihood: 1.0 where a point is
            labelled, NaN where it was left empty), or a ``.csv`` / ``.parquet`` table with an
            ``image`` column (see the module docstring).
        cfg: project config (the bodyparts mapping; default :class:`Config` defaults).
        individual: multi-animal DeepLabCut files: the animal to read (default
            ``cfg.keypoints.individual``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unreadable file, bodyparts the mapping needs but the file lacks, or a
            DeepLabCut file whose rows are video frames (analysis output), not images.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such keypoint file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _canonical_images(pd.read_parquet(path), path)
    if suffix == ".csv" and not _is_dlc_csv(path):
        return _canonical_images(pd.read_csv(path), path)
    cfg = cfg or Config()
    pose = read_pose(path, individual if individual is not None else cfg.keypoints.individual)
    if pd.api.types.is_integer_dtype(pose.data.index.dtype):
        raise ValueError(f"{path}: its rows are video frames (DeepLabCut/SLEAP analysis output), not images; give the "
                         "CollectedData_<scorer> file of the images' labeled-data folder, or a table with an image column")
    names = [label_name(label) for label in pose.data.index]
    by_position = dataclasses.replace(pose, data=pose.data.set_axis(pd.RangeIndex(len(pose.data)), axis=0))
    table = to_canonical(by_position, cfg.keypoints.bodyparts).drop(columns="frame")  # rows keep their order
    table.insert(0, "image", names)
    return table


def match_keypoints(images: list[Path], table: pd.DataFrame, where: str | Path) -> tuple[dict[Path, int | str], list[str]]:
    """Which keypoint row labels each image: by file name, else by stem.

    Returns:
        ``({image: row index, or the reason it has none}, warnings)``: an image without a row,
        or labelled by several rows, gets a message naming it, the file and the rows; rows that
        label none of the images are one warning (naming their rows).
    """
    by_name: dict[str, list[int]] = {}
    by_stem: dict[str, list[int]] = {}
    for i, name in enumerate(table["image"].astype(str)):
        by_name.setdefault(name, []).append(i)
        by_stem.setdefault(PurePosixPath(name).stem, []).append(i)
    out: dict[Path, int | str] = {}
    used: set[int] = set()
    for img in images:
        rows = by_name.get(img.name) or by_stem.get(img.stem) or []
        used.update(rows)
        if not rows:
            out[img] = f"{img.name}: no keypoints for this image in {where} (rows are matched by file name)"
        elif len(rows) > 1:
            out[img] = (f"{img.name}: rows {', '.join(map(str, rows))} of {where} all label this image; keep one "
                        "(data rows counted from 0)")
        else:
            out[img] = rows[0]
    unused = [i for i in range(len(table)) if i not in used]
    warnings = []
    if unused:
        listed = ", ".join(f"row {i} ({table['image'].iloc[i]})" for i in unused[:5])
        warnings.append(f"{where}: {len(unused)} keypoint row(s) label no image given: {listed}"
                        f"{' ...' if len(unused) > 5 else ''}; not scored")
    return out, warnings
