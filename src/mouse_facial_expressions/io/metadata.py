"""Experiment metadata: ``raw_videos.csv`` and ``treatments.csv`` -> one table of videos.

``raw_videos.csv`` (one row per raw recording)::

    animal,recording,camera,year,month,day,hour,minutes,seconds,start,end,discard

``start`` / ``end`` trim the raw video (``M:SS``, ``H:MM:SS`` or plain seconds; ``0`` or an
empty cell for ``start`` = from the beginning; ``-1``, ``0`` or an empty cell for ``end`` = to
the end). Rows with ``discard == 1`` are skipped (an empty ``discard`` counts as 0).

``treatments.csv`` (one row per animal)::

    mouse,date_of_birth,treatment,injection_time,notes

The delimiter (comma, semicolon or tab, as spreadsheets in different locales save "CSV") is
sniffed from the header: the one that splits it into the most required columns.

Extra columns in either file (``cohort``, ``sex``, ``Notes`` ...) are kept. Column names are
case-sensitive and stripped of surrounding spaces; a header-less first column (a pandas index
written by ``to_csv``) is dropped. Blank lines and lines whose first cell starts with ``#``
(comments, like the example rows ``mfe init`` writes) are skipped.

Row numbers in every error are the CSV's line numbers (the header is line 1), so users can
find the line in a spreadsheet or editor. Readers return DataFrames indexed by that line
number (index name ``csv_line``), and so does :func:`video_table` (line in raw_videos.csv).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.io.metadata_csv import MetadataError, _lines, _raise, _read_csv, _require_values

RAW_VIDEOS_FILE = "raw_videos.csv"
TREATMENTS_FILE = "treatments.csv"

RAW_VIDEO_COLUMNS = (
    "animal", "recording", "camera", "year", "month", "day", "hour", "minutes", "seconds",
    "start", "end", "discard",
)
TREATMENT_COLUMNS = ("mouse", "date_of_birth", "treatment", "injection_time", "notes")

#: Leading columns of :func:`video_table`; extra metadata columns follow.
VIDEO_TABLE_COLUMNS = (
    "video", "animal", "recording", "camera", "timestamp", "start_s", "end_s", "treatment",
    "date_of_birth", "injection_time", "notes", "sex", "cohort",
)

_TIME_PARTS = ("year", "month", "day", "hour", "minutes", "seconds")
_SEX_PREFIX = re.compile(r"^([fFmM])[_-]?\d")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # animal ids and labels become file names


# --------------------------------------------------------------------------- parsing cells
def parse_trim(value, file: str | Path = "raw_videos.csv", row: int | None = None) -> float:
    """Parse a ``start``/``end`` cell into seconds.

    Accepts ``M:SS``, ``H:MM:SS`` (seconds may carry decimals), plain seconds (``"13"``,
    ``"13.5"``, or a number), ``0`` and ``-1``. Empty cells and ``-1`` return ``nan`` (no trim:
    from the start / to the end); ``0`` returns ``0.0``.

    Raises:
        MetadataError: naming ``file`` and ``row`` when the value is not a valid time.
    """
    where = f"{file}" + (f" line {row}" if row is not None else "")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    text = str(value).strip()
    if text == "" or text.lower() == "nan":
        return math.nan
    try:
        if ":" not in text:
            seconds = float(text)
            if seconds == -1:
                return math.nan
            if seconds < 0 or not math.isfinite(seconds):
                raise ValueError
            return seconds
        parts = text.split(":")
        if len(parts) > 3 or text.startswith("-") or any(p.strip() == "" for p in parts):
            raise ValueError
        *whole, last = parts
        nums = [int(p) for p in whole]
        sec = float(last)
        if sec < 0 or sec >= 60 or any(n < 0 for n in nums) or (len(nums) == 2 and nums[1] >= 60):
            raise ValueError
        factors = [60] if len(nums) == 1 else [3600, 60]  # M:SS or H:MM:SS
        return float(sec + sum(n * f for n, f in zip(nums, factors)))
    except ValueError:
        raise MetadataError(
            f"{where}: invalid trim time {text!r} (use M:SS, H:MM:SS or seconds; "
            "0 = from the start, -1 = to the end)"
        ) from None


def _to_int(series: pd.Series, column: str, problems: list[str], required: bool = True,
            default: int = 0) -> pd.Series:
    """Whole numbers ("3", "3.0") -> int64; bad (or, if ``required``, empty) cells go to ``problems``."""
    num = pd.to_numeric(series, errors="coerce")
    empty = series.isna()
    bad = ~empty & (num.isna() | (num != np.round(num)))
    if required:
        bad |= empty
    if bad.any():
        what = "missing or not a whole number" if required else "not a whole number"
        problems.append(f"column '{column}' is {what} at {_lines(series.index[bad])}")
    return num.where(~bad & ~empty, default).round().astype("int64")



def _normalise_raw(df: pd.DataFrame, file) -> pd.DataFrame:
    """Type the raw_videos columns and add ``timestamp``, ``start_s``, ``end_s``."""
    df = df.copy()
    problems: list[str] = []
    _require_values(df, ("animal", "camera"), problems)
    for col in ("recording", *_TIME_PARTS):
        df[col] = _to_int(df[col], col, problems)
    df["discard"] = _to_int(df["discard"], "discard", problems, required=False)
    bad_discard = ~df["discard"].isin([0, 1])
    if bad_discard.any():
        problems.append(f"column 'discard' must be 0, 1 or empty at {_lines(df.index[bad_discard])}")
    short_year = df.index[(df["year"] > 0) & (df["year"] < 1000)]
    if len(short_year):
        problems.append(f"column 'year' must have 4 digits (e.g. 2024, not 24) at {_lines(short_year)}")
    stamps, bad_time = [], []
    for line, r in df.iterrows():
        if line in short_year:
            stamps.append(pd.NaT)
            continue
        try:  # as_unit: a date that datetime64[ns] cannot hold (before 1677) fails here, on its line
            stamps.append(pd.Timestamp(*(int(r[c]) for c in _TIME_PARTS)).as_unit("ns"))
        except (ValueError, OverflowError):
            stamps.append(pd.NaT)
            bad_time.append(line)
    if bad_time:
        problems.append(f"year/month/day/hour/minutes/seconds is not a valid date and time at "
                        f"{_lines(bad_time)}")
    df["timestamp"] = pd.to_datetime(pd.Series(stamps, index=df.index, dtype="datetime64[ns]"))
    starts, ends = [], []
    for line, r in df.iterrows():
        try:
            s = parse_trim(r["start"], file, line)
            e = parse_trim(r["end"], file, line)
        except MetadataError as err:
            problems.append(str(err).removeprefix(f"{file} "))
            starts.append(math.nan)
            ends.append(math.nan)
            continue
        s = 0.0 if math.isnan(s) else s
        e = math.nan if e == 0 else e  # end 0 = no trim, like -1 (a zero-length cut means none)
        if not math.isnan(e) and e <= s:
            problems.append(f"line {line}: end {r['end']!r} is not after start {r['start']!r}")
        starts.append(s)
        ends.append(e)
    df["start_s"] = np.array(starts, dtype=float)
    df["end_s"] = np.array(ends, dtype=float)
    _raise(file, problems)
    return df


def read_raw_videos(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read and check ``raw_videos.csv``.

    Returns:
        Every row (discarded ones included), indexed by CSV line (``csv_line``), with the
        original columns typed (``recording``, the date parts and ``discard`` as int64; ``start``
        and ``end`` as written) plus ``timestamp`` (datetime64), ``start_s`` (float seconds,
        0 = from the start) and ``end_s`` (float seconds, NaN = to the end). Extra columns kept.

    Raises:
        FileNotFoundError: if the file does not exist.
        MetadataError: naming the file, the missing columns or the offending lines.
    """
    df = _read_csv(path, RAW_VIDEO_COLUMNS, encoding)
    out = _normalise_raw(df, Path(path))
    out.attrs["source"] = str(path)
    return out


