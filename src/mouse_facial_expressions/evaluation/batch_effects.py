"""Cohort (batch-effect) checks on model outputs.

The original project's model, applied zero-shot to a chronic-stress cohort, reached 45%
accuracy because one recording cohort was called "stressed" for every animal: the model had
learnt the recording conditions, not the face. These checks make that visible:

- per cohort, the positive rate and mean score among *controls* (label 0; for unlabelled data,
  animals whose ``treatment`` is a control treatment; failing both, all animals), with
  bootstrap CIs over animals;
- how well the cohort can be predicted from the model's score among those animals
  (cross-validated logistic regression, against chance, plus a rank test): a score that
  tells cohorts apart among animals that should all score low is a batch effect;
- a loud warning (``logging.warning`` and an entry in ``warnings``) when a cohort's controls
  are called positive across the board.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mouse_facial_expressions.evaluation.metrics import THRESHOLD, bootstrap_ci

log = logging.getLogger(__name__)

#: ``treatment`` values (lower case) that mark controls when labels are absent.
CONTROL_TREATMENTS = ("control", "saline", "vehicle", "sham", "none", "naive", "untreated")


def control_mask(df: pd.DataFrame, control_treatments=CONTROL_TREATMENTS) -> tuple[np.ndarray, str]:
    """Which rows are controls, and how that was decided (``label``/``treatment``/``all``)."""
    if "label" in df.columns and df["label"].notna().any():
        return (df["label"] == 0).to_numpy(), "label"
    if "treatment" in df.columns:
        t = df["treatment"].astype(str).str.strip().str.lower()
        mask = t.isin([c.lower() for c in control_treatments]).to_numpy()
        if mask.any():
            return mask, "treatment"
    return np.ones(len(df), dtype=bool), "all"


def _positive_rate(threshold: float):
    def fn(y, p, thr=threshold):
        p = np.asarray(p, dtype=float)
        return float(np.mean(p >= threshold)) if len(p) else float("nan")

    return fn


def _mean_score(y, p, thr=THRESHOLD):
    p = np.asarray(p, dtype=float)
    return float(p.mean()) if len(p) else float("nan")


def cohort_control_rates(
    controls: pd.DataFrame,
    cohort: str = "cohort",
    threshold: float = THRESHOLD,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per cohort: ``n_animals, n, n_positive, positive_rate(+CI), mean_p1(+CI)`` of the rows given."""
    rows = []
    for name, part in controls.groupby(cohort, sort=True):
        rate = bootstrap_ci(part, _positive_rate(threshold), n=n_boot, seed=seed, label="p1")
        mean = bootstrap_ci(part, _mean_score, n=n_boot, seed=seed, label="p1")
        rows.append(
            {
                "cohort": str(name),
                "n_animals": int(part["animal"].nunique()),
                "n": len(part),
                "n_positive": int((part["p1"] >= threshold).sum()),
                "positive_rate": rate.value,
                "positive_rate_low": rate.low,
                "positive_rate_high": rate.high,
                "mean_p1": mean.value,
                "mean_p1_low": mean.low,
                "mean_p1_high": mean.high,
            }
        )
    return pd.DataFrame(rows)


