"""Window -> video -> animal aggregation of predictions (pure pandas).

- video level: the mean p1 over the video's windows;
- animal level: the mean over the animal's videos *of the same label* of their video p1
  (each video weighs the same, however many windows it has). Unlabelled videos
  (empty label) form one group per animal.

Columns that are constant within a group (metadata such as ``treatment``, ``cohort``, ``sex``,
and ``recording`` at video level) are carried along; ``fold`` is kept when the group comes
from a single fold and set to ``-1`` when several folds scored it (a fold ensemble).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mouse_facial_expressions.data.predictions import MIXED_FOLD, PREDICTION_COLUMNS  # noqa: F401  (re-exported)

_NUMERIC_PER_WINDOW = {"start_time", "end_time", "p1", "pred"}


def validate_predictions(df: pd.DataFrame, source: str = "predictions") -> pd.DataFrame:
    """Check and normalise a predictions table; raises ``ValueError`` naming the bad row.

    Returns a copy with ``label`` as float (NaN = unlabelled), ``p1`` as float, ``fold`` as int.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; expected {PREDICTION_COLUMNS}")
    out = df.copy()
    out["video"] = out["video"].astype(str)
    out["animal"] = out["animal"].astype(str)
    for col in ("p1", "start_time", "end_time", "label"):
        vals = pd.to_numeric(out[col], errors="coerce")
        bad = vals.isna() & out[col].notna() & (out[col].astype(str).str.strip() != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{source}: row {i}: column {col!r} is not a number: {out[col].iloc[i]!r}")
        out[col] = vals.astype(float)
    if out["p1"].isna().any():
        i = int(np.flatnonzero(out["p1"].isna().to_numpy())[0])
        raise ValueError(f"{source}: row {i}: p1 is empty")
    bad = (out["p1"] < 0) | (out["p1"] > 1)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{source}: row {i}: p1 = {out['p1'].iloc[i]} is outside [0, 1]")
    bad = out["label"].notna() & ~out["label"].isin([0.0, 1.0])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{source}: row {i}: label must be 0, 1 or empty, got {out['label'].iloc[i]}")
    fold = pd.to_numeric(out["fold"], errors="coerce")
    if fold.isna().any():
        i = int(np.flatnonzero(fold.isna().to_numpy())[0])
        raise ValueError(f"{source}: row {i}: fold must be an integer, got {out['fold'].iloc[i]!r}")
    out["fold"] = fold.astype(int)
    return out


def _check_one(df: pd.DataFrame, key: str, col: str) -> None:
    n = df.groupby(key)[col].nunique(dropna=False)
    if (n > 1).any():
        name = n.index[n > 1][0]
        vals = sorted(map(str, df.loc[df[key] == name, col].unique()))
        raise ValueError(f"{key} {name!r} has rows with different {col} values {vals}; it must have one")


def _constant_columns(df: pd.DataFrame, keys: list[str], skip: set[str]) -> list[str]:
    """Columns other than ``keys``/``skip`` that take one value within every group."""
    cols = [c for c in df.columns if c not in keys and c not in skip]
    if not cols:
        return []
    nun = df.groupby(keys, dropna=False)[cols].nunique(dropna=False)
    return [c for c in cols if (nun[c] <= 1).all()]


def _fold_of(folds: pd.Series) -> int:
    u = folds.unique()
    return int(u[0]) if len(u) == 1 else MIXED_FOLD


def to_video(windows: pd.DataFrame) -> pd.DataFrame:
    """One row per video: ``p1`` = mean window p1, ``n_windows``, ``start_time``/``end_time``
    span, ``fold`` (or -1), ``label``, ``animal`` and the per-video constant metadata."""
    if windows.empty:
        raise ValueError("no predictions to aggregate")
    _check_one(windows, "video", "label")
    _check_one(windows, "video", "animal")
    keys = ["video"]
    carry = _constant_columns(windows, keys, _NUMERIC_PER_WINDOW | {"fold"})
    g = windows.groupby(keys, sort=True, dropna=False)
    out = g.agg(
        p1=("p1", "mean"),
        n_windows=("p1", "size"),
        start_time=("start_time", "min"),
        end_time=("end_time", "max"),
    )
    out["fold"] = g["fold"].agg(_fold_of)
    if carry:
        out = out.join(g[carry].first())
    out = out.reset_index()
    lead = ["fold", "video", "animal", "label", "p1", "n_windows", "start_time", "end_time"]
    return out[lead + [c for c in out.columns if c not in lead]]


def to_animal(videos: pd.DataFrame) -> pd.DataFrame:
    """One row per (animal, label): ``p1`` = mean of the animal's video p1 for that label,
    ``n_videos``, ``n_windows``, ``fold`` (or -1) and the constant metadata."""
    if videos.empty:
        raise ValueError("no videos to aggregate")
    keys = ["animal", "label"]
    skip = {"p1", "pred", "n_windows", "start_time", "end_time", "fold", "video"}
    carry = _constant_columns(videos, keys, skip)
    g = videos.groupby(keys, sort=True, dropna=False)
    out = g.agg(p1=("p1", "mean"), n_videos=("video", "size"), n_windows=("n_windows", "sum"))
    out["fold"] = g["fold"].agg(_fold_of)
    out["videos"] = g["video"].agg(lambda v: ";".join(sorted(v)))
    if carry:
        out = out.join(g[carry].first())
    out = out.reset_index()
    lead = ["fold", "animal", "label", "p1", "n_videos", "n_windows"]
    return out[lead + [c for c in out.columns if c not in lead]]


def aggregate_levels(windows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{"window": windows, "video": to_video(windows), "animal": to_animal(...)}``."""
    video = to_video(windows)
    return {"window": windows, "video": video, "animal": to_animal(video)}
