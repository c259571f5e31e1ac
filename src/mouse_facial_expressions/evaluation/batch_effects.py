"""Cohort (batch-effect) checks on model outputs: has a cohort's operating point moved, or its signal?

The original project's model, applied zero-shot to a chronic-stress cohort, reached 45%
accuracy because one recording cohort was called "stressed" for every animal. The ranking
inside that cohort was intact; the scores as a whole had moved, so the fixed threshold called
its controls positive. :func:`check_batch_effects` makes both failure modes visible and tells
them apart. Per cohort it compares, with a *reference*:

- the **controls** (label 0; unlabelled: animals whose ``treatment`` is a control treatment;
  failing both, all animals): shifted **up** = false positives;
- the **positives** (label 1; unlabelled: the other treatments' animals): shifted **down** =
  misses.

The reference is the training animals' cross-validated scores when given (``reference``: a
run's own ``predictions.csv`` at animal level, what ``mfe evaluate RUN --task OTHER`` passes),
else the other cohorts pooled. A direction is flagged when either

- the error rate at the threshold (false positives among controls, misses among positives)
  exceeds the reference's by at least ``min_rate_excess`` (20 points) and a one-sided Fisher
  exact test says the excess is not easily chance (``p <= max_rate_p``, 0.2: lenient on
  purpose, cohorts hold few animals). 1 of 4 or 1 of 3 controls positive (25-33%) against a
  training reference of 0 of 16 or more is flagged; one of 8 is not; or
- the median logit of the animal scores moved by at least ``min_shift_logit`` (1.0, a factor
  2.7 in odds) in that direction with a one-sided Mann-Whitney ``p <= alpha`` (0.05): the
  whole group moved, even where few animals have crossed the threshold yet.

Beside the shift it reports the AUROC *within* the cohort (controls vs positives): high
(>= ``intact_auroc``) with a shift reads "ranking intact, threshold moved" (recalibrate:
``--recalibrate controls|adabn``, or baseline-relative training); near chance
(<= ``lost_auroc``) reads "signal lost" (the model does not transfer: fine-tune with the
cohort's labels). A cohort whose within-cohort AUROC is near chance while the reference's is
high is flagged as "signal lost" even without a shift.

It also keeps the per-cohort control rates with bootstrap CIs over animals and how well the
cohort is predicted from the controls' scores (:func:`cohort_predictability`).
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


#: Defaults of the shift rules (module docstring).
MIN_RATE_EXCESS = 0.2
MAX_RATE_P = 0.2
MIN_SHIFT_LOGIT = 1.0
ALPHA = 0.05
INTACT_AUROC = 0.75
LOST_AUROC = 0.65

#: How the control / positive groups were found -> what the report calls them.
GROUP_NAMES = {
    "label": ("controls (label 0)", "positives (label 1)"),
    "treatment": ("control-treated animals", "treated animals"),
    "all": ("animals", None),
}

VERDICTS = {
    "intact": "ranking intact, threshold moved",
    "weakened": "ranking weakened",
    "lost": "signal lost",
    "unknown": "ranking unknown",
}


def logit(p, eps: float = 1e-6) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [eps, 1 - eps]."""
    p = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    return np.log(p / (1 - p))


def _has_control_treatment(df: pd.DataFrame, control_treatments=CONTROL_TREATMENTS) -> bool:
    if "treatment" not in df.columns:
        return False
    t = df["treatment"].astype(str).str.strip().str.lower()
    return bool(t.isin([c.lower() for c in control_treatments]).any())


def _can_group(df: pd.DataFrame, how: str, control_treatments=CONTROL_TREATMENTS) -> bool:
    if how == "label":
        return "label" in df.columns and df["label"].notna().any()
    if how == "treatment":
        return _has_control_treatment(df, control_treatments)
    return True


def score_groups(animals: pd.DataFrame, how: str, control_treatments=CONTROL_TREATMENTS) -> tuple[pd.Series, pd.Series | None]:
    """The scores (``p1``) of the controls and of the positives of an animal-level table.

    ``how``: ``"label"`` -- rows with label 0 and 1 (one per animal-condition); ``"treatment"``
    -- per animal the mean p1 of its rows, animals with a control treatment against those with
    another known treatment; ``"all"`` -- every row is a "control", no positives (None).
    """
    if animals.empty:
        return pd.Series(dtype=float), (None if how == "all" else pd.Series(dtype=float))
    if how == "label":
        lab = pd.to_numeric(animals["label"], errors="coerce")
        return (animals.loc[lab == 0, "p1"].astype(float).reset_index(drop=True),
                animals.loc[lab == 1, "p1"].astype(float).reset_index(drop=True))
    if how == "treatment":
        t = animals["treatment"]
        known = animals[t.notna() & (t.astype(str).str.strip() != "")]
        if known.empty:
            return pd.Series(dtype=float), pd.Series(dtype=float)
        per = known.groupby("animal").agg(p1=("p1", "mean"), treatment=("treatment", "first"))
        ctrl = per["treatment"].astype(str).str.strip().str.lower().isin([c.lower() for c in control_treatments])
        return per.loc[ctrl, "p1"].astype(float), per.loc[~ctrl, "p1"].astype(float)
    return animals["p1"].astype(float).reset_index(drop=True), None