def cohort_predictability(
    df: pd.DataFrame, cohort: str = "cohort", score: str = "p1", n_splits: int = 5, seed: int = 0
) -> dict:
    """How well the cohort is predicted from the score (one row per animal or animal-label).

    Cross-validated (stratified, ``min(n_splits, smallest cohort)`` folds) logistic regression
    on logit(p1) -> cohort. Returns accuracy and balanced accuracy with their chance levels,
    the cross-validated AUROC, and a rank test of the scores between cohorts (Mann-Whitney
    for two cohorts, Kruskal-Wallis for more). ``{"available": False, "reason": ...}`` when
    there are fewer than two cohorts with two rows each.
    """
    from scipy import stats
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    counts = df[cohort].astype(str).value_counts()
    usable = counts[counts >= 2]
    if len(usable) < 2:
        return {"available": False, "reason": f"needs >= 2 cohorts with >= 2 rows each, got {counts.to_dict()}"}
    part = df[df[cohort].astype(str).isin(usable.index)]
    y = part[cohort].astype(str).to_numpy()
    p = np.clip(part[score].to_numpy(dtype=float), 1e-6, 1 - 1e-6)
    x = np.log(p / (1 - p))[:, None]
    k = int(min(n_splits, usable.min()))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    proba = cross_val_predict(LogisticRegression(), x, y, cv=cv, method="predict_proba")
    classes = np.unique(y)
    pred = classes[proba.argmax(axis=1)]
    if len(classes) == 2:
        auc = roc_auc_score(y == classes[1], proba[:, 1])
        test = stats.mannwhitneyu(p[y == classes[0]], p[y == classes[1]], alternative="two-sided")
        test_name = "Mann-Whitney U"
    else:
        auc = roc_auc_score(y, proba, multi_class="ovr", labels=classes)
        test = stats.kruskal(*[p[y == c] for c in classes])
        test_name = "Kruskal-Wallis"
    return {
        "available": True,
        "n": int(len(y)),
        "cohorts": [str(c) for c in classes],
        "cv_folds": k,
        "accuracy": float(accuracy_score(y, pred)),
        "chance_accuracy": float(counts[usable.index].max() / len(y)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "chance_balanced_accuracy": 1.0 / len(classes),
        "auroc": float(auc),
        "test": test_name,
        "p_value": float(test.pvalue),
    }


def check_batch_effects(
    animals: pd.DataFrame,
    cohort: str = "cohort",
    *,
    threshold: float = THRESHOLD,
    max_positive_rate: float = 0.8,
    max_mean_score: float | None = None,
    min_controls: int = 2,
    n_boot: int = 1000,
    seed: int = 0,
    control_treatments=CONTROL_TREATMENTS,
) -> dict:
    """Run the cohort checks on animal-level predictions and warn on a batch effect.

    A cohort is flagged when, among its controls (at least ``min_controls`` of them), more than
    ``max_positive_rate`` are called positive (``p1 >= threshold``), or their mean score exceeds
    ``max_mean_score`` (default: ``threshold``, i.e. the average control is called positive).

    Args:
        animals: animal-level predictions (``animal, p1``, optional ``label``, ``treatment``)
            with a ``cohort`` column.

    Returns:
        ``{"available", "cohort_column", "controls_from", "threshold", "per_cohort": [rows],
        "predictability": {...}, "warnings": [str], "notes": [str]}``. ``available`` is False
        (with a ``reason``) when there is no cohort column.
    """
    max_mean = threshold if max_mean_score is None else max_mean_score
    result: dict = {
        "available": False,
        "cohort_column": cohort,
        "threshold": threshold,
        "max_positive_rate": max_positive_rate,
        "max_mean_score": max_mean,
        "warnings": [],
        "notes": [],
    }
    if cohort not in animals.columns or animals[cohort].isna().all():
        result["reason"] = (
            f"no {cohort!r} column: add one to the metadata (e.g. treatments.csv) to check for batch effects"
        )
        return result
    df = animals[animals[cohort].notna()]
    mask, how = control_mask(df, control_treatments)
    controls = df[mask]
    who = {"label": "controls (label 0)", "treatment": "control-treated animals", "all": "animals"}[how]
    result.update(available=True, controls_from=how, n_cohorts=int(df[cohort].nunique()))
    if how == "all":
        result["notes"].append("no labels or control treatments known: the check uses all animals")
    rates = cohort_control_rates(controls, cohort, threshold, n_boot, seed)
    result["per_cohort"] = rates.to_dict(orient="records")
    for r in result["per_cohort"]:
        if r["n"] < min_controls:
            result["notes"].append(f"cohort {r['cohort']}: only {r['n']} {who}, not checked")
            continue
        if r["positive_rate"] > max_positive_rate or r["mean_p1"] > max_mean:
            msg = (
                f"BATCH EFFECT? cohort {r['cohort']}: {r['n_positive']}/{r['n']} {who} called positive "
                f"({100 * r['positive_rate']:.0f}%, mean score {r['mean_p1']:.2f}). The model may score "
                f"the recording conditions of this cohort rather than the face; do not trust its "
                f"positives without checking (the original's 45% zero-shot accuracy came from this)."
            )
            result["warnings"].append(msg)
            log.warning(msg)
    pred = cohort_predictability(controls, cohort, seed=seed)
    pred["subset"] = who
    result["predictability"] = pred
    if pred.get("available") and pred["p_value"] < 0.05 and pred["balanced_accuracy"] > pred["chance_balanced_accuracy"] + 0.2:
        result["notes"].append(
            f"the score differs between cohorts among {who} ({pred['test']} p = {pred['p_value']:.3g}; "
            f"cohort predicted from the score with balanced accuracy {pred['balanced_accuracy']:.2f} "
            f"vs chance {pred['chance_balanced_accuracy']:.2f})"
        )
    return result
