"""Metrics agree with scikit-learn; ECE by hand; bootstrap CIs over animals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from mouse_facial_expressions.evaluation import metrics as M

# Hand-made predictions: ties in p1, a score exactly at the threshold, both kinds of error.
Y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.5, 0.9, 0.65, 0.3, 0.8, 0.2, 0.5, 0.99])
YHAT = (P >= 0.5).astype(int)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (M.accuracy, skm.accuracy_score),
        (M.balanced_accuracy, skm.balanced_accuracy_score),
        (M.f1, skm.f1_score),
        (M.precision, skm.precision_score),
        (M.recall, skm.recall_score),
    ],
)
def test_threshold_metrics_match_sklearn(ours, theirs):
    assert ours(Y, P) == pytest.approx(theirs(Y, YHAT))


def test_auroc_matches_sklearn_with_ties():
    assert M.auroc(Y, P) == pytest.approx(skm.roc_auc_score(Y, P))


def test_confusion_matrix_matches_sklearn():
    np.testing.assert_array_equal(M.confusion_matrix(Y, YHAT), skm.confusion_matrix(Y, YHAT, labels=[0, 1]))


def test_roc_curve_matches_sklearn():
    fpr, tpr, thr = M.roc_curve(Y, P)
    sfpr, stpr, sthr = skm.roc_curve(Y, P, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sfpr)
    np.testing.assert_allclose(tpr, stpr)
    np.testing.assert_allclose(thr[1:], sthr[1:])


def test_other_threshold_matches_sklearn():
    assert M.accuracy(Y, P, threshold=0.7) == pytest.approx(skm.accuracy_score(Y, (P >= 0.7).astype(int)))


def test_precision_without_a_positive_call_is_nan_like_sklearn_zero_division_nan():
    y, p = np.array([0, 1, 1]), np.array([0.1, 0.2, 0.3])  # nothing called positive
    assert np.isnan(M.precision(y, p))
    assert np.isnan(skm.precision_score(y, (p >= 0.5).astype(int), zero_division=np.nan))
    assert M.recall(y, p) == 0.0 and M.f1(y, p) == 0.0  # both positives missed: defined, and 0


def test_recall_f1_and_specificity_are_nan_where_there_is_nothing_to_count():
    controls = np.array([0, 0, 0]), np.array([0.2, 0.7, 0.1])  # one control called positive
    assert np.isnan(M.recall(*controls)) and np.isnan(M.f1(*controls))
    assert M.precision(*controls) == 0.0 and M.specificity(*controls) == pytest.approx(2 / 3)
    assert np.isnan(M.specificity([1, 1], [0.9, 0.2]))
    out = M.binary_metrics(*controls)
    assert np.isnan(out["recall"]) and np.isnan(out["f1"])


def test_auroc_with_one_class_is_nan():
    assert np.isnan(M.auroc([0, 0, 0], [0.1, 0.5, 0.9]))


def test_auroc_with_a_nan_score_is_nan():
    assert np.isnan(M.auroc([0, 1, 0, 1], [0.1, np.nan, 0.4, 0.8]))


def test_metrics_of_no_rows_are_nan_and_count_nothing():
    assert all(np.isnan(M.METRICS[name]([], [])) for name in M.METRICS)
    assert M.binary_metrics([], [])["confusion"] == [[0, 0], [0, 0]]


@pytest.mark.parametrize("name", list(M.METRICS))
def test_bootstrap_metrics_equal_sklearn(name):
    """bootstrap_ci resamples with count-based copies (speed); they must give scikit-learn's numbers,
    also on resamples with one class, ties and every call on one side."""
    rng = np.random.default_rng(0)
    for k in range(60):
        n = int(rng.integers(1, 40))
        y = rng.integers(0, 2, n) if k % 4 else np.full(n, k % 8 // 4)  # every 4th: one class only
        p = np.round(rng.random(n), 1) if k % 3 else rng.random(n)  # ties in two of three
        for threshold in (0.5, 0.3):
            ours, theirs = M._IMPL[name](y, p, threshold), M.METRICS[name](y, p, threshold)
            assert (np.isnan(ours) and np.isnan(theirs)) or abs(ours - theirs) < 1e-12, (k, threshold)


def test_bad_labels_are_rejected():
    with pytest.raises(ValueError, match="0 or 1"):
        M.accuracy([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="differ in length"):
        M.accuracy([0, 1], [0.1])


def test_ece_hand_computed():
    # 2 bins: [0, .5] holds p .1, .2 (mean .15, 1 of 2 positive -> gap .35);
    # (.5, 1] holds p .7, .9 (mean .8, both positive -> gap .2). ECE = .5*.35 + .5*.2 = .275
    y, p = [0, 1, 1, 1], [0.1, 0.2, 0.7, 0.9]
    assert M.expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.275)


def test_ece_of_calibrated_bins_is_zero():
    # Four scores of .75 with 3 positives, four of .25 with 1 positive: every bin is exact.
    y, p = [1, 1, 1, 0, 0, 0, 0, 1], [0.75] * 4 + [0.25] * 4
    assert M.expected_calibration_error(y, p, n_bins=10) == pytest.approx(0.0)


def test_reliability_curve_matches_sklearn_calibration_curve():
    curve = M.reliability_curve(Y, P, n_bins=5)
    frac, mean = calibration_curve(Y, P, n_bins=5)
    np.testing.assert_allclose(curve["frac_pos"], frac)
    np.testing.assert_allclose(curve["mean_p"], mean)
    assert curve["count"].sum() == len(Y)


def test_binary_metrics_has_every_metric_and_counts():
    out = M.binary_metrics(Y, P)
    assert set(M.METRICS) <= set(out)
    assert out["n"] == 12 and out["n_pos"] == 6
    assert out["confusion"] == skm.confusion_matrix(Y, YHAT).tolist()


def _animal_table(seed=0, n_animals=10, per_animal=20):
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(n_animals):
        for label in (0, 1):
            p = np.clip(rng.normal(0.3 + 0.4 * label, 0.2, per_animal), 0, 1)
            rows += [{"animal": f"m{a}", "label": label, "p1": x} for x in p]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("metric", ["accuracy", "auroc", "balanced_accuracy", "ece"])
def test_bootstrap_ci_contains_point_estimate(metric):
    ci = M.bootstrap_ci(_animal_table(), metric, n=300, seed=0)
    assert ci.low <= ci.value <= ci.high
    assert ci.low < ci.high
    assert ci.n_boot == 300


def test_bootstrap_ci_is_deterministic_for_a_seed():
    df = _animal_table()
    a = M.bootstrap_ci(df, "auroc", n=200, seed=7)
    b = M.bootstrap_ci(df, "auroc", n=200, seed=7)
    c = M.bootstrap_ci(df, "auroc", n=200, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)


def test_bootstrap_resamples_animals_not_rows():
    # Each animal's rows are all right or all wrong: row resampling would give a narrow
    # interval around 0.5, animal resampling a wide one (only 4 animals).
    df = pd.DataFrame({"animal": np.repeat(["a", "b", "c", "d"], 50), "label": 1,
                       "p1": np.repeat([0.9, 0.9, 0.1, 0.1], 50)})
    ci = M.bootstrap_ci(df, "accuracy", n=500, seed=0)
    assert ci.value == 0.5
    assert ci.low <= 0.25 and ci.high >= 0.75


def test_bootstrap_counts_undefined_resamples_and_gives_no_interval_when_many():
    # Two animals, one per class: half the resamples have a single class (AUROC undefined).
    df = pd.DataFrame({"animal": ["a", "a", "b", "b"], "label": [0, 0, 1, 1], "p1": [0.1, 0.2, 0.8, 0.9]})
    ci = M.bootstrap_ci(df, "auroc", n=200, seed=0)
    assert ci.value == 1.0
    assert 0 < ci.n_boot < 200 and ci.n_boot + ci.n_undefined == ci.n_resamples == 200
    assert np.isnan(ci.low) and np.isnan(ci.high)
    assert str(ci) == f"1.000 [n/a ({ci.n_undefined} of 200 resamples undefined)]"


def _one_positive_among(n_controls: int) -> pd.DataFrame:
    """One positive animal (caught) among controls (all called negative), 2 rows each."""
    animals = ["pos"] + [f"c{i}" for i in range(n_controls)]
    return pd.DataFrame({"animal": np.repeat(animals, 2), "label": np.repeat([1] + [0] * n_controls, 2),
                         "p1": np.repeat([0.9] + [0.2] * n_controls, 2)})


@pytest.mark.parametrize("metric", ["recall", "f1", "precision"])
def test_resamples_without_a_positive_are_left_out_not_counted_as_zero(metric):
    # 5 animals: a resample misses the positive with probability (4/5)^5 = 0.33. Recall, F1 and
    # precision are 1 whenever defined, so counting undefined resamples as 0 gave [0.000, 1.000].
    df = _one_positive_among(4)
    ci = M.bootstrap_ci(df, metric, n=500, seed=0)
    assert ci.value == 1.0
    assert 0.25 * 500 < ci.n_undefined < 0.42 * 500  # about a third
    assert np.isnan(ci.low) and np.isnan(ci.high)  # more than MAX_UNDEFINED: no interval
    assert "0.000" not in str(ci) and f"n/a ({ci.n_undefined} of 500 resamples undefined)" in str(ci)


def test_a_few_undefined_resamples_are_left_out_and_the_interval_kept():
    # 40 animals: a resample misses the positive with probability (39/40)^40 = 0.36 -- too many;
    # 3 positives among 40 (caught, controls clean): (37/40)^40 = 0.04, below MAX_UNDEFINED.
    df = _one_positive_among(37)
    df.loc[df["animal"].isin(["c0", "c1"]), ["label", "p1"]] = [1, 0.9]
    ci = M.bootstrap_ci(df, "recall", n=500, seed=0)
    assert 0 < ci.n_undefined <= M.MAX_UNDEFINED * 500
    assert ci.low == ci.high == 1.0  # the undefined ones did not enter as 0
    assert str(ci) == f"1.000 [1.000, 1.000] ({ci.n_undefined} of 500 resamples undefined)"


def test_format_ci_reads_na_only_for_the_interval_or_a_lone_dash_for_an_undefined_value():
    assert M.format_ci(0.5, 0.25, 0.75) == "0.500 [0.250, 0.750]"
    assert M.format_ci(0.5, float("nan"), float("nan"), 300, 1000) == "0.500 [n/a (300 of 1000 resamples undefined)]"
    assert M.format_ci(0.5, None, None) == "0.500"  # no bootstrap at all
    assert M.format_ci(float("nan"), float("nan"), float("nan"), 1000, 1000, missing="–") == "–"


def test_bootstrap_accepts_a_callable_and_rejects_unknown_names():
    df = _animal_table()
    ci = M.bootstrap_ci(df, lambda y, p, t: float(np.mean(p)), n=50)
    assert ci.value == pytest.approx(df["p1"].mean())
    with pytest.raises(ValueError, match="unknown metric"):
        M.bootstrap_ci(df, "acuracy")


def test_breakdown_group_of_controls_only_shows_nan_not_zero():
    from mouse_facial_expressions.evaluation.breakdown import group_metrics

    df = pd.DataFrame({"animal": ["c1", "c2", "c3", "p1", "c4"], "label": [0, 0, 0, 1, 0],
                       "p1": [0.2, 0.7, 0.1, 0.8, 0.3], "cohort": ["A", "A", "A", "B", "B"]})
    table = group_metrics(df, "cohort", metrics=("accuracy", "f1", "recall", "precision")).set_index("group")
    assert np.isnan(table.loc["A", "f1"]) and np.isnan(table.loc["A", "recall"])
    assert table.loc["A", "precision"] == 0.0  # c2 was called positive wrongly: defined, and 0
    assert table.loc["A", "accuracy"] == pytest.approx(2 / 3)
    assert table.loc["B", "f1"] == 1.0


def test_breakdown_with_bootstrap_counts_the_undefined_resamples():
    from mouse_facial_expressions.evaluation.breakdown import group_metrics

    df = _one_positive_among(4).assign(cohort="A")
    row = group_metrics(df, "cohort", metrics=("recall",), n_boot=200).iloc[0]
    assert row["recall"] == 1.0 and np.isnan(row["recall_low"])
    assert row["recall_resamples"] == 200 and 0 < row["recall_undefined"] < 200
