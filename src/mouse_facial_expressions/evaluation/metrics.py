"""Binary classification metrics on numpy arrays, and bootstrap CIs over animals.

Every metric takes ``y`` (true labels, 0/1) and ``p`` (predicted probability of class 1) so
that one signature fits all: threshold metrics call a window/video/animal positive when
``p >= threshold``. The functions agree with scikit-learn's and return ``nan`` where a metric
is undefined (scikit-learn's ``zero_division=np.nan``): precision when nothing is called
positive, recall and F1 without positives, specificity without negatives, AUROC with a single
class present. (scikit-learn gives F1 = 0 for negatives only, some called positive; here it
is ``nan``, as recall is: a group of controls says nothing about finding positives.) A 0 there would
read as "always wrong" and drag bootstrap intervals down (see :func:`bootstrap_ci`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

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
    return _cm_counts(y, yp)


# The _impl functions take clean arrays (y: int 0/1, p: float) and skip validation: the public
# functions validate once, and bootstrap_ci calls the _impl functions thousands of times.
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
    if n0 == 0 or n1 == 0:
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


def _public(impl, doc: str):
    def fn(y, p, threshold: float = THRESHOLD) -> float:
        y, p = _arrays(y, p)
        return impl(y, p, threshold)

    fn.__name__ = impl.__name__.lstrip("_")
    fn.__doc__ = doc
    return fn


accuracy = _public(_accuracy, "Fraction of correct calls at ``p >= threshold``.")
precision = _public(_precision, "TP / (TP + FP); ``nan`` when nothing is called positive.")
recall = _public(_recall, "Sensitivity: TP / (TP + FN); ``nan`` without positives.")
specificity = _public(_specificity, "TN / (TN + FP); ``nan`` without negatives.")
f1 = _public(_f1, "2 TP / (2 TP + FP + FN); ``nan`` without positives.")
balanced_accuracy = _public(_balanced_accuracy, "Mean recall over the classes present (scikit-learn's definition).")
auroc = _public(_auroc, "Area under the ROC curve (Mann-Whitney U; ties count one half). ``nan`` with one class.")
brier = _public(_brier, "Mean squared error of p1.")


def roc_curve(y, p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1).

    Returns:
        ``(fpr, tpr, thresholds)``; ``thresholds[0]`` is ``inf``.
    """
    y, p = _arrays(y, p)
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    last = np.r_[np.flatnonzero(np.diff(ps)), len(ps) - 1]  # last index of each distinct score
    tps = np.cumsum(ys)[last]
    fps = (last + 1) - tps
    n1, n0 = max(ys.sum(), 1), max(len(ys) - ys.sum(), 1)
    fpr = np.r_[0.0, fps / n0]
    tpr = np.r_[0.0, tps / n1]
    return fpr, tpr, np.r_[np.inf, ps[last]]


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
    "ece": _public(_ece_impl, "Expected calibration error of p1, 10 equal-width bins."),
    "brier": brier,
}


def binary_metrics(y, p, threshold: float = THRESHOLD) -> dict[str, float]:
    """Every metric in :data:`METRICS` plus ``n``, ``n_pos`` and the confusion matrix."""
    y, p = _arrays(y, p)
    out = {name: fn(y, p, threshold) for name, fn in _IMPL.items()}
    out.update(n=int(len(y)), n_pos=int(y.sum()))
    out["confusion"] = _cm(y, p, threshold).tolist()
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
    if isinstance(metric, str):  # validate once, then use the unchecked implementation
        y, p = _arrays(y, p)
        fn = _IMPL[metric]
    else:
        fn = metric
    value = float(fn(y, p, threshold))
    members = group_rows(df[group])  # rows without a group are in no resample
    stats = bootstrap_stats(lambda idx: fn(y[idx], p[idx], threshold), members, n, seed)
    return percentile_ci(value, stats, level)
