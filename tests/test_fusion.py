"""Multimodal fusion (issue 17): the fusion part's shapes and modality dropout, the window features of
the other modalities, training and evaluation of fused runs on synth tiny."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mouse_facial_expressions.data.modalities import MODALITIES, feature_stats, parse_modalities
from mouse_facial_expressions.models import create_model
from mouse_facial_expressions.models.parts import LossSettings, PartsNet

FACE = dict(backbone="resnet18", num_frames=3, d_model=32, num_layers=1, num_heads=2, ff_dim=32)
COLUMNS = {"behaviour": ["beh_a", "beh_b", "beh_c"], "physiology": ["phys_t", "phys_w"]}


def fused(modalities, fusion="mid", dropout=0.3, model="advanced") -> PartsNet:
    torch.manual_seed(0)
    cols = {m: COLUMNS[m] for m in modalities if m != "face"}
    face_cfg = FACE if model == "advanced" else dict(backbone="resnet18")
    return create_model(model, fusion=dict(modalities=list(modalities), aux_columns=cols, fusion=fusion,
                                           modality_dropout=dropout), **face_cfg)


def batch(n=4, features=5, nan_rows=()):
    clip = torch.randn(n, 3, 3, 32, 32)
    aux = torch.randn(n, features)
    for r in nan_rows:
        aux[r] = float("nan")
    return clip, aux


def ones(n):
    """The ``(B, 1)`` ones the fusion part's ``_tabular`` takes its batch size from."""
    return torch.ones(n, 1)


def modality_odds(net, clip, aux) -> torch.Tensor:
    """Each modality's log-odds ``(B, M)`` in the fused sum (late, stacked)."""
    with torch.no_grad():
        return net.run({"clip": clip, "aux": aux}).outputs["modality_odds"]


SUBSETS = [s for k in range(1, 4) for s in itertools.combinations(MODALITIES, k)]


@pytest.mark.parametrize("fusion", ["mid", "late", "stacked"])
@pytest.mark.parametrize("subset", SUBSETS, ids=["+".join(s) for s in SUBSETS])
def test_every_subset_of_modalities_gives_two_logits_per_window(subset, fusion):
    net = fused(subset, fusion).eval()
    assert isinstance(net, PartsNet) and ("face" in net.parts) == ("face" in subset) and "fusion" in net.parts
    n_feat = sum(len(COLUMNS[m]) for m in subset if m != "face")
    clip, aux = batch(features=n_feat)
    out = net(clip, aux=aux if n_feat else None)
    assert out.shape == (4, 2)
    assert torch.isfinite(out).all()
    b = {"clip": clip, "soft": torch.tensor([[0.9, 0.1]] * 4), "label": torch.zeros(4, dtype=torch.long)}
    if n_feat:
        b["aux"] = aux
    loss, logits = net.train().loss(b, LossSettings())
    assert logits.shape == (4, 2) and torch.isfinite(loss) and loss.requires_grad


def test_the_config_rebuilds_the_same_model():
    net = fused(("face", "behaviour", "physiology")).eval()
    net.parts["fusion"].set_feature_stats(np.arange(5.0), np.full(5, 2.0))
    again = create_model("advanced", **net.config).eval()
    again.load_state_dict(net.state_dict())
    clip, aux = batch()
    assert torch.allclose(net(clip, aux=aux), again(clip, aux=aux))
    assert again.modalities == ("face", "behaviour", "physiology")
    assert again.config["parts"]["fusion"]["modalities"] == ["face", "behaviour", "physiology"]


def test_features_are_standardised_inside_the_model():
    fusion = fused(("behaviour",)).eval().parts["fusion"]
    x = torch.tensor([[10.0, 20.0, 30.0]])
    fusion.set_feature_stats([10.0, 20.0, 30.0], [1.0, 0.0, 2.0])  # an SD of 0 becomes 1
    feats, present = fusion._tabular(x, ones(1))
    assert torch.equal(feats["behaviour"], torch.zeros(1, 3))
    assert torch.equal(fusion.aux_std, torch.tensor([1.0, 1.0, 2.0]))
    assert present["behaviour"].item() == 1.0


