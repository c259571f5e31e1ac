"""Still images in, aligned face crops out: the first half of ``mfe predict --images``.

Which files are images (:func:`list_images`), reading one as grey (:func:`read_grey`) and the
alignment, crop and per-image normalisation of each (:func:`crop_image`, :func:`crop_images`),
as :mod:`~mouse_facial_expressions.inference.images` describes. Apart from the scoring and
the output files of :mod:`~mouse_facial_expressions.inference.images` because it needs no model:
only the keypoints and the settings of the model's frame store.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from mouse_facial_expressions.inference.image_inputs import match_keypoints
from mouse_facial_expressions.preprocess import alignment as alignment_mod
from mouse_facial_expressions.preprocess import geometry
from mouse_facial_expressions.preprocess import normalize as norm
from mouse_facial_expressions.preprocess.extract import check_landmarks, frame_geometry
from mouse_facial_expressions.preprocess.quality import crop_quality

#: The logger of ``inference.images``, where these functions were: log lines keep their name.
log = logging.getLogger("mouse_facial_expressions.inference.images")

#: Image files a folder is scanned for (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class ImageError(ValueError):
    """One image cannot be scored; the message names the image (and its keypoint row)."""


# ----------------------------------------------------------------------------- inputs

def list_images(images: str | Path | list) -> list[Path]:
    """A folder's image files (:data:`IMAGE_SUFFIXES`, sorted, hidden files left out), or the
    given files in their order.

    Raises:
        FileNotFoundError: a folder without images, or a single path that does not exist.
        ValueError: two files with the same name (their keypoints and scores would be confused).
    """
    if isinstance(images, (str, Path)):
        p = Path(images)
        if p.is_dir():
            found = sorted(q for q in p.iterdir()
                           if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES and not q.name.startswith("."))
            if not found:
                raise FileNotFoundError(f"{p}: no images ({', '.join(IMAGE_SUFFIXES)})")
            return found
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such image or folder")
        paths = [p]
    else:
        paths = [Path(q) for q in images]
    seen: dict[str, Path] = {}
    for q in paths:
        if q.name in seen:
            raise ValueError(f"two images are named {q.name}: {seen[q.name]} and {q}; images are matched to keypoints "
                             "and written to the scores by file name, so score them in separate calls")
        seen[q.name] = q
    return paths


# ----------------------------------------------------------------------------- crops

def read_grey(path: str | Path) -> np.ndarray:
    """An image file as a grey ``(H, W)`` uint8 array (colour converted as OpenCV does).

    Raises:
        ImageError: no such file, or not an image OpenCV can decode.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path.name}: no such image ({path})")
    img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ImageError(f"{path.name}: cannot read the image (not a {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} "
                         "file, or damaged)")
    return img


def _unaligned_reason(kp_row: pd.DataFrame, settings: dict) -> str:
    """Why a one-row keypoint table cannot be aligned: which landmarks are missing."""
    align = alignment_mod.resolve(settings.get("alignment"))
    pcut = float(settings["pcutoff"])
    missing, seen = [], []
    for n in align.landmarks():
        x, y, p = (float(kp_row[f"{n}_{c}"].iloc[0]) for c in ("x", "y", "likelihood"))
        (seen if np.isfinite(x) and np.isfinite(y) and p > pcut else missing).append(n)
    need = (f"{', '.join(alignment_mod.role_name(r) for r in align.required)} of exactly one side"
            if align.per_frame_side else ", ".join(align.required))
    return (f"cannot be aligned with extract.alignment {align.name!r}, which needs {need}; not labelled or at/below "
            f"pcutoff {pcut:g}: {', '.join(missing) or 'none'}; seen: {', '.join(seen) or 'none'}")


