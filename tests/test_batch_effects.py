"""The cohort batch-effect check: fires on a constructed case, silent on a balanced one."""

from __future__ import annotations

import logging
from math import comb

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.evaluation.batch_effects import (
    check_batch_effects,
    cohort_predictability,
    control_mask,
)


def _animals(control_score_b: float, seed: int = 0, n_per_cohort: int = 8) -> pd.DataFrame:
    """Animal-level table: in each cohort half the animals are positives (label 1, p ~ .8);
    controls (label 0) score ~ .2 in cohort A and ~ ``control_score_b`` in cohort B."""
    rng = np.random.default_rng(seed)
    rows = []
    for cohort, ctrl in (("A", 0.2), ("B", control_score_b)):
        for i in range(n_per_cohort):
            animal = f"{cohort.lower()}{i}"
            rows.append({"animal": animal, "label": 0, "cohort": cohort, "treatment": "high" if i % 2 else "saline",
                         "p1": float(np.clip(ctrl + rng.normal(0, 0.05), 0, 1))})
            if i % 2:
                rows.append({"animal": animal, "label": 1, "cohort": cohort, "treatment": "high",
                             "p1": float(np.clip(0.8 + rng.normal(0, 0.05), 0, 1))})
    return pd.DataFrame(rows)


def test_warning_fires_when_one_cohort_is_called_positive(caplog):
    with caplog.at_level(logging.WARNING):
        res = check_batch_effects(_animals(control_score_b=0.9), n_boot=50)
    assert len(res["warnings"]) == 1
    assert "cohort B" in res["warnings"][0] and "8/8" in res["warnings"][0]
    assert any(r.levelno == logging.WARNING and "cohort B" in r.getMessage() for r in caplog.records)


def test_balanced_cohorts_stay_silent(caplog):
    with caplog.at_level(logging.WARNING):
        res = check_batch_effects(_animals(control_score_b=0.25), n_boot=50)
    assert res["available"] and res["warnings"] == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_most_controls_positive_fires():
    # 6/8 controls positive (75%, under the old rule's 80% limit) against 0/8 in cohort A.
    df = _animals(control_score_b=0.2)
    ctrl_b = df.index[(df["cohort"] == "B") & (df["label"] == 0)]
    df.loc[ctrl_b, "p1"] = [0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.1, 0.1]
    res = check_batch_effects(df, n_boot=20)
    assert len(res["warnings"]) == 1 and "cohort B" in res["warnings"][0]


def test_per_cohort_rates_and_cis():
    res = check_batch_effects(_animals(control_score_b=0.9), n_boot=50)
    rows = {r["cohort"]: r for r in res["per_cohort"]}
    assert rows["A"]["positive_rate"] == 0.0 and rows["B"]["positive_rate"] == 1.0
    assert rows["B"]["n"] == 8 and rows["B"]["n_animals"] == 8
    assert rows["A"]["mean_p1_low"] <= rows["A"]["mean_p1"] <= rows["A"]["mean_p1_high"]
    assert res["controls_from"] == "label"


def test_cohort_is_predictable_from_a_batch_shifted_score():
    # Controls: 8 animals per cohort, all of B's above all of A's: U = 64 of 64 pairs, and the
    # exact two-sided Mann-Whitney p is its smallest attainable value, 2 / C(16, 8).
    res = check_batch_effects(_animals(control_score_b=0.9), n_boot=10)
    pred = res["predictability"]
    assert pred["available"] and pred["unit"] == "animals" and pred["n"] == 16
    assert pred["auroc"] == 1.0 and pred["cohort"] == "B" and pred["direction"] == "higher"
    assert pred["p_value"] == pytest.approx(2 / comb(16, 8)) and pred["min_p"] == pytest.approx(2 / comb(16, 8))
    assert pred["separates"] and "tells the cohorts apart" in pred["text"] and "100% of pairs" in pred["text"]


def test_cohort_is_not_predictable_from_a_balanced_score():
    pred = check_batch_effects(_animals(control_score_b=0.2, seed=1), n_boot=10)["predictability"]
    assert pred["p_value"] > 0.05 and not pred["separates"]
    assert pred["auroc"] < 0.8 and "No detectable difference" in pred["text"]