def test_a_window_without_a_modality_still_scores_and_ignores_its_features():
    net = fused(("face", "behaviour", "physiology")).eval()
    clip, aux = batch(nan_rows=[0])
    out = net(clip, aux=aux)
    assert torch.isfinite(out).all()
    net.parts["fusion"].use(["face"])  # the same windows with only the face: the NaN row scores as the others do
    face_only = net(clip, aux=aux)
    aux2 = aux.clone()
    aux2[1:] = 123.0  # features the model does not use any more change nothing
    assert torch.allclose(face_only, net(clip, aux=aux2))
    net.parts["fusion"].use(None)
    assert not torch.allclose(out[1:], net(clip, aux=aux2)[1:])


def test_use_refuses_a_modality_the_model_was_not_trained_on():
    net = fused(("face", "behaviour"))
    with pytest.raises(ValueError, match="trained on face, behaviour"):
        net.parts["fusion"].use(["physiology"])


def test_modality_dropout_keeps_one_modality_per_window_and_only_in_training():
    net = fused(("face", "behaviour", "physiology"), dropout=0.9)
    fusion = net.parts["fusion"]
    present = {m: torch.ones(1000) for m in ("face", "behaviour", "physiology")}
    torch.manual_seed(1)
    net.train()
    kept = fusion._dropout(present)
    total = sum(kept.values())
    assert (total >= 1).all()  # never all switched off
    assert (total == 1).float().mean() > 0.8  # at 0.9 most windows keep only the forced one
    net.eval()
    assert all(torch.equal(v, torch.ones(1000)) for v in fusion._dropout(present).values())


def test_late_fusion_adds_the_modalities_log_odds():
    net = fused(("face", "behaviour", "physiology"), "late").eval()
    clip, aux = batch(nan_rows=[2])
    with torch.no_grad():
        s = net.run({"clip": clip, "aux": aux})
    odds = {m: lg[:, 1] - lg[:, 0] for m, (lg, _) in s.evidence.items()}
    assert set(odds) == {"face", "behaviour", "physiology"}
    expected = odds["face"] + (odds["behaviour"] + odds["physiology"]) * torch.tensor([1.0, 1, 0, 1])  # row 2: no features
    assert torch.allclose(s.logits[:, 1] - s.logits[:, 0], expected, atol=1e-5)
    assert s.evidence["behaviour"][1].tolist() == [True, True, False, True]  # the rows where behaviour is present
    assert torch.allclose(s.outputs["modality_odds"].sum(1), expected, atol=1e-5)


def test_stacking_weighs_the_informative_modality_and_is_then_used():
    net = fused(("face", "behaviour"), "stacked").eval()
    fusion = net.parts["fusion"]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    odds = np.c_[(2 * y - 1) * 1.0 + rng.normal(0, 1, 4000), rng.normal(0, 1, 4000)]  # face informative, behaviour noise
    fusion.fit_stack(odds, y)
    w_face, w_beh, _ = fusion.stack.tolist()
    assert w_face > 1.0 and abs(w_beh) < 0.1 * w_face
    clip, aux = batch(features=3)
    per = modality_odds(net, clip, aux)
    out = net(clip, aux=aux)
    assert torch.allclose(out[:, 1] - out[:, 0], per @ fusion.stack[:-1] + fusion.stack[-1], atol=1e-5)
    with pytest.raises(ValueError, match="both classes"):
        fusion.fit_stack(odds, np.zeros(4000))


