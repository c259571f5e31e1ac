"""``--recalibrate controls|adabn|baseline``: the threshold math by hand, AdaBN's buffers, the baseline shift, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from mouse_facial_expressions.evaluation.recalibrate import controls_threshold, format_comparison, scoring_row
from mouse_facial_expressions.inference.adabn import adapt_models

torch.set_num_threads(1)


def _animals(controls, treated, *, label=True) -> pd.DataFrame:
    rows = [{"animal": f"c{i}", "treatment": "saline", "label": 0.0, "p1": p} for i, p in enumerate(controls)]
    rows += [{"animal": f"t{i}", "treatment": "high", "label": 1.0, "p1": p} for i, p in enumerate(treated)]
    df = pd.DataFrame(rows)
    return df if label else df.assign(label=np.nan)


# ----------------------------------------------------------------------------- controls, by hand

def test_controls_threshold_reproduces_a_hand_computed_value():
    # New controls 0.2, 0.5, 0.8: median logit logit(0.5) = 0. Training controls 0.1, 0.2, 0.3:
    # median logit logit(0.2) = -log 4. Offset = log 4; threshold 0.5 -> sigmoid(0 + log 4) = 4/5.
    new = _animals([0.2, 0.5, 0.8], [0.9, 0.95], label=False)
    ref = _animals([0.1, 0.2, 0.3], [0.7, 0.8, 0.9])
    d = controls_threshold(new, ref, 0.5)
    assert d["offset_logit"] == pytest.approx(math.log(4), abs=1e-12)
    assert d["new_threshold"] == pytest.approx(0.8, abs=1e-12)
    assert d["new_controls_median_p1"] == pytest.approx(0.5) and d["reference_controls_median_p1"] == pytest.approx(0.2)
    assert d["n_new_controls"] == 3 and d["n_reference_controls"] == 3
    assert d["new_controls_from"] == "treatment" and d["reference_controls_from"] == "treatment"
    assert "treatment labels" in d["uses"] and "saline" in d["uses"]
    # threshold 0.6: odds 1.5 x 4 = 6 -> 6/7
    assert controls_threshold(new, ref, 0.6)["new_threshold"] == pytest.approx(6 / 7, abs=1e-12)


def test_one_score_per_control_animal_and_the_median_of_an_even_count():
    # c0 has two rows (0.1, 0.3: mean 0.2); c1 scores 0.5. Median logit of an even count is the
    # mean of the two middle logits: (logit(0.2) + logit(0.5)) / 2 = -log(4) / 2.
    new = pd.DataFrame({"animal": ["c0", "c0", "c1"], "treatment": "saline", "label": np.nan, "p1": [0.1, 0.3, 0.5]})
    ref = _animals([0.5], [0.9])
    d = controls_threshold(new, ref, 0.5)
    assert d["n_new_controls"] == 2
    assert d["offset_logit"] == pytest.approx(-math.log(4) / 2, abs=1e-12)
    assert d["new_threshold"] == pytest.approx(1 / 3, abs=1e-12)  # odds 4 ** -0.5 = 1/2


def test_training_controls_fall_back_to_label_zero_and_new_controls_are_required():
    ref = _animals([0.1, 0.2, 0.3], [0.8]).drop(columns="treatment")
    d = controls_threshold(_animals([0.2], [0.9], label=False), ref, 0.5)
    assert d["reference_controls_from"] == "label" and d["new_threshold"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no control animals.*adabn"):
        controls_threshold(_animals([], [0.9], label=False).assign(treatment="high"), ref, 0.5)


def test_scoring_row_uses_animal_level_metrics():
    df = _animals([0.2, 0.6], [0.7, 0.4])
    r = scoring_row("zero-shot (raw)", df, 0.5)
    assert (r["accuracy"], r["balanced_accuracy"], r["auroc"]) == (0.5, 0.5, 0.75)
    assert r["n_called_positive"] == 2 and r["controls_called_positive"] == "1/2"
    r = scoring_row("recalibrated (controls)", df, 0.65)
    assert (r["accuracy"], r["auroc"]) == (0.75, 0.75)
    text = format_comparison([scoring_row("zero-shot (raw)", df, 0.5), r])
    assert "zero-shot (raw)" in text and "recalibrated (controls)" in text and "0.750" in text
    assert scoring_row("x", df.assign(label=np.nan), 0.5)["accuracy"] is None


# ----------------------------------------------------------------------------- adabn

class _BNNet(torch.nn.Sequential):
    """A toy scorer; ``encode`` is the pass adabn runs (a model of parts: its face part, where the BatchNorm layers are)."""

    def encode(self, x):
        return self(x)


def _bn_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return _BNNet(torch.nn.Dropout(0.5), torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                               torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2)).eval()


BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def test_adabn_changes_only_batchnorm_buffers_with_dropout_off():
    model = _bn_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    batches = [2.0 + 3.0 * torch.randn(5, 1, 8, 8, generator=gen) for _ in range(3)]  # a shifted "cohort"
    (adapted,), info = adapt_models([model], batches)
    assert info == {"n_batches": 3, "n_clips": 15, "bn_layers": [1]}
    for k, v in model.state_dict().items():  # the original is untouched
        assert torch.equal(v, before[k]), k
    after = adapted.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.split(".")[-1] in BN_BUFFERS for k in changed)
    assert {k.split(".")[-1] for k in changed} == set(BN_BUFFERS)
    # cumulative average over equal batches = the statistics of all the data, dropout off
    conv_out = model[1](torch.cat(batches))
    torch.testing.assert_close(adapted[2].running_mean, conv_out.mean(dim=(0, 2, 3)), atol=1e-5, rtol=1e-5)
    assert not adapted.training and not adapted[2].training and adapted[2].momentum == model[2].momentum
    x = batches[0]
    assert not torch.allclose(adapted(x), model(x))  # the scores change


def test_recompute_batchnorm_is_the_cumulative_average_of_the_given_layers_only():
    """The update_bn route (training.callbacks.recompute_batchnorm) against a hand computation:
    the chosen layer's statistics are the plain mean of the per-batch statistics; momentum,
    each layer's mode, dropout and the other BatchNorm layer are as they were."""
    from mouse_facial_expressions.training.callbacks import recompute_batchnorm

    torch.manual_seed(0)
    frozen, live = torch.nn.BatchNorm2d(1), torch.nn.BatchNorm2d(4)
    model = torch.nn.Sequential(torch.nn.Dropout(0.5), frozen, torch.nn.Conv2d(1, 4, 3), live).eval()
    frozen_before = {k: v.clone() for k, v in frozen.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    batches = [1.0 + s * torch.randn(3, 1, 8, 8, generator=gen) for s in (1.0, 2.0, 4.0)]  # (B, C, H, W)
    recompute_batchnorm([live], model, batches)
    with torch.no_grad():  # dropout off and the frozen layer in eval mode: the conv sees the inputs as scoring does
        outs = [model[2](model[1](x)) for x in batches]  # (B, 4, 6, 6)
    mean = torch.stack([o.mean(dim=(0, 2, 3)) for o in outs]).mean(0)
    var = torch.stack([o.var(dim=(0, 2, 3), unbiased=True) for o in outs]).mean(0)
    torch.testing.assert_close(live.running_mean, mean, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(live.running_var, var, atol=1e-6, rtol=1e-6)
    assert int(live.num_batches_tracked) == 3 and live.momentum == 0.1 and not live.training
    assert not model[0].training and not frozen.training
    assert all(torch.equal(v, frozen_before[k]) for k, v in frozen.state_dict().items())


def test_adabn_needs_batches():
    with pytest.raises(ValueError, match="no clips"):
        adapt_models([_bn_model()], [])


@pytest.mark.slow
def test_adabn_on_the_tiny_runs_ensemble(run):
    from mouse_facial_expressions.inference.adabn import adapt_ensemble
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.zeroshot import task_clips

    ens = load_ensemble(run.run_dir)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in ens.models]
    clips = list(task_clips(ens, run.task_dir, batch_size=8))
    assert clips[0].shape[1:] == (ens.num_frames, ens.channels, ens.image_size, ens.image_size)
    adapted, info = adapt_ensemble(ens, clips)
    assert info["n_clips"] == sum(len(c) for c in clips) and all(n > 0 for n in info["bn_layers"])
    for m, b, a in zip(ens.models, before, adapted.models):
        assert all(torch.equal(v, b[k]) for k, v in m.state_dict().items())  # originals untouched
        sa = a.state_dict()
        changed = {k for k in sa if not torch.equal(sa[k], b[k])}
        assert changed and all(k.split(".")[-1] in BN_BUFFERS for k in changed)
    assert not np.allclose(adapted.predict(clips[0]), ens.predict(clips[0]))


# ----------------------------------------------------------------------------- adabn per recording cohort

def _group_batches(mean: float, n: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [mean + torch.randn(4, 1, 8, 8, generator=gen) for _ in range(n)]


def test_adabn_per_group_uses_each_groups_own_statistics():
    from mouse_facial_expressions.inference.adabn import adapt_groups

    model = _bn_model()
    data = {"A": _group_batches(-3.0, 2, 1), "B": _group_batches(4.0, 2, 2), "tiny": _group_batches(0.5, 1, 3)}
    adapted, info = adapt_groups([model], {g: (lambda b=b: iter(b)) for g, b in data.items()}, own={"A", "B"})
    conv = model[1]
    with torch.no_grad():
        mean_of = {g: conv(torch.cat(b)).mean(dim=(0, 2, 3)) for g, b in data.items()}
        pooled = conv(torch.cat([x for b in data.values() for x in b])).mean(dim=(0, 2, 3))
    (a,), (b,), (t,) = adapted["A"], adapted["B"], adapted["tiny"]
    # each group with statistics of its own gets exactly its own channel means ...
    torch.testing.assert_close(a[2].running_mean, mean_of["A"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b[2].running_mean, mean_of["B"], atol=1e-5, rtol=1e-5)
    assert (a[2].running_mean - pooled).abs().max() > 1.0 and (b[2].running_mean - pooled).abs().max() > 1.0
    # ... and the small group falls back to the whole task's (all groups' batches together)
    torch.testing.assert_close(t[2].running_mean, pooled, atol=1e-5, rtol=1e-5)
    assert info["n_clips_by_group"] == {"A": 8, "B": 8, "(whole task)": 20}
    # each group's crops are normalised with its own statistics: A's clips through A's copy equal
    # the original network with A's mean and variance put in by hand
    x = data["A"][0]
    by_hand = _bn_model()
    by_hand[2].running_mean.copy_(a[2].running_mean)
    by_hand[2].running_var.copy_(a[2].running_var)
    with torch.no_grad():
        torch.testing.assert_close(a(x), by_hand(x))
        assert not torch.allclose(a(x), t(x), atol=1e-3)  # pooled statistics score A's clips differently


def _windows(groups: dict[str, tuple[int, int]]) -> tuple[pd.DataFrame, dict]:
    """Windows of ``{group: (animals, windows per animal)}``, one video per animal."""
    rows, group_of = [], {}
    for g, (animals, per) in groups.items():
        for i in range(animals):
            video = f"{g}_m{i}_rec1"
            group_of[video] = g
            rows += [{"video": video, "animal": f"{g}_m{i}", "start_time": float(k)} for k in range(per)]
    return pd.DataFrame(rows), group_of


def test_plan_groups_falls_back_to_the_whole_task_for_a_small_group():
    from mouse_facial_expressions.inference.adabn import MIN_GROUP_ANIMALS, MIN_GROUP_WINDOWS, plan_groups

    assert (MIN_GROUP_ANIMALS, MIN_GROUP_WINDOWS) == (2, 16)
    windows, group_of = _windows({"A": (3, 10), "B": (2, 8), "C": (1, 40), "D": (2, 7)})
    group_of["D_m1_rec1"] = None  # no cohort value: whole task
    plan = plan_groups(windows, group_of).set_index("group")
    assert plan.loc["A", "statistics"] == "own" and plan.loc["B", "statistics"] == "own"  # 2 animals, 16 windows
    assert plan.loc["C", "statistics"] == "task" and plan.loc["C", "reason"] == "1 animal(s) < 2"
    assert plan.loc["D", "statistics"] == "task" and plan.loc["D", "reason"] == "1 animal(s) < 2"
    assert plan.loc["(none)", "statistics"] == "task" and plan.loc["(none)", "n_windows"] == 7
    few = plan_groups(_windows({"A": (3, 10), "B": (3, 5)})[0], _windows({"A": (3, 10), "B": (3, 5)})[1])
    assert few.set_index("group").loc["B", "reason"] == "15 windows < 16"
    one = plan_groups(*_windows({"A": (4, 10)}))
    assert list(one["statistics"]) == ["task"] and "only group" in one["reason"].iloc[0]
    whole = plan_groups(windows, None)
    assert list(whole["group"]) == ["(whole task)"] and whole["n_windows"].iloc[0] == len(windows)


def test_adabn_grouping_column_and_the_recorded_choice():
    from mouse_facial_expressions.report.runs import _grouping_text, adabn_groups

    meta = pd.DataFrame({"video": ["v1", "v2", "v3"], "cohort": ["A", "A", "B"], "setup": ["x", "y", "y"]})
    assert adabn_groups(meta, None) == ({"v1": "A", "v2": "A", "v3": "B"}, "cohort")
    assert adabn_groups(meta, "setup") == ({"v1": "x", "v2": "y", "v3": "y"}, "setup")
    assert adabn_groups(meta, "none") == (None, "none")
    assert adabn_groups(meta.drop(columns="cohort"), None) == (None, "none")  # no cohort column: the whole task
    with pytest.raises(ValueError, match="--recalibrate-by room.*cohort, setup"):
        adabn_groups(meta, "room")
    text = _grouping_text("cohort", [
        {"group": "A", "n_animals": 3, "n_windows": 30, "statistics": "own", "reason": ""},
        {"group": "C", "n_animals": 1, "n_windows": 40, "statistics": "task", "reason": "1 animal(s) < 2"}])
    assert text == ("per cohort: A (3 animals, 30 windows): own; "
                    "C (1 animals, 40 windows): whole task's, 1 animal(s) < 2")
    assert _grouping_text("none", []) == "one set over the whole task"


@pytest.mark.slow
def test_predict_task_adabn_scores_each_cohort_with_its_own_statistics(run):
    from mouse_facial_expressions.inference.adabn import adapt_ensemble, predict_task_adabn
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.zeroshot import predict_task, task_clips, task_windows

    ens = load_ensemble(run.run_dir)
    _, _, windows = task_windows(ens, run.task_dir)
    videos = sorted(windows["video"].astype(str).unique())
    cohort_of = {v: "A" if v.startswith(("m1", "m2")) else "B" for v in videos}  # two animals each
    pred, info = predict_task_adabn(ens, run.task_dir, cohort_of, batch_size=8)
    plan = {g["group"]: g for g in info["groups"]}
    assert set(plan) == {"A", "B"} and all(g["statistics"] == "own" and g["n_animals"] == 2 for g in plan.values())
    assert list(pred["video"]) == list(windows["video"].astype(str))  # the whole task's window order
    for group in ("A", "B"):
        mine = sorted(v for v, g in cohort_of.items() if g == group)
        own, _ = adapt_ensemble(ens, task_clips(ens, run.task_dir, batch_size=8, videos=mine))
        want = predict_task(own, run.task_dir, batch_size=8, videos=mine)
        got = pred[pred["video"].isin(mine)].reset_index(drop=True)
        np.testing.assert_allclose(got["p1"], want["p1"], atol=1e-6)
    pooled, _ = adapt_ensemble(ens, task_clips(ens, run.task_dir, batch_size=8))
    assert not np.allclose(pred["p1"], predict_task(pooled, run.task_dir, batch_size=8)["p1"], atol=1e-6)


# ----------------------------------------------------------------------------- CLI / report

@pytest.mark.slow
def test_cli_recalibrate_writes_raw_and_recalibrated(run, tmp_path, capsys):
    from mouse_facial_expressions.cli import main
    from mouse_facial_expressions.evaluation.evaluate import metadata_from_task, run_reference
    from mouse_facial_expressions.report.runs import _animals

    out = tmp_path / "zs"
    code = main(["evaluate", str(run.run_dir), "--task", str(run.task_dir), "--out", str(out), "--bootstrap", "10",
                 "--no-report", "--recalibrate", "controls", "adabn"])
    text = capsys.readouterr().out
    assert code == 0
    for line in ("zero-shot (raw)", "recalibrated (controls)", "recalibrated (adabn)", "treatment labels"):
        assert line in text
    for name in ("predictions.csv", "metrics.json", "recalibration.csv", "predictions_recalibrated_controls.csv",
                 "predictions_recalibrated_adabn.csv", "recalibrated-controls/metrics.json", "recalibrated-adabn/metrics.json"):
        assert (out / name).is_file(), name
    res = json.loads((out / "metrics.json").read_text())
    assert res["metrics"]["animal"]["accuracy"]["value"] is not None  # the raw numbers stay the headline
    rows = {r["scoring"]: r for r in res["recalibration"]["comparison"]}
    assert set(rows) == {"zero-shot (raw)", "recalibrated (controls)", "recalibrated (adabn)"}
    for r in rows.values():
        assert r["accuracy"] is not None and r["balanced_accuracy"] is not None and r["auroc"] is not None
    assert rows["zero-shot (raw)"]["accuracy"] == pytest.approx(res["metrics"]["animal"]["accuracy"]["value"])
    assert rows["recalibrated (controls)"]["auroc"] == pytest.approx(rows["zero-shot (raw)"]["auroc"])  # a threshold only
    # the controls threshold, recomputed from the two tables by hand
    d = res["recalibration"]["methods"]["controls"]
    pred = pd.read_csv(out / "predictions.csv", dtype={"video": str, "animal": str})
    new = _animals(pred, metadata_from_task(run.task_dir))
    ref = run_reference(run.run_dir)
    lg = lambda p: np.log(p / (1 - p))  # noqa: E731
    offset = (np.median(lg(new[new["treatment"] == "saline"].groupby("animal")["p1"].mean()))
              - np.median(lg(ref[ref["treatment"] == "saline"].groupby("animal")["p1"].mean())))
    assert d["new_threshold"] == pytest.approx(1 / (1 + np.exp(-offset)), abs=1e-9)
    rec = json.loads((out / "recalibrated-controls" / "metrics.json").read_text())
    assert rec["settings"]["threshold"] == pytest.approx(d["new_threshold"])
    called = pd.read_csv(out / "predictions_recalibrated_controls.csv")
    assert (called["called_positive"] == (called["p1"] >= d["new_threshold"])).all()
    adabn = pd.read_csv(out / "predictions_recalibrated_adabn.csv")
    assert len(adabn) == len(pred) and not np.allclose(adabn["p1"], pred["p1"])
    assert list(adabn[["video", "start_time"]].itertuples(index=False)) == list(pred[["video", "start_time"]].itertuples(index=False))
    by = pd.read_csv(out / "recalibration.csv").set_index("scoring")["recalibrated_by"]
    assert by["recalibrated (adabn)"].startswith("per cohort: ")  # the tiny cohort: one cohort, the whole task's
    assert "adabn: no labels" in text and "per cohort: " in text
    assert res["batch_effects"]["reference"]["source"] == "training"  # compared with the run's own CV scores
    assert res["batch_effects"]["setting"] == "zero-shot"
    for m in ("controls", "adabn"):  # what each recalibration left flagged shapes the raw warning's remedy
        after = json.loads((out / f"recalibrated-{m}" / "metrics.json").read_text())["batch_effects"]
        assert res["recalibration"]["methods"][m]["flagged_after"] == after["flagged"]


@pytest.mark.slow
def test_report_shows_both_rows(run, tmp_path):
    from mouse_facial_expressions.report.runs import report_zeroshot

    res = report_zeroshot(run.run_dir, run.task_dir, tmp_path, n_boot=5, recalibrate="controls")
    html = (tmp_path / "report.html").read_text()
    assert "Zero-shot: raw and recalibrated" in html and "zero-shot (raw)" in html and "recalibrated (controls)" in html
    assert "treatment labels" in html
    assert len(res["recalibration"]["comparison"]) == 2


def test_recalibrate_without_task_is_refused(tmp_path, capsys):
    from mouse_facial_expressions.cli import main

    (tmp_path / "run").mkdir()
    assert main(["evaluate", str(tmp_path / "run"), "--recalibrate", "controls"]) == 1
    assert "needs --task" in capsys.readouterr().err


@pytest.mark.slow
def test_recalibrate_controls_without_control_animals_is_refused_before_scoring(run, tmp_path, capsys):
    import shutil

    from mouse_facial_expressions.cli import main

    task = tmp_path / "task-nocontrols"
    shutil.copytree(run.task_dir, task)
    frames = pd.read_parquet(task / "frames.parquet")
    frames.assign(treatment="high").to_parquet(task / "frames.parquet")
    out = tmp_path / "zs"
    assert main(["evaluate", str(run.run_dir), "--task", str(task), "--out", str(out), "--recalibrate", "controls"]) == 1
    err = capsys.readouterr().err
    assert "no control animals" in err and "adabn" in err
    assert not (out / "predictions.csv").exists()


def test_baseline_shift_moves_each_animal_by_its_own_baseline():
    from mouse_facial_expressions.evaluation.recalibrate import baseline_shift

    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    rec = {"a_rec1": 1, "a_rec4": 4, "b_rec1": 1, "b_rec4": 4, "c_rec4": 4}
    new = pd.DataFrame({
        "video": ["a_rec1", "a_rec1", "a_rec4", "b_rec1", "b_rec4", "c_rec4"],
        "animal": ["a", "a", "a", "b", "b", "c"],
        "p1": [sig(1.0), sig(3.0), sig(2.5), sig(-1.0), sig(0.5), sig(0.0)],
        "label": [0, 0, 1, 0, 0, 1],
    })
    ref_rec = {"x_rec1": 1, "x_rec4": 4, "y_rec1": 1}
    ref = pd.DataFrame({"video": ["x_rec1", "x_rec1", "x_rec4", "y_rec1"], "animal": ["x", "x", "x", "y"],
                        "p1": [sig(-2.0), sig(-1.0), sig(3.0), sig(0.0)], "label": [0, 0, 1, 0]})
    out, d = baseline_shift(new, rec, ref, ref_rec, recording=1)
    # reference: median over animals of their median baseline logit = median(-1.5, 0.0) = -0.75
    assert d["reference_median_logit"] == pytest.approx(-0.75)
    # a: median baseline logit 2.0 -> offset 2.75; b: -1.0 -> offset -0.25; c has no baseline: dropped
    assert d["offsets_logit"] == pytest.approx({"a": 2.75, "b": -0.25})
    assert d["dropped_animals"] == ["c"] and "c" in d["uses"]
    assert list(out["video"]) == ["a_rec4", "b_rec4"]  # baseline windows are not scored
    assert out["p1"].to_numpy() == pytest.approx([sig(2.5 - 2.75), sig(0.5 + 0.25)])
    with pytest.raises(ValueError, match="recording 2"):
        baseline_shift(new, rec, ref, ref_rec, recording=2)


def test_cli_recalibrate_baseline(run, tmp_path, capsys):
    from mouse_facial_expressions.cli import main

    out = tmp_path / "zs"
    code = main(["evaluate", str(run.run_dir), "--task", str(run.task_dir), "--out", str(out), "--bootstrap", "10",
                 "--no-report", "--recalibrate", "baseline", "--baseline-recording", "1"])
    text = capsys.readouterr().out
    assert code == 0 and "recalibrated (baseline)" in text and "zero-shot (raw)" in text
    shifted = pd.read_csv(out / "predictions_recalibrated_baseline.csv")
    assert len(shifted) and not shifted["video"].str.contains("rec1").any()
    d = json.loads((out / "metrics.json").read_text())["recalibration"]["methods"]["baseline"]
    assert d["baseline_recording"] == 1 and d["offsets_logit"]
