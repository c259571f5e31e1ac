"""Mouse Grimace Scale rating sheets -> one tidy ratings table (``mfe ratings import``).

The Mouse Grimace Scale (MGS) scores five action units (AUs) 0, 1 or 2: orbital tightening
(``ot``), nose bulge (``nb``), cheek bulge (``cb``), ear position (``ep``) and whisker change
(``wc``); an image's MGS score is their mean. Two sheet layouts are read:

* **wide**: one row per image/frame, columns ``<au><rater>`` (``ot1, nb1, ..., wc1, ot2, ...``;
  empty where a rater did not score) plus an item column (the image file name) or
  ``video, frame`` columns.
* **long**: one row per image (and rater), one column per AU (``orbital.tightening``,
  ``nose.bulge``, ``cheek.bulge``, ``ear.position``, ``whisker.change``; ``ot`` ... work too),
  optional ``rater``, ``average`` (checked against the AUs) and ``rejected``.

Real sheets are messy: the delimiter (comma, semicolon, tab) is sniffed, CRLF line ends and a
UTF-8 BOM are fine, an unnamed index column (``pandas.to_csv`` with the index) is dropped, "not
scored" codes (default ``-``, ``9``, ``-1``) are counted per AU, and a sheet on another scale
(0..9, or a sum over raters) is mapped onto 0..2 with ``scale_max``. Every row that is not
imported (rejected, unparseable, out of range, a duplicate) is listed in ``issues`` with its
line number in the file (the header is line 1); nothing is dropped silently.

The table (:data:`COLUMNS`) has one row per (item, rater, au): ``item`` (the image name, or
``<video>:<frame>``), ``video``, ``frame``, ``time_s``, ``animal`` (None where unknown: a
still image), ``rater`` (str), ``au`` (one of :data:`AUS`), ``score`` (0..2 float) and ``line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.io.ratings_sheet import (
    _find,
    _float,
    _frame,
    _is_index_column,
    _locate,
    _norm,
    _read_rows,
    _text,
)

#: The five MGS action units, in the order of the scale.
AUS = ("ot", "nb", "cb", "ep", "wc")
AU_NAMES = {"ot": "orbital tightening", "nb": "nose bulge", "cb": "cheek bulge",
            "ep": "ear position", "wc": "whisker change"}
#: The synthetic truth table's AU columns (0..1 intensities).
TRUTH_COLUMNS = {"ot": "au_orbital", "nb": "au_nose", "cb": "au_cheek", "ep": "au_ear", "wc": "au_whisker"}
#: Columns of the ratings table.
COLUMNS = ["item", "video", "frame", "time_s", "animal", "rater", "au", "score", "line"]
ISSUE_COLUMNS = ["line", "item", "rater", "au", "value", "reason"]
DEFAULT_MISSING_CODES = ("-", "9", "-1")
LAYOUTS = ("auto", "wide", "long")

_LONG_NAMES = {"orbital_tightening": "ot", "nose_bulge": "nb", "cheek_bulge": "cb",
               "ear_position": "ep", "whisker_change": "wc", **{a: a for a in AUS}}
_WIDE = re.compile(r"^(ot|nb|cb|ep|wc)(?:[ ._-]?([A-Za-z]*\d+[A-Za-z]*|[A-Za-z])|[ ._-]([A-Za-z]{1,3}))$", re.IGNORECASE)
_TRUE = {"1", "true", "yes", "y", "x", "rejected", "reject", "t"}
_FALSE = {"", "0", "false", "no", "n", "f", "-"}


@dataclass
class RatingsImport:
    """What :func:`read_sheet` found: the ratings, what was not imported and why."""

    ratings: pd.DataFrame
    issues: pd.DataFrame
    missing: dict[str, int]  # "not scored" codes per AU
    layout: str
    delimiter: str
    scale_max: float
    missing_codes: tuple[str, ...]
    notes: list[str] = field(default_factory=list)

    def summary(self, max_issues: int = 50) -> str:
        r = self.ratings
        delim = {",": "comma", ";": "semicolon", "\t": "tab"}.get(self.delimiter, repr(self.delimiter))
        lines = [f"{self.layout} sheet ({delim}-separated, scale 0..{self.scale_max:g}"
                 f"{' mapped onto 0..2' if self.scale_max != 2 else ''}): {r['item'].nunique()} items, "
                 f"{r['rater'].nunique()} rater(s), {len(r)} AU scores"]
        videos = r.dropna(subset=["video"])
        lines.append(f"  items in videos   {videos['item'].nunique()} in {videos['video'].nunique()} video(s); "
                     f"still images {r.loc[r['video'].isna(), 'item'].nunique()}")
        codes = ", ".join(repr(c) for c in self.missing_codes) or "none"
        lines.append(f"  not scored ({codes}): " + ", ".join(f"{a} {self.missing.get(a, 0)}" for a in AUS))
        lines += [f"  note: {n}" for n in self.notes]
        if len(self.issues):
            lines.append(f"  {len(self.issues)} issue(s), not imported unless said otherwise:")
            for row in self.issues.head(max_issues).itertuples(index=False):
                parts = [str(row.item)] + [f"{k} {v}" for k, v in (("rater", row.rater), ("au", row.au), ("value", row.value))
                                           if _text(v) is not None]
                lines.append(f"    line {row.line}: {' '.join(parts)}: {row.reason}")
            if len(self.issues) > max_issues:
                lines.append(f"    ... {len(self.issues) - max_issues} more (see the issues CSV)")
        return "\n".join(lines)


# --- action-unit columns -----------------------------------------------------------------------

def _layout(columns: list[str], layout: str) -> tuple[str, dict]:
    wide = {}
    for c in columns:
        m = _WIDE.match(c.strip())
        if m:
            wide.setdefault(m.group(2) or m.group(3), {})[m.group(1).lower()] = c
    long = {}
    for c in columns:
        n = _norm(c)
        if n in _LONG_NAMES:
            long[_LONG_NAMES[n]] = c
    if layout == "auto":
        layout = "wide" if wide else "long" if long else ""
    if layout == "wide" and wide:
        return "wide", wide
    if layout == "long" and long:
        return "long", long
    raise ValueError(f"no MGS action-unit columns for a {layout or 'wide or long'} sheet in {columns}: expected "
                     "<au><rater> columns (ot1, nb1, cb1, ep1, wc1, ot2, ...) or orbital.tightening, nose.bulge, "
                     "cheek.bulge, ear.position, whisker.change")


# --- the sheet ---------------------------------------------------------------------------------

def _codes(missing_codes, scale_max: float, notes: list[str]) -> tuple[str, ...]:
    if missing_codes is not None:
        return tuple(str(c).strip() for c in missing_codes if str(c).strip() != "")
    codes = []
    for c in DEFAULT_MISSING_CODES:
        v = _float(c)
        if v is not None and 0 <= v <= scale_max:
            notes.append(f"{c!r} is a valid score on a 0..{scale_max:g} scale: not treated as 'not scored' "
                         "(pass --missing-codes to choose)")
        else:
            codes.append(c)
    return tuple(codes)


def _is_missing(t: str, codes: tuple[str, ...]) -> bool:
    if t in codes:
        return True
    v = _float(t)
    return v is not None and any(_float(c) == v for c in codes if _float(c) is not None)


def read_sheet(
    path: str | Path,
    *,
    missing_codes=None,
    scale_max: float | None = None,
    layout: str = "auto",
    pattern: str | None = None,
    delimiter: str | None = None,
) -> RatingsImport:
    """Read a wide or long MGS rating sheet (see the module docstring).

    Args:
        missing_codes: cell values meaning "not scored" (default ``-``, ``9``, ``-1``, leaving out
            codes that are valid scores on the sheet's scale); counted per AU, not imported.
        scale_max: the sheet's top score (default 2); scores are mapped ``score * 2 / scale_max``.
        layout: ``auto``, ``wide`` or ``long``.
        pattern: regex with named groups video, animal, minute, second, frame over the item.
        delimiter: default: sniffed among comma, semicolon and tab.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    scale_max = 2.0 if scale_max is None else float(scale_max)
    if scale_max <= 0:
        raise ValueError(f"scale_max must be positive, got {scale_max}")
    notes: list[str] = []
    codes = _codes(missing_codes, scale_max, notes)
    header, rows, delimiter = _read_rows(Path(path), delimiter)
    df = _frame(header, rows)
    columns = [c for c in df.columns if c != "__line"]
    for c in list(columns):
        if _is_index_column(c, df[c]):
            df = df.drop(columns=c)
            columns.remove(c)
            notes.append(f"dropped the unnamed index column {c!r}")
    layout, au_cols = _layout(columns, layout)
    issues: list[dict] = []
    where = _locate(df, [c for c in columns if c not in _au_columns(au_cols, layout)], pattern, issues)
    rejected_col = _find(columns, ("rejected", "reject", "excluded", "exclude"))
    rater_col = _find(columns, ("rater", "scorer", "observer", "coder")) if layout == "long" else None
    average_col = _find(columns, ("average", "mean", "mgs", "mgs_score", "score")) if layout == "long" else None
    missing = {a: 0 for a in AUS}
    out: list[dict] = []
    seen: dict[tuple, int] = {}
    for (_, row), (_, loc) in zip(df.iterrows(), where.iterrows()):
        line, item = int(row["__line"]), loc["item"]
        base = dict(item=item, video=loc["video"], frame=loc["frame"], time_s=loc["time_s"], animal=loc["animal"], line=line)
        if rejected_col is not None:
            flag = (_text(row[rejected_col]) or "").lower()
            if flag in _TRUE:
                issues.append(dict(line=line, item=item, rater="", au="", value=row[rejected_col], reason="rejected in the sheet"))
                continue
            if flag not in _FALSE:
                issues.append(dict(line=line, item=item, rater="", au="", value=row[rejected_col],
                                   reason="rejected column is neither yes nor no: row not imported"))
                continue
        if layout == "wide":
            groups = au_cols.items()
        else:
            groups = [((_text(row[rater_col]) if rater_col else None) or "1", au_cols)]
        for rater, cols in groups:
            cells = {a: _text(row[c]) for a, c in cols.items()}
            if layout == "wide" and all(v is None for v in cells.values()):
                continue  # this rater did not score this item
            scored = []
            for a in AUS:
                if a not in cols:
                    continue
                t = cells[a]
                if t is None:
                    issues.append(dict(line=line, item=item, rater=rater, au=a, value="", reason="empty cell: not scored"))
                    continue
                if _is_missing(t, codes):
                    missing[a] += 1
                    continue
                v = _float(t)
                if v is None:
                    issues.append(dict(line=line, item=item, rater=rater, au=a, value=t, reason="not a number"))
                    continue
                if not 0 <= v <= scale_max:
                    issues.append(dict(line=line, item=item, rater=rater, au=a, value=t,
                                       reason=f"out of range 0..{scale_max:g}"))
                    continue
                key = (item, rater, a)
                if key in seen:
                    issues.append(dict(line=line, item=item, rater=rater, au=a, value=t,
                                       reason=f"duplicate of line {seen[key]}: not imported"))
                    continue
                seen[key] = line
                scored.append(v)
                out.append({**base, "rater": str(rater), "au": a, "score": v * 2.0 / scale_max})
            if average_col is not None and scored:
                _check_average(row[average_col], scored, line, item, rater, issues)
    ratings = pd.DataFrame(out, columns=COLUMNS)
    ratings = ratings.astype({"frame": "Int64", "time_s": "float64", "score": "float64", "line": "int64"})
    issues_df = pd.DataFrame(issues, columns=ISSUE_COLUMNS).sort_values("line", kind="stable").reset_index(drop=True)
    return RatingsImport(ratings, issues_df, missing, layout, delimiter, scale_max, codes, notes)


def _au_columns(au_cols: dict, layout: str) -> set[str]:
    if layout == "wide":
        return {c for cols in au_cols.values() for c in cols.values()}
    return set(au_cols.values())


def _check_average(value, scored: list[float], line: int, item: str, rater, issues: list[dict]) -> None:
    t = _text(value)
    if t is None:
        return
    v = _float(t)
    if v is None:
        issues.append(dict(line=line, item=item, rater=rater, au="average", value=t,
                           reason="average is not a number (scores imported)"))
        return
    decimals = len(t.split(".")[1]) if "." in t else 0
    tol = 0.5 * 10 ** -decimals + 1e-9
    mean = float(np.mean(scored))
    if abs(v - mean) > tol:
        issues.append(dict(line=line, item=item, rater=rater, au="average", value=t,
                           reason=f"average {t} != mean of the scored AUs {mean:.3f} (scores imported)"))


# --- writing -----------------------------------------------------------------------------------

def safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    if not name:
        raise ValueError("empty ratings name")
    return name


def import_ratings(
    path: str | Path,
    project: str | Path,
    name: str | None = None,
    **kw,
) -> tuple[RatingsImport, Path, Path]:
    """:func:`read_sheet`, then write ``<project>/ratings/<name>.parquet`` and
    ``<name>.issues.csv`` (always written, header only when there are none) atomically.

    Returns the import, the parquet path and the issues path. Raises ValueError when no score
    could be imported (the issues are written first, so the reasons can be read)."""
    from mouse_facial_expressions.io.atomic import write_csv, write_parquet

    result = read_sheet(path, **kw)
    name = safe_name(name or Path(path).stem)
    folder = Path(project) / "ratings"
    issues_path = write_csv(result.issues, folder / f"{name}.issues.csv")
    if result.ratings.empty:
        raise ValueError(f"{path}: no score could be imported ({len(result.issues)} issue(s) in {issues_path})")
    parquet = write_parquet(result.ratings, folder / f"{name}.parquet")
    return result, parquet, issues_path


def load_ratings(path: str | Path) -> pd.DataFrame:
    """A ratings table written by :func:`import_ratings`."""
    df = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a ratings table (missing columns {missing})")
    return df
