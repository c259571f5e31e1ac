"""Weak supervision: synthetic bouts, the E-step, EM training (``--weak em``), resume, localisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fake_clips import FOLD_SPECS, MADE_BOUT_TRAIN, fake_bout_datasets
from mouse_facial_expressions.training.weak import EStep, estep_posteriors, posterior_summary

NORM = ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])


# --- synthetic truth ---------------------------------------------------------------------

def _video(animal="m2", recording=4, n_raw=None):
    return {"animal": animal, "recording": recording, "discard": 0, "n_raw": n_raw}


def test_bouts_cover_about_the_fraction_in_seconds_long_runs():
    from mouse_facial_expressions.synth.cohort import bouts
    from mouse_facial_expressions.synth.params import make_config

    cfg = make_config("tiny", bout_fraction=0.3, seconds=30.0)
    treated, control = pd.Series({"treatment": "high"}), pd.Series({"treatment": "saline"})
    n = int(cfg.seconds * cfg.fps)
    runs, cover = [], []
    for k in range(200):
        on = bouts(cfg, _video(f"m{k + 1}"), treated, n)
        assert on.any()  # every affected video shows it at least once
        cover.append(on.mean())
        edges = np.flatnonzero(np.diff(np.r_[0, on.astype(int), 0]))
        inner = (edges[::2] > 0) & (edges[1::2] < n)  # runs cut by the video's ends are shorter
        runs += list((edges[1::2] - edges[::2])[inner] / cfg.fps)
    assert 0.22 < np.mean(cover) < 0.42
    assert 3 < np.median(runs) < 15 and min(runs) >= 1.9  # seconds to tens of seconds
    assert not bouts(cfg, _video(), control, n).any() and not bouts(cfg, _video(recording=1), treated, n).any()
    assert bouts(make_config("tiny"), _video(), treated, n) is None  # option left out: no bouts at all


def test_truth_marks_bouts_and_the_face_is_a_controls_outside_them():
    from mouse_facial_expressions.synth.cohort import truth_table

    plain = truth_table("tiny", mice=2, seconds=12.0, seed=5)
    weak = truth_table("tiny", mice=2, seconds=12.0, seed=5, bout_fraction=0.3)
    assert "bout" not in plain.columns and weak["bout"].dtype == bool
    sick = weak["label_true"] == 1
    assert not weak.loc[~sick, "bout"].any() and weak.loc[sick, "bout"].any() and not weak.loc[sick, "bout"].all()
    off = weak[sick & ~weak["bout"]]["au_orbital"].mean()
    on = weak[sick & weak["bout"]]["au_orbital"].mean()
    before = weak[(weak["treatment"] == "high") & (weak["recording"] == 1)]["au_orbital"].mean()  # same animal
    assert on > off + 0.2 and abs(off - before) < 0.1
    # The bouts draw from their own stream: nothing else of the cohort moves.
    same = [c for c in plain.columns if not c.startswith("au_") and c != "intensity"]
    pd.testing.assert_frame_equal(plain[same], weak[same])
    pd.testing.assert_frame_equal(plain[~sick], weak[~sick][plain.columns])


def test_bout_fraction_left_out_keeps_the_synth_output(tmp_path):
    """Left out, nothing is drawn and nothing is written that was not before."""
    from mouse_facial_expressions.cli import synth as cli_synth
    from mouse_facial_expressions.synth.params import make_config

    assert "bout_fraction" not in make_config("tiny").to_dict()  # truth/synth.json unchanged
    assert make_config("tiny", bout_fraction=0.3).to_dict()["bout_fraction"] == 0.3
    import argparse

    parser = argparse.ArgumentParser()
    cli_synth.register(parser.add_subparsers(), argparse.HelpFormatter)
    args = parser.parse_args(["synth", str(tmp_path / "x")])
    assert not hasattr(args, "bout_fraction")
    args = parser.parse_args(["synth", str(tmp_path / "x"), "--bout-fraction", "0.3"])
    assert args.bout_fraction == 0.3 and "bout_fraction" in cli_synth.OPTIONS
    with pytest.raises(ValueError):
        make_config("tiny", bout_fraction=1.5)


# --- E-step ------------------------------------------------------------------------------

def test_estep_negatives_stay_zero_and_positives_obey_the_prior():
    rng = np.random.default_rng(0)
    videos = np.repeat(["a", "b", "c", "d"], [10, 20, 7, 3])
    labels = np.repeat([0, 1, 1, 1], [10, 20, 7, 3])
    scores = rng.uniform(0, 1, len(videos))
    q = estep_posteriors(scores, videos, labels, fraction=0.3)
    assert (q[videos == "a"] == 0).all()
    assert q.min() >= 0 and q.max() <= 1
    for v, n in (("b", 20), ("c", 7), ("d", 3)):
        qv, sv = q[videos == v], scores[videos == v]
        assert qv.mean() == pytest.approx(max(0.3, 1 / n), abs=1e-4)  # the constraint
        assert qv[np.argmax(sv)] == 1.0  # at least the top window is positive
        order = np.argsort(sv)
        assert (np.diff(qv[order]) >= -1e-6).all()  # posteriors follow the scores
    again = estep_posteriors(scores.copy(), videos.copy(), labels.copy(), fraction=0.3)
    np.testing.assert_array_equal(q, again)  # deterministic
    flat = estep_posteriors(np.full(10, 0.9), np.repeat("v", 10), np.ones(10), fraction=0.3)
    assert flat[0] == 1.0 and np.allclose(flat[1:], 2 / 9, atol=1e-4)
    s = posterior_summary(q, videos, labels)
    assert s["weak_videos"] == 3 and 0 < s["weak_pos_frac"] < 1


def test_bayes_estep_is_the_posterior_a_balanced_score_implies():
    videos = np.repeat(["neg", "pos"], [3, 5])
    labels = np.repeat([0, 1], [3, 5])
    scores = np.array([0.9, 0.2, 0.6, 0.35, 0.5, 0.7, 0.95, 0.6])
    q = estep_posteriors(scores, videos, labels, fraction=0.3, posterior="bayes")
    assert (q[:3] == 0).all()
    # 1 - 0.7 (1 - s) / s by hand: s 0.35 -> < 0 -> 0; 0.5 -> 0.3; 0.7 -> 0.7; 0.6 -> 1 - 0.7 * 0.4 / 0.6
    np.testing.assert_allclose(q[3:], [0.0, 0.3, 0.7, 1.0, 1 - 0.7 * 0.4 / 0.6], atol=1e-6)
    assert q[6] == 1.0  # the top window (0.95 -> 0.963 by the formula) is set to 1: at least one positive
    np.testing.assert_array_equal(q, estep_posteriors(scores, videos, labels, fraction=0.3, posterior="bayes"))
    # a window scored like a negative video's (s = 1 - pi/2 ... below, with balanced classes) is 0
    assert estep_posteriors(np.array([0.9, 0.41]), np.array(["v", "v"]), np.ones(2), 0.3, "bayes")[1] == 0.0
    with pytest.raises(ValueError, match="weak_posterior"):
        estep_posteriors(scores, videos, labels, posterior="nope")


def _tiny_params(**kw):
    from mouse_facial_expressions.training import make_params

    base = dict(backbone="resnet18", num_layers=1, num_heads=2, d_model=64, ff_dim=64, epochs=4,
                learning_rate=1e-3, train_batch_size=4, test_batch_size=8, num_frames=3, frame_stride=1,
                image_size=32, workers=0, precision="32-true", seed=0, weak="em", weak_fraction=0.5)
    base.update(kw)
    return make_params("advanced", **base)


def _run(out, params, **kw):
    from mouse_facial_expressions.training import train_cv

    return train_cv("/nonexistent/task", params, out, folds=[0], datasets_fn=fake_bout_datasets,
                    fold_specs=FOLD_SPECS, norm=NORM, progress=False, track=False, **kw)


def test_weak_params_keep_earlier_run_names_and_check_values():
    from mouse_facial_expressions.training import make_params

    plain = make_params("advanced")
    assert "weak" not in plain.default_run_name() and plain.weak is None
    assert make_params("advanced", weak="em").default_run_name() != plain.default_run_name()
    with pytest.raises(ValueError):
        make_params("advanced", weak="nope")
    with pytest.raises(ValueError):
        make_params("advanced", weak="em", weak_fraction=0.0)


def test_em_trains_on_training_animals_only_and_beats_chance(tmp_path, monkeypatch, capsys):
    torch.set_num_threads(1)
    scored = []
    real = EStep.score

    def spy(self, pl_module, idx, trainer=None):
        out = real(self, pl_module, idx, trainer)
        scored.append(set(self.scored_animals))
        return out

    monkeypatch.setattr(EStep, "score", spy)
    summary = _run(tmp_path, _tiny_params())
    (fold,) = summary["folds"]
    assert len(scored) == 3  # epochs 1, 2, 3
    train = set(FOLD_SPECS[0]["train"])
    assert set().union(*scored) <= train and not set().union(*scored) & set(FOLD_SPECS[0]["val"] + FOLD_SPECS[0]["test"])
    assert {a for a in train if int(a[1:]) % 2} == set().union(*scored)  # positive videos only
    hist = fold["history"]
    assert "weak_mean" in hist["1"] and hist["3"]["weak_mean"] == pytest.approx(0.5, abs=0.02)
    out = capsys.readouterr().out  # one line per E-step (tqdm.write)
    assert out.count("E-step on 2 positive training videos: mean posterior") == 3
    # Chance is 0.5; a sick animal's off-bout windows look like a control's, so 0.75 is the ceiling.
    assert fold["val_acc"] > 0.6
    ds = MADE_BOUT_TRAIN[0]
    soft = np.asarray(ds._soft)
    assert (soft[ds.labels == 0] == 0).all()
    assert soft[ds.bout].mean() > soft[(ds.labels == 1) & ~ds.bout].mean() + 0.3  # EM found the bouts
    pred = pd.read_csv(summary["predictions"])
    test = fake_bout_datasets(None, 0, num_frames=3, frame_stride=1, image_size=32, train_augmentation=False,
                              epoch_size=None, seed=0, val_windows_per_video=None, test_windows_per_video=None)["test"]
    assert pred["p1"][test.bout].mean() > pred["p1"][~test.bout].mean() + 0.3


def test_resume_restores_the_posteriors(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    import mouse_facial_expressions.training.fold as fold_mod
    from mouse_facial_expressions.io.checkpoint import load_weights_only

    def killed(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(fold_mod, "predict_windows", killed)
        with pytest.raises(KeyboardInterrupt):
            _run(tmp_path, _tiny_params(epochs=2, run_name="r", weak_every=1))
    ckpt = load_weights_only(tmp_path / "runs" / "r" / "fold0" / "last.ckpt")
    (state,) = [v for k, v in ckpt["callbacks"].items() if "EStep" in k]
    saved = state["soft"].numpy()
    assert state["last_epoch"] == 1 and 0 < saved.max() and saved.min() == 0 and not set(np.unique(saved)) <= {0.0, 1.0}
    estep_epochs = []
    real = EStep.estep
    monkeypatch.setattr(EStep, "estep", lambda self, *a, **k: estep_epochs.append(1) or real(self, *a, **k))
    seen = {}
    from mouse_facial_expressions.training.module import ClipClassifier

    monkeypatch.setattr(ClipClassifier, "on_train_epoch_start",
                        lambda self: seen.setdefault(self.current_epoch, np.asarray(MADE_BOUT_TRAIN[0]._soft).copy()),
                        raising=False)
    # weak_every=5: epoch 2 has no E-step, so its targets can only come from last.ckpt
    _run(tmp_path, _tiny_params(epochs=3, run_name="r", weak_every=5))
    assert list(seen) == [2] and estep_epochs == []
    np.testing.assert_array_equal(seen[2], saved)


def test_estep_state_round_trips_into_a_fresh_dataset():
    from fake_clips import FakeBoutClips

    a = EStep(FakeBoutClips(["m0", "m1"]), fraction=0.5)
    a.soft.copy_(torch.linspace(0, 1, len(a.soft)))
    b_ds = FakeBoutClips(["m0", "m1"])
    b = EStep(b_ds, fraction=0.5)
    b.load_state_dict(a.state_dict())
    np.testing.assert_allclose(np.asarray(b_ds._soft), np.linspace(0, 1, len(a.soft)), atol=1e-6)
    assert float(b_ds[3]["soft"][1]) == pytest.approx(float(np.linspace(0, 1, 12)[3]), abs=1e-6)


def test_estep_epochs_follow_weak_start_and_weak_every():
    from types import SimpleNamespace

    from fake_clips import FakeBoutClips

    def epochs_run(**kw):
        cb = EStep(FakeBoutClips(["m0", "m1"]), **kw)
        ran = []
        cb.estep = lambda module, trainer=None: ran.append(trainer.current_epoch) or {  # noqa: E731
            "weak_mean": 0.0, "weak_pos_frac": 0.0, "weak_videos": 0}
        for epoch in range(8):
            cb.on_train_epoch_start(SimpleNamespace(current_epoch=epoch, is_global_zero=False), SimpleNamespace())
        return ran

    assert epochs_run() == [1, 2, 3, 4, 5, 6, 7]
    assert epochs_run(start=3) == [3, 4, 5, 6, 7]
    assert epochs_run(start=2, every=3) == [2, 5]
    with pytest.raises(ValueError, match="weak_start"):
        EStep(FakeBoutClips(["m0"]), start=0)


# --- localisation ------------------------------------------------------------------------

def test_localisation_auroc_ranks_windows_against_bouts():
    from mouse_facial_expressions.evaluation.localisation import localisation_auroc, window_bout_fraction

    t = np.arange(40) / 4.0  # 10 s at 4 fps
    sick = pd.DataFrame({"video": "s", "time": t, "bout": (t >= 2) & (t < 5), "label_true": 1})
    ctrl = pd.DataFrame({"video": "c", "time": t, "bout": False, "label_true": 0})
    truth = pd.concat([sick, ctrl], ignore_index=True)
    starts = np.arange(0, 10, 1.0)
    pred = pd.DataFrame({"video": ["s"] * 10 + ["c"] * 10, "start_time": np.r_[starts, starts],
                         "end_time": np.r_[starts, starts] + 0.75})
    frac = window_bout_fraction(pred, truth)
    assert list(frac[:10].round(2)) == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0] and (frac[10:] == 0).all()
    pred["p1"] = np.r_[frac[:10] + 0.1, np.full(10, 0.05)]
    assert localisation_auroc(pred, truth) == 1.0
    pred["p1"] = np.r_[1 - frac[:10], np.zeros(10)]
    assert localisation_auroc(pred, truth) == 0.0
    assert localisation_auroc(pred, truth, scope="all") > 0  # controls' windows count as off-bout


# ----------------------------------------------------------------------------- --weak attention


def test_attention_pooling_is_a_weighted_mean_and_one_window_is_the_plain_model():
    from mouse_facial_expressions.models import create_model
    from mouse_facial_expressions.models.parts import PartsNet

    torch.manual_seed(0)
    cfg = dict(backbone="resnet18", num_frames=3, d_model=32, num_layers=1, num_heads=2, ff_dim=32)
    mil = create_model("advanced", **cfg, mil={"hidden": 16}).eval()  # a pre-parts keyword, read as the attention part
    assert isinstance(mil, PartsNet) and list(mil.parts) == ["face", "attention", "class"]
    assert mil.config["parts"]["attention"] == {"hidden": 16}
    rebuilt = create_model("advanced", **mil.config)
    rebuilt.load_state_dict(mil.state_dict())
    bags = torch.randn(2, 4, 3, 3, 32, 32)  # (B, K, T, C, H, W)
    head = mil.parts["class"].head
    with torch.no_grad():
        s = mil.run({"clip": bags})
        logits, a = s.logits, s.outputs["attention"]
        z = mil.face.embed(bags.reshape(8, 3, 3, 32, 32)).reshape(2, 4, -1)
        torch.testing.assert_close(s.zs, z, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(mil.parts["attention"].attention(z).numpy(), a.numpy(), atol=1e-6)
        by_hand = head((a.unsqueeze(-1) * z).sum(1))
        np.testing.assert_allclose(a.sum(1).numpy(), 1.0, atol=1e-6)
        np.testing.assert_allclose(logits.numpy(), by_hand.numpy(), atol=1e-5)
        one = bags[:, 0]  # a bag of one window: attention 1, the face model's own logits
        np.testing.assert_allclose(mil.run({"clip": one[:, None]}).logits.numpy(), mil(one).numpy(), atol=1e-5)
        np.testing.assert_allclose(mil(one).numpy(), head(mil.face.embed(one)).numpy(), atol=1e-6)
        np.testing.assert_allclose(rebuilt.eval()(one).numpy(), mil(one).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="--model advanced"):
        create_model("baseline", mil={"hidden": 8})


def test_bags_hold_windows_of_one_video_and_keep_the_clip_budget():
    from fake_clips import FakeBoutClips

    from mouse_facial_expressions.training.weak import BagDataset, BagSampler

    ds = FakeBoutClips(["m0", "m1", "m2"], windows_per_animal=6)
    bags = BagDataset(ds, bag=4, seed=3)
    for i in range(len(ds)):
        idx = bags.bag_indices(i, 1)
        assert idx[0] == i and len(idx) == 4 and len(set(ds._video[idx])) == 1 and len(set(idx)) == 4
    np.testing.assert_array_equal(bags.bag_indices(5, 1), bags.bag_indices(5, 1))  # seeded
    item = bags[7]
    assert item["clip"].shape == (4, 3, 3, 32, 32) and item["label"] == ds[7]["label"] and item["video"] == ds._video[7]
    small = BagDataset(FakeBoutClips(["m1"], windows_per_animal=2), bag=4)  # fewer windows than a bag: with replacement
    assert len(small.bag_indices(0, 1)) == 4 and set(small.bag_indices(0, 1)) <= {0, 1}
    sampler = BagSampler(list(range(18)), 4)
    assert len(sampler) == 5 and list(sampler) == [0, 1, 2, 3, 4]


def test_attention_mil_trains_on_bags_and_beats_chance(tmp_path):
    from mouse_facial_expressions.models.parts import PartsNet
    from mouse_facial_expressions.training.module import load_model_from_checkpoint

    torch.set_num_threads(1)
    summary = _run(tmp_path, _tiny_params(weak="attention", weak_fraction=None, weak_bag=3, epochs=3))
    (fold,) = summary["folds"]
    model, hp = load_model_from_checkpoint(fold["best_checkpoint"])
    assert isinstance(model, PartsNet) and "attention" in model.parts
    assert hp["model_cfg"]["parts"]["attention"] == {"hidden": 128, "bag": 3}
    assert "weak_mean" not in fold["history"]["1"]  # no E-step
    # validation scores single windows with the video's label: chance is 0.5, the ceiling 0.75
    assert fold["val_acc"] > 0.6
    pred = pd.read_csv(summary["predictions"])
    test = fake_bout_datasets(None, 0, num_frames=3, frame_stride=1, image_size=32, train_augmentation=False,
                              epoch_size=None, seed=0, val_windows_per_video=None, test_windows_per_video=None)["test"]
    assert pred["p1"][test.bout].mean() > pred["p1"][~test.bout].mean() + 0.2


def test_attention_params_are_checked():
    from mouse_facial_expressions.training import make_params

    assert make_params("advanced", weak="attention").model_config()["parts"]["attention"] == {"hidden": 128}
    assert make_params("advanced", weak="attention", weak_bag=4).model_config()["parts"]["attention"] == {"hidden": 128, "bag": 4}
    assert "attention" not in make_params("advanced", weak="em").model_config()["parts"]  # em is a training strategy, no part
    with pytest.raises(ValueError, match="--model advanced"):
        make_params("baseline", weak="attention").model_config()
    with pytest.raises(ValueError, match="--weak attention with --baseline-recording is not built"):
        make_params("advanced", weak="attention", baseline_recording=1).model_config()
    with pytest.raises(ValueError, match="--weak attention only"):
        make_params("advanced", weak="em", weak_bag=4)
    with pytest.raises(ValueError, match="--weak em only"):
        make_params("advanced", weak="attention", weak_posterior="bayes")


def test_bayes_em_trains_and_its_posteriors_find_the_bouts(tmp_path):
    torch.set_num_threads(1)
    summary = _run(tmp_path, _tiny_params(weak_posterior="bayes", weak_fraction=0.5, run_name="bayes", epochs=3))
    (fold,) = summary["folds"]
    assert fold["val_acc"] > 0.6
    ds = MADE_BOUT_TRAIN[0]
    soft = np.asarray(ds._soft)
    assert (soft[ds.labels == 0] == 0).all()
    assert soft[ds.bout].mean() > soft[(ds.labels == 1) & ~ds.bout].mean() + 0.3
