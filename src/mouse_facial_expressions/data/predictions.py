"""The predictions table: what training, inference and evaluation exchange (docs/ARCHITECTURE.md,
"Predictions"). One row per scored window."""

#: Columns of ``predictions.csv``.
PREDICTION_COLUMNS = ["fold", "video", "animal", "start_time", "end_time", "label", "p1"]
#: ``fold`` value of a window, video or animal that several folds scored (a fold ensemble).
MIXED_FOLD = -1
