"""Soft labels for label distribution learning: P(class 1) per row, from several sources.

Every source yields ``p1`` in [0, 1]; the two-class distribution is ``[1 - p1, p1]``,
which sums to 1 by construction. Hard labels stay in their own column for accuracy.

Sources:
- ``smoothing``: ``[1 - s, s]`` for label 0 and ``[s, 1 - s]`` for label 1 (the original).
- ``column``: graded intensity from a metadata column, either through a ``mapping``
  (e.g. dose ``saline/low/mid/high -> 0, 0.33, 0.66, 1``) or a linear ``scale`` of a numeric
  column (e.g. hours since injection, ``[0, 4] -> [0, 1]``, clipped).
- ``raters``: several raters' scores (binary or in [0, 1]), one column each; p1 is their mean
  over the raters who scored the row.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator


class SoftLabelSpec(BaseModel):
    """Where soft labels come from (the ``soft_labels`` section of a task spec)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["smoothing", "column", "raters"] = "smoothing"
    smoothing: float = Field(0.1, ge=0.0, lt=0.5, description="s in [1-s, s] (source smoothing).")
    column: str | None = Field(None, description="Metadata column holding the graded intensity (source column).")
    mapping: dict[str, float] | None = Field(None, description="Column value (as text) -> P(class 1), e.g. {saline: 0, high: 1}.")
    scale: tuple[float, float] | None = Field(None, description="Numeric column: values lo..hi map linearly to 0..1 (clipped).")
    raters: list[str] = Field(default_factory=list, description="Columns with each rater's score in [0, 1] (source raters).")

    @model_validator(mode="after")
    def _complete(self) -> SoftLabelSpec:
        if self.source == "column":
            if not self.column:
                raise ValueError("soft_labels.source 'column' needs soft_labels.column")
            if (self.mapping is None) == (self.scale is None):
                raise ValueError("soft_labels.source 'column' needs exactly one of mapping or scale")
        if self.source == "raters" and not self.raters:
            raise ValueError("soft_labels.source 'raters' needs soft_labels.raters (a list of columns)")
        return self


def create_soft_label(hard_label: int, smoothing: float = 0.1) -> list[float]:
    """The original helper: ``[1-s, s]`` for label 0, ``[s, 1-s]`` for label 1."""
    if int(hard_label) == 1:
        return [smoothing, 1.0 - smoothing]
    return [1.0 - smoothing, smoothing]


def smoothing_p1(labels: np.ndarray, smoothing: float) -> np.ndarray:
    """P(class 1) from hard labels with label smoothing ``s``."""
    labels = np.asarray(labels)
    return np.where(labels == 1, 1.0 - smoothing, smoothing).astype(np.float64)


def column_p1(
    values: pd.Series,
    mapping: dict[str, float] | None = None,
    scale: tuple[float, float] | None = None,
    *,
    where: str = "the table",
) -> np.ndarray:
    """P(class 1) as graded intensity from one column.

    Raises:
        ValueError: a value the mapping does not cover, or a non-numeric value to scale,
            naming the value and the first rows.
    """
    if mapping is not None:
        keys = values.astype(str)
        missing = ~keys.isin(list(mapping))
        if missing.any():
            bad = sorted(set(keys[missing]))[:5]
            raise ValueError(
                f"soft labels: column {values.name!r} of {where} has values the mapping does not cover: "
                f"{bad} (first rows: {list(values.index[missing][:5])})"
            )
        p1 = keys.map(mapping).to_numpy(dtype=np.float64)
    elif scale is not None:
        num = pd.to_numeric(values, errors="coerce")
        if num.isna().any():
            raise ValueError(
                f"soft labels: column {values.name!r} of {where} is not numeric at rows "
                f"{list(values.index[num.isna()][:5])}"
            )
        lo, hi = scale
        if hi == lo:
            raise ValueError("soft labels: scale needs two different values [lo, hi]")
        p1 = ((num.to_numpy(dtype=np.float64) - lo) / (hi - lo)).clip(0.0, 1.0)
    else:
        raise ValueError("column_p1 needs a mapping or a scale")
    if np.any((p1 < 0) | (p1 > 1)):
        raise ValueError(f"soft labels: mapping of column {values.name!r} gives values outside [0, 1]")
    return p1


def raters_p1(df: pd.DataFrame, columns: list[str], *, where: str = "the table") -> np.ndarray:
    """P(class 1) as the mean of the raters' scores (NaN = that rater did not score the row).

    Raises:
        ValueError: a missing column, scores outside [0, 1], or a row no rater scored.
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"soft labels: rater columns {missing} are not in {where}")
    scores = df[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)  # (N, R)
    bad = np.nanmax(np.abs(scores - 0.5), axis=1, initial=0) > 0.5 if scores.size else np.zeros(0, bool)
    if np.any(bad):
        raise ValueError(f"soft labels: rater scores outside [0, 1] at rows {list(df.index[bad][:5])} of {where}")
    unscored = np.isnan(scores).all(axis=1)
    if np.any(unscored):
        raise ValueError(f"soft labels: no rater scored rows {list(df.index[unscored][:5])} of {where}")
    return np.nanmean(scores, axis=1)


def soft_p1(df: pd.DataFrame, spec: SoftLabelSpec, *, label_col: str = "label", where: str = "the table") -> np.ndarray:
    """P(class 1) for each row of a labelled table, from the source ``spec`` names."""
    if spec.source == "smoothing":
        return smoothing_p1(df[label_col].to_numpy(), spec.smoothing)
    if spec.source == "column":
        if spec.column not in df.columns:
            raise ValueError(f"soft labels: column {spec.column!r} is not in {where}")
        return column_p1(df[spec.column], spec.mapping, spec.scale, where=where)
    return raters_p1(df, spec.raters, where=where)


def to_distribution(p1: np.ndarray) -> np.ndarray:
    """``(N,) -> (N, 2)`` distributions ``[1 - p1, p1]`` (rows sum to 1)."""
    p1 = np.asarray(p1, dtype=np.float64)
    return np.stack([1.0 - p1, p1], axis=-1)
