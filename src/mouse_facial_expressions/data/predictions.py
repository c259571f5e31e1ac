"""The predictions table: what training, inference and evaluation exchange (docs/ARCHITECTURE.md,
"Predictions"). One row per scored window."""

from mouse_facial_expressions.io.ratings import AUS

#: Columns of ``predictions.csv``.
PREDICTION_COLUMNS = ["fold", "video", "animal", "start_time", "end_time", "label", "p1"]
#: ``fold`` value of a window, video or animal that several folds scored (a fold ensemble).
MIXED_FOLD = -1
#: Extra columns of a model with Mouse Grimace Scale action-unit heads (``mfe train --targets
#: au|au+class``, models/parts/au.py): the expected score of each AU (0..2) and ``mgs``, their mean.
AU_PREDICTION_COLUMNS = [*(f"au_{a}" for a in AUS), "mgs"]


def au_prediction_columns(scores) -> dict:
    """Expected AU scores ``(N, 5)`` (``AUS`` order) -> ``{au_ot: (N,), ..., au_wc, mgs}``."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    return {**{f"au_{a}": s[:, j] for j, a in enumerate(AUS)}, "mgs": s.mean(axis=1)}


def per_second(scores):
    """A window table (``video, start_time, end_time`` and score columns, one video) -> one row per whole second of video that a window covers: ``video, second`` (the second
    ``[s, s + 1)`` from the video's start), ``coverage`` (seconds of window time in it, summed
    over windows) and each score column (``p1``, ``au_*``, ``mgs``) averaged over the windows
    that overlap that second, weighted by how much of the second each covers. A window is the
    interval between its first and last kept frame; one of zero length counts as a point."""
    value_cols = [c for c in scores.columns if c == "p1" or c.startswith("au_") or c == "mgs"]
    cols = ["video", "second", "coverage", *value_cols]
    import numpy as np
    import pandas as pd

    if not len(scores):
        return pd.DataFrame(columns=cols)
    a = scores["start_time"].to_numpy(float)
    b = np.maximum(scores["end_time"].to_numpy(float), a)
    # (window, second) pairs: each window touches only the few seconds it spans (no seconds x windows matrix)
    lo = np.floor(a).astype(np.int64)
    n = np.floor(b).astype(np.int64) - lo + 1
    win = np.repeat(np.arange(len(a)), n)
    sec = lo[win] + (np.arange(len(win)) - np.repeat(np.cumsum(n) - n, n))
    overlap = np.clip(np.minimum(b[win], sec + 1.0) - np.maximum(a[win], sec), 0, None)
    weight = overlap + 1e-6 * (b[win] == a[win])  # a zero-length window is a point in its one second
    seconds, inv = np.unique(sec, return_inverse=True)
    total = np.bincount(inv, weight, len(seconds))
    keep = total > 0
    values = scores[value_cols].to_numpy(float)[win]  # (pairs, V)
    sums = np.stack([np.bincount(inv, weight * values[:, j], len(seconds)) for j in range(len(value_cols))], axis=1)
    out = pd.DataFrame({"video": scores["video"].iloc[0], "second": seconds[keep],
                        "coverage": np.bincount(inv, overlap, len(seconds))[keep]})
    out[value_cols] = sums[keep] / total[keep, None]
    return out[cols]
