"""The CSV layer of the metadata files: delimiter sniffing, encodings, comment lines, line-numbered errors.

Spreadsheets in different locales save "CSV" with commas, semicolons or tabs, in UTF-8 or cp1252,
with a written-out index column and comment rows. This module turns such a file into a DataFrame of
stripped strings indexed by CSV line, so ``io.metadata`` (and ``io.physiology``) only check values.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

INDEX_NAME = "csv_line"
#: Delimiters a metadata (or rating) sheet may use, as spreadsheets in different locales save them.
DELIMITERS = (",", ";", "\t")


class MetadataError(ValueError):
    """Invalid metadata. The message names the file, the columns and the CSV line numbers."""


def _lines(rows: Iterable[int]) -> str:
    rows = sorted(int(r) for r in rows)
    return ("line " if len(rows) == 1 else "lines ") + ", ".join(str(r) for r in rows)


def _raise(file: str | Path, problems: list[str]) -> None:
    if problems:
        raise MetadataError(f"{file}: " + ("\n  ".join([""] + problems) if len(problems) > 1
                                           else problems[0]))


# --------------------------------------------------------------------------- reading files
def sniff_delimiter(text: str, expected: Iterable[str] = ()) -> str:
    """The delimiter of a CSV among :data:`DELIMITERS` (comma, semicolon, tab).

    With ``expected`` column names, the delimiter that splits the first non-blank line into
    the most of them wins (a header names its columns exactly, while a free-text cell may hold
    any delimiter). Otherwise, or when none finds one, ``csv.Sniffer`` decides on the first 50
    lines, and failing that the delimiter most frequent in the first line (as ``io.ratings``).
    """
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    wanted = set(expected)
    if wanted:
        hits = {d: len(wanted & {c.strip() for c in next(csv.reader([first], delimiter=d), [])})
                for d in DELIMITERS}
        best = max(DELIMITERS, key=lambda d: hits[d])  # ties keep the order of DELIMITERS
        if hits[best]:
            return best
    try:
        return csv.Sniffer().sniff("\n".join(lines[:50]), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return max(DELIMITERS, key=first.count)


def _read_csv(path: str | Path, required: tuple[str, ...], encoding: str = "utf-8") -> pd.DataFrame:
    """CSV -> DataFrame of stripped strings (NaN for empty), indexed by CSV line number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such metadata file")
    try:
        return _parse_csv(path, required, encoding)
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise MetadataError(
            f"{path}: line {line} is not valid {encoding} (byte {err.object[err.start:err.start + 1]!r} at offset "
            f"{err.start}); a file saved by Excel on Windows is usually latin-1 or cp1252: set "
            "metadata.encoding: latin-1 in mfe.yaml, or pass --encoding latin-1"
        ) from None


def _parse_csv(path: Path, required: tuple[str, ...], encoding: str) -> pd.DataFrame:
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding  # a BOM is not a column
    with open(path, newline="", encoding=codec) as fh:
        delimiter = sniff_delimiter(fh.read(64 * 1024), required)
        fh.seek(0)
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise MetadataError(f"{path}: empty file (expected columns {', '.join(required)})")
        header = [h.strip() for h in header]
        records, lines, too_long = [], [], []
        for rec in reader:
            if not any(c.strip() for c in rec) or rec[0].lstrip().startswith("#"):
                continue  # blank line, or a comment (the example row `mfe init` writes)
            if len(rec) > len(header):
                too_long.append(reader.line_num)
                continue
            cells = [c.strip() or np.nan for c in rec]
            records.append(cells + [np.nan] * (len(header) - len(rec)))
            lines.append(reader.line_num)
    if too_long:
        raise MetadataError(f"{path}: more cells than header columns at {_lines(too_long)}")
    missing = [c for c in required if c not in header]
    if missing:
        near = [h for h in header if h.lower() in {m.lower() for m in missing}]
        hint = f" (found {', '.join(map(repr, near))}: names are case-sensitive)" if near else ""
        raise MetadataError(
            f"{path}: missing required column(s) {', '.join(missing)}{hint}; "
            f"the header has: {', '.join(h for h in header if h)}"
        )
    dup = sorted({h for h in header if h and header.count(h) > 1})
    if dup:
        raise MetadataError(f"{path}: column(s) {', '.join(dup)} appear more than once in the header")
    keep = [i for i, h in enumerate(header) if h]  # a nameless column is a written-out index
    df = pd.DataFrame([[r[i] for i in keep] for r in records], columns=[header[i] for i in keep],
                      index=pd.Index(lines, name=INDEX_NAME), dtype=object)
    df.attrs["source"] = str(path)
    return df


def _require_values(df: pd.DataFrame, columns: Iterable[str], problems: list[str]) -> None:
    for col in columns:
        empty = df[col].isna()
        if empty.any():
            problems.append(f"column '{col}' is empty at {_lines(df.index[empty])}")
