"""The cohort batch-effect check: fires on a constructed case, silent on a balanced one."""

from __future__ import annotations

import logging

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
    res = check_batch_effects(_animals(control_score_b=0.9), n_boot=10)
    pred = res["predictability"]
    assert pred["available"] and pred["balanced_accuracy"] == pytest.approx(1.0)
    assert pred["auroc"] == pytest.approx(1.0) and pred["p_value"] < 0.01


def test_cohort_is_not_predictable_from_a_balanced_score():
    pred = check_batch_effects(_animals(control_score_b=0.2, seed=1), n_boot=10)["predictability"]
    assert pred["p_value"] > 0.05
    assert pred["balanced_accuracy"] < 0.8


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
