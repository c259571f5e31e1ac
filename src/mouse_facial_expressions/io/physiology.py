"""Physiology per animal and recording: ``metadata/physiology.csv`` -> features per item.

The file has one row per animal and recording, then one column per measure::

    animal,recording,temperature_c,weight_g
    m1,1,37.1,24.8
    m1,4,35.2,24.1

Comma, semicolon and tab separated files are read (the delimiter is sniffed from the
header; with ``;`` or tab a decimal comma, ``37,5``, reads as 37.5); a byte-order mark and
Windows line ends are ignored; blank lines and lines whose first cell starts with ``#`` are
skipped, as in the other metadata files. Every error names the file and the CSV line
numbers (the header is line 1), all problems at once.

:func:`physiology_features` turns the table into ``phys_<measure>`` columns for items
(windows, videos) identified by ``animal`` and ``recording``: the change from the same
animal's baseline recording (``behaviour.physiology_baseline_recording``; NaN at the baseline
recording itself), or raw values.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mouse_facial_expressions.io.metadata_csv import INDEX_NAME, MetadataError, _lines

log = logging.getLogger(__name__)

PHYSIOLOGY_FILE = "physiology.csv"
#: Prefix of the feature columns :func:`physiology_features` returns (``phys_temperature_c``).
PHYS_PREFIX = "phys_"
KEY_COLUMNS = ("animal", "recording")
_DECIMAL_COMMA = r"^([+-]?\d*),(\d+)$"


class PhysiologyError(MetadataError):
    """An invalid physiology table (or a missing row); the message names the file and the lines."""


def _text(path: Path, encoding: str) -> str:
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding  # a BOM is no column
    try:
        return path.read_bytes().decode(codec)
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise PhysiologyError(f"{path}: line {line} is not valid {encoding}; a file saved by Excel on Windows is "
                              "usually latin-1 or cp1252 (metadata.encoding in mfe.yaml)") from None


def _rows(path: Path, text: str) -> tuple[list[str], int, list[list[str]], list[int], str]:
    """Header, its line number, data rows, their line numbers and the delimiter: whichever of
    ``,`` ``;`` and tab the header holds most often (a comma on a tie)."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next((rec for rec in reader if any(c.strip() for c in rec)), None)
    if header is None:
        raise PhysiologyError(f"{path}: empty file (expected columns animal, recording, <measure>...)")
    header_line, rows, numbers = reader.line_num, [], []
    for rec in reader:
        if not any(c.strip() for c in rec) or rec[0].lstrip().startswith("#"):
            continue
        rows.append([c.strip() for c in rec])
        numbers.append(reader.line_num)
    return [h.strip() for h in header], header_line, rows, numbers, delimiter


def _check_header(path: Path, header: list[str], line: int) -> list[str]:
    """The measure columns; raises on missing key columns, no measure or a repeated name."""
    missing = [c for c in KEY_COLUMNS if c not in header]
    if missing:
        raise PhysiologyError(f"{path}: line {line}: missing column(s) {', '.join(missing)}; the header has "
                              f"{', '.join(h for h in header if h)} (expected animal, recording, <measure>...)")
    dup = sorted({h for h in header if h and header.count(h) > 1})
    if dup:
        raise PhysiologyError(f"{path}: line {line}: column(s) {', '.join(dup)} appear more than once")
    measures = [h for h in header if h and h not in KEY_COLUMNS]
    if not measures:
        raise PhysiologyError(f"{path}: line {line}: no measure column after animal, recording "
                              "(e.g. temperature_c, weight_g)")
    return measures


def _numbers(df: pd.DataFrame, column: str, problems: list[str], whole: bool = False,
             decimal_comma: bool = False) -> pd.Series:
    """A column as float64; empty, NaN, non-numeric (or, if ``whole``, fractional) cells go to
    ``problems``. ``decimal_comma``: ``37,5`` reads as 37.5 (semicolon files from Excel)."""
    cells = df[column].astype(str)  # stripped strings; "" reads as NaN
    if decimal_comma:
        cells = cells.str.replace(_DECIMAL_COMMA, r"\1.\2", regex=True)
    num = pd.to_numeric(cells, errors="coerce")
    bad = ~np.isfinite(num.to_numpy(np.float64))
    if whole:
        bad |= np.isfinite(num.to_numpy(np.float64)) & (num != np.round(num)).to_numpy()
    if bad.any():
        cells = ", ".join(f"line {line}: {df.at[line, column]!r}" for line in df.index[bad][:10])
        what = "a whole number" if whole else "a number"
        problems.append(f"column '{column}' is empty or not {what} at {_lines(df.index[bad])} ({cells})")
    return num


def _duplicates(out: pd.DataFrame, problems: list[str]) -> None:
    """Each animal and (parsed) recording on several lines goes to ``problems``, naming every line."""
    keys = out[list(KEY_COLUMNS)]
    repeated = keys[keys.duplicated(keep=False) & keys["recording"].notna()]
    for (animal, rec), group in repeated.groupby(list(KEY_COLUMNS)):
        rec = int(rec) if float(rec).is_integer() else rec
        problems.append(f"animal {animal!r} recording {rec} is on more than one line: {_lines(group.index)}")


