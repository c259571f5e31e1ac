"""The predictions table: what training, inference and evaluation exchange (docs/ARCHITECTURE.md,
"Predictions"). One row per scored window."""

from mouse_facial_expressions.io.ratings import AUS

#: Columns of ``predictions.csv``.
PREDICTION_COLUMNS = ["fold", "video", "animal", "start_time", "end_time", "label", "p1"]
#: ``fold`` value of a window, video or animal that several folds scored (a fold ensemble).
MIXED_FOLD = -1
#: Extra columns of a model with Mouse Grimace Scale action-unit heads (``mfe train --targets
#: au|au+class``, models/au.py): the expected score of each AU (0..2) and ``mgs``, their mean.
AU_PREDICTION_COLUMNS = [*(f"au_{a}" for a in AUS), "mgs"]


def au_prediction_columns(scores) -> dict:
    """Expected AU scores ``(N, 5)`` (``AUS`` order) -> ``{au_ot: (N,), ..., au_wc, mgs}``."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    return {**{f"au_{a}": s[:, j] for j, a in enumerate(AUS)}, "mgs": s.mean(axis=1)}
