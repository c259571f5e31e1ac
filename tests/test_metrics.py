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


def test_zero_division_gives_zero_like_sklearn():
    y, p = np.array([0, 1, 1]), np.array([0.1, 0.2, 0.3])  # nothing called positive
    assert M.precision(y, p) == skm.precision_score(y, (p >= 0.5).astype(int), zero_division=0) == 0.0
    assert M.f1(y, p) == 0.0


def test_auroc_with_one_class_is_nan():
    assert np.isnan(M.auroc([0, 0, 0], [0.1, 0.5, 0.9]))


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


def test_bootstrap_skips_undefined_resamples():
    # Two animals, one per class: half the resamples have a single class (AUROC undefined).
    df = pd.DataFrame({"animal": ["a", "a", "b", "b"], "label": [0, 0, 1, 1], "p1": [0.1, 0.2, 0.8, 0.9]})
    ci = M.bootstrap_ci(df, "auroc", n=200, seed=0)
    assert ci.value == 1.0
    assert 0 < ci.n_boot < 200


def test_bootstrap_accepts_a_callable_and_rejects_unknown_names():
    df = _animal_table()
    ci = M.bootstrap_ci(df, lambda y, p, t: float(np.mean(p)), n=50)
    assert ci.value == pytest.approx(df["p1"].mean())
    with pytest.raises(ValueError, match="unknown metric"):
        M.bootstrap_ci(df, "acuracy")
