"""Contact sheet of a synthetic cohort: frames with their DLC keypoints, for both labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mouse_facial_expressions.config import load_config
from mouse_facial_expressions.io.atomic import write_bytes
from mouse_facial_expressions.io.dlc import read_dlc_table
from mouse_facial_expressions.io.video import read_frames

#: BGR colour per keypoint (left side red-ish, right side green-ish, nose yellow).
COLOURS = {"nose": (0, 220, 255), "left_eye": (60, 60, 255), "left_ear": (180, 80, 255),
           "right_eye": (60, 220, 60), "right_ear": (220, 220, 60)}


def _pick(truth: pd.DataFrame, label: int, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` clean side-portrait frames with this label, from as many animals as possible."""
    ok = truth[(truth.label_true == label) & truth.visible & ~truth.occluded & ~truth.blurred]
    if ok.empty:
        return ok
    rows = []
    animals = list(ok.animal.unique())
    rng.shuffle(animals)
    for k in range(n):
        pool = ok[ok.animal == animals[k % len(animals)]]
        rows.append(pool.iloc[int(rng.integers(len(pool)))])
    return pd.DataFrame(rows)


def _dlc(project: Path, dlc_dir: Path, video: str) -> pd.DataFrame:
    files = sorted(dlc_dir.glob(f"{video}DLC*.h5"))
    if not files:
        raise FileNotFoundError(f"{dlc_dir}: no DLC file for {video}")
    return read_dlc_table(files[0]).droplevel("scorer", axis=1)  # never pd.read_hdf: it unpickles


def _tile(frame: np.ndarray, kp: pd.Series, row: pd.Series, crop: int, zoom: int) -> np.ndarray:
    """Full frame with keypoints, and beside it the face cut-out enlarged."""
    img = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    h, w = frame.shape
    seen = [(name, colour) for name, colour in COLOURS.items() if kp[(name, "likelihood")] > 0.6]
    for name, colour in seen:
        cv2.circle(img, (int(round(kp[(name, "x")])), int(round(kp[(name, "y")]))), 3, colour, -1, cv2.LINE_AA)
    side = "right" if row.side == "right" else "left"
    pts = np.array([[kp[(n, "x")], kp[(n, "y")]] for n in ("nose", f"{side}_eye", f"{side}_ear")])
    cx, cy = pts.mean(0)
    x0 = int(np.clip(cx - crop / 2, 0, max(0, w - crop)))
    y0 = int(np.clip(cy - crop / 2, 0, max(0, h - crop)))
    face = cv2.resize(cv2.cvtColor(frame[y0:y0 + crop, x0:x0 + crop], cv2.COLOR_GRAY2BGR), None,
                      fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    for name, colour in seen:  # small rings, so the face stays visible under them
        p = (int(round((kp[(name, "x")] - x0) * zoom)), int(round((kp[(name, "y")] - y0) * zoom)))
        cv2.circle(face, p, 2 * zoom + 1, colour, 1, cv2.LINE_AA)
    pad = np.full((h, face.shape[1], 3), 255, np.uint8)
    pad[: min(h, face.shape[0]), :] = face[: min(h, face.shape[0])]
    tile = np.hstack([img, pad])
    text = f"{row.animal} rec{row.recording} f{row.frame} label={row.label_true} I={row.intensity:.2f}"
    cv2.putText(tile, text, (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 200), 1, cv2.LINE_AA)
    return cv2.copyMakeBorder(tile, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))


def contact_sheet(project: str | Path, out_png: str | Path, n_per_class: int = 3, seed: int = 0) -> Path:
    """Write a PNG: rows of frames with label 0 (top) and label 1 (bottom), keypoints drawn.

    Each tile shows the raw frame with the DLC keypoints whose likelihood exceeds 0.6 and the
    face cut-out (``extract.crop_size``) enlarged. Returns the PNG path.
    """
    project = Path(project)
    cfg = load_config(project)
    truth = pd.read_parquet(project / "truth" / "truth.parquet")
    rng = np.random.default_rng(seed)
    crop = cfg.extract.crop_size
    zoom = 2
    rows = []
    for label in (0, 1):
        picked = _pick(truth, label, n_per_class, rng)
        tiles = []
        for _, row in picked.iterrows():
            frame = read_frames(cfg.path("raw_videos") / row.raw_video, [int(row.raw_frame)])[int(row.raw_frame)]
            kp = _dlc(project, cfg.path("dlc"), row.video).iloc[int(row.frame)]
            tiles.append(_tile(frame, kp, row, crop, zoom))
        if tiles:
            rows.append(np.hstack(tiles))
    if not rows:
        raise ValueError(f"{project}: no clean side-portrait frames to show")
    width = max(r.shape[1] for r in rows)
    rows = [cv2.copyMakeBorder(r, 0, 0, 0, width - r.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
            for r in rows]
    sheet = np.vstack(rows)
    ok, png = cv2.imencode(".png", sheet)
    if not ok:
        raise OSError(f"{out_png}: could not write the PNG")
    return write_bytes(out_png, png.tobytes())
