"""The spreadsheet layer of rating import: text, cell values and the item columns of a sheet.

Real sheets come from Excel and many hands: the encoding and delimiter are guessed, cells are
parsed leniently (``1,5`` is 1.5), and each row is placed by its item, video, frame, time and animal.
None of this knows about action units, which ``io.ratings`` reads from the cells found here.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

_ITEM_NAMES = ("item", "image", "image_name", "imagename", "file", "filename", "file_name", "img",
               "picture", "photo", "name", "image_file", "frame_file")
_META = ("rater", "scorer", "observer", "coder", "average", "mean", "mgs", "mgs_score", "score",
         "rejected", "reject", "excluded", "exclude", "time_s", "time", "seconds", "t", "animal", "mouse",
         "mouse_id", "animal_id")


def _norm(name: str) -> str:
    return re.sub(r"[\s._-]+", "_", str(name).strip().lower()).strip("_")


# --- reading the text --------------------------------------------------------------------------

def _read_rows(path: Path, delimiter: str | None) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # Excel on Windows
    if delimiter is None:
        sample = "\n".join(text.splitlines()[:50])
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
        except csv.Error:
            first = text.splitlines()[0] if text.strip() else ""
            delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            continue
        rows.append((reader.line_num, [c.strip() for c in cells]))
    if header is None:
        raise ValueError(f"{path}: empty rating sheet")
    return header, rows, delimiter


def _frame(header: list[str], rows: list[tuple[int, list[str]]]) -> pd.DataFrame:
    width = len(header)
    data = [(cells + [""] * width)[:width] for _, cells in rows]
    names = [h if h else f"Unnamed: {i}" for i, h in enumerate(header)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"the sheet's header names these columns more than once: {', '.join(twice)}")
    df = pd.DataFrame(data, columns=names, dtype=object)
    df.insert(0, "__line", [n for n, _ in rows])
    return df


def _is_index_column(name: str, values: pd.Series) -> bool:
    if not name.startswith("Unnamed"):  # an empty header cell is named "Unnamed: <i>" here too
        return False
    v = pd.to_numeric(values, errors="coerce")
    return bool(v.notna().all() and (v % 1 == 0).all())


# --- columns -----------------------------------------------------------------------------------

def _find(columns, names) -> str | None:
    by_norm = {_norm(c): c for c in columns}
    for n in names:
        if n in by_norm:
            return by_norm[n]
    return None


def _text(v) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "" else str(v).strip()


def _int(v) -> int | None:
    t = _text(v)
    if t is None:
        return None
    try:
        f = float(t)
    except ValueError:
        return None
    return int(f) if f == int(f) else None


def _float(v) -> float | None:
    t = _text(v)
    try:
        return None if t is None else float(t.replace(",", ".") if t.count(",") == 1 and "." not in t else t)
    except ValueError:
        return None


def _locate(df: pd.DataFrame, columns: list[str], pattern: str | None, issues: list[dict]) -> pd.DataFrame:
    """item, video, frame, time_s, animal per row."""
    item_col = _find(columns, _ITEM_NAMES)
    video_col = _find(columns, ("video", "video_name"))
    frame_col = _find(columns, ("frame", "frame_index", "frame_idx"))
    time_col = _find(columns, ("time_s", "time", "seconds", "t"))
    animal_col = _find(columns, ("animal", "mouse", "mouse_id", "animal_id"))
    if item_col is None and video_col is None:
        meta = {_norm(n) for n in _META}
        others = [c for c in columns if not c.startswith("Unnamed") and _norm(c) not in meta]
        unnamed = [c for c in columns if c.startswith("Unnamed")]
        item_col = (unnamed or others or [None])[0]
        if item_col is None:
            raise ValueError(f"no item column (image file name) and no video,frame columns in {columns}")
    regex = re.compile(pattern) if pattern else None
    out = []
    for r in df.to_dict("records"):
        get = lambda c: r.get(c) if c else None  # noqa: E731
        line = int(r["__line"])
        video, animal = _text(get(video_col)), _text(get(animal_col))
        frame, time_s = _int(get(frame_col)), _float(get(time_col))
        item = _text(get(item_col))
        if item is None:
            item = f"{video}:{frame}" if video is not None and frame is not None else video or f"line{line}"
        if regex is not None and item_col is not None:
            m = regex.search(item)
            if m is None:
                issues.append(dict(line=line, item=item, rater="", au="", value="",
                                   reason="item does not match ratings.pattern: imported as a still image"))
            else:
                g = {k: v for k, v in m.groupdict().items() if v is not None}
                video = g.get("video", video)
                animal = g.get("animal", animal)
                if "frame" in g:
                    frame = _int(g["frame"])
                if "minute" in g or "second" in g:
                    time_s = 60.0 * float(g.get("minute", 0) or 0) + float(g.get("second", 0) or 0)
        out.append(dict(item=item, video=video, frame=frame, time_s=time_s, animal=animal, line=line))
    return pd.DataFrame(out, columns=["item", "video", "frame", "time_s", "animal", "line"])
