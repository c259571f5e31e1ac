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
