"""When the cohort-shift warning fires, and which remedy it names (issue 29, item 6).

It fires only when calls change (controls called positive, positives missed) beyond the
reference, by an exact test that can reach significance at the animal counts at hand; its
remedy fits the setting. Score tables are animal level and made by hand.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mouse_facial_expressions.evaluation.batch_effects import check_batch_effects
from mouse_facial_expressions.evaluation.shift import fisher_greater, fisher_min_p, remedy_text, shift_test

#: Training animals' cross-validated scores: 16 controls well below .5, 16 positives well above.
REFERENCE_CONTROLS = np.linspace(0.05, 0.30, 16)
REFERENCE_POSITIVES = np.linspace(0.70, 0.95, 16)


def _table(cohort: str | None, controls, positives) -> pd.DataFrame:
    rows = [{"animal": f"{cohort}c{i}", "label": 0, "treatment": "saline", "p1": float(p)} for i, p in enumerate(controls)]
    rows += [{"animal": f"{cohort}p{i}", "label": 1, "treatment": "high", "p1": float(p)} for i, p in enumerate(positives)]
    df = pd.DataFrame(rows)
    return df if cohort is None else df.assign(cohort=cohort)


def _reference() -> pd.DataFrame:
    return _table(None, REFERENCE_CONTROLS, REFERENCE_POSITIVES).assign(animal=lambda d: "ref_" + d["animal"])


def _zero_shot(table: pd.DataFrame, **kw) -> dict:
    return check_batch_effects(table, reference=_reference(), default_cohort="task-2", n_boot=0, **kw)


#: Both groups moved more than one logit towards the threshold, yet every call is right.
MOVED_CLEAN = ([0.30, 0.35, 0.40, 0.45], [0.52, 0.55, 0.58, 0.60])
#: Every control called positive (ranking intact).
CONTROLS_UP = ([0.55, 0.60, 0.65, 0.70], [0.80, 0.85, 0.90, 0.95])


# ----------------------------------------------------------------------------- the exact test

def test_fisher_matches_scipy_and_its_smallest_attainable_p():
    for k, n, rk, rn in [(2, 3, 0, 16), (1, 4, 0, 16), (3, 8, 1, 16), (3, 3, 0, 3), (0, 4, 2, 16)]:
        want = stats.fisher_exact([[k, n - k], [rk, rn - rk]], alternative="greater").pvalue
        assert fisher_greater(k, n, rk, rn) == pytest.approx(want, rel=1e-12)
    assert fisher_greater(2, 3, 0, 16) == pytest.approx(3 / 171)
    assert fisher_min_p(3, 3) == pytest.approx(1 / 20)  # 3 against 3: 0.05 at best
    assert fisher_min_p(1, 16) == pytest.approx(1 / 17)  # one animal can never reach 0.05
    assert fisher_min_p(2, 3) == pytest.approx(1 / comb(5, 2))
    assert fisher_min_p(0, 16) == 1.0


def test_a_comparison_that_cannot_reach_alpha_is_never_flagged():
    # 2 of 2 wrong against 0 of 3: as extreme as it gets, p = 1 / C(5, 2) = 0.1 > 0.05
    d = shift_test([0.8, 0.9], [0.1, 0.2, 0.3], up=True)
    assert d["rate"] == 1.0 and d["rate_p"] == pytest.approx(0.1) and d["min_p"] == pytest.approx(0.1)
    assert not d["testable"] and not d["flagged"]


def test_too_few_animals_is_a_note_not_a_warning():
    # in-cohort: cohort A's 2 controls both called positive, cohort B's 3 none
    a = _table("A", [0.7, 0.8], [0.9, 0.95])
    b = _table("B", [0.1, 0.2, 0.3], [0.8, 0.85, 0.9])
    res = check_batch_effects(pd.concat([a, b], ignore_index=True), n_boot=0)
    assert res["warnings"] == [] and res["flagged"] == []
    assert any("cohort A" in n and "too few animals" in n and "0.1" in n for n in res["notes"])


# ----------------------------------------------------------------------------- no calls changed, no warning

def test_scores_that_moved_without_changing_a_call_raise_no_warning():
    res = _zero_shot(_table("X", *MOVED_CLEAN))
    r = res["per_cohort"][0]
    # the scores did move: more than a logit each way, with one-sided Mann-Whitney p < 0.05 ...
    assert r["control_shift_logit"] > 1 and r["controls"]["shift_p"] < 0.05
    assert r["positive_shift_logit"] < -1 and r["positives"]["shift_p"] < 0.05
    # ... but every animal is still called right: nothing to warn about
    assert r["fp_rate"] == 0.0 and r["miss_rate"] == 0.0
    assert res["warnings"] == [] and res["flagged"] == [] and r["remedy"] is None


def test_in_cohort_clean_ordering_of_three_against_three_raises_no_warning():
    # B's controls sit above A's (Mann-Whitney p = 0.05, the smallest 3 vs 3 allows) but below .5
    a = _table("A", [0.05, 0.10, 0.15], [0.80, 0.85, 0.90])
    b = _table("B", [0.30, 0.35, 0.40], [0.60, 0.65, 0.70])
    res = check_batch_effects(pd.concat([a, b], ignore_index=True), n_boot=0)
    assert res["setting"] == "in-cohort"
    b_row = {r["cohort"]: r for r in res["per_cohort"]}["B"]
    assert b_row["controls"]["shift_p"] == pytest.approx(0.05)
    assert res["warnings"] == [] and res["flagged"] == []


def test_a_recalibrated_clean_result_says_nothing():
    res = _zero_shot(_table("X", *MOVED_CLEAN), recalibrated="adabn")
    assert res["warnings"] == [] and all(r["remedy"] is None for r in res["per_cohort"])


# ----------------------------------------------------------------------------- the remedy fits the setting

def test_in_cohort_remedy_never_names_task_or_recalibration():
    # 3 of 3 controls positive in A against 0 of 3 in B: p = 1/20, attainable at 3 vs 3
    a = _table("A", [0.6, 0.7, 0.8], [0.9, 0.92, 0.95])
    b = _table("B", [0.1, 0.2, 0.3], [0.8, 0.85, 0.9])
    res = check_batch_effects(pd.concat([a, b], ignore_index=True), n_boot=0)
    assert res["flagged"] == ["A"]
    remedy = {r["cohort"]: r for r in res["per_cohort"]}["A"]["remedy"]
    assert "--task" not in remedy and "--recalibrate" not in remedy and "In-cohort" in remedy
    assert "--baseline-recording 1" in remedy
    rel = check_batch_effects(pd.concat([a, b], ignore_index=True), n_boot=0, relative=True)
    remedy = {r["cohort"]: r for r in rel["per_cohort"]}["A"]["remedy"]
    assert "--baseline-recording" not in remedy and "baseline-relative already" in remedy


def test_zero_shot_remedy_recommends_adabn_not_controls():
    res = _zero_shot(_table("X", *CONTROLS_UP))
    (w,) = res["warnings"]
    assert "Remedy: Recalibrate rather than retrain: `mfe evaluate RUN --task TASK --recalibrate adabn`" in w
    assert "--recalibrate controls" not in w and "--baseline-recording 1" in w


def test_raw_warning_after_a_recalibration_that_cleared_it_says_so():
    res = _zero_shot(_table("X", *CONTROLS_UP), recalibrations={"adabn": []})
    (w,) = res["warnings"]
    assert "Remedy: Already applied: `--recalibrate adabn` (run here) leaves no shift" in w
    assert "Recalibrate rather than retrain" not in w


def test_a_recalibration_that_left_the_shift_is_not_suggested_again():
    for kw in ({"recalibrated": "adabn"}, {"recalibrations": {"adabn": ["X"]}}):
        remedy = _zero_shot(_table("X", *CONTROLS_UP), **kw)["per_cohort"][0]["remedy"]
        assert remedy.startswith("`--recalibrate adabn` did not remove the shift")
        assert "--recalibrate adabn` (" not in remedy and "--recalibrate baseline" in remedy


def test_baseline_relative_run_is_not_told_to_become_baseline_relative():
    remedy = _zero_shot(_table("X", *CONTROLS_UP), relative=True)["per_cohort"][0]["remedy"]
    assert "--recalibrate adabn" in remedy
    assert "--baseline-recording" not in remedy and "--recalibrate baseline" not in remedy
    # with adabn tried as well, only fine-tuning is left
    text = remedy_text("intact", relative=True, recalibrated="adabn")
    assert "mfe finetune" in text and "baseline" not in text


def test_remedy_rejects_an_unknown_setting():
    with pytest.raises(ValueError, match="setting"):
        _zero_shot(_table("X", *CONTROLS_UP), setting="sideways")


def test_in_cohort_evaluation_knows_a_baseline_relative_run(tmp_path):
    import json

    from mouse_facial_expressions.report.runs import _run_is_relative

    assert not _run_is_relative(tmp_path)  # no params.json
    (tmp_path / "params.json").write_text(json.dumps({"baseline_recording": None}))
    assert not _run_is_relative(tmp_path)
    (tmp_path / "params.json").write_text(json.dumps({"baseline_recording": 1}))
    assert _run_is_relative(tmp_path)
