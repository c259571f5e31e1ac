"""The oracle on true action units, and the truth table without rendering."""

from __future__ import annotations

import pandas as pd
import pytest

from mouse_facial_expressions.synth import truth_table
from mouse_facial_expressions.synth.oracle import oracle_from_truth, oracle_over_seeds, oracle_predictions, video_accuracy


def test_truth_table_is_what_generate_cohort_writes(tiny_cohort):
    written = pd.read_parquet(tiny_cohort / "truth" / "truth.parquet")
    pd.testing.assert_frame_equal(truth_table("tiny", seed=0), written)


def test_oracle_from_truth_rebuilds_the_task_labels_and_folds(tiny8_task):
    from mouse_facial_expressions.data.tasks import load_task

    task = load_task(tiny8_task)
    truth = pd.read_parquet(tiny8_task.parent.parent / "truth" / "truth.parquet")
    from_task = oracle_predictions(truth, task).sort_values("video").reset_index(drop=True)
    rebuilt = oracle_from_truth(truth, task.spec).sort_values("video").reset_index(drop=True)
    pd.testing.assert_frame_equal(from_task, rebuilt)
    assert set(from_task["video"]) == set(task.frames["video"])  # every task video is scored once, as a test video


def test_oracle_scores_only_test_animals_of_each_fold(tiny8_task):
    from mouse_facial_expressions.data.tasks import load_task

    task = load_task(tiny8_task)
    pred = oracle_predictions(pd.read_parquet(tiny8_task.parent.parent / "truth" / "truth.parquet"), task)
    for f in task.folds:
        assert set(pred.loc[pred["fold"] == f["fold"], "animal"]) <= set(f["test"])


def test_video_accuracy_counts_the_threshold_at_one_half():
    pred = pd.DataFrame({"p1": [0.5, 0.49, 0.9, 0.1], "label": [1, 0, 0, 0]})
    assert video_accuracy(pred) == pytest.approx(0.75)


def test_oracle_over_seeds_gives_one_accuracy_per_seed():
    from mouse_facial_expressions.data.tasks import preset

    accs = oracle_over_seeds("tiny", [0, 1], preset("task1", n_folds=2), mice=8)
    assert list(accs.index) == [0, 1] and accs.between(0, 1).all()
