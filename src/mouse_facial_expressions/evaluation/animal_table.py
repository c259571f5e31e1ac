"""``animal_scores.csv``: one row per animal-condition, in words, ready for Excel or Prism.

An animal-condition is one animal in one labelled condition (e.g. m3 at baseline and m3 when
sick are two rows): the unit the animal-level metrics count. Each row has the animal's score
(the mean window ``p1`` of its videos in that condition, rounded), a 95% bootstrap CI of that
mean over its windows, the condition and the call as class names, whether the call is right,
and the counts and metadata needed to plot it without reshaping.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mouse_facial_expressions.bootstrap import draw_groups, percentile_ci

DEFAULT_CLASS_NAMES = ("class 0", "class 1")
METADATA = ("treatment", "cohort", "sex", "recording")


def _ci(p: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[float, float]:
    """95% CI of the mean of ``p`` over its windows (each window its own group); none from one window."""
    if len(p) < 2 or n_boot <= 0:
        return float("nan"), float("nan")
    ci = percentile_ci(float(p.mean()), p[draw_groups(len(p), n_boot, rng)].mean(axis=1))  # (n_boot,)
    return ci.low, ci.high


def animal_scores_table(windows: pd.DataFrame, animals: pd.DataFrame, class_names=DEFAULT_CLASS_NAMES,
                        threshold: float = 0.5, n_boot: int = 1000, seed: int = 0, digits: int = 3) -> pd.DataFrame:
    """The wide per-animal table.

    Args:
        windows: window predictions (``animal``, ``label``, ``p1``).
        animals: the animal level (``evaluation.aggregate.to_animal``: ``animal, label, p1,
            n_videos, n_windows, fold`` and constant metadata).
        class_names: names of label 0 and label 1 (the task's ``class_names``).
        threshold: ``p1`` at or above it calls class 1.

    Returns:
        ``animal, condition, score, score_low, score_high, called, correct, n_videos,
        n_windows, fold`` and the metadata columns present (``treatment, cohort, sex,
        recording``); ``condition``/``correct`` are empty for unlabelled rows.
    """
    names = list(class_names)
    rng = np.random.default_rng(seed)
    rows = []
    for r in animals.to_dict(orient="records"):
        labelled = r["label"] is not None and not pd.isna(r["label"])
        mask = windows["animal"].astype(str) == str(r["animal"])
        mask &= (windows["label"] == r["label"]) if labelled else windows["label"].isna()
        lo, hi = _ci(windows.loc[mask, "p1"].to_numpy(float), n_boot, rng)
        called = int(r["p1"] >= threshold)
        row = {"animal": r["animal"], "condition": names[int(r["label"])] if labelled else "",
               "score": round(float(r["p1"]), digits), "score_low": round(lo, digits), "score_high": round(hi, digits),
               "called": names[called], "correct": ("yes" if called == int(r["label"]) else "no") if labelled else "",
               "n_videos": int(r["n_videos"]), "n_windows": int(r["n_windows"]), "fold": r.get("fold")}
        row.update({c: r[c] for c in METADATA if c in r})
        rows.append(row)
    return pd.DataFrame(rows)