def read_physiology(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read and check a physiology table (``animal, recording, <measure>...``).

    Returns:
        One row per animal and recording, indexed by CSV line (``csv_line``): ``animal``
        (str), ``recording`` (int64) and each measure (float64), in the file's column order.

    Raises:
        FileNotFoundError: no such file.
        PhysiologyError: missing animal/recording column, no measure column, an empty
            animal, a recording that is not a whole number, a measure that is empty, NaN or
            not a number, or an animal and recording on two lines (naming both lines).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such physiology file (columns animal, recording, <measure>...)")
    header, header_line, rows, lines, delimiter = _rows(path, _text(path, encoding))
    measures = _check_header(path, header, header_line)
    problems = []
    long = [line for line, r in zip(lines, rows) if len(r) > len(header)]
    if long:
        raise PhysiologyError(f"{path}: more cells than header columns at {_lines(long)}")
    rows = [r + [""] * (len(header) - len(r)) for r in rows]
    df = pd.DataFrame(rows, columns=header, index=pd.Index(lines, name=INDEX_NAME), dtype=object)
    empty = df["animal"] == ""
    if empty.any():
        problems.append(f"column 'animal' is empty at {_lines(df.index[empty])}")
    out = pd.DataFrame({"animal": df["animal"].astype(str)}, index=df.index)
    out["recording"] = _numbers(df, "recording", problems, whole=True)
    for m in measures:
        out[m] = _numbers(df, m, problems, decimal_comma=delimiter != ",").astype(np.float64)
    _duplicates(out, problems)
    if problems:
        raise PhysiologyError(f"{path}: " + ("\n  ".join([""] + problems) if len(problems) > 1 else problems[0]))
    out["recording"] = out["recording"].astype(np.int64)
    out.attrs["source"] = str(path)
    return out


def load_physiology(cfg) -> pd.DataFrame:
    """:func:`read_physiology` of ``<paths.metadata>/physiology.csv`` (``metadata.encoding``)."""
    return read_physiology(cfg.path("metadata") / PHYSIOLOGY_FILE, cfg.metadata.encoding)


def measures_of(table: pd.DataFrame) -> list[str]:
    """The measure columns of a physiology table."""
    return [c for c in table.columns if c not in KEY_COLUMNS]


def _baselines(table: pd.DataFrame, baseline_recording: int, animals: list[str], measures: list[str]) -> pd.DataFrame:
    """Per animal of ``animals``: its baseline-recording values, else the mean over all animals' baselines."""
    base = table[table["recording"] == int(baseline_recording)].set_index("animal")[measures]
    source = table.attrs.get("source", PHYSIOLOGY_FILE)
    if base.empty:
        raise PhysiologyError(
            f"{source}: no animal has a row for the baseline recording {baseline_recording} "
            "(behaviour.physiology_baseline_recording; set it to null for raw values)")
    without = sorted(set(animals) - set(base.index))
    if without:
        log.warning("%s: no baseline recording %s for animal(s) %s: their physiology is relative to the mean "
                    "baseline of the %d animals that have one", source, baseline_recording, ", ".join(without),
                    len(base))
    return base.reindex(animals).fillna(base.mean())


def physiology_features(table: pd.DataFrame, items: pd.DataFrame, baseline_recording: int | None,
                        missing: Literal["error", "nan"] = "error") -> pd.DataFrame:
    """``phys_<measure>`` for each item (a row with ``animal`` and ``recording``).

    Args:
        table: from :func:`read_physiology`.
        items: one row per item (window, video, ...), columns ``animal`` and ``recording``.
        baseline_recording: each value becomes ``value - baseline``, the baseline being the
            same animal's value at this recording; for an animal without that row, the mean
            of all animals' baseline values (a warning names those animals). Items *at* the
            baseline recording get NaN (not measured): their change from themselves is 0 by
            construction, which says only "this is the baseline recording", and a model would
            learn the recording's identity instead of the animal's state (on the demo cohorts it
            made physiology with no information look informative, docs/FUSION.md).
            ``None``: raw values.
        missing: an item whose animal and recording have no row: ``"error"`` raises, ``"nan"``
            gives NaN features.

    Returns:
        A DataFrame with the index of ``items`` and one float64 column ``phys_<measure>`` per measure.

    Raises:
        PhysiologyError: items without a row (with ``missing="error"``; naming animal and
            recording), or no animal has the baseline recording.
    """
    measures = measures_of(table)
    animals = items["animal"].astype(str).to_numpy()
    recordings = pd.to_numeric(items["recording"], errors="coerce").to_numpy(np.float64)
    values = table.set_index(["animal", "recording"])[measures]
    keys = pd.MultiIndex.from_arrays([animals, np.nan_to_num(recordings, nan=-1).astype(np.int64)])
    found = values.reindex(keys).to_numpy(np.float64)  # (N, M)
    absent = np.isnan(found).all(axis=1) | np.isnan(recordings)
    if absent.any() and missing == "error":
        pairs = sorted({(a, r) for a, r in zip(animals[absent], items["recording"].to_numpy()[absent])})
        shown = "; ".join(f"animal {a} recording {r}" for a, r in pairs[:20])
        raise PhysiologyError(f"{table.attrs.get('source', PHYSIOLOGY_FILE)}: no row for {len(pairs)} animal/recording "
                              f"pair(s): {shown}{' ...' if len(pairs) > 20 else ''} (add the rows, or score without "
                              "physiology)")
    if baseline_recording is not None:
        base = _baselines(table, baseline_recording, sorted(set(animals[~absent])), measures)
        found = found - base.reindex(animals).to_numpy()
        found[recordings == baseline_recording] = np.nan  # no change to measure (see above)
    found[absent] = np.nan
    return pd.DataFrame(found, index=items.index, columns=[PHYS_PREFIX + m for m in measures])