def test_late_fusion_weighs_each_tabular_modality_by_its_scale():
    net = fused(("face", "behaviour", "physiology"), "late").eval()
    fusion = net.parts["fusion"]
    clip, aux = batch()
    before = modality_odds(net, clip, aux)
    fusion.set_scales({"physiology": 0.0, "behaviour": 0.5})
    after = modality_odds(net, clip, aux)
    assert torch.allclose(after[:, 0], before[:, 0]) and torch.allclose(after[:, 1], 0.5 * before[:, 1], atol=1e-6)
    assert torch.equal(after[:, 2], torch.zeros(4))
    out = net(clip, aux=aux)
    assert torch.allclose(out[:, 1] - out[:, 0], after.sum(1), atol=1e-5)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        fusion.set_scales({"behaviour": 1.5})
    with pytest.raises(ValueError, match="no tabular modality"):
        fusion.set_scales({"face": 0.5})
    assert "parts.fusion.scale" in net.state_dict()
    state = {k: v for k, v in net.state_dict().items() if k != "parts.fusion.scale"}  # a fused checkpoint from before the weights
    again = fused(("face", "behaviour", "physiology"), "late")
    again.load_state_dict(state)
    assert torch.equal(again.parts["fusion"].scale, torch.ones(2))


def test_fit_scale_by_hand():
    from mouse_facial_expressions.models.parts.fusion_fit import fit_scale

    y = np.array([0, 0, 1, 1] * 50)
    assert fit_scale(np.where(y == 1, 3.0, -3.0), y) == 1.0  # right and confident: kept as trained
    assert fit_scale(np.where(y == 1, -3.0, 3.0), y) == 0.0  # wrong way round: ignored
    rng = np.random.default_rng(0)
    assert fit_scale(rng.normal(0, 4, len(y)), y) < 0.1  # confident noise: next to nothing
    over = np.where(y == 1, 8.0, -8.0) * np.where(rng.random(len(y)) < 0.8, 1, -1)  # 80 % right, far too sure
    assert 0.05 < fit_scale(over, y) < 0.5  # shrunk towards the log-odds of 80 %: log(4) / 8 = 0.17
    with pytest.raises(ValueError, match="both classes"):
        fit_scale([1.0, 2.0], [1, 1])


def _tabular_windows(rng, animals=8, videos_per_animal=2, windows_per_video=20):
    """Windows of ``animals`` mice, half sick: label 1 on a sick mouse's second video. Features:
    ``signal`` (the label plus noise, per window) and ``noise`` (one random value per video)."""
    rows = []
    for a in range(animals):
        for v in range(videos_per_animal):
            y = int(a % 2 == 1 and v == 1)
            per_video = rng.normal()
            for _ in range(windows_per_video):
                rows.append(dict(animal=f"m{a}", video=f"m{a}_v{v}", label=y, soft=float(y), signal=y + rng.normal(0, 0.7),
                                 noise=per_video))
    return pd.DataFrame(rows)


def test_cross_fitting_gives_an_uninformative_modality_next_to_no_weight():
    from mouse_facial_expressions.models.parts.fusion_fit import cross_fit_scales

    w = _tabular_windows(np.random.default_rng(1))
    torch.manual_seed(0)
    net = PartsNet("advanced", {}, {"class": {}, "fusion": dict(modalities=["behaviour", "physiology"], aux_columns={
        "behaviour": ["signal"], "physiology": ["noise"]}, fusion="late")}).parts["fusion"]  # a face-less model's fusion part
    aux = w[["signal", "noise"]].to_numpy(np.float32)
    net.set_feature_stats(aux.mean(0), aux.std(0))
    out = cross_fit_scales(net, aux, w, epochs=3, epoch_size=160, batch_size=16, weight_decay=1e-4, use_soft_labels=True,
                           label_smoothing=0.1, seed=0)
    assert out["behaviour"]["scale"] > 0.5 and out["behaviour"]["auroc"] > 0.8
    assert out["physiology"]["scale"] < 0.2 and out["physiology"]["auroc"] < 0.75
    assert out["behaviour"]["animals"] == 8
    few = w[w["animal"].isin(["m0", "m1"])]
    assert cross_fit_scales(net, few[["signal", "noise"]].to_numpy(np.float32), few, epochs=1, epoch_size=16, batch_size=16,
                            weight_decay=0.0, use_soft_labels=True, label_smoothing=0.1, seed=0)["physiology"]["scale"] == 1.0


