"""Can the cohort be predicted from the score? A rank test and its AUROC on the same animals.

Among animals that should score alike (the controls), the score should not know the recording
cohort. One value per animal (the mean of its rows: an animal's rows are not independent), the
AUROC read off the same ranks the test uses, so an AUROC near 0.5 never stands beside a small
p-value, and the text says what the two numbers say (:func:`predictability_text`).
"""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd

from mouse_facial_expressions.evaluation.shift import ALPHA


def _animal_means(df: pd.DataFrame, cohort: str, score: str) -> pd.DataFrame:
    """One row per (cohort, animal): the mean score of its rows (an animal's rows are not independent)."""
    if "animal" not in df.columns:
        return df[[cohort, score]].assign(**{cohort: df[cohort].astype(str)})
    return df.groupby([df[cohort].astype(str), df["animal"].astype(str)])[score].mean().reset_index()


def cohort_predictability(df: pd.DataFrame, cohort: str = "cohort", score: str = "p1", alpha: float = ALPHA) -> dict:
    """Do the scores tell the cohorts apart? One value per animal (the mean of its rows).

    The AUROC and the p-value come from the same ranks of the same animals, so they cannot
    disagree: with two cohorts the AUROC is ``U / (n_a n_b)`` of the higher-scoring cohort
    against the other (the share of animal pairs it outscores, ties half) and the p-value the
    two-sided Mann-Whitney test of that U (exact without ties), whose smallest attainable value
    is ``2 / C(n_a + n_b, n_a)``; with more cohorts each cohort's AUROC against the rest, the
    one furthest from 0.5 as the headline, and the Kruskal-Wallis test of the same ranks.
    ``separates``: ``p <= alpha``; ``text``: the finding in words (:func:`predictability_text`).
    ``{"available": False, "reason": ...}`` when fewer than two cohorts hold two animals each.
    """
    from scipy import stats

    per = _animal_means(df, cohort, score)
    counts = per[cohort].value_counts()
    usable = counts[counts >= 2]
    if len(usable) < 2:
        return {"available": False, "reason": f"needs >= 2 cohorts with >= 2 animals each, got {counts.to_dict()}"}
    per = per[per[cohort].isin(usable.index)]
    classes = sorted(usable.index)
    x = {c: per.loc[per[cohort] == c, score].to_numpy(float) for c in classes}
    ranks = stats.rankdata(per[score].to_numpy(float))  # (N,) ties averaged
    by = per[cohort].to_numpy()
    n_all = len(per)
    auc = {}  # one-vs-rest: P(an animal of c outscores one of the rest), from c's rank sum
    for c in classes:
        n_c = len(x[c])
        auc[c] = float((ranks[by == c].sum() - n_c * (n_c + 1) / 2) / (n_c * (n_all - n_c)))
    if len(classes) == 2:
        test = stats.mannwhitneyu(x[classes[0]], x[classes[1]], alternative="two-sided")
        test_name, min_p = "Mann-Whitney U", min(1.0, 2.0 / comb(n_all, len(x[classes[0]])))
    else:
        test = stats.kruskal(*x.values())
        test_name, min_p = "Kruskal-Wallis", None
    top = max(classes, key=lambda c: (round(abs(auc[c] - 0.5), 12), auc[c]))  # of two: the higher-scoring one
    higher = auc[top] >= 0.5
    p_value = float(test.pvalue) if np.isfinite(test.pvalue) else 1.0
    out = {
        "available": True, "unit": "animals", "n": int(n_all), "cohorts": [str(c) for c in classes],
        "n_per_cohort": {str(c): int(len(x[c])) for c in classes},
        "auroc": auc[top] if higher else 1.0 - auc[top], "cohort": str(top), "direction": "higher" if higher else "lower",
        "auroc_by_cohort": {str(c): auc[c] for c in classes},
        "test": test_name, "p_value": p_value, "min_p": min_p, "alpha": alpha, "separates": bool(p_value <= alpha),
    }
    out["text"] = predictability_text(out)
    return out


def predictability_text(pred: dict, subset: str | None = None) -> str:
    """:func:`cohort_predictability`'s finding in words, agreeing with its AUROC and p-value."""
    if not pred.get("available"):
        return pred.get("reason", "not available")
    among = f" among {subset}" if subset else ""
    others = "the other cohort" if len(pred["cohorts"]) == 2 else "the other cohorts"
    auc = (f"AUROC {pred['auroc']:.2f}: an animal of cohort {pred['cohort']} scores {pred['direction']} than one of "
           f"{others} in {100 * pred['auroc']:.0f}% of pairs")
    test = f"{pred['test']} p = {pred['p_value']:.2g}"
    if pred["separates"]:
        return (f"The score tells the cohorts apart{among} ({auc}; {test}): part of the score is the cohort, a batch "
                "effect unless the cohorts differ in biology too.")
    if pred.get("min_p") is not None and pred["min_p"] > pred["alpha"]:
        return (f"Too few animals to tell{among}: with {' and '.join(map(str, pred['n_per_cohort'].values()))} animals "
                f"the smallest attainable p is {pred['min_p']:.2g} > {pred['alpha']:.2g} ({auc}; {test}).")
    return (f"No detectable difference between the cohorts{among} ({auc}; {test}): good, the score should not know "
            "the cohort.")
