"""Agreement in Mouse Grimace Scale units: raters with raters, a predictor with the raters,
anything with a known truth.

Scores are on the MGS scale (0..2 per action unit; the total is the mean of the five AUs).

* :func:`weighted_kappa`: quadratic-weighted Cohen's kappa. Computed in its closed form
  ``1 - sum((a - b)^2) / (sum((a - mean a)^2) + sum((b - mean b)^2) + n (mean a - mean b)^2)``,
  which equals the categorical statistic (scikit-learn's ``cohen_kappa_score(weights="quadratic")``)
  for scores on an evenly spaced scale whose every category occurs, and stays defined for
  averaged scores (the mean rater, the total, a model's continuous output).
* :func:`pearson_r`, :func:`rmse`.
* :func:`inter_rater`: mean pairwise kappa and r across raters, per AU and total: the ceiling
  a model can be expected to reach against any one rater.
* :func:`vs_mean_rater`: a predictor against the mean of the raters, with the ceiling beside it.
* :func:`leave_one_rater_out`: the fair version of that comparison: each rater in turn and the
  predictor, both against the mean of the OTHER raters (the same reference), averaged over the
  raters. The mean-rater comparison favours the predictor (a mean of K raters is less noisy than
  the single raters of the ceiling); this one does not.
* :func:`vs_truth`: Pearson r and RMSE against a truth vector (synthetic cohorts).
* :func:`bootstrap` (``mouse_facial_expressions.bootstrap.bootstrap``): percentile CI of any
  statistic, resampling animals with replacement (items without an animal are their own group).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from mouse_facial_expressions.bootstrap import CI, bootstrap
from mouse_facial_expressions.io.ratings import AUS

#: Rows of the agreement tables: the five AUs, then the MGS total (mean of the AUs).
TARGETS = (*AUS, "total")


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"score vectors differ in length ({len(a)} and {len(b)})")
    ok = ~(np.isnan(a) | np.isnan(b))
    return a[ok], b[ok]


def weighted_kappa(a, b) -> float:
    """Quadratic-weighted Cohen's kappa of two score vectors (NaN pairs dropped); nan when
    undefined (fewer than 2 pairs, or both vectors constant and equal)."""
    a, b = _pair(a, b)
    if len(a) < 2:
        return float("nan")
    den = ((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum() + len(a) * (a.mean() - b.mean()) ** 2
    if den == 0:
        return float("nan")
    return float(1.0 - ((a - b) ** 2).sum() / den)


def pearson_r(a, b) -> float:
    """Pearson correlation (NaN pairs dropped); nan when either vector is constant."""
    a, b = _pair(a, b)
    if len(a) < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    den = np.sqrt((da ** 2).sum() * (db ** 2).sum())
    return float((da * db).sum() / den) if den > 0 else float("nan")


def rmse(a, b) -> float:
    a, b = _pair(a, b)
    return float(np.sqrt(np.mean((a - b) ** 2))) if len(a) else float("nan")


# --- tables of ratings -------------------------------------------------------------------------

def score_matrix(ratings: pd.DataFrame, target: str) -> pd.DataFrame:
    """Items x raters of one AU's scores, or of the total (mean of each rater's scored AUs)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
    r = ratings if target == "total" else ratings[ratings["au"] == target]
    m = r.pivot_table(index="item", columns="rater", values="score", aggfunc="mean")
    return m.reindex(sorted(ratings["item"].unique())).sort_index(axis=1)


def _animals(ratings: pd.DataFrame, items) -> pd.Series:
    per_item = ratings.drop_duplicates("item").set_index("item")["animal"] if "animal" in ratings else pd.Series(dtype=object)
    return per_item.reindex(items)


