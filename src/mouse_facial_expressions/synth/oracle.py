"""The oracle: how well the true action units separate a task, the ceiling for a pixel model.

A logistic regression on each video's mean true action units (``truth/truth.parquet``),
fitted on the training + validation animals of each outer fold and scored on the fold's test
animals, exactly as a model would be. :func:`oracle_predictions` uses a task folder's labels
and folds; :func:`oracle_from_truth` rebuilds both from a truth table and a task spec (same
rules, same fold function and seed), so :func:`oracle_over_seeds` can average the oracle over
many synthetic cohorts without rendering them (:func:`~mouse_facial_expressions.synth.truth_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AU = ["au_orbital", "au_ear", "au_nose", "au_cheek", "au_whisker"]


def _fit_predict(feats: pd.DataFrame, folds: list[dict]) -> pd.DataFrame:
    """Per fold: fit on train + val animals' videos, predict the test animals' videos."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = []
    animal = feats["animal"].astype(str)
    for f in folds:
        fit = feats[animal.isin(list(map(str, list(f["train"]) + list(f["val"]))))]
        test = feats[animal.isin(list(map(str, f["test"])))]
        clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(fit[AU], fit["label"])
        rows.append(test.assign(p1=clf.predict_proba(test[AU])[:, 1], fold=f["fold"])[["fold", "video", "animal", "label", "p1"]])
    return pd.concat(rows, ignore_index=True)


def oracle_predictions(truth: pd.DataFrame, task) -> pd.DataFrame:
    """Video-level oracle p1 on a task folder's videos and folds (``task``: ``data.tasks.load_task``).

    Returns:
        ``fold, video, animal, label, p1``, one row per test video.
    """
    labels = task.frames.groupby("video").agg(animal=("animal", "first"), label=("label", "first"))
    feats = truth.groupby("video")[AU].mean().join(labels, how="inner").reset_index()
    return _fit_predict(feats, task.folds)


def oracle_from_truth(truth: pd.DataFrame, spec) -> pd.DataFrame:
    """Video-level oracle p1 with labels and folds made from ``truth`` by the task ``spec``
    (``data.tasks.TaskSpec``: rules, exclusions, n_folds, val_fraction, seed)."""
    from mouse_facial_expressions.data import folds as F
    from mouse_facial_expressions.data.rules import apply_rules

    meta = truth.groupby("video").agg(animal=("animal", "first"), recording=("recording", "first"),
                                      treatment=("treatment", "first"), cohort=("cohort", "first"))
    meta = meta[~meta["animal"].isin(spec.exclude_animals) & ~meta.index.isin(spec.exclude_videos)]
    label = apply_rules(meta, spec.rules, where="the truth table's videos")
    meta = meta[label.notna()].assign(label=label[label.notna()].astype(int))
    feats = truth.groupby("video")[AU].mean().join(meta[["animal", "label"]], how="inner").reset_index()
    folds = F.make_folds(F.animal_labels(feats), spec.n_folds, spec.val_fraction, spec.seed)
    return _fit_predict(feats, folds)


def video_accuracy(pred: pd.DataFrame) -> float:
    """Share of videos with ``(p1 >= 0.5) == label``."""
    return float(((pred["p1"] >= 0.5).astype(int) == pred["label"].astype(int)).mean())


def oracle_over_seeds(preset: str, seeds, spec, **overrides) -> pd.Series:
    """Oracle video accuracy of ``mfe synth --preset <preset> --seed S`` for each seed (index: seed)."""
    from mouse_facial_expressions.synth.cohort import truth_table

    return pd.Series({int(s): video_accuracy(oracle_from_truth(truth_table(preset, seed=int(s), **overrides), spec))
                      for s in seeds}, name="oracle_video_acc", dtype=np.float64)