def test_feature_noise_only_in_training():
    fusion = fused(("behaviour",), "late").parts["fusion"]
    x = torch.zeros(64, 3)
    assert torch.equal(fusion.eval()._tabular(x, ones(64))[0]["behaviour"], torch.zeros(64, 3))
    noisy = fusion.train()._tabular(x, ones(64))[0]["behaviour"]
    assert 0.3 < float(noisy.std()) < 0.7  # FEATURE_NOISE = 0.5 standard deviations


def test_mid_fusion_needs_an_embedding():
    with pytest.raises(ValueError, match="--fusion late"):
        fused(("face", "behaviour"), "mid", model="baseline")
    assert fused(("face", "behaviour"), "late", model="baseline")(torch.randn(2, 3, 3, 32, 32), aux=torch.randn(2, 3)).shape == (2, 2)


def test_parse_modalities():
    assert parse_modalities("physiology, face") == ("face", "physiology")
    for bad in ("", "face,face", "voice", "face,voice"):
        with pytest.raises(ValueError, match="face, behaviour, physiology"):
            parse_modalities(bad)


def test_feature_stats_ignore_missing_values():
    mean, std = feature_stats(pd.DataFrame({"a": [1.0, 3.0, np.nan], "b": [np.nan] * 3, "c": [2.0, 2.0, 2.0]}))
    assert mean.tolist() == [2.0, 0.0, 2.0]
    assert std.tolist() == [1.0, 1.0, 1.0]


def test_fused_training_parameters_are_checked():
    from mouse_facial_expressions.training import make_params

    assert make_params("advanced", modalities="face").modalities is None  # the plain model, same run name
    assert make_params("advanced", modalities="behaviour,face").modality_list == ("face", "behaviour")
    cfg = make_params("advanced", modalities="face,behaviour").model_config()
    assert cfg["parts"]["fusion"]["fusion"] == "late" and cfg["parts"]["fusion"]["modalities"] == ["face", "behaviour"]
    assert set(cfg["parts"]) == {"face", "class", "fusion"}
    assert "fusion" not in make_params("advanced", modalities="face").model_config()["parts"]
    assert set(make_params("advanced", modalities="behaviour").model_config()["parts"]) == {"class", "fusion"}  # no face
    with pytest.raises(ValueError, match="--modalities"):
        make_params("advanced", fusion="late")
    # weak labels are a training strategy, not a part: they combine with fusion
    assert "fusion" in make_params("advanced", modalities="face,behaviour", weak="em").model_config()["parts"]


@pytest.mark.parametrize("fusion", ["mid", "late", "stacked"])
def test_the_small_networks_learn_faster_than_the_face(fusion):
    from mouse_facial_expressions.models.parts.fusion import HEAD_LR, TABULAR_LR
    from mouse_facial_expressions.training.module import ClipClassifier

    parts = {"face": {}, "class": {}, "fusion": dict(modalities=["face", "behaviour"], aux_columns={"behaviour": COLUMNS["behaviour"]},
                                                     fusion=fusion)}
    module = ClipClassifier("advanced", dict(FACE, parts=parts), learning_rate=1e-4)
    groups = module.configure_optimizers()["optimizer"].param_groups
    assert [g["lr"] for g in groups] == ([1e-4, TABULAR_LR, HEAD_LR] if fusion == "mid" else [1e-4, TABULAR_LR])
    face = [*module.model.parts["face"].parameters(), *module.model.parts["class"].parameters()]  # the face and its class head
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in face}
    assert sum(len(g["params"]) for g in groups) == len(list(module.parameters()))  # every parameter, once


# ----------------------------------------------------------------------------- on synth tiny

@pytest.fixture(scope="module")
def fusion_project(tmp_path_factory) -> Path:
    """synth tiny (8 mice, strong effects) -> prepare -> keypoints and behaviour import -> extract -> task1, 2 folds."""
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.data.tasks import make_task, preset
    from mouse_facial_expressions.io.behaviour import import_behaviour
    from mouse_facial_expressions.io.keypoints import import_keypoints
    from mouse_facial_expressions.preprocess.extract import extract_videos
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.synth import generate_cohort

    project = generate_cohort(tmp_path_factory.mktemp("fusion") / "project", preset="tiny", seed=0, mice=8,
                              behaviour_effect=3.0, physiology_effect=3.0)
    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    import_behaviour(cfg)
    assert extract_videos(cfg, progress=False).ok
    make_task(cfg, preset("task1", n_folds=2, num_frames=3, frame_stride=1))
    return Path(project)


