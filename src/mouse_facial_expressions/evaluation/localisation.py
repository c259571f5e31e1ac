"""Window-level localisation against synthetic truth: does a window's score find the bouts?

With ``mfe synth --bout-fraction F`` a treated animal's face is affected only during bouts
(truth column ``bout``). A model trained on video labels may still score every window of a
sick video alike; :func:`localisation_auroc` asks whether the windows in a bout score higher
than the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def window_bout_fraction(pred: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """Fraction of each prediction window's truth frames that are in a bout.

    Args:
        pred: predictions (``video, start_time, end_time`` at least; times in seconds of the
            trimmed video, as the frame store's and the truth table's ``time``).
        truth: ``truth/truth.parquet`` (``video, time`` and ``bout``; without ``bout``, the
            cohort had no bouts: every frame of a ``label_true`` video counts as in one).

    Returns:
        Float Series aligned with ``pred``'s index (NaN where the window covers no truth frame).
    """
    if "bout" in truth.columns:
        flag = truth["bout"].astype(bool)
    else:
        flag = truth["label_true"].astype(int) == 1
    times = {v: (g["time"].to_numpy(np.float64), flag.loc[g.index].to_numpy(np.float64))
             for v, g in truth.groupby(truth["video"].astype(str))}
    out = np.full(len(pred), np.nan)
    videos = pred["video"].astype(str).to_numpy()
    start = pred["start_time"].to_numpy(np.float64)
    end = pred["end_time"].to_numpy(np.float64)
    for k, (v, a, b) in enumerate(zip(videos, start, end)):
        if v not in times:
            continue
        t, on = times[v]
        lo, hi = np.searchsorted(t, a - 1e-6, "left"), np.searchsorted(t, b + 1e-6, "right")
        if hi > lo:
            out[k] = on[lo:hi].mean()
    return pd.Series(out, index=pred.index, name="bout_fraction")


def localisation_auroc(pred: pd.DataFrame, truth: pd.DataFrame, score: str = "p1", scope: str = "positive",
                       threshold: float = 0.5) -> float:
    """AUROC of the window score against bout-on (``window_bout_fraction >= threshold``).

    Args:
        pred: window predictions (``video, start_time, end_time`` and ``score``).
        truth: the cohort's truth table.
        score: the column to rank by.
        scope: ``positive``: only windows of videos whose true label is 1 (``label_true``):
            does the model find *when* a sick animal shows it, the question weak supervision
            asks; ``all``: every window (controls' and baselines' windows count as off-bout, so
            video-level discrimination also counts).
        threshold: a window is "on" when at least this fraction of its frames is in a bout.

    Returns:
        The AUROC, or NaN when the windows are all on or all off.
    """
    from sklearn.metrics import roc_auc_score

    if scope not in ("positive", "all"):
        raise ValueError(f"scope must be 'positive' or 'all', got {scope!r}")
    frac = window_bout_fraction(pred, truth)
    keep = frac.notna()
    if scope == "positive":
        sick = truth.groupby(truth["video"].astype(str))["label_true"].first()
        keep &= pred["video"].astype(str).map(sick).fillna(0).astype(int).eq(1)
    y = (frac[keep] >= threshold).astype(int)
    if y.nunique() < 2:
        return float("nan")
    return float(roc_auc_score(y, pred.loc[keep, score].to_numpy(np.float64)))
