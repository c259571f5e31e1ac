"""The cohort-shift check against a reference: direction, within-cohort AUROC and remedy.

Score tables are constructed by hand (animal level: one row per animal-condition), so every
rate, AUROC and verdict below can be checked on paper.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.evaluation.batch_effects import check_batch_effects, shift_test

#: Training animals' cross-validated scores: 16 controls well below .5, 16 positives well above.
REFERENCE_CONTROLS = np.linspace(0.05, 0.30, 16)
REFERENCE_POSITIVES = np.linspace(0.70, 0.95, 16)


def _table(cohort: str | None, controls, positives, *, treatment: bool = True) -> pd.DataFrame:
    rows = [{"animal": f"{cohort}c{i}", "label": 0, "treatment": "saline", "p1": float(p)} for i, p in enumerate(controls)]
    rows += [{"animal": f"{cohort}p{i}", "label": 1, "treatment": "high", "p1": float(p)} for i, p in enumerate(positives)]
    df = pd.DataFrame(rows)
    if cohort is not None:
        df["cohort"] = cohort
    if not treatment:
        df = df.drop(columns="treatment")
    return df


def _reference() -> pd.DataFrame:
    return _table(None, REFERENCE_CONTROLS, REFERENCE_POSITIVES).assign(animal=lambda d: "ref_" + d["animal"])


def _check(*tables, **kw) -> dict:
    return check_batch_effects(pd.concat(tables, ignore_index=True), reference=_reference(), n_boot=0, **kw)


def _row(res: dict, cohort: str) -> dict:
    return {r["cohort"]: r for r in res["per_cohort"]}[cohort]


BALANCED = ([0.10, 0.15, 0.20, 0.25], [0.80, 0.85, 0.90, 0.95])


def test_controls_shifted_up_is_flagged_with_ranking_intact_and_recalibration():
    # 3 of 8 controls called positive (38%) against 0 of 16 in training; positives untouched.
    up = _table("U", [0.10, 0.15, 0.20, 0.30, 0.35, 0.55, 0.60, 0.70], [0.80, 0.85, 0.90, 0.95])
    res = _check(up, _table("OK", *BALANCED))
    assert res["flagged"] == ["U"] and res["reference"]["source"] == "training"
    r = _row(res, "U")
    assert r["directions"] == ["controls_up"] and r["controls_shifted"] and not r["positives_shifted"]
    assert r["fp_rate"] == 0.375 and r["reference_fp_rate"] == 0.0
    assert r["controls"]["rule"] == "calls"
    assert r["controls"]["rate_p"] == pytest.approx(56 / 2024)  # Fisher: P(all 3 FPs among these 8 of 24)
    assert r["auroc"] == 1.0 and r["reference_auroc"] == 1.0
    assert r["verdict"] == "intact" and r["verdict_text"] == "ranking intact, threshold moved"
    assert "--recalibrate controls" not in r["remedy"] and "--recalibrate adabn" in r["remedy"]
    assert "--baseline-recording 1" in r["remedy"] and "finetune" not in r["remedy"]
    (w,) = res["warnings"]
    assert "cohort U" in w and "3/8" in w and "shifted up" in w and "AUROC 1.00" in w
    assert "ranking is intact" in w and "recording conditions" not in w


def test_one_odd_control_of_three_is_not_flagged_but_two_are():
    # 1 of 3 against 0 of 16: Fisher p = 3/19 = 0.16, one odd animal
    r = _row(_check(_table("T", [0.10, 0.20, 0.60], [0.80, 0.90, 0.95])), "T")
    assert not r["flagged"] and r["fp_rate"] == pytest.approx(1 / 3) and r["controls"]["rate_p"] == pytest.approx(3 / 19)
    # 2 of 3: p = C(3, 2) / C(19, 2) = 3/171
    res = _check(_table("T", [0.10, 0.55, 0.60], [0.80, 0.90, 0.95]))
    r = _row(res, "T")
    assert res["flagged"] == ["T"] and r["directions"] == ["controls_up"]
    assert r["controls"]["rate_p"] == pytest.approx(3 / 171)


def test_positives_shifted_down_is_flagged_as_misses():
    down = _table("D", [0.05, 0.10, 0.15, 0.20], [0.30, 0.35, 0.40, 0.55])
    res = _check(down, _table("OK", *BALANCED))
    assert res["flagged"] == ["D"]
    r = _row(res, "D")
    assert r["directions"] == ["positives_down"] and not r["controls_shifted"]
    assert r["miss_rate"] == 0.75 and r["reference_miss_rate"] == 0.0
    assert r["positive_shift_logit"] < -1 and r["positives"]["shift_p"] < 0.05
    assert r["auroc"] == 1.0 and r["verdict"] == "intact"
    assert "--recalibrate adabn" in r["remedy"] and "--recalibrate controls" not in r["remedy"]
    (w,) = res["warnings"]
    assert "positives (label 1) shifted down: 3/4 missed (75%)" in w


def test_lost_signal_is_flagged_with_finetuning():
    # Controls and positives interleave around .5: 9 of 16 pairs ordered right. 2 of 4 controls
    # positive (Fisher p = 6/190): flagged; 1 of 4 positives missed (p = 4/20): not.
    lost = _table("L", [0.30, 0.45, 0.55, 0.70], [0.35, 0.50, 0.60, 0.65])
    res = _check(lost, _table("OK", *BALANCED))
    assert res["flagged"] == ["L"]
    r = _row(res, "L")
    assert r["auroc"] == pytest.approx(9 / 16) and r["reference_auroc"] == 1.0
    assert r["verdict"] == "lost" and r["signal_lost"]
    assert r["directions"] == ["controls_up"]
    assert "mfe finetune" in r["remedy"] and "--recalibrate" not in r["remedy"]
    assert "signal is lost" in res["warnings"][0]


def test_missed_positives_without_ranking_read_as_lost_not_as_threshold():
    # Both groups sit where training put the controls: every positive is missed, as in the
    # shift-down case, but here they no longer rank above the controls: a lost signal.
    flat = _table("F", [0.10, 0.20, 0.26, 0.28], [0.12, 0.22, 0.24, 0.29])
    res = _check(flat)
    r = _row(res, "F")
    assert r["directions"] == ["positives_down"] and r["miss_rate"] == 1.0
    assert r["auroc"] == pytest.approx(9 / 16) and r["signal_lost"] and r["verdict"] == "lost"
    assert "mfe finetune" in r["remedy"] and "--recalibrate" not in r["remedy"]


def test_balanced_cohorts_are_not_flagged():
    res = _check(_table("A", *BALANCED), _table("B", [0.05, 0.12, 0.22, 0.28], [0.72, 0.83, 0.88, 0.93]))
    assert res["warnings"] == [] and res["flagged"] == []
    for c in ("A", "B"):
        r = _row(res, c)
        assert not r["flagged"] and r["verdict"] == "ok" and r["remedy"] is None
        assert r["auroc"] == 1.0  # reported for unflagged cohorts too
        assert r["fp_rate"] == 0.0 and r["miss_rate"] == 0.0


def test_a_single_odd_control_is_not_a_shift():
    # 1 of 8 (12.5%): under the 20-point excess, and the median did not move.
    res = _check(_table("S", [0.08, 0.10, 0.12, 0.15, 0.18, 0.20, 0.25, 0.60], [0.80, 0.90]))
    assert res["flagged"] == [] and _row(res, "S")["fp_rate"] == 0.125


def test_no_control_treatment_means_no_recalibrate_controls():
    up = _table("U", [0.55, 0.60, 0.65, 0.70], [0.80, 0.85, 0.90, 0.95], treatment=False)
    res = check_batch_effects(up, reference=_reference().drop(columns="treatment"), n_boot=0)
    r = _row(res, "U")
    assert r["directions"] == ["controls_up"] and not r["has_control_animals"]
    assert "--recalibrate controls" not in r["remedy"] and "--recalibrate adabn" in r["remedy"]


def test_zero_shot_task_without_cohort_column_is_one_cohort():
    up = _table(None, [0.55, 0.60, 0.65, 0.70], [0.80, 0.85, 0.90, 0.95])
    assert check_batch_effects(up, n_boot=0)["available"] is False  # no cohort, no reference: as before
    res = check_batch_effects(up, reference=_reference(), default_cohort="task-2", n_boot=0)
    assert res["available"] and res["flagged"] == ["task-2"]
    assert _row(res, "task-2")["controls_shifted"]


def test_unlabelled_cohort_groups_by_treatment():
    up = _table("U", [0.55, 0.60, 0.65, 0.70], [0.80, 0.85, 0.90, 0.95]).assign(label=np.nan)
    res = check_batch_effects(up, reference=_reference(), n_boot=0)
    assert res["controls_from"] == "treatment" and res["reference"]["groups_from"] == "treatment"
    r = _row(res, "U")
    assert r["directions"] == ["controls_up"] and r["auroc"] == 1.0
    assert "control-treated animals shifted up: 4/4" in res["warnings"][0]


def test_without_a_reference_the_other_cohorts_are_pooled():
    a, b = _table("A", *BALANCED), _table("B", [0.12, 0.14, 0.18, 0.22], [0.78, 0.86, 0.9, 0.92])
    c = _table("C", [0.60, 0.70, 0.80, 0.90], [0.85, 0.90, 0.95, 0.97])
    res = check_batch_effects(pd.concat([a, b, c], ignore_index=True), n_boot=0)
    assert res["reference"]["source"] == "other cohorts"
    assert res["flagged"] == ["C"] and _row(res, "C")["directions"] == ["controls_up"]


def test_shift_test_directions_and_rules():
    ref = np.linspace(0.05, 0.30, 16)
    up = shift_test([0.6, 0.7, 0.8, 0.9], ref, up=True)
    assert up["flagged"] and up["rule"] == "calls" and up["shift_logit"] > 2
    same = shift_test(ref[::2], ref, up=True)
    assert not same["flagged"] and same["rate"] == 0.0
    # positives: a shift up is no miss
    assert not shift_test([0.95, 0.97, 0.99], np.linspace(0.7, 0.95, 16), up=False)["flagged"]
    assert shift_test([], ref)["n"] == 0
