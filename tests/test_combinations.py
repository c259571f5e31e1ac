"""Capabilities combine: each pair the parts design made possible trains, scores, evaluates and exports.

One synth tiny project (8 mice, strong face, behaviour and physiology effects, 3 simulated raters
every 0.5 s) with one task that has action-unit targets and a baseline recording. Each run is a
tiny model for one fold, a few batches (two epochs where the E-step needs a second one): these
tests check that the parts work together end to end, not how well they learn.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mouse_facial_expressions.data.predictions import AU_PREDICTION_COLUMNS, PREDICTION_COLUMNS


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """synth tiny -> prepare -> face keypoints and behaviour -> extract -> ratings -> task-combo
    (recording 1 labelled 0, the high dose's recording 4 labelled 1, AU targets, 2 folds)."""
    from mouse_facial_expressions.cli import main
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.io.behaviour import import_behaviour
    from mouse_facial_expressions.io.keypoints import import_keypoints
    from mouse_facial_expressions.io.ratings import import_ratings
    from mouse_facial_expressions.preprocess.extract import extract_videos
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.synth import generate_cohort
    from mouse_facial_expressions.synth.raters import write_rater_sheet

    project = generate_cohort(tmp_path_factory.mktemp("combo") / "project", preset="tiny", seed=0, mice=8,
                              effect_size=1.0, behaviour_effect=3.0, physiology_effect=3.0)
    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    import_behaviour(cfg)
    assert extract_videos(cfg, progress=False).ok
    sheet, _ = write_rater_sheet(project, 3, every_s=0.5, seed=0)
    import_ratings(sheet, project)
    spec = project / "combo_task.yaml"
    spec.write_text("name: combo\nrules: ['recording == 1 -> 0', 'recording == 4 and treatment == \"high\" -> 1']\n"
                    "n_folds: 2\nnum_frames: 3\nframe_stride: 1\n")
    assert main(["task", "make", "-p", str(project), "--spec", str(spec), "--dataset-version", "combo",
                 "--au-ratings", "ratings/synthetic_raters.parquet"]) == 0
    return Path(project)


def _train(project: Path, name: str, epochs: int = 1, **kw) -> dict:
    from tiny_run import tiny_params

    from mouse_facial_expressions.training import train_cv

    torch.set_num_threads(1)
    p = tiny_params(run_name=name, epochs=epochs, folds=[0], **kw)
    return train_cv(project / "tasks" / "task-combo", p, project / "models", progress=False, track=False)


def _fold(summary: dict) -> dict:
    return json.loads((Path(summary["run_dir"]) / "fold0" / "fold.json").read_text())


def _parts(summary: dict) -> list[str]:
    from mouse_facial_expressions.models.registry import load_trained_model

    return list(load_trained_model(summary["folds"][0]["best_checkpoint"])[0].parts)


def _has_au(pred: pd.DataFrame) -> None:
    assert list(pred.columns) == PREDICTION_COLUMNS + AU_PREDICTION_COLUMNS
    au = pred[AU_PREDICTION_COLUMNS[:-1]].to_numpy()
    assert np.isfinite(au).all() and (au >= 0).all() and (au <= 2).all()
    assert np.allclose(pred["mgs"], au.mean(1))


@pytest.fixture(scope="module")
def fused_au(project) -> dict:
    return _train(project, "au-fusion", targets="au+class", modalities="face,behaviour,physiology")


def test_au_heads_with_fusion(project, fused_au):
    from mouse_facial_expressions.evaluation.evaluate import evaluate_run

    assert _parts(fused_au) == ["face", "class", "au", "fusion"]
    _has_au(pd.read_csv(fused_au["predictions"]))
    rec = _fold(fused_au)
    assert rec["modalities"] == ["face", "behaviour", "physiology"] and rec["targets"] == "au+class"
    variants = pd.read_csv(Path(fused_au["run_dir"]) / "fold0" / "predictions_modalities.csv")
    assert {"only_face", "without_physiology"} <= set(variants["variant"])
    results = evaluate_run(fused_au["run_dir"], n_boot=20)
    assert results["mgs"]["rows"] and results["modalities"]  # both parts' evaluation sections


def test_au_heads_with_weak_em(project):
    summary = _train(project, "au-em", epochs=2, targets="au+class", weak="em")
    assert _parts(summary) == ["face", "class", "au"]
    _has_au(pd.read_csv(summary["predictions"]))
    assert "weak_mean" in _fold(summary)["history"]["1"]  # the E-step rewrote the class targets before epoch 2


def test_au_heads_with_a_baseline_reference(project):
    summary = _train(project, "au-rel", targets="au+class", baseline_recording=1)
    assert _parts(summary) == ["face", "relative", "class", "au"]
    pred = pd.read_csv(summary["predictions"])
    _has_au(pred)
    assert not pred["video"].str.contains("_rec1_").any()  # the baseline is the reference, not scored


def test_fusion_with_weak_em(project):
    summary = _train(project, "fusion-em", epochs=2, modalities="face,behaviour", weak="em")
    assert _parts(summary) == ["face", "class", "fusion"]
    assert "weak_mean" in _fold(summary)["history"]["1"]
    assert pd.read_csv(summary["predictions"])["p1"].between(0, 1).all()


def test_a_fused_model_exports_with_its_features_as_an_input(project, fused_au, tmp_path):
    pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnx, onnxruntime) is not installed")
    import onnx

    from mouse_facial_expressions.inference.export import check_onnx, export_onnx

    path = export_onnx(fused_au["run_dir"], tmp_path / "fused.onnx")
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["clip", "aux"]
    assert [o.name for o in graph.output] == ["p1", "p1_members", "au"]
    assert check_onnx(path, fused_au["run_dir"]) < 1e-4  # onnxruntime against torch, features with NaN included