def test_window_features_of_the_other_modalities(fusion_project):
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.data.modalities import modality_features, video_recordings
    from mouse_facial_expressions.data.tasks import load_task
    from mouse_facial_expressions.preprocess.behaviour import BEHAVIOUR_FEATURES

    cfg = load_config(fusion_project)
    task = load_task(fusion_project / "tasks" / "task-1")
    videos = task.frames.groupby("video", as_index=False).agg(animal=("animal", "first"))
    windows = videos.assign(start_time=0.0, end_time=2.0)
    feats, cols = modality_features(cfg, windows, ("face", "behaviour", "physiology"), video_recordings(task.frames))
    assert cols["behaviour"] == list(BEHAVIOUR_FEATURES)
    assert cols["physiology"] == ["phys_temperature_c", "phys_weight_g"]
    assert list(feats.columns) == cols["behaviour"] + cols["physiology"]
    rec1 = windows["video"].str.contains("_rec1_").to_numpy()
    assert np.isfinite(feats.loc[:, cols["behaviour"]].to_numpy()).all()
    assert np.isfinite(feats.loc[~rec1, cols["physiology"]].to_numpy()).all()
    assert feats.loc[rec1, cols["physiology"]].isna().all().all()  # the baseline recording: no change to measure


def test_a_missing_physiology_row_is_an_error_naming_it(fusion_project, tmp_path):
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.data.modalities import modality_features
    from mouse_facial_expressions.io.physiology import PhysiologyError

    project = tmp_path / "p"
    shutil.copytree(fusion_project, project, ignore=shutil.ignore_patterns("videos", "frames", "models"))
    csv = project / "metadata" / "physiology.csv"
    table = pd.read_csv(csv)
    gone = table.iloc[1]
    table.drop(index=1).to_csv(csv, index=False)
    windows = pd.DataFrame({"video": ["v"], "animal": [gone["animal"]], "start_time": [0.0], "end_time": [1.0]})
    with pytest.raises(PhysiologyError, match=f"animal {gone['animal']} recording {gone['recording']}"):
        modality_features(load_config(project), windows, ("physiology",), pd.Series({"v": gone["recording"]}))


def _train(project: Path, modalities: str, name: str, **kw) -> dict:
    from tiny_run import tiny_params

    from mouse_facial_expressions.training import train_cv

    torch.set_num_threads(1)
    p = tiny_params(run_name=name, modalities=modalities, epochs=3, limit_batches=None, **kw)
    return train_cv(project / "tasks" / "task-1", p, project / "models", progress=False, track=False)


def test_a_fused_model_beats_chance_on_held_out_animals_and_records_its_modalities(fusion_project):
    from mouse_facial_expressions.evaluation.aggregate import aggregate_levels
    from mouse_facial_expressions.evaluation.metrics import METRICS
    from mouse_facial_expressions.training.module import load_model_from_checkpoint

    summary = _train(fusion_project, "face,behaviour,physiology", "fused")
    pred = pd.read_csv(summary["predictions"])
    animal = aggregate_levels(pred)["animal"]
    assert METRICS["auroc"](animal["label"], animal["p1"], 0.5) > 0.75  # 8 held-out animal-conditions per fold
    model, hp = load_model_from_checkpoint(summary["folds"][0]["best_checkpoint"])
    assert isinstance(model, PartsNet) and model.modalities == ("face", "behaviour", "physiology")
    assert hp["model_cfg"]["parts"]["fusion"]["aux_columns"]["physiology"] == ["phys_temperature_c", "phys_weight_g"]
    fusion = model.parts["fusion"]
    assert fusion.aux_std.ne(1.0).any()  # the training windows' statistics travel with the weights
    variants = pd.read_csv(Path(summary["run_dir"]) / "fold0" / "predictions_modalities.csv")["variant"]
    assert set(variants) == {"all", "only_face", "only_behaviour", "only_physiology", "without_face",
                             "without_behaviour", "without_physiology"}
    record = json.loads((Path(summary["run_dir"]) / "fold0" / "fold.json").read_text())
    weights = record["modality_weights"]  # cross-fitted on the training animals, saved with the weights
    assert set(weights) == {"behaviour", "physiology"}
    assert torch.allclose(fusion.scale, torch.tensor([weights["behaviour"]["scale"], weights["physiology"]["scale"]]))