def crop_image(image: np.ndarray, kp_row: pd.DataFrame, settings: dict) -> tuple[np.ndarray, dict]:
    """The aligned face crop of one grey image, as ``mfe extract`` crops a video frame.

    Args:
        image: ``(H, W)`` uint8.
        kp_row: one-row canonical keypoint table (``<L>_x, <L>_y, <L>_likelihood``).
        settings: ``crop_size``, ``out_size``, ``pcutoff``, ``alignment`` (as
            :func:`inference.predict.model_settings` gives them).

    Returns:
        ``(crop (S, S) uint8 before normalisation, info)``: ``info`` has ``side`` (left/right),
        ``min_likelihood``, ``sharpness``, ``intensity`` and the crop-space landmarks
        (``<role>_x``, ``<role>_y``).

    Raises:
        ImageError: the keypoints cannot align the face (the message says which landmarks).
    """
    size = int(settings["out_size"])
    geo = frame_geometry(kp_row, settings["pcutoff"], settings["crop_size"], size, settings.get("alignment"))
    if not geo["usable"][0]:
        raise ImageError(_unaligned_reason(kp_row, settings))
    crop = geometry.warp_crop(image, geo["matrix"][0], size)
    sharp, inten = crop_quality(crop)
    info = {"side": geometry.SIDE_NAMES[int(geo["side"][0])], "min_likelihood": float(geo["min_likelihood"][0]),
            "sharpness": sharp, "intensity": inten, "axis_px": float(geo["axis_px"][0])}
    for role in ("eye", "ear", "nose"):
        pt = geo[role][0] if role in geo else (np.nan, np.nan)
        info[f"{role}_x"], info[f"{role}_y"] = float(pt[0]), float(pt[1])
    return crop, info


def crop_images(paths: list[Path], table: pd.DataFrame, settings: dict, where: str | Path,
                progress: bool | None = None) -> tuple[np.ndarray, list[dict], list[str]]:
    """Align, crop and normalise every image; one bad image fails alone.

    Args:
        paths: the image files.
        table: :func:`read_image_keypoints` of ``where``.
        settings: ``crop_size``, ``out_size``, ``pcutoff``, ``alignment``, ``normalize`` and
            the quality thresholds ``min_sharpness`` / ``min_likelihood`` (warnings only).
        where: the keypoint file, named in messages.

    Returns:
        ``(crops, rows, warnings)``: ``crops`` ``(N_ok, S, S)`` uint8, normalised, of the images
        that could be cropped, in ``paths`` order; ``rows`` one dict per image in ``paths``
        order: ``image, status ("done"|"failed"), error, crop`` (its index into ``crops``, -1 when
        failed) and :func:`crop_image`'s info.

    Raises:
        ValueError: the keypoint table lacks a landmark the alignment needs (every image would fail).
    """
    check_landmarks(table, settings.get("alignment"), where)
    method = norm.check_method(settings.get("normalize"))
    matched, warnings = match_keypoints(paths, table, where)
    crops: list[np.ndarray] = []
    rows: list[dict] = []
    for img in tqdm(paths, desc="crop", unit="image", disable=None if progress is None else not progress):
        row = {"image": img.name, "status": "failed", "error": None, "crop": -1}
        try:
            found = matched[img]
            if isinstance(found, str):
                raise ImageError(found)
            image = read_grey(img)
            try:
                crop, info = crop_image(image, table.iloc[[found]], settings)
            except ImageError as err:
                raise ImageError(f"{img.name} (row {found} of {where}): {err}") from None
            low = []
            if info["sharpness"] < settings.get("min_sharpness", 0):
                low.append(f"sharpness {info['sharpness']:.1f} < extract.min_sharpness {settings['min_sharpness']:g}")
            if info["min_likelihood"] < settings.get("min_likelihood", 0):
                low.append(f"keypoint likelihood {info['min_likelihood']:.2f} < extract.min_likelihood "
                           f"{settings['min_likelihood']:g}")
            if low:
                warnings.append(f"{img.name}: {'; '.join(low)} of the model's frame store: a video frame like this "
                                "would not have been kept; scored anyway")
            crops.append(norm.normalize_video(crop[None], method)[0])  # per image: see the module docstring
            row.update(info, status="done", crop=len(crops) - 1)
        except ImageError as err:
            log.error("%s", err)
            row["error"] = str(err)
        rows.append(row)
    size = int(settings["out_size"])
    return (np.stack(crops) if crops else np.zeros((0, size, size), np.uint8)), rows, warnings