def test_a_fused_model_scores_another_task(project, fused_au, tmp_path):
    from mouse_facial_expressions.cli import main

    out = tmp_path / "zs"
    assert main(["evaluate", fused_au["run_dir"], "--task", str(project / "tasks" / "task-combo"), "--out", str(out),
                 "--bootstrap", "20"]) == 0
    pred = pd.read_csv(out / "predictions.csv")
    _has_au(pred[PREDICTION_COLUMNS + AU_PREDICTION_COLUMNS])
    # the features were read: scoring without them (face alone) gives other scores
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.zeroshot import predict_task

    ens = load_ensemble(fused_au["run_dir"])
    ens.use(["face"])
    face_only = predict_task(ens, project / "tasks" / "task-combo")
    assert len(face_only) == len(pred) and not np.allclose(face_only["p1"], pred["p1"])


def test_a_combination_that_cannot_work_says_why_in_one_place():
    with pytest.raises(ValueError, match="AU heads sit on the face model's window embedding"):
        _params_for("baseline", targets="au+class")
    with pytest.raises(ValueError, match="--targets au has no class head, and fusion combines class evidence"):
        _params_for("advanced", targets="au", modalities="face,behaviour")


def _params_for(model: str, **kw):
    from mouse_facial_expressions.training import make_params

    return make_params(model, **kw).model_config()


def test_a_fused_model_with_au_heads_is_fine_tuned_with_the_same_parts(project, fused_au):
    from mouse_facial_expressions.training.finetune import finetune

    torch.set_num_threads(1)
    summary = finetune(fused_au["run_dir"], project / "tasks" / "task-combo", project / "models-ft", folds=[0], epochs=1,
                       allow_overlap=True, track=False, progress=False, limit_batches=2, workers=0, precision="32-true",
                       train_batch_size=4, test_batch_size=8)
    assert _parts(summary) == ["face", "class", "au", "fusion"]
    _has_au(pd.read_csv(summary["predictions"]))
