"""Contact sheet of frame-store crops with their landmarks: a picture to check extraction by eye.

Each tile is one stored crop, enlarged, with the crop-space landmarks drawn (eye green,
ear blue, nose red, a line eye -> ear that should be horizontal) and a caption
``<video> f<frame> <L|R>`` (R = a right-facing frame, mirrored). Crops are taken evenly
over the videos and over time within each.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mouse_facial_expressions.io.atomic import atomic_path
from mouse_facial_expressions.preprocess.store import load_index, open_frames

#: BGR colours of the landmarks.
COLOURS = {"eye": (60, 200, 60), "ear": (230, 120, 40), "nose": (40, 40, 230)}


def pick_rows(index: pd.DataFrame, n: int) -> pd.DataFrame:
    """About ``n`` rows spread evenly over the videos, then over time within each video."""
    if index.empty or n <= 0:
        return index.iloc[:0]
    videos = sorted(index["video"].unique())
    per = max(1, int(np.ceil(n / len(videos))))
    parts = []
    for v in videos:
        rows = index[index["video"] == v].sort_values("row")
        take = np.unique(np.linspace(0, len(rows) - 1, min(per, len(rows))).round().astype(int))
        parts.append(rows.iloc[take])
    return pd.concat(parts).head(n)


def draw_tile(crop: np.ndarray, row: pd.Series, tile: int) -> np.ndarray:
    """One enlarged BGR tile with landmarks and a caption."""
    s = crop.shape[0]
    f = tile / s
    img = cv2.cvtColor(cv2.resize(np.asarray(crop), (tile, tile), interpolation=cv2.INTER_NEAREST
                                  if f >= 2 else cv2.INTER_LINEAR), cv2.COLOR_GRAY2BGR)

    def pt(role):
        x, y = row[f"{role}_x"], row[f"{role}_y"]
        if not (np.isfinite(x) and np.isfinite(y)):
            return None
        return int(round((x + 0.5) * f - 0.5)), int(round((y + 0.5) * f - 0.5))

    eye, ear = pt("eye"), pt("ear")
    if eye and ear:
        cv2.line(img, eye, ear, (200, 200, 200), 1, cv2.LINE_AA)
    for role, colour in COLOURS.items():
        p = pt(role)
        if p:
            cv2.circle(img, p, max(2, tile // 50), colour, -1, cv2.LINE_AA)
    c = (tile - 1) // 2
    cv2.drawMarker(img, (c, c), (0, 200, 230), cv2.MARKER_CROSS, max(6, tile // 16), 1)
    video = str(row["video"])
    parts = video.split("_")
    if len(parts) > 2 and parts[1].startswith("rec"):  # <animal>_rec<k>_<label>: rec<k> says it
        video = "_".join(parts[:2])
    caption = f"{video} f{int(row['frame'])} {'R mirrored' if row['side'] == 'right' else 'L'}"
    cv2.rectangle(img, (0, tile - 14), (tile, tile), (0, 0, 0), -1)
    cv2.putText(img, caption[: max(8, tile // 6)], (2, tile - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.33,
                (255, 255, 255), 1, cv2.LINE_AA)
    return img


def contact_sheet(frames_dir: str | Path, out_png: str | Path, n: int = 24, cols: int = 6,
                  tile: int = 160) -> Path:
    """Write a contact sheet PNG of ``n`` stored crops with landmarks; returns its path.

    Raises:
        ValueError: the frame store holds no crops.
    """
    index = load_index(frames_dir)
    rows = pick_rows(index, n)
    if rows.empty:
        raise ValueError(f"{frames_dir}: the frame store holds no crops to preview")
    tiles = []
    cache: dict[str, np.ndarray] = {}
    for _, r in rows.iterrows():
        arr = cache.setdefault(r["video"], open_frames(frames_dir, r["video"]))
        tiles.append(draw_tile(arr[int(r["row"])], r, tile))
    return write_grid(tiles, out_png, cols)


def crop_sheet(crops: np.ndarray, index: pd.DataFrame, out_png: str | Path, n: int = 24, cols: int = 6,
               tile: int = 160) -> Path:
    """Contact sheet of crops held in memory (``mfe predict --preview``); returns its path.

    Args:
        crops: ``(N, S, S)`` uint8 crops.
        index: the rows to choose from, with the frame-store index columns (``row`` indexes
            ``crops``), e.g. from :func:`preprocess.extract.crop_video`.

    Raises:
        ValueError: ``index`` is empty.
    """
    rows = pick_rows(index, n)
    if rows.empty:
        raise ValueError(f"{out_png}: no crops to preview")
    return write_grid([draw_tile(crops[int(r["row"])], r, tile) for _, r in rows.iterrows()], out_png, cols)


def write_grid(tiles: list[np.ndarray], out_png: str | Path, cols: int) -> Path:
    """Tiles (equal-sized BGR images) in rows of ``cols`` as one PNG, written atomically."""
    cols = min(cols, len(tiles))
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    out = Path(out_png)
    with atomic_path(out) as tmp:  # keeps the suffix: imwrite picks the format from it
        if not cv2.imwrite(str(tmp), grid):
            raise OSError(f"{out}: cannot write the contact sheet")
    return out