def test_predictability_auroc_and_p_come_from_the_same_animals():
    # Two rows per animal, averaged first: A's animals 0.1, 0.3, 0.5, 0.7; B's 0.4, 0.6, 0.8, 0.9.
    # Pairs where B outscores A: 0.4 > 0.1, 0.3; 0.6 > 3; 0.8 > 4; 0.9 > 4 -> U = 13 of 16.
    means = {"a0": 0.1, "a1": 0.3, "a2": 0.5, "a3": 0.7, "b0": 0.4, "b1": 0.6, "b2": 0.8, "b3": 0.9}
    rows = [{"animal": a, "cohort": a[0].upper(), "p1": m + d} for a, m in means.items() for d in (-0.05, 0.05)]
    pred = cohort_predictability(pd.DataFrame(rows))
    assert pred["n"] == 8 and pred["n_per_cohort"] == {"A": 4, "B": 4}
    assert pred["auroc"] == pytest.approx(13 / 16) and pred["cohort"] == "B"
    assert pred["auroc_by_cohort"] == pytest.approx({"A": 3 / 16, "B": 13 / 16})
    # exact two-sided p of U = 13 at 4 vs 4: of the C(8, 4) = 70 rank splits, 1 + 1 + 2 + 3 give
    # U = 16, 15, 14, 13, so 2 * 7 / 70
    assert pred["p_value"] == pytest.approx(14 / 70) and not pred["separates"]
    assert "13/16" not in pred["text"] and "81% of pairs" in pred["text"]


def test_predictability_says_too_few_animals_when_p_cannot_reach_alpha():
    # 2 against 3 animals: the smallest two-sided p is 2 / C(5, 2) = 0.2, even for a clean split.
    df = pd.DataFrame({"animal": list("abcde"), "cohort": ["A", "A", "B", "B", "B"], "p1": [0.1, 0.2, 0.7, 0.8, 0.9]})
    pred = cohort_predictability(df)
    assert pred["auroc"] == 1.0 and pred["min_p"] == pytest.approx(0.2) and pred["p_value"] == pytest.approx(0.2)
    assert not pred["separates"] and pred["text"].startswith("Too few animals to tell")


def test_predictability_of_three_cohorts_uses_one_vs_rest_ranks():
    # ranks: A 1, 2; B 3, 4; C 5, 6. A vs rest: 0 of 8 pairs; C vs rest: 8 of 8 -> headline C, 1.0.
    df = pd.DataFrame({"animal": list("abcdef"), "cohort": list("AABBCC"), "p1": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    pred = cohort_predictability(df)
    assert pred["test"] == "Kruskal-Wallis" and pred["min_p"] is None
    assert pred["auroc_by_cohort"] == pytest.approx({"A": 0.0, "B": 0.5, "C": 1.0})
    assert pred["auroc"] == 1.0 and pred["cohort"] in ("A", "C")


def test_unlabelled_data_uses_control_treatments():
    # Unlabelled: one row per animal; the saline animals' (label-0) rows and the treated
    # animals' post-treatment (label-1) rows, labels removed.
    df = _animals(control_score_b=0.9)
    df = df[(df["label"] == 1) | (df["treatment"] == "saline")].assign(label=np.nan)
    mask, how = control_mask(df)
    assert how == "treatment" and mask.sum() == 8  # the saline animals
    res = check_batch_effects(df, n_boot=10)
    assert res["controls_from"] == "treatment"
    assert len(res["warnings"]) == 1 and "cohort B" in res["warnings"][0]


def test_no_cohort_column_is_reported_not_raised():
    res = check_batch_effects(_animals(0.2).drop(columns="cohort"))
    assert res["available"] is False and "cohort" in res["reason"]
    assert res["warnings"] == []


def test_single_cohort_has_no_predictability():
    pred = cohort_predictability(_animals(0.2).assign(cohort="A"))
    assert pred["available"] is False