def _pairwise(m: np.ndarray, fn) -> float:
    vals = [fn(m[:, i], m[:, j]) for i, j in combinations(range(m.shape[1]), 2)]
    vals = [v for v in vals if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _row(cis: dict[str, CI], **extra) -> dict:
    out = dict(extra)
    for name, ci in cis.items():
        out.update({name: ci.value, f"{name}_low": ci.low, f"{name}_high": ci.high})
    return out


def inter_rater(ratings: pd.DataFrame, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Mean pairwise weighted kappa and Pearson r across raters, per AU and for the total,
    with bootstrap CIs over animals: the agreement ceiling. Rows :data:`TARGETS`; columns
    n_items, n_raters, kappa(_low, _high), r(_low, _high). Needs at least two raters."""
    rows = []
    for t in TARGETS:
        m = score_matrix(ratings, t)
        x = m.to_numpy(dtype=float)
        groups = _animals(ratings, m.index).to_numpy()
        cis = {name: bootstrap(lambda idx, fn=fn: _pairwise(x[idx], fn), groups, n_boot, seed, level)
               for name, fn in (("kappa", weighted_kappa), ("r", pearson_r))}
        rows.append(_row(cis, target=t, n_items=int(len(m)), n_raters=int(m.shape[1])))
    return pd.DataFrame(rows).set_index("target")


def mean_rater(ratings: pd.DataFrame) -> pd.DataFrame:
    """Items x TARGETS: each AU's mean over raters, and the total (mean over the AU means)."""
    per_au = ratings.pivot_table(index="item", columns="au", values="score", aggfunc="mean")
    per_au = per_au.reindex(columns=list(AUS))
    per_au["total"] = per_au[list(AUS)].mean(axis=1)
    return per_au


def _as_targets(pred: pd.DataFrame) -> pd.DataFrame:
    """Predictions as items x TARGETS: a long table (item, au, score) or a wide one (item + AU columns)."""
    if {"item", "au", "score"} <= set(pred.columns):
        return mean_rater(pred.assign(rater="pred"))
    if "item" not in pred.columns:
        raise ValueError("predictions need an item column, and au + score columns or one column per AU")
    wide = pred.set_index("item")
    cols = [c for c in TARGETS if c in wide.columns]
    if not cols:
        raise ValueError(f"predictions have no AU or total column (expected some of {', '.join(TARGETS)})")
    wide = wide[cols].astype(float)
    if "total" not in wide.columns and all(a in wide.columns for a in AUS):
        wide["total"] = wide[list(AUS)].mean(axis=1)
    return wide


def vs_mean_rater(ratings: pd.DataFrame, predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                  level: float = 0.95) -> pd.DataFrame:
    """A predictor against the mean rater, per AU and total: weighted kappa, Pearson r and RMSE
    with bootstrap CIs over animals, and the inter-rater ceiling (``ceiling_kappa``,
    ``ceiling_r``; nan with one rater) beside them; plus :func:`leave_one_rater_out`'s
    ``loro_*`` columns (the fair comparison; nan with one rater)."""
    truth = mean_rater(ratings)
    pred = _as_targets(predictions).reindex(truth.index)
    ceiling = inter_rater(ratings, n_boot=0) if ratings["rater"].nunique() > 1 else None
    groups = _animals(ratings, truth.index).to_numpy()
    rows = []
    for t in TARGETS:
        if t not in pred.columns:
            continue
        a, b = pred[t].to_numpy(dtype=float), truth[t].to_numpy(dtype=float)
        cis = {name: bootstrap(lambda idx, fn=fn: fn(a[idx], b[idx]), groups, n_boot, seed, level)
               for name, fn in (("kappa", weighted_kappa), ("r", pearson_r), ("rmse", rmse))}
        rows.append(_row(cis, target=t, n_items=int((~np.isnan(a) & ~np.isnan(b)).sum()),
                         ceiling_kappa=float(ceiling.loc[t, "kappa"]) if ceiling is not None else float("nan"),
                         ceiling_r=float(ceiling.loc[t, "r"]) if ceiling is not None else float("nan")))
    table = pd.DataFrame(rows).set_index("target")
    loro = leave_one_rater_out(ratings, predictions)
    for c in ("loro_kappa", "loro_r", "loro_ceiling_kappa", "loro_ceiling_r"):
        table[c] = loro[c].reindex(table.index) if c in loro.columns else float("nan")
    return table


def leave_one_rater_out(ratings: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Per AU and total, with ``K >= 2`` raters: for each rater ``k``, weighted kappa and Pearson r
    of rater ``k`` and of the predictor against the mean of the other ``K - 1`` raters, on the
    items rater ``k`` scored; averaged over ``k`` (a rater whose comparison is undefined, e.g.
    the others' mean is constant, is left out of the average). Columns ``loro_kappa``, ``loro_r`` (the
    predictor), ``loro_ceiling_kappa``, ``loro_ceiling_r`` (the raters); rows :data:`TARGETS`
    present in ``predictions``; an empty table with fewer than two raters."""
    pred = _as_targets(predictions)
    raters = sorted(ratings["rater"].astype(str).unique())
    if len(raters) < 2:
        return pd.DataFrame(columns=["loro_kappa", "loro_r", "loro_ceiling_kappa", "loro_ceiling_r"])
    rows = []
    for t in TARGETS:
        if t not in pred.columns:
            continue
        m = score_matrix(ratings.assign(rater=ratings["rater"].astype(str)), t)  # items x raters
        x = pred[t].reindex(m.index).to_numpy(dtype=float)
        vals = {k: [] for k in ("loro_kappa", "loro_r", "loro_ceiling_kappa", "loro_ceiling_r")}
        for k in m.columns:
            own = m[k].to_numpy(dtype=float)
            rest = m.drop(columns=k).mean(axis=1, skipna=True).to_numpy(dtype=float)
            ok = ~np.isnan(own) & ~np.isnan(rest) & ~np.isnan(x)  # the same items for both
            vals["loro_kappa"].append(weighted_kappa(x[ok], rest[ok]))
            vals["loro_r"].append(pearson_r(x[ok], rest[ok]))
            vals["loro_ceiling_kappa"].append(weighted_kappa(own[ok], rest[ok]))
            vals["loro_ceiling_r"].append(pearson_r(own[ok], rest[ok]))
        rows.append({"target": t, **{k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                                     for k, v in vals.items()}})
    return pd.DataFrame(rows).set_index("target")


def vs_truth(scores, truth, groups=None, n_boot: int = 0, seed: int = 0, level: float = 0.95) -> dict[str, CI]:
    """Pearson r and RMSE of ``scores`` against a truth vector (same length; NaN pairs dropped),
    with bootstrap CIs over ``groups`` (animal per element) when ``n_boot > 0``."""
    a = np.asarray(scores, dtype=float).ravel()
    b = np.asarray(truth, dtype=float).ravel()
    _pair(a, b)  # length check
    groups = np.arange(len(a)) if groups is None else np.asarray(groups, dtype=object)
    return {name: bootstrap(lambda idx, fn=fn: fn(a[idx], b[idx]), groups, n_boot, seed, level)
            for name, fn in (("r", pearson_r), ("rmse", rmse))}