def test_the_evaluation_shows_the_modality_table(fusion_project):
    from mouse_facial_expressions.report.runs import report_run

    summary = _train(fusion_project, "face,behaviour,physiology", "fused")  # resumes the run above
    results = report_run(summary["run_dir"], n_boot=50)
    rows = {r["variant"]: r for r in results["modalities"]["rows"]}
    assert rows["only_physiology"]["modalities"] == "physiology"
    assert rows["without_face"]["modalities"] == "behaviour+physiology"
    drops = {c["modality"]: c for c in results["modalities"]["contributions"]}
    assert drops["face"]["animal_accuracy_drop"] == pytest.approx(rows["all"]["animal_accuracy"] - rows["without_face"]["animal_accuracy"])
    html = Path(results["paths"]["report"]).read_text()
    assert "id='modalities'" in html and "behaviour+physiology" in html


def test_a_model_without_the_face_reads_no_frame(fusion_project, tmp_path):
    project = tmp_path / "p"
    shutil.copytree(fusion_project, project, ignore=shutil.ignore_patterns("models"))
    for f in (project / "frames").glob("*.npy"):
        f.write_bytes(b"")  # a read would fail
    summary = _train(project, "behaviour,physiology", "no-face")
    assert len(pd.read_csv(summary["predictions"])) > 0


def test_modality_table_by_hand():
    from mouse_facial_expressions.evaluation.modalities import modality_table

    rows = []
    for variant, p in {"all": [0.9, 0.1], "only_face": [0.4, 0.1], "only_behaviour": [0.9, 0.6]}.items():
        for animal, label, p1 in (("a", 1, p[0]), ("b", 0, p[1])):
            rows.append(dict(fold=0, video=f"{animal}_v", animal=animal, start_time=0.0, end_time=1.0, label=label,
                             p1=p1, variant=variant))
    table = modality_table(pd.DataFrame(rows), n_boot=0)
    acc = {r["variant"]: r["animal_accuracy"] for r in table["rows"]}
    assert acc == {"all": 1.0, "only_face": 0.5, "only_behaviour": 0.5}
    # two modalities: "without face" is behaviour alone, and the other way round
    assert {c["modality"]: c["animal_accuracy_drop"] for c in table["contributions"]} == {"face": 0.5, "behaviour": 0.5}


def test_train_cli_has_the_fusion_flags(capsys):
    from mouse_facial_expressions.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help-all"])  # the fusion details are ablation knobs
    text = capsys.readouterr().out
    for flag in ("--modalities", "--fusion", "--modality-dropout"):
        assert flag in text


# ----------------------------------------------------------------------------- mfe predict

def _fold0(summary: dict) -> tuple[pd.DataFrame, str]:
    run_dir = Path(summary["run_dir"])
    return pd.read_csv(run_dir / "fold0" / "predictions_test.csv"), summary["folds"][0]["best_checkpoint"]


def test_predict_asks_for_the_inputs_of_a_fused_run(fusion_project, tmp_path):
    from mouse_facial_expressions.inference.predict import predict_videos

    summary = _train(fusion_project, "face,behaviour,physiology", "fused")  # resumes the run above
    video = sorted((fusion_project / "videos" / "processed").glob("*.mp4"))[0]
    with pytest.raises(ValueError, match=r"behaviour needs --body .*physiology needs --physiology .*--modalities face"):
        predict_videos(video, fusion_project / "keypoints" / "dlc", summary["run_dir"], tmp_path, progress=False)
    with pytest.raises(ValueError, match="not voice|face, behaviour, physiology"):
        predict_videos(video, fusion_project / "keypoints" / "dlc", summary["run_dir"], tmp_path, progress=False,
                       modalities="face,voice")


