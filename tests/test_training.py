"""Training: CV on a trivially separable fake task, checkpoints, resume, DDP on CPU.

The loader is injected (``datasets_fn``) with the real item format (``fake_clips.py``), so
these tests exercise the training library alone; everything is tiny (32 px, 3 frames,
resnet18 + a 1-layer Transformer).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from fake_clips import FOLD_SPECS, fake_fold_datasets
from mouse_facial_expressions.training import load_model_from_checkpoint, make_params, train_cv
from mouse_facial_expressions.training.cv import PRED_COLUMNS

NORM = ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])


def tiny_params(model="advanced", **kw):
    base = dict(backbone="resnet18", num_layers=1, num_heads=2, d_model=64, ff_dim=64, epochs=3,
                learning_rate=1e-3, train_batch_size=4, test_batch_size=8, num_frames=3, frame_stride=1,
                image_size=32, workers=0, precision="32-true", seed=0)
    base.update(kw)
    return make_params(model, **base)


def run(out, params, folds=(0,), **kw):
    return train_cv("/nonexistent/task", params, out, folds=list(folds), datasets_fn=fake_fold_datasets,
                    fold_specs=FOLD_SPECS, norm=NORM, progress=False, **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("models")
    return out, run(out, tiny_params(), track=False)


def test_a_few_epochs_beat_chance_on_validation_animals(trained):
    _, summary = trained
    (fold,) = summary["folds"]
    assert fold["val_acc"] > 0.75  # chance is 0.5: val animals are unseen (m4, m5)
    assert fold["test_acc"] > 0.75


def test_best_checkpoint_uses_the_seed_path(trained):
    out, summary = trained
    best = summary["folds"][0]["best_checkpoint"]
    assert best.startswith(str(out / "checkpoints_advanced" / summary["run_name"] / "advanced-fold0-epoch="))
    assert "val_acc=" in best and best.endswith(".ckpt")


def test_predictions_follow_the_contract(trained):
    out, summary = trained
    fold_csv = pd.read_csv(out / "runs" / summary["run_name"] / "fold0" / "predictions_test.csv")
    combined = pd.read_csv(summary["predictions"])
    assert list(fold_csv.columns) == PRED_COLUMNS == list(combined.columns)
    assert set(fold_csv["animal"]) == set(FOLD_SPECS[0]["test"])
    assert fold_csv["p1"].between(0, 1).all() and len(combined) == len(fold_csv) == 8


def test_checkpoint_round_trips_without_retyping(trained):
    _, summary = trained
    model, hp = load_model_from_checkpoint(summary["folds"][0]["best_checkpoint"])
    assert hp["model_name"] == "advanced"
    assert hp["data"]["num_frames"] == 3 and hp["data"]["frame_stride"] == 1 and hp["data"]["image_size"] == 32
    assert hp["data"]["norm_mean"] == NORM[0] and hp["data"]["test_animals"] == FOLD_SPECS[0]["test"]
    ds = fake_fold_datasets(None, 0, num_frames=3, frame_stride=1, image_size=32, train_augmentation=False,
                            epoch_size=None, seed=0, val_windows_per_video=None, test_windows_per_video=None)["test"]
    clip = torch.stack([ds[0]["clip"], ds[5]["clip"]])
    with torch.no_grad():
        p1 = torch.softmax(model(clip), -1)[:, 1]
    preds = pd.read_csv(summary["predictions"])
    assert torch.allclose(p1, torch.tensor(preds["p1"].iloc[[0, 5]].to_numpy(), dtype=torch.float32), atol=1e-4)


def test_summary_json_is_written(trained):
    out, summary = trained
    on_disk = json.loads((out / "runs" / summary["run_name"] / "summary.json").read_text())
    assert on_disk["mean_test_acc"] == summary["mean_test_acc"]


def _record_epochs(monkeypatch):
    from mouse_facial_expressions.training.module import ClipClassifier

    seen = []
    monkeypatch.setattr(ClipClassifier, "on_train_epoch_start", lambda self: seen.append(self.current_epoch), raising=False)
    return seen


def test_resume_continues_an_interrupted_fold_from_its_last_epoch(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    import mouse_facial_expressions.training.fold as fold_mod

    def killed(*a, **k):
        raise KeyboardInterrupt  # as if killed after training, before testing

    with monkeypatch.context() as m:
        m.setattr(fold_mod, "predict_windows", killed)
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, tiny_params(epochs=1, run_name="r", limit_batches=2), track=False)
    fold_dir = tmp_path / "runs" / "r" / "fold0"
    assert (fold_dir / "last.ckpt").is_file() and not (fold_dir / "predictions_test.csv").exists()
    seen = _record_epochs(monkeypatch)
    summary = run(tmp_path, tiny_params(epochs=2, run_name="r", limit_batches=2), track=False)
    assert seen == [1]  # epoch 0 came from last.ckpt
    assert summary["folds"][0]["epochs_trained"] == 2


def test_finished_folds_are_skipped(trained, monkeypatch):
    out, summary = trained
    seen = _record_epochs(monkeypatch)
    again = run(out, tiny_params(), track=False)
    assert seen == [] and again["run_name"] == summary["run_name"]
    assert again["folds"][0]["test_acc"] == summary["folds"][0]["test_acc"]


@pytest.mark.parametrize("model", ["baseline", "resup"])
def test_other_models_train_and_write_their_checkpoints(tmp_path, model):
    torch.set_num_threads(1)
    summary = run(tmp_path, tiny_params(model, epochs=1, limit_batches=2), track=False)
    folder, prefix = {"baseline": ("checkpoints", "task1"), "resup": ("checkpoints_resup", "resup")}[model]
    assert list((tmp_path / folder / summary["run_name"]).glob(f"{prefix}-fold0-epoch=0-val_acc=*.ckpt"))
    assert summary["folds"][0]["n_test_windows"] == 8


def test_two_process_ddp_on_cpu_runs(tmp_path):
    params = tiny_params(epochs=1, limit_batches=2, accelerator="cpu", devices=2, strategy="ddp_spawn")
    summary = run(tmp_path, params, track=False)
    assert summary["folds"][0]["best_checkpoint"].endswith(".ckpt")
    assert len(pd.read_csv(summary["predictions"])) == 8


def test_summary_covers_folds_run_by_earlier_calls(tmp_path):
    torch.set_num_threads(1)
    params = tiny_params(epochs=1, limit_batches=1, run_name="split")
    run(tmp_path, params, folds=[0], track=False)
    summary = run(tmp_path, params, folds=[1], track=False)
    assert [f["fold"] for f in summary["folds"]] == [0, 1]
    assert sorted(pd.read_csv(summary["predictions"])["fold"].unique()) == [0, 1]


class RecordingSampler(torch.utils.data.Sampler):
    def __init__(self, n):
        self.n, self.epochs = n, []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(range(self.n))


def test_the_train_sampler_gets_a_fresh_epoch_each_epoch(tmp_path):
    torch.set_num_threads(1)
    sampler = RecordingSampler(8)

    def with_sampler(*args, **kw):
        return {**fake_fold_datasets(*args, **kw), "train_sampler": sampler}

    train_cv("/nonexistent/task", tiny_params(epochs=2, limit_batches=1), tmp_path, folds=[0], datasets_fn=with_sampler,
             fold_specs=FOLD_SPECS, norm=NORM, progress=False, track=False)
    assert set(sampler.epochs) == {0, 1}


def test_module_normalises_uint8_batches_on_the_device():
    from mouse_facial_expressions.data.augment import normalize_clips
    from mouse_facial_expressions.training.module import ClipClassifier

    torch.manual_seed(0)
    cfg = tiny_params().model_config()
    module = ClipClassifier("advanced", cfg, data={"in_channels": 3}).eval()
    raw = torch.randint(0, 256, (2, 3, 1, 32, 32), dtype=torch.uint8)  # (B, T, 1, H, W) from uint8 workers
    batch = module.on_after_batch_transfer({"clip": raw.clone(), "label": torch.tensor([0, 1])}, 0)
    assert batch["clip"].dtype == torch.float32 and batch["clip"].shape == (2, 3, 3, 32, 32)
    assert torch.equal(batch["clip"], normalize_clips(raw, 3))
    with torch.no_grad():
        assert torch.allclose(module(raw), module(batch["clip"]))  # forward accepts either


def test_a_time_limit_that_cuts_the_schedule_short_says_so(tmp_path, caplog):
    torch.set_num_threads(1)
    params = tiny_params(epochs=500, limit_batches=1, max_time="00:00:00:02")
    with caplog.at_level("WARNING", logger="mouse_facial_expressions.training.cv"):
        summary = run(tmp_path, params, track=False)
    (fold,) = summary["folds"]
    assert 1 <= fold["epochs_trained"] < 500
    warned = [r.getMessage() for r in caplog.records if "max_time" in r.getMessage()]
    assert len(warned) == 1 and f"after {fold['epochs_trained']} of 500 epochs" in warned[0]
    assert f"--epochs {fold['epochs_trained']}" in warned[0]


def test_the_selected_checkpoint_follows_the_recipes_rule(trained):
    from mouse_facial_expressions.training.selection import select_epoch

    out, summary = trained
    fold = summary["folds"][0]
    ckpt = torch.load(fold["best_checkpoint"], map_location="cpu", weights_only=True)
    saved = {int(k) for k, v in ckpt["mfe_history"].items() if "val_acc" in v}
    assert saved == set(range(ckpt["epoch"] + 1))  # the checkpoint holds every epoch up to the selected one
    history = {int(k): v for k, v in fold["history"].items()}  # all epochs
    best = select_epoch(history, fold["select"])
    assert fold["best_epoch"] == ckpt["epoch"] == best
    assert fold["val_acc"] == pytest.approx(history[best]["val_acc"]) and fold["val_loss"] == pytest.approx(history[best]["val_loss"])
    assert "optimizer_states" not in ckpt  # best checkpoints hold weights, hparams and the history
    assert not (out / "runs" / summary["run_name"] / "fold0" / "last.ckpt").exists()  # finished: resume point gone


def test_warmup_rises_linearly_then_follows_the_cosine():
    from mouse_facial_expressions.training.module import cosine_lr, warmup_cosine

    f = [warmup_cosine(s, steps_per_epoch=10, warmup_epochs=1, epochs=4) for s in range(40)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:9], f[1:10]))  # linear warm-up over the first epoch
    assert f[10] == pytest.approx(cosine_lr(1, 4, 1.0)) and f[39] == pytest.approx(cosine_lr(3, 4, 1.0))


def test_fold_record_holds_the_learning_curves_and_the_rule(trained):
    _, summary = trained
    (fold,) = summary["folds"]
    hist = fold["history"]
    assert sorted(hist, key=int) == ["0", "1", "2"]
    assert all({"train_acc", "train_loss", "val_acc", "val_loss"} <= set(h) for h in hist.values())
    from mouse_facial_expressions.training.params import DEFAULT_RECIPE, RECIPES

    assert fold["select"] == RECIPES[DEFAULT_RECIPE]["select"] and "validation" in fold["select_rule"]


def test_without_a_progress_bar_each_epoch_prints_one_line(tmp_path, capsys):
    torch.set_num_threads(1)
    run(tmp_path, tiny_params(epochs=2, limit_batches=2), track=False)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("fold 0 epoch")]
    assert [ln.split(":")[0] for ln in lines] == ["fold 0 epoch 1/2", "fold 0 epoch 2/2"]
    assert all("train_acc" in ln and "val_acc" in ln and "val_loss" in ln for ln in lines)
    assert "fold ETA" in lines[0] and "ETA" not in lines[1]  # the time the fold still needs, until its last epoch


def test_seconds_read_as_minutes_and_hours():
    from mouse_facial_expressions.training.callbacks import format_seconds

    assert [format_seconds(s) for s in (7, 75, 4000)] == ["7 s", "1 min 15 s", "1 h 06 min"]


def test_batchnorm_recalibration_recomputes_the_statistics_from_the_kept_batches():
    from types import SimpleNamespace

    from mouse_facial_expressions.training.callbacks import RecalibrateBatchNorm
    from mouse_facial_expressions.training.module import ClipClassifier

    torch.manual_seed(0)
    module = ClipClassifier("advanced", dict(backbone="resnet18", num_layers=1, num_heads=2, d_model=64, ff_dim=64, num_frames=3))
    weights = {k: v.clone() for k, v in module.state_dict().items() if "running" not in k and "num_batches" not in k}
    cb = RecalibrateBatchNorm(num_batches=2)
    batches = [torch.randn(2, 3, 3, 32, 32) * s + s for s in (1.0, 2.0, 3.0)]  # (B, T, C, H, W)
    cb.on_train_epoch_start(None, module)
    for i, x in enumerate(batches):
        cb.on_train_batch_end(None, module, None, {"clip": x}, i)
    module.eval()
    cb.on_validation_epoch_start(SimpleNamespace(sanity_checking=False), module)
    net = module.model.face.encoder.net
    with torch.no_grad():  # conv1 is before the first BatchNorm: its batch means are the expected statistics
        means = [net.conv1(x.flatten(0, 1).half().float()).mean(dim=(0, 2, 3)) for x in batches[1:]]  # the last 2 kept
    assert torch.allclose(net.bn1.running_mean, torch.stack(means).mean(0), atol=1e-4)
    assert net.bn1.momentum == 0.1 and not net.bn1.training  # restored
    after = {k: v for k, v in module.state_dict().items() if k in weights}
    assert all(torch.equal(after[k], weights[k]) for k in weights)  # nothing learned


def test_an_epoch_without_validation_is_recalibrated_at_its_end_and_once_only():
    from types import SimpleNamespace

    from mouse_facial_expressions.training.callbacks import RecalibrateBatchNorm
    from mouse_facial_expressions.training.module import ClipClassifier

    torch.manual_seed(0)
    module = ClipClassifier("advanced", dict(backbone="resnet18", num_layers=1, num_heads=2, d_model=64, ff_dim=64, num_frames=3))
    bn1 = module.model.face.encoder.net.bn1
    cb = RecalibrateBatchNorm(num_batches=1)
    cb.on_train_epoch_start(None, module)
    cb.on_train_batch_end(None, module, None, {"clip": torch.randn(2, 3, 3, 32, 32) + 5.0}, 0)
    before = bn1.running_mean.clone()
    cb.on_train_epoch_end(None, module)  # no validation ran this epoch
    recalibrated = bn1.running_mean.clone()
    assert not torch.allclose(before, recalibrated)
    cb.on_train_epoch_start(None, module)
    cb.on_train_batch_end(None, module, None, {"clip": torch.randn(2, 3, 3, 32, 32) - 5.0}, 0)
    cb.on_validation_epoch_start(SimpleNamespace(sanity_checking=False), module)
    after_validation = bn1.running_mean.clone()
    bn1.running_mean.add_(1.0)  # a second pass over the same batches would undo this
    cb.on_train_epoch_end(None, module)
    assert torch.allclose(bn1.running_mean, after_validation + 1.0)  # the batches were used up by validation
    assert not torch.allclose(after_validation, recalibrated)


def test_each_fold_prints_a_time_estimate_from_its_first_batches(monkeypatch, capsys):
    from types import SimpleNamespace

    from mouse_facial_expressions.training import callbacks

    clock = iter([100.0, 108.0])  # batch 0 ends at 100 s, batch 4 at 108 s: 2 s a batch
    monkeypatch.setattr(callbacks.time, "time", lambda: next(clock))
    cb = callbacks.FoldTimeEstimate(fold=2, epochs=3, n=4)
    trainer = SimpleNamespace(is_global_zero=True, num_training_batches=50, current_epoch=0)
    for i in range(8):
        cb.on_train_batch_end(trainer, None, None, None, i)
    out = capsys.readouterr().out
    assert out.count("fold 2: about") == 1  # once, after the timed batches
    assert "1 min 40 s per epoch of 50 batches" in out and "4 min 50 s for the rest" in out  # (150 - 5) x 2 s


def test_a_baseline_relative_model_beats_chance_on_validation_animals(tmp_path):
    """Each animal has its own brightness, wider than the effect; a relative model reads the change
    from the animal's own baseline and so separates unseen animals."""
    from fake_clips import fake_relative_datasets

    torch.set_num_threads(1)
    params = tiny_params(baseline_recording=1, run_name="relative")
    summary = train_cv("/nonexistent/task", params, tmp_path, folds=[0], datasets_fn=fake_relative_datasets,
                       fold_specs=FOLD_SPECS, norm=NORM, progress=False, track=False)
    (fold,) = summary["folds"]
    history = [fold["history"][str(e)]["train_loss"] for e in range(3)]
    assert history[-1] < history[0] / 2, history  # it learns (0.25 -> 0.03 when written)
    pred = pd.read_csv(summary["predictions"])
    assert set(pred["video"].str.endswith("_rec4")) == {True}  # baselines are the reference, not scored
    # every window of the sick test animal (m7) ranks above every window of the control (m6). Ranks,
    # not accuracy at p1 = 0.5: on one CPU the control's windows sat at p1 0.51-0.58 (test_acc 0.5)
    # while the sick animal's sat at 0.93; seeds 0, 1, 2 left a gap of 0.17 to 0.4 between the two.
    sick, control = pred.loc[pred["label"] == 1, "p1"], pred.loc[pred["label"] == 0, "p1"]
    assert len(sick) == len(control) == 4 and sick.min() > control.max(), (sick.tolist(), control.tolist())