def read_treatments(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read and check ``treatments.csv``: one row per animal (``mouse`` unique, non-empty).

    ``date_of_birth`` and ``injection_time`` stay strings as written (labs write dates in many
    formats; "18 April 22" would be guessed wrong too easily).

    Raises:
        FileNotFoundError: if the file does not exist.
        MetadataError: on missing columns, empty ``mouse``/``treatment`` or a mouse listed twice.
    """
    df = _read_csv(path, TREATMENT_COLUMNS, encoding)
    problems: list[str] = []
    _require_values(df, ("mouse", "treatment"), problems)
    dup = df["mouse"].notna() & df["mouse"].duplicated(keep=False)
    for mouse, group in df[dup].groupby("mouse"):
        problems.append(f"mouse {mouse!r} is listed more than once, at {_lines(group.index)}")
    _raise(path, problems)
    return df


# --------------------------------------------------------------------------- the video table
def video_name(animal: str, recording: int, recording_labels: Mapping[int, str]) -> str:
    """Processed video name ``<animal>_rec<k>_<label>`` (no extension)."""
    return f"{animal}_rec{int(recording)}_{recording_labels[int(recording)]}"


def _sex_from_id(animal: str):
    m = _SEX_PREFIX.match(str(animal))
    return m.group(1).lower() if m else np.nan


def video_table(raw_videos: pd.DataFrame, treatments: pd.DataFrame,
                recording_labels: Mapping[int, str]) -> pd.DataFrame:
    """One row per non-discarded video, with its treatment metadata.

    Args:
        raw_videos: from :func:`read_raw_videos`.
        treatments: from :func:`read_treatments`.
        recording_labels: recording number -> label (``cfg.video.recording_labels``).

    Returns:
        DataFrame indexed by the raw_videos.csv line (``csv_line``) with columns
        :data:`VIDEO_TABLE_COLUMNS` (``sex`` = ``f``/``m`` from a treatments ``sex`` column,
        else from the animal id prefix, else NaN; ``cohort`` from a ``cohort`` column, else NaN),
        then the extra columns of raw_videos.csv, then those of treatments.csv (on a name clash
        the treatments one gets the suffix ``_treatments``).

    Raises:
        MetadataError: listing every problem at once: duplicated rows (an exact copy, or the
        same animal and recording twice among non-discarded rows), animals missing from
        treatments.csv, mice listed twice in treatments.csv, recordings with no label.
    """
    raw_file = raw_videos.attrs.get("source", RAW_VIDEOS_FILE)
    trt_file = treatments.attrs.get("source", TREATMENTS_FILE)
    if "start_s" not in raw_videos.columns:
        raw_videos = _normalise_raw(raw_videos, raw_file)
    problems: list[str] = []

    original = [c for c in raw_videos.columns if c not in ("timestamp", "start_s", "end_s")]
    exact = raw_videos[original].astype(str).duplicated(keep=False)
    for _, group in raw_videos[exact].astype(str).groupby(original):
        problems.append(f"{raw_file}: {_lines(group.index)} are exact duplicates "
                        f"({group.iloc[0]['animal']} recording {group.iloc[0]['recording']})")
    kept = raw_videos[raw_videos["discard"] == 0]
    same = kept.duplicated(["animal", "recording"], keep=False)
    for (animal, rec), group in kept[same].groupby(["animal", "recording"]):
        if len(group[original].astype(str).drop_duplicates()) == 1:
            continue  # reported above as exact duplicates
        problems.append(f"{raw_file}: {_lines(group.index)} are all {animal} recording {rec} and "
                        "none is discarded (set discard=1 on all but one)")
    no_label = ~kept["recording"].isin([int(k) for k in recording_labels])
    if no_label.any():
        recs = sorted(set(kept.loc[no_label, "recording"]))
        problems.append(f"{raw_file}: recording number(s) {recs} at {_lines(kept.index[no_label])} "
                        f"have no label in video.recording_labels (known: {sorted(recording_labels)})")
    unsafe = ~kept["animal"].astype(str).str.match(_SAFE_NAME)
    if unsafe.any():
        problems.append(f"{raw_file}: animal id(s) {sorted(set(kept.loc[unsafe, 'animal']))} at "
                        f"{_lines(kept.index[unsafe])} cannot be part of a file name (use letters, "
                        "digits, '.', '_', '-')")
    bad_labels = sorted(k for k, v in recording_labels.items() if not _SAFE_NAME.match(str(v)))
    if bad_labels:
        problems.append(f"video.recording_labels for recording(s) {bad_labels} cannot be part of a file name")
    dup_mouse = treatments["mouse"].duplicated(keep=False)
    for mouse, group in treatments[dup_mouse].groupby("mouse"):
        problems.append(f"{trt_file}: mouse {mouse!r} is listed more than once, at {_lines(group.index)}")
    known = set(treatments["mouse"])
    unknown = ~kept["animal"].isin(known)
    if unknown.any():
        names = sorted(set(kept.loc[unknown, "animal"]))
        problems.append(f"{raw_file}: animal(s) {', '.join(names)} at {_lines(kept.index[unknown])} "
                        f"are missing from {trt_file}")
    if problems:
        raise MetadataError("invalid metadata:\n  " + "\n  ".join(problems))

    trt = treatments.drop_duplicates("mouse").set_index("mouse")
    out = pd.DataFrame(index=kept.index)
    out["video"] = [video_name(a, r, recording_labels) for a, r in zip(kept["animal"], kept["recording"])]
    for col in ("animal", "recording", "camera", "timestamp", "start_s", "end_s"):
        out[col] = kept[col]
    for col in ("treatment", "date_of_birth", "injection_time", "notes"):
        out[col] = kept["animal"].map(trt[col])
    sex_from_id = kept["animal"].map(_sex_from_id)
    if "sex" in trt.columns:
        out["sex"] = kept["animal"].map(trt["sex"]).fillna(sex_from_id)
    else:
        out["sex"] = sex_from_id
    if "cohort" in trt.columns:
        out["cohort"] = kept["animal"].map(trt["cohort"])
    elif "cohort" in kept.columns:
        out["cohort"] = kept["cohort"]
    else:
        out["cohort"] = np.nan
    raw_extra = [c for c in kept.columns if c not in RAW_VIDEO_COLUMNS and c not in out.columns]
    for col in raw_extra:
        out[col] = kept[col]
    for col in trt.columns:
        if col in TREATMENT_COLUMNS or col in ("sex", "cohort"):
            continue
        out[col if col not in out.columns else f"{col}_treatments"] = kept["animal"].map(trt[col])
    out.attrs = {"raw_videos": str(raw_file), "treatments": str(trt_file)}
    return out


def load_video_table(cfg) -> pd.DataFrame:
    """:func:`video_table` from ``cfg.path("metadata")/{raw_videos,treatments}.csv``."""
    folder = cfg.path("metadata")
    enc = cfg.metadata.encoding
    return video_table(read_raw_videos(folder / RAW_VIDEOS_FILE, enc),
                       read_treatments(folder / TREATMENTS_FILE, enc), cfg.video.recording_labels)