def test_predict_gives_a_fused_run_the_scores_of_its_evaluation(fusion_project, tmp_path):
    from mouse_facial_expressions.inference.predict import predict_videos

    summary = _train(fusion_project, "face,behaviour,physiology", "fused")
    preds, ckpt = _fold0(summary)
    videos = sorted(preds["video"].unique())
    report = predict_videos([fusion_project / "videos" / "processed" / f"{v}.mp4" for v in videos],
                            fusion_project / "keypoints" / "dlc", ckpt, tmp_path, progress=False,
                            body=fusion_project / "keypoints" / "body", physiology=fusion_project / "metadata" / "physiology.csv")
    assert report.ok, report.summary()
    for v in videos:
        both = preds[preds["video"] == v].merge(pd.read_csv(tmp_path / f"{v}_scores.csv"), on=["video", "start_time"],
                                                suffixes=("_eval", ""))
        assert len(both) == (preds["video"] == v).sum() > 0
        np.testing.assert_allclose(both["p1"], both["p1_eval"], atol=1e-5)
    assert "scoring with face, behaviour, physiology" in (tmp_path / "COLUMNS.md").read_text()


def test_predict_scores_a_fused_run_without_a_modality_when_asked(fusion_project, tmp_path):
    from mouse_facial_expressions.inference.predict import predict_videos

    summary = _train(fusion_project, "face,behaviour,physiology", "fused")
    preds, ckpt = _fold0(summary)
    video = sorted(preds["video"].unique())[0]
    report = predict_videos(fusion_project / "videos" / "processed" / f"{video}.mp4", fusion_project / "keypoints" / "dlc",
                            ckpt, tmp_path, progress=False, modalities="face,behaviour", body=fusion_project / "keypoints" / "body")
    assert report.ok, report.summary()
    mods = pd.read_csv(Path(summary["run_dir"]) / "fold0" / "predictions_modalities.csv")
    ref = mods[(mods["variant"] == "without_physiology") & (mods["video"] == video)]
    both = ref.merge(pd.read_csv(tmp_path / f"{video}_scores.csv"), on=["video", "start_time"], suffixes=("_eval", ""))
    assert len(both) == len(ref) > 0
    np.testing.assert_allclose(both["p1"], both["p1_eval"], atol=1e-5)  # the evaluation's leave-one-out reading
    assert "physiology left out" in (tmp_path / "COLUMNS.md").read_text()


def test_a_fused_run_exports_with_its_features(fusion_project, tmp_path):
    import onnx

    from mouse_facial_expressions.inference.export import check_onnx, export_onnx

    summary = _train(fusion_project, "face,behaviour,physiology", "fused")
    path = export_onnx(summary["run_dir"], tmp_path / "m.onnx")  # the fusion part adds the graph's aux input
    graph = onnx.load(str(path))
    assert [i.name for i in graph.graph.input] == ["clip", "aux"]
    meta = {p.key: json.loads(p.value) for p in graph.metadata_props}
    assert meta["mfe.aux_columns"]["physiology"] == ["phys_temperature_c", "phys_weight_g"]
    assert check_onnx(path, summary["run_dir"]) < 1e-4


def test_behaviour_without_imported_body_tables_is_a_clear_error(fusion_project, tmp_path):
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.data.modalities import modality_features

    project = tmp_path / "p"
    shutil.copytree(fusion_project, project, ignore=shutil.ignore_patterns("videos", "frames", "models", "behaviour"))
    windows = pd.DataFrame({"video": ["m1_rec1_preinjection"], "animal": ["m1"], "start_time": [0.0], "end_time": [1.0]})
    with pytest.raises(ValueError, match="run `mfe behaviour import`"):
        modality_features(load_config(project), windows, ("face", "behaviour"))
