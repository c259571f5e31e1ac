"""``mfe finetune``: every fold starts from the source weights; a frozen backbone stays put."""

from __future__ import annotations

import json

import pytest
import torch

from mouse_facial_expressions.training import cv
from mouse_facial_expressions.training.finetune import finetune, is_backbone, source_checkpoint, start_from
from mouse_facial_expressions.training.module import load_model_from_checkpoint

torch.set_num_threads(1)
#: The first backbone convolution, as a model of parts names it (the face part's model's encoder).
CONV1 = "parts.face.net.encoder.net.conv1.weight"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def source(run):
    model, hp = load_model_from_checkpoint(source_checkpoint(run.run_dir))
    return model.state_dict(), hp


def test_the_source_is_the_first_folds_selected_checkpoint(run):
    assert source_checkpoint(run.run_dir) == __import__("pathlib").Path(run.summary["folds"][0]["best_checkpoint"])


def test_folds_start_from_the_source_weights(run, source):
    state, hp = source
    with start_from(state, freeze_backbone=False):
        module = cv.ClipClassifier(hp["model_name"], dict(hp["model_cfg"], pretrained="none"))
    assert cv.ClipClassifier.__name__ == "ClipClassifier"  # restored afterwards
    got = module.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items())
    fresh = cv.ClipClassifier(hp["model_name"], dict(hp["model_cfg"], pretrained="none")).model.state_dict()
    assert not torch.equal(fresh[CONV1], state[CONV1])


def test_frozen_backbone_does_not_change_and_the_head_trains(run, source, tmp_path):
    state, hp = source
    summary = finetune(run.run_dir, run.task_dir, tmp_path, freeze_backbone=True, epochs=1, limit_batches=2, allow_overlap=True,
                       workers=0, precision="32-true", track=False, progress=False)
    assert len(summary["folds"]) == 2 and summary["learning_rate"] == pytest.approx(hp["learning_rate"])
    for rec in summary["folds"]:
        tuned, thp = load_model_from_checkpoint(rec["best_checkpoint"])
        new = tuned.state_dict()
        assert thp["model_cfg"]["backbone"] == "resnet18" and thp["data"]["num_frames"] == 3
        backbone = [k for k in state if is_backbone(k)]
        assert backbone and all(torch.equal(new[k], state[k]) for k in backbone)  # weights and BN statistics
        assert any(not torch.equal(new[k], state[k]) for k in state if not is_backbone(k))
    info = json.loads((tmp_path / "runs" / summary["run_name"] / "finetune.json").read_text())
    assert info["freeze_backbone"] is True


def test_full_finetune_uses_a_lower_learning_rate_and_moves_the_backbone(run, source, tmp_path):
    state, hp = source
    summary = finetune(run.run_dir, run.task_dir, tmp_path, epochs=1, limit_batches=2, workers=0,
                       precision="32-true", track=False, progress=False, folds=[0])
    assert summary["learning_rate"] == pytest.approx(0.1 * hp["learning_rate"])
    new = load_model_from_checkpoint(summary["folds"][0]["best_checkpoint"])[0].state_dict()
    assert not torch.equal(new[CONV1], state[CONV1])
    # trained from the source, a small step: far closer to it than to a fresh model
    assert (new[CONV1] - state[CONV1]).abs().max() < 0.01


def test_folds_testing_animals_the_source_saw_are_refused_by_name(run, tmp_path):
    from mouse_facial_expressions.training.finetune import OverlapError

    seen = set(run.summary["folds"][0].get("test_animals", []))
    fold1_test = set(next(f for f in __import__("json").loads((run.task_dir / "folds.json").read_text())["folds"]
                          if f["fold"] == 1)["test"])
    assert fold1_test and not fold1_test & seen  # fold 1 tests animals fold 0's model trained or validated on
    with pytest.raises(OverlapError, match=r"fold 1: test animals .*" + sorted(fold1_test)[0]):
        finetune(run.run_dir, run.task_dir, tmp_path, epochs=1, limit_batches=1, workers=0, precision="32-true",
                 track=False, progress=False, folds=[1])
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_allowed_overlap_is_a_warning_in_the_record_and_the_report(run, tmp_path):
    from mouse_facial_expressions.evaluation.evaluate import evaluate_run

    summary = finetune(run.run_dir, run.task_dir, tmp_path, epochs=1, limit_batches=1, workers=0, precision="32-true",
                       track=False, progress=False, folds=[1], allow_overlap=True)
    info = json.loads((tmp_path / "runs" / summary["run_name"] / "finetune.json").read_text())
    assert list(info["overlap"]) == ["1"] and "inflated" in info["warnings"][0]
    results = evaluate_run(summary["run_dir"], n_boot=20)
    assert any("inflated" in w for w in results["warnings"])
