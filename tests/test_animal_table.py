"""animal_scores.csv: one row per animal-condition, rounded, with a CI and the classes in words."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from fake_predictions import fake_predictions

from mouse_facial_expressions.data.tasks import TaskSpec, preset
from mouse_facial_expressions.evaluation.evaluate import evaluate_run

COLUMNS = ["animal", "condition", "score", "score_low", "score_high", "called", "correct", "n_videos", "n_windows", "fold"]


def _run(tmp_path, class_names=None):
    run = tmp_path / "run"
    run.mkdir()
    pred, meta = fake_predictions(seed=0)
    pred.to_csv(run / "predictions.csv", index=False)
    if class_names is not None:  # the run's task, as training records it
        task = tmp_path / "task"
        task.mkdir()
        spec = TaskSpec(rules=["recording == 1 -> 0"], class_names=class_names)
        (task / "task.yaml").write_text(yaml.safe_dump(spec.model_dump()))
        meta.assign(frame=0, label=0).to_parquet(task / "frames.parquet")
        (run / "params.json").write_text(json.dumps({"task_dir": str(task)}))
    else:
        meta.to_csv(run / "metadata.csv", index=False)
    return run, pred


def test_one_row_per_animal_condition_in_words(tmp_path):
    run, pred = _run(tmp_path)
    res = evaluate_run(run, n_boot=50)
    table = pd.read_csv(run / "evaluation" / "animal_scores.csv", keep_default_na=False)
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS and {"treatment", "cohort"} <= set(table.columns)
    assert len(table) == res["metrics"]["animal"]["n"] == 18  # 12 at baseline + 6 treated when sick
    assert set(table["condition"]) == {"class 0", "class 1"} and set(table["correct"]) <= {"yes", "no"}
    assert (table["score"].round(3) == table["score"]).all()
    assert ((table["score_low"] <= table["score"]) & (table["score"] <= table["score_high"])).all()
    right = (table["called"] == table["condition"]) == (table["correct"] == "yes")
    assert right.all()
    m3 = table[(table["animal"] == "m3") & (table["condition"] == "class 0")].iloc[0]
    assert m3["score"] == pytest.approx(pred[pred["video"] == "m3_rec1_preinjection"]["p1"].mean(), abs=5e-4)


def test_class_names_come_from_the_runs_task(tmp_path):
    run, _ = _run(tmp_path, class_names=["baseline", "sick"])
    res = evaluate_run(run, n_boot=0)
    assert res["class_names"] == ["baseline", "sick"]
    table = pd.read_csv(run / "evaluation" / "animal_scores.csv")
    assert set(table["condition"]) == {"baseline", "sick"} and set(table["called"]) <= {"baseline", "sick"}


def test_task_class_names_are_two_different_names():
    assert preset("task1").class_names == ["baseline (pre-injection)", "sick (LPS high, 4 h)"]
    with pytest.raises(ValueError, match="two different names"):
        TaskSpec(rules=["recording == 1 -> 0"], class_names=["a", "a"])


def test_the_report_opens_with_the_headline_in_the_tasks_class_names(tmp_path):
    from mouse_facial_expressions.report.runs import report_run

    run, _ = _run(tmp_path, class_names=["baseline", "sick"])
    report_run(run, n_boot=20)
    html = (run / "evaluation" / "report.html").read_text()
    lead = html[html.index("<p class='lead'>"):]
    assert lead.startswith("<p class='lead'>Task: sick vs baseline (task).")
    assert html.index("<p class='lead'>") < html.index("<h2 id='headline'>")


def test_the_report_states_how_the_run_was_trained(tmp_path):
    from mouse_facial_expressions.report.runs import report_run

    run, _ = _run(tmp_path, class_names=["baseline", "sick"])
    params = json.loads((run / "params.json").read_text())
    params.update(model="advanced", backbone="resnet18", image_size=64, num_frames=8, epochs=4, recipe="mfe2", select="val_loss")
    (run / "params.json").write_text(json.dumps(params))
    for k, (best, sec) in enumerate([(2, 60.0), (3, 90.0)]):
        (run / f"fold{k}").mkdir()
        (run / f"fold{k}" / "fold.json").write_text(json.dumps({"fold": k, "best_epoch": best, "epochs_trained": 4,
                                                                "seconds": sec, "precision": "32-true"}))
    res = report_run(run, n_boot=0, report=False)
    assert res["training"]["seconds"] == 150.0 and [f["kept_epoch"] for f in res["training"]["folds"]] == [3, 4]
    from mouse_facial_expressions.report.html import _training_line

    line = _training_line(res["training"])
    assert "advanced model, resnet18 backbone" in line and "64 px" in line and "4 epochs per fold" in line
    assert "fold 0: epoch 3 of 4, fold 1: epoch 4 of 4" in line and "2.5 min" in line and "32-true" in line
