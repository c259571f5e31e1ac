"""Metrics per group of any metadata column (sex, treatment, recording, cohort, ...).

The original project's sex-difference notebook did this by hand; here every column gets the
same table. Sex comes from a ``sex`` column when the metadata has one, otherwise from the
``f``/``m`` prefix of the animal id (``f12`` -> female, ``m3`` -> male), as the original did.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from mouse_facial_expressions.evaluation.metrics import METRICS, THRESHOLD, bootstrap_ci

#: Columns broken down by default, where present.
DEFAULT_COLUMNS = ("sex", "treatment", "recording", "cohort")
_SEX_PREFIX = re.compile(r"^\s*([fFmM])(?=[\d_\-]|$)")
_SEX_WORDS = {"f": "female", "female": "female", "m": "male", "male": "male"}


def sex_from_id(animal: str) -> str:
    """``'female'``/``'male'`` from an ``f``/``m`` id prefix followed by a digit, else ``'unknown'``."""
    m = _SEX_PREFIX.match(str(animal))
    return _SEX_WORDS[m.group(1).lower()] if m else "unknown"


def add_sex(df: pd.DataFrame, animal: str = "animal") -> pd.DataFrame:
    """Copy of ``df`` with a ``sex`` column: normalised from an existing one, else from the id."""
    out = df.copy()
    if "sex" in out.columns:
        norm = out["sex"].astype(str).str.strip().str.lower().map(_SEX_WORDS)
        from_id = out[animal].map(sex_from_id)
        out["sex"] = norm.fillna(from_id)
    elif animal in out.columns:
        out["sex"] = out[animal].map(sex_from_id)
    return out


def group_metrics(
    df: pd.DataFrame,
    by: str,
    *,
    metrics: tuple[str, ...] = ("accuracy", "balanced_accuracy", "auroc", "f1", "mean_p1"),
    threshold: float = THRESHOLD,
    n_boot: int = 0,
    seed: int = 0,
    group: str = "animal",
) -> pd.DataFrame:
    """One row per value of column ``by``: counts and metrics of the labelled rows in it.

    Args:
        df: predictions at one level (``label``, ``p1``, ``animal`` and ``by`` columns).
        by: the metadata column to split on.
        metrics: names from :data:`METRICS`, plus ``mean_p1`` (the mean score).
        n_boot: bootstrap resamples over animals for ``<metric>_low``/``<metric>_high``
            (0: no intervals), with ``<metric>_undefined`` resamples of ``<metric>_resamples``
            where the metric was undefined (the interval is NaN when they are too many, see
            ``metrics.bootstrap_ci``).

    Returns:
        Columns ``column, group, n, n_animals, n_pos, n_neg`` then each metric (and its CI).
        Metrics undefined in a group are NaN, not 0: AUROC with one class, F1 in a group of
        controls only.
    """
    if by not in df.columns:
        raise ValueError(f"cannot break down by {by!r}: no such column (have {list(df.columns)})")
    rows = []
    for value, part in df.groupby(by, sort=True, dropna=False):
        lab = part[part["label"].notna()]
        row = {
            "column": by,
            "group": "missing" if pd.isna(value) else value,
            "n": len(part),
            "n_animals": part[group].nunique(),
            "n_pos": int((lab["label"] == 1).sum()),
            "n_neg": int((lab["label"] == 0).sum()),
        }
        for name in metrics:
            if name == "mean_p1":
                row[name] = float(part["p1"].mean())
                continue
            if lab.empty:
                row[name] = np.nan
                continue
            if n_boot > 0:
                ci = bootstrap_ci(lab, name, group=group, n=n_boot, seed=seed, threshold=threshold)
                row[name], row[f"{name}_low"], row[f"{name}_high"] = ci.value, ci.low, ci.high
                row[f"{name}_undefined"], row[f"{name}_resamples"] = ci.n_undefined, ci.n_resamples
            else:
                row[name] = METRICS[name](lab["label"], lab["p1"], threshold)
        rows.append(row)
    out = pd.DataFrame(rows)
    out["group"] = out["group"].astype(str)
    return out


def breakdown(
    df: pd.DataFrame,
    columns: list[str] | tuple[str, ...] | None = None,
    **kwargs,
) -> pd.DataFrame:
    """:func:`group_metrics` for several columns, stacked (``column`` says which).

    ``columns=None`` uses :data:`DEFAULT_COLUMNS` that exist in ``df`` and have at least one
    value (``sex`` is derived from the animal ids when absent). Extra keyword arguments go to
    :func:`group_metrics`.
    """
    df = add_sex(df) if "animal" in df.columns else df
    if columns is None:
        columns = [c for c in DEFAULT_COLUMNS if c in df.columns and df[c].notna().any()]
    parts = [group_metrics(df, c, **kwargs) for c in columns]
    if not parts:
        return pd.DataFrame(columns=["column", "group", "n", "n_animals", "n_pos", "n_neg"])
    return pd.concat(parts, ignore_index=True)
