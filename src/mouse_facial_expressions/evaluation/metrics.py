"""Binary classification metrics on numpy arrays, and bootstrap CIs over animals.

Every metric takes ``y`` (true labels, 0/1) and ``p`` (predicted probability of class 1) so
that one signature fits all: threshold metrics call a window/video/animal positive when
``p >= threshold``. The functions agree with scikit-learn's and return ``nan`` where a metric
is undefined (scikit-learn's ``zero_division=np.nan``): precision when nothing is called
positive, recall and F1 without positives, specificity without negatives, AUROC with a single
class present. (scikit-learn gives F1 = 0 for negatives only, some called positive; here it
is ``nan``, as recall is: a group of controls says nothing about finding positives.) A 0 there would
read as "always wrong" and drag bootstrap intervals down (see :func:`bootstrap_ci`).

The point metrics are scikit-learn's (``sklearn.metrics``). Own code remains for what it lacks:
the expected calibration error and the reliability table with bin edges and counts, the
bootstrap over animals, and count-based copies of the metrics for that bootstrap (a
scikit-learn metric call costs about 1 ms in input checks, 1000 times a bincount; an interval
needs 1000 of them per metric and level). A test holds the copies equal to scikit-learn.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

# The bootstrap lives in one place (mouse_facial_expressions.bootstrap); its CI and text are
# re-exported here, where the evaluation and report code has always found them.
from mouse_facial_expressions.bootstrap import (  # noqa: F401 (CI, MAX_UNDEFINED, format_ci: re-exports)
    CI, MAX_UNDEFINED, bootstrap_stats, format_ci, group_rows, percentile_ci)

#: Decision threshold on p1 used when none is given.
THRESHOLD = 0.5


def _arrays(y, p=None) -> tuple[np.ndarray, np.ndarray | None]:
    y = np.asarray(y, dtype=float).ravel()
    if np.isnan(y).any():
        raise ValueError("labels contain NaN: drop unlabelled rows before computing metrics")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"labels must be 0 or 1, got {np.unique(y)[:10]}")
    if p is None:
        return y.astype(int), None
    p = np.asarray(p, dtype=float).ravel()
    if p.shape != y.shape:
        raise ValueError(f"labels ({y.shape[0]}) and scores ({p.shape[0]}) differ in length")
    return y.astype(int), p


def _safe_div(a: float, b: float) -> float:
    """``a / b``, or ``nan`` (undefined, not 0) when ``b`` is 0."""
    return float(a) / float(b) if b else float("nan")


def confusion_matrix(y, y_pred) -> np.ndarray:
    """2x2 counts: rows = true class (0, 1), columns = predicted class (0, 1)."""
    y, _ = _arrays(y)
    yp, _ = _arrays(y_pred)
    if y.shape != yp.shape:
        raise ValueError(f"labels ({y.shape[0]}) and predictions ({yp.shape[0]}) differ in length")
    if not len(y):  # scikit-learn refuses empty input; no rows, no counts
        return np.zeros((2, 2), dtype=np.int64)
    return skm.confusion_matrix(y, yp, labels=[0, 1])


# Own code: count-based metrics for bootstrap_ci, which calls them thousands of times (see the
# module docstring: scikit-learn's input checks would make an interval take seconds). They take
# clean arrays (y: int 0/1, p: float), skip validation, and equal scikit-learn's metrics
# (tests/test_metrics.py::test_bootstrap_metrics_equal_sklearn).
def _cm_counts(y: np.ndarray, yp: np.ndarray) -> np.ndarray:
    return np.bincount(2 * y + yp, minlength=4).reshape(2, 2)


def _cm(y: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    return _cm_counts(y, (p >= threshold).astype(int))


def _accuracy(y, p, threshold):
    cm = _cm(y, p, threshold)
    return _safe_div(np.trace(cm), cm.sum())


def _precision(y, p, threshold):
    cm = _cm(y, p, threshold)
    return _safe_div(cm[1, 1], cm[:, 1].sum())


def _recall(y, p, threshold):
    cm = _cm(y, p, threshold)
    return _safe_div(cm[1, 1], cm[1].sum())


def _specificity(y, p, threshold):
    cm = _cm(y, p, threshold)
    return _safe_div(cm[0, 0], cm[0].sum())


def _f1(y, p, threshold):
    cm = _cm(y, p, threshold)
    if not cm[1].sum():  # no positives: recall is undefined, so is their harmonic mean
        return float("nan")
    return _safe_div(2 * cm[1, 1], 2 * cm[1, 1] + cm[0, 1] + cm[1, 0])


def _balanced_accuracy(y, p, threshold):
    cm = _cm(y, p, threshold)
    rows = cm.sum(axis=1)
    present = rows > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(cm)[present] / rows[present]))


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks starting at 1, ties get their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=float)
    # Boundaries of runs of equal values.
    starts = np.r_[0, np.flatnonzero(np.diff(xs)) + 1]
    ends = np.r_[starts[1:], len(x)]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _auroc(y, p, threshold=THRESHOLD):
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n0 == 0 or n1 == 0 or np.isnan(p).any():
        return float("nan")
    r = _ranks(p)
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n0 * n1))


def _bin_ids(p: np.ndarray, n_bins: int) -> np.ndarray:
    # Equal-width bins over [0, 1], closed on the right like scikit-learn's calibration_curve:
    # bin 0 = [0, 1/n], bin i = (i/n, (i+1)/n].
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], p)


def _ece_impl(y, p, threshold=THRESHOLD, n_bins: int = 10):
    if len(y) == 0:
        return float("nan")
    ids = _bin_ids(p, n_bins)
    gap = np.abs(np.bincount(ids, weights=y, minlength=n_bins) - np.bincount(ids, weights=p, minlength=n_bins))
    return float(gap.sum() / len(y))  # sum_b (n_b / N) |frac_pos_b - mean_p_b| = sum_b |S_y - S_p| / N


def _brier(y, p, threshold=THRESHOLD):
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def _undefined_is_nan(fn):
    """``fn`` on validated arrays, ``nan`` on empty input (scikit-learn raises there), and
    without scikit-learn's warnings for the undefined cases this module answers with ``nan``."""
    def metric(y, p, threshold: float = THRESHOLD) -> float:
        y, p = _arrays(y, p)
        if not len(y):
            return float("nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            # balanced accuracy with one class in y (and perhaps in the calls): the mean over the classes present
            warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
            warnings.filterwarnings("ignore", "A single label was found")
            return float(fn(y, p, threshold))

    metric.__name__ = fn.__name__
    metric.__doc__ = fn.__doc__
    return metric


def _calls(p: np.ndarray, threshold: float) -> np.ndarray:
    return (p >= threshold).astype(int)


@_undefined_is_nan
def accuracy(y, p, threshold):
    """Fraction of correct calls at ``p >= threshold``."""
    return skm.accuracy_score(y, _calls(p, threshold))


@_undefined_is_nan
def precision(y, p, threshold):
    """TP / (TP + FP); ``nan`` when nothing is called positive."""
    return skm.precision_score(y, _calls(p, threshold), labels=[0, 1], zero_division=np.nan)


@_undefined_is_nan
def recall(y, p, threshold):
    """Sensitivity: TP / (TP + FN); ``nan`` without positives."""
    return skm.recall_score(y, _calls(p, threshold), labels=[0, 1], zero_division=np.nan)


@_undefined_is_nan
def specificity(y, p, threshold):
    """TN / (TN + FP); ``nan`` without negatives."""
    return skm.recall_score(y, _calls(p, threshold), labels=[0, 1], pos_label=0, zero_division=np.nan)


@_undefined_is_nan
def f1(y, p, threshold):
    """2 TP / (2 TP + FP + FN); ``nan`` without positives."""
    if not y.any():  # scikit-learn says 0 when a control is called positive; recall is undefined, so is F1
        return float("nan")
    return skm.f1_score(y, _calls(p, threshold), labels=[0, 1], zero_division=np.nan)


@_undefined_is_nan
def balanced_accuracy(y, p, threshold):
    """Mean recall over the classes present (scikit-learn's definition)."""
    return skm.balanced_accuracy_score(y, _calls(p, threshold))


@_undefined_is_nan
def auroc(y, p, threshold=THRESHOLD):
    """Area under the ROC curve (ties count one half). ``nan`` with one class or a NaN score."""
    if y.min() == y.max() or np.isnan(p).any():  # undefined; scikit-learn warns (one class) or raises (NaN)
        return float("nan")
    return skm.roc_auc_score(y, p)


@_undefined_is_nan
def brier(y, p, threshold=THRESHOLD):
    """Mean squared error of p1; ``nan`` with a NaN score."""
    if np.isnan(p).any():  # scikit-learn raises on NaN
        return float("nan")
    return skm.brier_score_loss(y, p, pos_label=1)


def roc_curve(y, p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1).

    Returns:
        ``(fpr, tpr, thresholds)``; ``thresholds[0]`` is ``inf``.
    """
    y, p = _arrays(y, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fpr, tpr, thresholds = skm.roc_curve(y, p, pos_label=1, drop_intermediate=False)
    # With one class scikit-learn's rate for the missing class is nan; it stays 0 here, as before.
    return np.nan_to_num(fpr, nan=0.0), np.nan_to_num(tpr, nan=0.0), thresholds


def reliability_curve(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Reliability diagram data with equal-width bins over p1.

    Returns:
        One row per non-empty bin: ``bin_low, bin_high, mean_p`` (mean predicted probability),
        ``frac_pos`` (observed fraction of class 1), ``count``. ``mean_p`` and ``frac_pos``
        equal scikit-learn's ``calibration_curve(y, p, n_bins=n_bins)``.
    """
    y, p = _arrays(y, p)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if len(p) and (p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    ids = _bin_ids(p, n_bins)
    count = np.bincount(ids, minlength=n_bins)
    sum_p = np.bincount(ids, weights=p, minlength=n_bins)
    sum_y = np.bincount(ids, weights=y, minlength=n_bins)
    keep = count > 0
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame(
        {
            "bin_low": edges[:-1][keep],
            "bin_high": edges[1:][keep],
            "mean_p": sum_p[keep] / count[keep],
            "frac_pos": sum_y[keep] / count[keep],
            "count": count[keep].astype(int),
        }
    )


def expected_calibration_error(y, p, n_bins: int = 10) -> float:
    """ECE of p1 with equal-width bins: sum over bins of (n_b / N) * |frac_pos_b - mean_p_b|.

    This is the calibration of the class-1 probability (the quantity users read as "the
    score"), the binary form of the reliability diagram. ``nan`` on empty input.
    """
    y, p = _arrays(y, p)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    return _ece_impl(y, p, n_bins=n_bins)


#: The count-based copies bootstrap_ci resamples with (own code: see the module docstring).
_IMPL: dict[str, Callable[..., float]] = {
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "auroc": _auroc,
    "f1": _f1,
    "precision": _precision,
    "recall": _recall,
    "specificity": _specificity,
    "ece": _ece_impl,
    "brier": _brier,
}

#: Named metrics, each ``f(y, p, threshold) -> float``; the order is the report's order.
#: ``ece`` uses 10 equal-width bins here.
METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "balanced_accuracy": balanced_accuracy,
    "auroc": auroc,
    "f1": f1,
    "precision": precision,
    "recall": recall,
    "specificity": specificity,
    "ece": lambda y, p, threshold=THRESHOLD: expected_calibration_error(y, p),  # 10 bins; the threshold plays no part
    "brier": brier,
}


def binary_metrics(y, p, threshold: float = THRESHOLD) -> dict[str, float]:
    """Every metric in :data:`METRICS` plus ``n``, ``n_pos`` and the confusion matrix."""
    y, p = _arrays(y, p)
    out = {name: fn(y, p, threshold) for name, fn in METRICS.items()}
    out.update(n=int(len(y)), n_pos=int(y.sum()))
    out["confusion"] = confusion_matrix(y, _calls(p, threshold)).tolist()
    return out


def bootstrap_ci(
    df: pd.DataFrame,
    metric: str | Callable[..., float],
    group: str = "animal",
    n: int = 1000,
    seed: int = 0,
    *,
    label: str = "label",
    score: str = "p1",
    threshold: float = THRESHOLD,
    level: float = 0.95,
) -> CI:
    """Percentile bootstrap CI of a metric, resampling ``group`` (animals) with replacement.

    All rows of a drawn animal enter the resample together (as often as the animal is
    drawn), so the interval reflects variation between animals, not between windows.
    Resamples where the metric is undefined (AUROC with one class, recall without a positive
    animal, ...) are left out and counted in ``CI.n_undefined``; when they are more than
    :data:`MAX_UNDEFINED` of all, the interval is n/a (``low = high = nan``). ``CI.n_boot``
    says how many resamples were used.

    Args:
        df: rows with columns ``group``, ``label`` and ``score``.
        metric: a name in :data:`METRICS` or ``f(y, p, threshold) -> float``.
        n: number of resamples (0 gives ``low = high = nan``).
        seed: seed of the resampling, so the interval is reproducible.
    """
    if isinstance(metric, str) and metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    for col in (group, label, score):
        if col not in df.columns:
            raise ValueError(f"bootstrap_ci: missing column {col!r}")
    y = df[label].to_numpy(dtype=float)
    p = df[score].to_numpy(dtype=float)
    if isinstance(metric, str):  # the point value is scikit-learn's; resamples use the count-based copy
        value = float(METRICS[metric](y, p, threshold))
        y, p = _arrays(y, p)
        fn = _IMPL[metric]
    else:
        fn = metric
        value = float(fn(y, p, threshold))
    members = group_rows(df[group])  # rows without a group are in no resample
    stats = bootstrap_stats(lambda idx: fn(y[idx], p[idx], threshold), members, n, seed)
    return percentile_ci(value, stats, level)
