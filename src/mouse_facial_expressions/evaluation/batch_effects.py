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
else the other cohorts pooled. A direction is flagged only when the calls change: more wrong
calls at the threshold (false positives among controls, misses among positives) than the
reference shows, by at least 20 points and a one-sided Fisher exact ``p <= 0.05`` whose
smallest attainable value at these animal counts is itself ``<= 0.05``
(:mod:`evaluation.shift`). Scores that moved without crossing the threshold warn of nothing.

Beside the shift it reports the AUROC *within* the cohort (controls vs positives): high
(>= ``intact_auroc``) with a shift reads "ranking intact, threshold moved" (recalibrate);
near chance (<= ``lost_auroc``) reads "signal lost" (the model does not transfer: fine-tune
with the cohort's labels). A cohort whose within-cohort AUROC is near chance while the
reference's is high is flagged as "signal lost" even without a shift. The remedy fits the
setting (:func:`evaluation.shift.remedy_text`): in-cohort or zero-shot, before or after a
recalibration, absolute or baseline-relative run.

It also keeps the per-cohort control rates with bootstrap CIs over animals and whether the
controls' scores tell the cohorts apart (:func:`cohort_predictability`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mouse_facial_expressions.evaluation.metrics import THRESHOLD, bootstrap_ci
from mouse_facial_expressions.evaluation.predictability import cohort_predictability, predictability_text  # noqa: F401
from mouse_facial_expressions.evaluation.shift import (ALPHA, INTACT_AUROC, LOST_AUROC, MIN_RATE_EXCESS, VERDICTS,  # noqa: F401
                                                       _pct, cohort_message, logit, remedy_text, shift_test, verdict_of)

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


#: How the control / positive groups were found -> what the report calls them.
GROUP_NAMES = {
    "label": ("controls (label 0)", "positives (label 1)"),
    "treatment": ("control-treated animals", "treated animals"),
    "all": ("animals", None),
}

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


def _within_auroc(controls: pd.Series, positives: pd.Series | None) -> float | None:
    """AUROC of controls (0) vs positives (1) by their scores; None unless both are present."""
    from mouse_facial_expressions.evaluation.metrics import auroc

    if positives is None or not len(controls) or not len(positives):
        return None
    y = np.r_[np.zeros(len(controls)), np.ones(len(positives))]
    return float(auroc(y, np.r_[controls.to_numpy(float), positives.to_numpy(float)]))


def _setting_of(setting: str | None, reference, default_cohort) -> str:
    if setting is not None:
        if setting not in ("in-cohort", "zero-shot"):
            raise ValueError(f"setting must be 'in-cohort' or 'zero-shot', got {setting!r}")
        return setting
    return "zero-shot" if reference is not None or default_cohort is not None else "in-cohort"


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
    alpha: float = ALPHA,
    intact_auroc: float = INTACT_AUROC,
    lost_auroc: float = LOST_AUROC,
    n_boot: int = 1000,
    seed: int = 0,
    control_treatments=CONTROL_TREATMENTS,
    setting: str | None = None,
    relative: bool = False,
    recalibrated: str | None = None,
    recalibrations: dict[str, list[str]] | None = None,
) -> dict:
    """Compare each cohort's control and positive scores with a reference; warn when calls change.

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
        min_rate_excess, alpha: the shift rule (:mod:`evaluation.shift`).
        intact_auroc, lost_auroc: within-cohort AUROC at or above which the ranking counts as
            intact, at or below which the signal counts as lost.
        setting: ``"in-cohort"`` or ``"zero-shot"`` (default: zero-shot when a ``reference``
            or ``default_cohort`` is given); ``relative``: the run is baseline-relative;
            ``recalibrated``: these scores come from ``--recalibrate <method>``;
            ``recalibrations``: raw zero-shot scores: per recalibration run alongside, the
            cohorts it left flagged. All four only shape the remedy (:func:`evaluation.shift.remedy_text`).

    Returns:
        ``{"available", "cohort_column", "threshold", "setting", "controls_from", "reference": {...},
        "rules": {...}, "per_cohort": [rows], "flagged": [cohorts], "predictability": {...},
        "warnings": [str], "notes": [str]}``. Each row holds the controls' rates with bootstrap
        CIs (``n, n_positive, positive_rate[_low/_high], mean_p1[_low/_high]``), the
        ``controls`` and ``positives`` comparisons (:func:`evaluation.shift.shift_test`),
        ``fp_rate``, ``miss_rate``, ``control_shift_logit``, ``positive_shift_logit``, ``auroc``
        (within the cohort) and ``reference_auroc``, ``controls_shifted``, ``positives_shifted``,
        ``signal_lost``, ``flagged``, ``directions`` (``controls_up``/``positives_down``),
        ``verdict`` (:data:`VERDICTS`: ``verdict_text``) and ``remedy``. ``available`` is False
        (with a ``reason``) when there is no cohort column (and no reference).
    """
    setting = _setting_of(setting, reference, default_cohort)
    rules = {"min_rate_excess": min_rate_excess, "alpha": alpha, "test": "one-sided Fisher exact on wrong calls",
             "intact_auroc": intact_auroc, "lost_auroc": lost_auroc, "min_animals": min_controls}
    result: dict = {"available": False, "cohort_column": cohort, "threshold": threshold, "rules": rules,
                    "setting": setting, "warnings": [], "notes": [], "flagged": []}
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
                               "control_median_p1": float(np.median(rc)) if len(rc) else None,
                               "positive_median_p1": float(np.median(rp)) if rp is not None and len(rp) else None,
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
        kw = dict(min_n=min_controls, min_rate_excess=min_rate_excess, alpha=alpha)
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
            cleared = sorted(m for m, still in (recalibrations or {}).items() if name not in still)
            row["remedy"] = remedy_text(verdict, setting=setting, relative=relative, recalibrated=recalibrated,
                                        tried=sorted(recalibrations or {}), cleared_by=cleared)
            msg = cohort_message(name, row, who, ref_desc)
            result["warnings"].append(msg)
            result["flagged"].append(name)
            log.warning(msg)
        else:
            for d, group in ((c, who[0]), (q, who[1])):
                if (group is not None and d["n_wrong"] and d["reference_rate"] is not None
                        and d["rate"] > d["reference_rate"] and not d["testable"]):
                    result["notes"].append(
                        f"cohort {name}: {d['n']} {group} against {d['n_reference']} in {ref_desc}: too few animals "
                        f"to test (the smallest attainable p, {d['min_p']:.2g}, exceeds {alpha:.2g}); "
                        f"{d['n_wrong']}/{d['n']} wrong here vs {_pct(d['reference_rate'])} there")
            if verdict == "lost" and enough and not signal_lost:
                result["notes"].append(f"cohort {name}: controls vs positives AUROC {auc:.2f}, near chance, as is the "
                                       f"reference's ({'–' if ref_auc is None else f'{ref_auc:.2f}'}): the model ranks "
                                       f"poorly everywhere, not only here")
        rows.append(row)
    result["per_cohort"] = rows
    pred = cohort_predictability(controls, cohort, alpha=alpha)
    pred["subset"] = who[0]
    if pred.get("available"):
        pred["text"] = predictability_text(pred, who[0])  # the report shows it in its own section
    result["predictability"] = pred
    return result

