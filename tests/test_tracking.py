"""MLflow: a parent run with one nested run per fold lands in SQLite."""

from __future__ import annotations

import json

import pytest
import torch

from fake_clips import FOLD_SPECS, fake_fold_datasets
from mouse_facial_expressions.training import make_params, train_cv
from mouse_facial_expressions.training.tracking import PARENT_TAG, default_tracking_uri

import lightning.pytorch as pl  # noqa: E402, I001 (after the package, which readies torchvision for it)


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


class _LogsLikeClipClassifier(pl.LightningModule):
    """Logs what training/module.py logs, the same way: per-epoch means, val_select at the end of validation."""

    def __init__(self):
        super().__init__()
        self.save_hyperparameters({"learning_rate": 0.5})  # clashes with the run's params if logged
        self.net = torch.nn.Linear(2, 2)

    def _step(self, batch, stage):
        x, y = batch
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        self.log(f"{stage}_acc", (logits.argmax(-1) == y).float().mean(), on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def training_step(self, batch, batch_idx):
        self.log("lr", 0.1, on_step=False, on_epoch=True, batch_size=1)
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def on_validation_epoch_end(self):
        self.log("val_select", float(self.current_epoch), on_epoch=True, batch_size=1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_epoch_logger_writes_each_epoch_metric_at_step_epoch_to_the_existing_run(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    from mouse_facial_expressions.training.tracking import Tracker, epoch_logger

    torch.manual_seed(0)
    tracker = Tracker(default_tracking_uri(tmp_path), artifact_dir=tmp_path / "mlartifacts")
    parent = tracker.start_run("run")
    fold = tracker.start_run("fold0", {"learning_rate": 0.0001}, parent=parent)
    data = DataLoader(TensorDataset(torch.randn(8, 2), torch.randint(0, 2, (8,))), batch_size=4)
    trainer = pl.Trainer(max_epochs=2, logger=epoch_logger(tracker.tracking_uri, fold), enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1, accelerator="cpu")
    trainer.fit(_LogsLikeClipClassifier(), data, data)
    run = tracker.client.get_run(fold)
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_select", "lr"):
        assert [m.step for m in tracker.client.get_metric_history(fold, key)] == [0, 1], key
    assert "epoch" not in run.data.metrics
    assert run.data.params == {"learning_rate": "0.0001"}  # the module's hyperparameters are not logged
    assert run.data.tags[PARENT_TAG] == parent and run.info.status == "RUNNING"  # the fold ends it, not fit
    assert len(tracker.client.search_runs([tracker.experiment_id])) == 2  # no run of the logger's own


def test_epoch_logger_without_a_run_is_none():
    from mouse_facial_expressions.training.tracking import epoch_logger

    assert epoch_logger("sqlite:///unused.db", None) is None
