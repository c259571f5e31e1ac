"""The bootstrap, in one place: resampling groups (animals) with replacement and the percentile CI.

Every interval of the project comes from here: the metrics' CIs over animals
(``evaluation.metrics.bootstrap_ci``), the MGS agreement CIs (``evaluation.mgs``), the paired run
comparison (``evaluation.compare``), the CI of an animal's score over its windows
(``evaluation.animal_table``) and the region occlusion CIs (``inference.occlusion``). It is pure
numpy and sits below every stage, so evaluation and inference (siblings that may not import each
other) both use it.

* :func:`group_rows`: the rows of each group (animal), groups in sorted order.
* :func:`draw_groups`: ``n`` resamples of group numbers, one ``rng.integers`` call (the random
  stream every caller shares: resample ``b`` takes groups ``draws[b]``).
* :func:`resample_groups`: the row indices of each resample; :func:`bootstrap_stats`: a statistic
  on each; :func:`bootstrap`: a statistic's :class:`CI`.
* :func:`percentile_ci`: the interval from resampled statistics. Undefined resamples (``nan``:
  AUROC with one class, recall without a positive animal, ...) are left out and counted; past
  :data:`MAX_UNDEFINED` of them the interval reads n/a (:func:`format_ci`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Largest fraction of bootstrap resamples where the metric may be undefined and still give an
#: interval. The percentiles of the defined resamples describe only resamples that happen to hold
#: (say) a positive animal; past this fraction that is no longer the population the point
#: estimate speaks for, so the interval reads n/a.
MAX_UNDEFINED = 0.10

#: A seed, or a generator shared by several bootstraps (each draws from it in turn).
Seed = int | np.random.Generator


def format_ci(value, low, high, n_undefined: int | None = 0, n_resamples: int | None = 0, digits: int = 3,
              missing: str = "n/a") -> str:
    """``value [low, high]`` as text, saying how many resamples were undefined.

    ``missing`` alone stands for an undefined point estimate. Without an interval, ``n/a (k of n
    resamples undefined)`` when resamples were undefined, else the value alone (no bootstrap).
    """
    def absent(v) -> bool:  # None, NaN or pd.NA (JSON null, an empty table cell)
        return v is None or v is pd.NA or np.isnan(float(v))

    def num(v) -> str:
        return missing if absent(v) else f"{float(v):.{digits}f}"

    def count(c) -> int:  # no count (a cell without a bootstrap) is 0
        return 0 if absent(c) else int(c)

    k, n = count(n_undefined), count(n_resamples)
    undefined = f"{k} of {n} resamples undefined"
    if num(value) == missing:  # undefined on the data itself: an interval would say nothing more
        return missing
    if num(low) == missing or num(high) == missing:
        return f"{num(value)} [n/a ({undefined})]" if k else num(value)
    return f"{num(value)} [{num(low)}, {num(high)}]" + (f" ({undefined})" if k else "")


@dataclass(frozen=True)
class CI:
    """A point estimate with its bootstrap percentile interval.

    ``low``/``high`` are ``nan`` without resamples, or when more than :data:`MAX_UNDEFINED` of
    them left the metric undefined (the interval reads n/a, with the count).
    """

    value: float
    low: float
    high: float
    n_boot: int  # resamples where the metric was defined
    n_undefined: int = 0  # resamples where it was not (left out of the percentiles)

    @property
    def n_resamples(self) -> int:
        return self.n_boot + self.n_undefined

    def as_dict(self) -> dict:
        """``value, low, high, n_undefined, n_resamples``: the form results files keep."""
        return {"value": self.value, "low": self.low, "high": self.high,
                "n_undefined": self.n_undefined, "n_resamples": self.n_resamples}

    def __str__(self) -> str:
        return format_ci(self.value, self.low, self.high, self.n_undefined, self.n_resamples)


def percentile_ci(value: float, stats: np.ndarray, level: float = 0.95,
                  max_undefined: float = MAX_UNDEFINED) -> CI:
    """The :class:`CI` of ``value`` from bootstrap statistics, ``nan`` where undefined.

    Undefined resamples are left out of the percentiles and counted; if they are more than
    ``max_undefined`` of all, there is no interval (``low = high = nan``).
    """
    stats = np.asarray(stats, dtype=float)
    ok = stats[~np.isnan(stats)]
    n_undefined = int(len(stats) - len(ok))
    if len(ok) == 0 or n_undefined > max_undefined * len(stats):
        return CI(value, float("nan"), float("nan"), int(len(ok)), n_undefined)
    a = (1.0 - level) / 2.0
    low, high = np.percentile(ok, [100 * a, 100 * (1 - a)])
    return CI(value, float(low), float(high), int(len(ok)), n_undefined)


def group_rows(keys, *, missing: str = "drop") -> list[np.ndarray]:
    """Row indices of each group of ``keys`` (animal per row), the groups in sorted key order.

    Args:
        keys: one group key per row.
        missing: rows without a key (None/NaN): ``"drop"`` leaves them out of every group (keys
            sort as they are); ``"alone"`` makes each its own group (keys then sort as text).
    """
    if missing == "alone":
        keys = pd.Series(keys).reset_index(drop=True)
        keys = keys.where(keys.notna(), pd.Series([f"__row{i}" for i in range(len(keys))])).astype(str)
    elif missing != "drop":
        raise ValueError(f"missing must be 'drop' or 'alone', got {missing!r}")
    codes, uniques = pd.factorize(pd.Series(keys), sort=True)  # a missing key gets code -1: in no group
    return [np.flatnonzero(codes == g) for g in range(len(uniques))]


def draw_groups(n_groups: int, n: int, seed: Seed = 0) -> np.ndarray:
    """``(n, n_groups)`` group numbers: resample ``b`` draws ``n_groups`` groups with replacement.

    ``seed`` may be a generator shared with other bootstraps; one ``integers`` call is made.
    """
    return np.random.default_rng(seed).integers(0, n_groups, size=(n, n_groups))


def resample_groups(members: Sequence[np.ndarray], n: int, seed: Seed = 0) -> Iterator[np.ndarray]:
    """The row indices of ``n`` resamples: all rows of a drawn group, as often as it is drawn."""
    for draw in draw_groups(len(members), n, seed):
        yield np.concatenate([members[g] for g in draw])


def bootstrap_stats(stat: Callable[[np.ndarray], float], members: Sequence[np.ndarray], n: int,
                    seed: Seed = 0) -> np.ndarray:
    """``stat(rows)`` on each of ``n`` group resamples (``nan`` where undefined); empty without
    resamples or groups (then nothing is drawn from ``seed``)."""
    if n <= 0 or not len(members):
        return np.empty(0)
    return np.array([stat(rows) for rows in resample_groups(members, n, seed)], dtype=float)


def bootstrap(stat: Callable[[np.ndarray], float], groups, n: int = 1000, seed: Seed = 0,
              level: float = 0.95, *, missing: str = "alone") -> CI:
    """Percentile bootstrap CI of ``stat(rows)`` (``rows``: an index array into the data),
    drawing the groups of ``groups`` (animal per row; None/NaN: the row alone, see
    :func:`group_rows`) with replacement. The point estimate is ``stat`` on all grouped rows.
    """
    members = group_rows(groups, missing=missing)
    value = float(stat(np.sort(np.concatenate(members)) if members else np.arange(0)))
    return percentile_ci(value, bootstrap_stats(stat, members, n, seed), level)