def _median(x) -> float | None:
    return float(np.median(x)) if len(x) else None


def _within_auroc(controls: pd.Series, positives: pd.Series | None) -> float | None:
    """AUROC of controls (0) vs positives (1) by their scores; None unless both are present."""
    from mouse_facial_expressions.evaluation.metrics import auroc

    if positives is None or not len(controls) or not len(positives):
        return None
    y = np.r_[np.zeros(len(controls)), np.ones(len(positives))]
    return float(auroc(y, np.r_[controls.to_numpy(float), positives.to_numpy(float)]))


def shift_test(x, ref, threshold: float = THRESHOLD, *, up: bool = True, min_n: int = 2,
               min_rate_excess: float = MIN_RATE_EXCESS, max_rate_p: float = MAX_RATE_P,
               min_shift_logit: float = MIN_SHIFT_LOGIT, alpha: float = ALPHA) -> dict:
    """One group's scores ``x`` against the reference group's ``ref``, in one direction.

    ``up=True`` (controls): wrong calls are ``p >= threshold`` (false positives), a shift up is
    bad. ``up=False`` (positives): wrong calls are ``p < threshold`` (misses), a shift down is bad.

    Returns:
        ``n, n_wrong, rate, median_p1`` and, with a non-empty reference, ``n_reference,
        reference_rate, reference_median_p1, shift_logit`` (median logit of ``x`` minus the
        reference's; positive = up), ``shift_p`` (one-sided Mann-Whitney), ``rate_p`` (one-sided
        Fisher exact on the wrong-call counts), ``flagged`` and ``rule`` (``rate``, ``shift``,
        ``rate+shift`` or None).
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    ref = np.asarray(ref, dtype=float)
    n, rn = len(x), len(ref)
    out: dict = {"n": n, "n_wrong": None, "rate": None, "median_p1": _median(x), "n_reference": rn,
                 "reference_rate": None, "reference_median_p1": _median(ref), "shift_logit": None,
                 "shift_p": None, "rate_p": None, "flagged": False, "rule": None}
    if n == 0:
        return out
    wrong = (x >= threshold) if up else (x < threshold)
    out.update(n_wrong=int(wrong.sum()), rate=float(wrong.mean()))
    if rn == 0:
        return out
    rwrong = (ref >= threshold) if up else (ref < threshold)
    k, rk = int(wrong.sum()), int(rwrong.sum())
    shift = float(np.median(logit(x)) - np.median(logit(ref)))
    mw = stats.mannwhitneyu(x, ref, alternative="greater" if up else "less")
    fisher = stats.fisher_exact([[k, n - k], [rk, rn - rk]], alternative="greater")
    shift_p = float(mw.pvalue) if np.isfinite(mw.pvalue) else 1.0
    rate_p = float(fisher.pvalue) if np.isfinite(fisher.pvalue) else 1.0
    excess = k / n - rk / rn
    signed = shift if up else -shift  # > 0: moved the wrong way
    by_rate = n >= min_n and excess >= min_rate_excess - 1e-12 and rate_p <= max_rate_p + 1e-9
    by_shift = n >= min_n and signed >= min_shift_logit and shift_p <= alpha
    rule = "+".join(r for r, on in (("rate", by_rate), ("shift", by_shift)) if on) or None
    out.update(reference_rate=float(rk / rn), shift_logit=shift, shift_p=shift_p, rate_p=rate_p,
               flagged=bool(by_rate or by_shift), rule=rule)
    return out


def verdict_of(auroc: float | None, *, intact_auroc: float = INTACT_AUROC, lost_auroc: float = LOST_AUROC) -> str:
    """The within-cohort AUROC in words: a key of :data:`VERDICTS`."""
    if auroc is None or (isinstance(auroc, float) and np.isnan(auroc)):
        return "unknown"
    if auroc >= intact_auroc:
        return "intact"
    if auroc <= lost_auroc:
        return "lost"
    return "weakened"


def remedy_text(verdict: str, directions: list[str], has_control_animals: bool) -> str:
    """What to do about a flagged cohort, in words (commands included)."""
    # Order: what held best on bench/bench_shift.py's shifted cohorts first (adabn kept the in-cohort
    # accuracy on all of them, on two seeds; controls lowered it on 6 of 9 per seed).
    recal = ["`mfe evaluate RUN --task TASK --recalibrate adabn` (recomputes the backbone's BatchNorm statistics on "
             "this cohort's crops; no labels; the best on the synthetic shift benchmark)"]
    recal.append("`--recalibrate baseline` (moves each animal by its own baseline recording; no labels)")
    if has_control_animals:
        recal.append("`--recalibrate controls` (moves the threshold by as much as this cohort's control animals moved; "
                     "uses their treatment labels"
                     + ("; it helps with the misses only as far as the controls moved too" if "controls_up" not in directions else "")
                     + ")")
    recal.append("or baseline-relative training (`mfe train --baseline-recording 1`)")
    recalibrate = "; ".join(recal)
    finetune = ("retrain or fine-tune with labelled animals of this cohort (`mfe finetune --from RUN --task TASK`)")
    if verdict == "lost":
        return (f"The model does not transfer to this cohort: recalibration moves a threshold and cannot restore a lost "
                f"ranking. {finetune[0].upper() + finetune[1:]}.")
    if verdict == "weakened":
        return (f"Partly both: recalibrate first ({recalibrate}); if the AUROC inside the cohort stays low, {finetune}.")
    if verdict == "unknown":
        return (f"Recalibrate ({recalibrate}), but check the ranking first: with one group only, the AUROC inside this "
                f"cohort is unknown; if the labelled animals rank badly, {finetune}.")
    return f"Recalibrate rather than retrain: {recalibrate}."


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _cohort_message(name: str, row: dict, who: tuple[str, str | None], ref_desc: str) -> str:
    parts = []
    if row["controls_shifted"]:
        c = row["controls"]
        parts.append(
            f"{who[0]} shifted up: {c['n_wrong']}/{c['n']} called positive ({_pct(c['rate'])}) vs "
            f"{_pct(c['reference_rate'])} in {ref_desc}; median score {c['median_p1']:.2f} vs "
            f"{c['reference_median_p1']:.2f} (logit {c['shift_logit']:+.2f}, one-sided Mann-Whitney p = "
            f"{c['shift_p']:.2g}, Fisher p = {c['rate_p']:.2g})")
    if row["positives_shifted"]:
        q = row["positives"]
        parts.append(
            f"{who[1]} shifted down: {q['n_wrong']}/{q['n']} missed ({_pct(q['rate'])}) vs "
            f"{_pct(q['reference_rate'])} in {ref_desc}; median score {q['median_p1']:.2f} vs "
            f"{q['reference_median_p1']:.2f} (logit {q['shift_logit']:+.2f}, one-sided Mann-Whitney p = "
            f"{q['shift_p']:.2g}, Fisher p = {q['rate_p']:.2g})")
    auc, ref_auc = row["auroc"], row["reference_auroc"]
    if row["verdict"] == "unknown":
        rank = "no AUROC inside the cohort (it lacks controls or positives)"
    else:
        rank = (f"inside the cohort, controls vs positives AUROC {auc:.2f}"
                + (f" (reference {ref_auc:.2f})" if ref_auc is not None else "") + ": ")
        rank += {"intact": "the ranking is intact, the operating point (threshold) moved",
                 "weakened": "the ranking is weakened, not only the threshold moved",
                 "lost": "the signal is lost in this cohort (near chance), not just the threshold"}[row["verdict"]]
        if row["verdict"] == "lost" and ref_auc is not None and ref_auc < auc + 0.2:
            rank += " (the reference ranks poorly too: the model itself is weak)"
    if row["signal_lost"] and not parts:
        parts.append("the scores no longer separate the groups")
    return f"COHORT SHIFT, cohort {name}: " + "; ".join(parts) + f". {rank[0].upper() + rank[1:]}. Remedy: {row['remedy']}"


def check_batch_effects(
    animals: pd.DataFrame,
    cohort: str = "cohort",
    *,
    reference: pd.DataFrame | None = None,
    reference_name: str = "the training animals' cross-validated scores",
    default_cohort: str | None = None,
    threshold: float = THRESHOLD,
    min_controls: int = 2,
    min_rate_excess: float = MIN_RATE_EXCESS,
    max_rate_p: float = MAX_RATE_P,
    min_shift_logit: float = MIN_SHIFT_LOGIT,
    alpha: float = ALPHA,
    intact_auroc: float = INTACT_AUROC,
    lost_auroc: float = LOST_AUROC,
    n_boot: int = 1000,
    seed: int = 0,
    control_treatments=CONTROL_TREATMENTS,
) -> dict:
    """Compare each cohort's control and positive scores with a reference; warn on a shift.

    Args:
        animals: animal-level predictions (``animal, p1``, optional ``label``, ``treatment``)
            with a ``cohort`` column.
        reference: animal-level scores of the training animals (a run's cross-validated
            ``predictions.csv`` aggregated to animals, with ``label`` and, when known,
            ``treatment``); without it each cohort is compared with the other cohorts pooled.
        reference_name: how the warnings name ``reference``.
        default_cohort: with a ``reference``, the cohort name of animals without a ``cohort``
            value (e.g. the zero-shot task's name); without it such animals are skipped.
        min_controls: fewest animals in a group for it to be tested (and, for "signal lost",
            in each group).
        min_rate_excess, max_rate_p, min_shift_logit, alpha: the shift rules (module docstring).
        intact_auroc, lost_auroc: within-cohort AUROC at or above which the ranking counts as
            intact, at or below which the signal counts as lost.

    Returns:
        ``{"available", "cohort_column", "threshold", "controls_from", "reference": {...},
        "rules": {...}, "per_cohort": [rows], "flagged": [cohorts], "predictability": {...},
        "warnings": [str], "notes": [str]}``. Each row holds the controls' rates with bootstrap
        CIs (``n, n_positive, positive_rate[_low/_high], mean_p1[_low/_high]``), the
        ``controls`` and ``positives`` comparisons (:func:`shift_test`), ``fp_rate``,
        ``miss_rate``, ``control_shift_logit``, ``positive_shift_logit``, ``auroc`` (within the
        cohort) and ``reference_auroc``, ``controls_shifted``, ``positives_shifted``,
        ``signal_lost``, ``flagged``, ``directions`` (``controls_up``/``positives_down``),
        ``verdict`` (:data:`VERDICTS`: ``verdict_text``) and ``remedy``. ``available`` is False
        (with a ``reason``) when there is no cohort column (and no reference).
    """
    rules = {"min_rate_excess": min_rate_excess, "max_rate_p": max_rate_p, "min_shift_logit": min_shift_logit,
             "alpha": alpha, "intact_auroc": intact_auroc, "lost_auroc": lost_auroc, "min_animals": min_controls}
    result: dict = {"available": False, "cohort_column": cohort, "threshold": threshold, "rules": rules,
                    "warnings": [], "notes": [], "flagged": []}
    df = animals
    if reference is not None and default_cohort is not None:
        df = animals.copy()
        if cohort not in df.columns:
            df[cohort] = default_cohort
        else:
            df[cohort] = df[cohort].astype(object).where(df[cohort].notna(), default_cohort)
    if cohort not in df.columns or df[cohort].isna().all():
        result["reason"] = (
            f"no {cohort!r} column: add one to the metadata (e.g. treatments.csv) to check for batch effects"
        )
        return result
    df = df[df[cohort].notna()].copy()
    df[cohort] = df[cohort].astype(str)
    mask, how = control_mask(df, control_treatments)
    controls = df[mask]
    who = GROUP_NAMES[how]
    names = sorted(df[cohort].unique())
    result.update(available=True, controls_from=how, n_cohorts=len(names),
                  default_cohort=default_cohort if reference is not None else None)
    if how == "all":
        result["notes"].append("no labels or control treatments known: the check uses all animals, and has no "
                               "positives to check for misses")
    if reference is not None and not reference.empty:
        ref_how = how if _can_group(reference, how, control_treatments) else (
            "label" if _can_group(reference, "label") else "all")
        if ref_how != how:
            result["notes"].append(f"the reference has no {how}-based groups: its controls/positives come from its {ref_how}s")
        rc, rp = score_groups(reference, ref_how, control_treatments)
        ref_fixed = (rc, rp if how != "all" else None)
        ref_desc = reference_name
        result["reference"] = {"source": "training", "description": reference_name, "groups_from": ref_how,
                               "n_controls": len(rc), "n_positives": 0 if rp is None else len(rp),
                               "fp_rate": float((rc >= threshold).mean()) if len(rc) else None,
                               "miss_rate": float((rp < threshold).mean()) if rp is not None and len(rp) else None,
                               "control_median_p1": _median(rc), "positive_median_p1": _median(rp) if rp is not None else None,
                               "auroc": _within_auroc(rc, rp)}
    else:
        ref_fixed = None
        ref_desc = "the other cohorts"
        result["reference"] = {"source": "other cohorts", "description": "the other cohorts pooled", "groups_from": how}
        if len(names) == 2:
            result["notes"].append("two cohorts, each compared with the other: a shift of one looks like the opposite "
                                   "shift of the other, so read the two rows together")
        if len(names) < 2:
            result["notes"].append("one cohort and no training reference: nothing to compare its scores with "
                                   "(the within-cohort AUROC is still shown)")
    rates = cohort_control_rates(controls, cohort, threshold, n_boot, seed) if len(controls) else pd.DataFrame()
    rates_by = {r["cohort"]: r for r in rates.to_dict(orient="records")} if len(rates) else {}
    rows = []
    for name in names:
        part = df[df[cohort] == name]
        xc, xp = score_groups(part, how, control_treatments)
        if ref_fixed is not None:
            rc, rp = ref_fixed
        else:
            rc, rp = score_groups(df[df[cohort] != name], how, control_treatments)
        kw = dict(min_n=min_controls, min_rate_excess=min_rate_excess, max_rate_p=max_rate_p,
                  min_shift_logit=min_shift_logit, alpha=alpha)
        c = shift_test(xc, rc, threshold, up=True, **kw)
        q = shift_test(xp if xp is not None else [], rp if rp is not None else [], threshold, up=False, **kw)
        auc, ref_auc = _within_auroc(xc, xp), _within_auroc(rc, rp)
        verdict = verdict_of(auc, intact_auroc=intact_auroc, lost_auroc=lost_auroc)
        enough = xp is not None and len(xc) >= min_controls and len(xp) >= min_controls
        signal_lost = bool(enough and verdict == "lost" and ref_auc is not None and ref_auc >= auc + 0.2)
        directions = [d for d, on in (("controls_up", c["flagged"]), ("positives_down", q["flagged"])) if on]
        flagged = bool(directions or signal_lost)
        base = rates_by.get(name, {"cohort": name, "n_animals": 0, "n": 0, "n_positive": 0, "positive_rate": None,
                                   "positive_rate_low": None, "positive_rate_high": None, "mean_p1": None,
                                   "mean_p1_low": None, "mean_p1_high": None})
        row = {**base, "cohort": name, "controls": c, "positives": q,
               "fp_rate": c["rate"], "reference_fp_rate": c["reference_rate"], "control_shift_logit": c["shift_logit"],
               "miss_rate": q["rate"], "reference_miss_rate": q["reference_rate"],
               "positive_shift_logit": q["shift_logit"], "n_positives": q["n"],
               "auroc": auc, "reference_auroc": ref_auc, "controls_shifted": c["flagged"],
               "positives_shifted": q["flagged"], "signal_lost": signal_lost, "flagged": flagged,
               "directions": directions, "verdict": verdict if flagged else "ok",
               "verdict_text": VERDICTS[verdict] if flagged else "no shift",
               "has_control_animals": _has_control_treatment(part, control_treatments),
               "remedy": None}
        if flagged:
            row["remedy"] = remedy_text(verdict, directions, row["has_control_animals"])
            msg = _cohort_message(name, row, who, ref_desc)
            result["warnings"].append(msg)
            result["flagged"].append(name)
            log.warning(msg)
        else:
            if len(xc) < min_controls:
                result["notes"].append(f"cohort {name}: only {len(xc)} {who[0]}, controls not checked")
            if verdict == "lost" and enough and not signal_lost:
                result["notes"].append(f"cohort {name}: controls vs positives AUROC {auc:.2f}, near chance, as is the "
                                       f"reference's ({'–' if ref_auc is None else f'{ref_auc:.2f}'}): the model ranks "
                                       f"poorly everywhere, not only here")
        rows.append(row)
    result["per_cohort"] = rows
    pred = cohort_predictability(controls, cohort, seed=seed)
    pred["subset"] = who[0]
    result["predictability"] = pred
    if pred.get("available") and pred["p_value"] < 0.05 and pred["balanced_accuracy"] > pred["chance_balanced_accuracy"] + 0.2:
        result["notes"].append(
            f"the score differs between cohorts among {who[0]} ({pred['test']} p = {pred['p_value']:.3g}; "
            f"cohort predicted from the score with balanced accuracy {pred['balanced_accuracy']:.2f} "
            f"vs chance {pred['chance_balanced_accuracy']:.2f})"
        )
    return result
