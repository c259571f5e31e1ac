"""``mfe evaluate RUN --task OTHER``: zero-shot fold ensemble on another task."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from mouse_facial_expressions.report.runs import report_zeroshot

torch.set_num_threads(1)
pytestmark = pytest.mark.slow


def test_labelled_task_gives_full_metrics_over_every_animal(run, tmp_path):
    res = report_zeroshot(run.run_dir, run.task_dir, tmp_path, n_boot=20, report=False)
    assert set(res["metrics"]) == {"window", "video", "animal"}
    assert res["metrics"]["animal"]["accuracy"]["value"] is not None
    pred = pd.read_csv(tmp_path / "predictions.csv")
    assert set(pred["animal"]) == {"m1", "m2", "m3", "m4"}  # every animal is a test animal
    assert (pred["fold"] == -1).all()
    np.testing.assert_allclose(pred["p1"], pred[["p1_fold0", "p1_fold1"]].mean(axis=1))
    # fold k's member scores its own test windows exactly as training's test pass did
    own = pd.read_csv(run.run_dir / "fold1" / "predictions_test.csv").merge(pred, on=["video", "start_time"])
    assert len(own) > 0
    np.testing.assert_allclose(own["p1_fold1"], own["p1_x"], atol=1e-5)


def test_unlabelled_task_gives_scores_per_animal(run, tmp_path):
    task = tmp_path / "task-nolabels"
    shutil.copytree(run.task_dir, task)
    frames = pd.read_parquet(task / "frames.parquet")
    frames["label"], frames["soft"] = np.nan, np.nan
    frames.to_parquet(task / "frames.parquet")
    res = report_zeroshot(run.run_dir, task, tmp_path / "out", n_boot=20, report=False)
    assert res["metrics"] == {} and not res["summary"]["labelled"]
    scores = pd.DataFrame(res["animal_scores"])
    assert sorted(scores["animal"]) == ["m1", "m2", "m3", "m4"] and scores["p1"].between(0, 1).all()
    assert (tmp_path / "out" / "predictions_animal.csv").is_file()


def test_cli_evaluate_task(run, tmp_path, capsys):
    from mouse_facial_expressions.cli import main

    code = main(["evaluate", str(run.run_dir), "--task", str(run.task_dir), "--out", str(tmp_path),
                 "--bootstrap", "10", "--no-report"])
    assert code == 0 and (tmp_path / "metrics.json").is_file()
    assert "accuracy" in capsys.readouterr().out
