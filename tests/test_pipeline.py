"""CPU smoke test of the whole demo pipeline (what `make demo` runs) at the tiny preset."""

import json

import pandas as pd
import pytest

from mouse_facial_expressions.pipeline import DemoSettings, run_demo


@pytest.mark.slow
def test_demo_pipeline_runs_end_to_end_on_the_tiny_preset(tmp_path, capsys):
    out = tmp_path / "demo"
    s = DemoSettings(preset="tiny", epochs=1, image_size=32, num_frames=4, frame_stride=1,
                     extra_train=dict(num_layers=1, d_model=64, num_heads=2, ff_dim=64, workers=0))
    results = run_demo(out, s)

    printed = capsys.readouterr().out
    assert "HTML report:" in printed and "accuracy" in printed
    report = out / "models" / "runs" / results["run"].split("/")[-1] / "evaluation" / "report.html"
    assert report.is_file() and report.stat().st_size > 10_000
    assert results["report"] == str(report)
    summary = json.loads((out / "reports" / "demo_summary.json").read_text())
    assert set(summary["timings_s"]) >= {k for k in summary["timings_s"] if k.startswith(("synth", "train"))}
    assert len(summary["timings_s"]) == 7  # synth, prepare, keypoints, extract, task, train, evaluate
    pred = pd.read_csv(out / "models" / "runs" / results["run"].split("/")[-1] / "predictions.csv")
    assert {"fold", "video", "animal", "start_time", "end_time", "label", "p1"} <= set(pred.columns)
    assert pred["p1"].between(0, 1).all() and len(pred) > 0
    # every test animal appears in exactly one fold's test predictions
    assert pred.groupby("animal")["fold"].nunique().max() == 1


def test_the_demo_names_the_fold_count_of_the_task_it_made(tmp_path, monkeypatch, capsys):
    """The task gets 2 folds (fewer than the 3 asked for): the train step must say 2-fold."""
    import sys
    import types

    from mouse_facial_expressions.data import tasks
    from mouse_facial_expressions.data.folds import write_folds
    from mouse_facial_expressions.pipeline import run_pipeline

    class Report:
        ok, failed = True, []

        def summary(self):
            return "ok"

    def make_task(cfg, spec):
        task_dir = tmp_path / "task"
        task_dir.mkdir()
        write_folds(task_dir / "folds.json", [{"train": ["a"], "val": [], "test": ["b"]},
                                              {"train": ["b"], "val": [], "test": ["a"]}], seed=0)
        return task_dir

    def fake(name, **attrs):
        monkeypatch.setitem(sys.modules, f"mouse_facial_expressions.{name}", types.SimpleNamespace(**attrs))

    fake("preprocess.prepare", prepare_videos=lambda cfg: Report())
    fake("io.keypoints", import_keypoints=lambda cfg, check=None: [])
    fake("preprocess.alignment", import_check=lambda cfg: None)
    fake("preprocess.extract", extract_videos=lambda cfg, workers=1: Report())
    fake("training.params", make_params=lambda *a, **k: {})
    fake("training.cv", train_cv=lambda task_dir, params, models: {"run_dir": str(tmp_path / "run")})
    fake("report.runs", report_run=lambda run: {"paths": {"report": "report.html"}})
    fake("evaluation.evaluate", headline=lambda results: "headline")
    monkeypatch.setattr(tasks, "make_task", make_task)
    monkeypatch.setattr(tasks, "preset", lambda name, **kw: kw)
    cfg = types.SimpleNamespace(path=lambda key: tmp_path / key)

    run_pipeline(cfg, DemoSettings())  # asks for 3 folds

    printed = capsys.readouterr().out
    assert "2-fold CV by animal" in printed
    assert "3-fold" not in printed
