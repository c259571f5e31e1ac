"""MLflow: a parent run with one nested run per fold lands in SQLite."""

from __future__ import annotations

import json

import pytest
import torch

from fake_clips import FOLD_SPECS, fake_fold_datasets
from mouse_facial_expressions.training import make_params, train_cv
from mouse_facial_expressions.training.tracking import PARENT_TAG, default_tracking_uri


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("models")
    params = make_params("advanced", backbone="resnet18", num_layers=1, num_heads=2, d_model=64, ff_dim=64,
                         epochs=2, train_batch_size=4, test_batch_size=8, num_frames=3, frame_stride=1,
                         image_size=32, workers=0, precision="32-true", limit_batches=2)
    summary = train_cv("/nonexistent/task", params, out, folds=[0, 1], datasets_fn=fake_fold_datasets,
                       fold_specs=FOLD_SPECS, norm=([0.5], [0.25]), progress=False)
    import mlflow

    client = mlflow.MlflowClient(default_tracking_uri(out))
    exp = client.get_experiment_by_name("mfe")
    return out, summary, client, client.search_runs([exp.experiment_id])


def test_default_store_is_sqlite_in_the_models_folder(tracked):
    out, *_ = tracked
    assert (out / "mlruns.db").is_file()
    assert default_tracking_uri(out) == f"sqlite:///{out.resolve() / 'mlruns.db'}"


def test_parent_run_has_one_nested_run_per_fold(tracked):
    _, summary, _, runs = tracked
    parents = [r for r in runs if PARENT_TAG not in r.data.tags]
    children = [r for r in runs if r.data.tags.get(PARENT_TAG) == summary["mlflow_parent_run"]]
    assert len(parents) == 1 and parents[0].info.run_id == summary["mlflow_parent_run"]
    assert sorted(r.data.tags["fold"] for r in children) == ["0", "1"]
    assert all(r.info.status == "FINISHED" for r in runs)


def test_fold_runs_hold_params_epoch_metrics_and_predictions(tracked):
    _, _, client, runs = tracked
    fold0 = next(r for r in runs if r.data.tags.get("fold") == "0")
    assert fold0.data.params["model"] == "advanced" and fold0.data.params["learning_rate"] == "0.0001"
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert [m.step for m in client.get_metric_history(fold0.info.run_id, key)] == [0, 1], key
    assert "test_acc" in fold0.data.metrics
    assert [a.path for a in client.list_artifacts(fold0.info.run_id)] == ["predictions_test.csv"]


def test_run_ids_are_kept_for_resume(tracked):
    out, summary, _, _ = tracked
    state = json.loads((out / "runs" / summary["run_name"] / "mlflow.json").read_text())
    assert state["parent"] == summary["mlflow_parent_run"] and set(state["folds"]) == {"0", "1"}
