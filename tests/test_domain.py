"""Domain check (``preprocess.domain``): per-video crop summaries, the training pool, the reasons
a video lies outside it; recorded by extract, carried by checkpoints, used by predict and
zero-shot evaluation."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.preprocess import domain


def _crops(levels, n_each: int = 2, size: int = 8) -> np.ndarray:
    """uint8 crops ``(len(levels) * n_each, size, size)``, each one flat grey level."""
    return np.repeat(np.asarray(levels, np.uint8), n_each)[:, None, None] * np.ones((1, size, size), np.uint8)


def _index(n: int, video: str = "v", sharpness=100.0, axis_px=100.0, likelihood=0.95) -> pd.DataFrame:
    return pd.DataFrame({"video": video, "sharpness": np.full(n, sharpness, float),
                         "axis_px": np.full(n, axis_px, float), "min_likelihood": np.full(n, likelihood, float)})


def _video(name: str, levels=(100, 140), **kw) -> dict:
    crops = _crops(levels)
    return domain.video_summary(crops, _index(len(crops), name, **kw))


# ----------------------------------------------------------------------------- video_summary

def test_video_summary_histogram_quantiles_and_name():
    crops = _crops([0, 255])  # half black, half white
    index = _index(4, "m1_rec1")
    index["sharpness"] = [1.0, 2.0, 3.0, 4.0]
    s = domain.video_summary(crops, index)
    assert s["video"] == "m1_rec1" and s["n_crops"] == 4
    hist = np.asarray(s["histogram"])
    assert hist.shape == (domain.HIST_BINS,) and hist[0] == hist[-1] == 0.5 and hist[1:-1].sum() == 0
    assert s["mean_intensity"] == pytest.approx(128.0)  # bin centres 4 and 252
    assert s["sharpness"]["q50"] == pytest.approx(2.5) and s["sharpness"]["q05"] == pytest.approx(1.15)
    assert s["face_px"] == {"q05": 100.0, "q50": 100.0, "q95": 100.0}
    assert s["likelihood"]["q50"] == pytest.approx(0.95)
    json.dumps(s, allow_nan=False)  # JSON as the store and the checkpoint keep it


def test_summary_of_a_video_without_crops_is_valid_json():
    s = domain.video_summary(np.zeros((0, 8, 8), np.uint8), _index(0))
    assert s["n_crops"] == 0 and s["mean_intensity"] is None and "face_px" not in s
    json.dumps(s, allow_nan=False)


def test_histogram_counts_evenly_spaced_crops_only():
    crops = _crops([0, 255], n_each=5)  # rows 0-4 black, 5-9 white
    hist = domain.intensity_histogram(crops, max_crops=2)  # rows 0 and 9
    assert hist[0] == hist[-1] == 0.5


def test_an_index_without_axis_px_has_no_face_size():
    crops = _crops([100])
    s = domain.video_summary(crops, _index(2).drop(columns="axis_px"))
    assert "face_px" not in s and "sharpness" in s


# ----------------------------------------------------------------------------- pool + compare

def test_pool_keeps_the_spread_between_videos():
    vids = [_video("a", axis_px=95), _video("b", axis_px=105), _video("c", (100, 150), axis_px=100)]
    pooled = domain.pool_summaries(vids)
    assert pooled["n_videos"] == 3 and pooled["n_crops"] == 12
    assert pooled["face_px"] == {"min": 95.0, "max": 105.0}
    h = np.array([v["histogram"] for v in vids])
    nearest_c = min(domain.hellinger(h[2], h[0]), domain.hellinger(h[2], h[1]))
    assert nearest_c > 0 and pooled["hist_distance"]["max"] == pytest.approx(nearest_c, rel=1e-4)  # a, b identical
    assert pooled["hist_distance"]["median"] == 0.0
    assert pooled["synthetic"] is None  # not known
    json.dumps(pooled, allow_nan=False)


def test_pooling_pooled_summaries_counts_each_video_once():
    a, b, c = _video("a"), _video("b"), _video("c")
    fold0, fold1 = domain.pool_summaries([a, b]), domain.pool_summaries([b, c])
    assert domain.pool_summaries([fold0, fold1])["n_videos"] == 3


def test_a_training_video_is_inside_its_own_pool():
    vids = [_video("a", axis_px=95, sharpness=80), _video("b", (90, 150), axis_px=105, sharpness=120)]
    pooled = domain.pool_summaries(vids)
    assert all(domain.compare(pooled, v) == [] for v in vids)


def test_a_darker_video_fires_with_the_numbers():
    pooled = domain.pool_summaries([_video("a"), _video("b")])  # identical: the floor sets the limit
    assert domain.compare(pooled, _video("x", (100, 100, 140, 140, 150))) == []  # distance 0.33
    assert domain.compare(pooled, _video("x", (100, 140, 150)))[0].startswith("intensity histogram distance 0.43")
    reasons = domain.compare(pooled, _video("dark", (40, 60)))
    assert reasons == ["intensity histogram distance 1.00 to the nearest training video (between training "
                       "videos: max 0.00, limit 0.40); mean grey level 52 (training 120–120)"]


def test_face_size_limit_grows_with_the_training_spread_and_has_a_floor():
    narrow = domain.pool_summaries([_video("a", axis_px=95), _video("b", axis_px=105)])
    assert domain.compare(narrow, _video("x", axis_px=120)) == []  # within the 1.2 floor: 79-126 px
    assert domain.compare(narrow, _video("x", axis_px=60)) == ["face size 60 px (training 95–105 px, limits 79–126 px)"]
    wide = domain.pool_summaries([_video("a", axis_px=60), _video("b", axis_px=160)])
    assert domain.compare(wide, _video("x", axis_px=240)) == []  # sqrt(160 / 60) = 1.63: up to 261 px
    assert domain.compare(wide, _video("x", axis_px=280))[0].startswith("face size 280 px (training 60–160 px")


def test_sharpness_and_likelihood_fire_outside_their_limits():
    pooled = domain.pool_summaries([_video("a", sharpness=100, likelihood=0.95),
                                    _video("b", sharpness=150, likelihood=0.97)])
    assert domain.compare(pooled, _video("x", sharpness=280, likelihood=0.9)) == []
    assert domain.compare(pooled, _video("x", sharpness=20)) == ["sharpness 20 (training 100–150, limits 50–300)"]
    assert domain.compare(pooled, _video("x", likelihood=0.8)) == ["keypoint likelihood 0.80 (training 0.95–0.97)"]


def test_a_synthetic_model_on_real_video_always_warns():
    a = _video("a")
    pooled = domain.pool_summaries([{**a, "synthetic": True}])
    assert pooled["synthetic"] is True
    assert domain.compare(pooled, a, video_synthetic=None) == []  # unknown: the crops decide
    assert domain.compare(pooled, a, video_synthetic=True) == []
    (reason,) = domain.compare(pooled, a, video_synthetic=False)
    assert reason.startswith("synthetic model, real video")
    real = domain.pool_summaries([{**a, "synthetic": False}])
    assert domain.compare(real, a, video_synthetic=True)[0].startswith("real model, synthetic video")
    mixed = domain.pool_summaries([{**a, "synthetic": True}, {**_video("b"), "synthetic": False}])
    assert mixed["synthetic"] is None and domain.compare(mixed, a, video_synthetic=False) == []


def test_checkpoints_without_a_summary_skip_the_check():
    assert domain.training_summary([{"data": {"num_frames": 3}}]) == (None, domain.NO_SUMMARY)
    assert "domain check skipped" in domain.NO_SUMMARY
    folds = [{"data": {"domain": domain.pool_summaries([_video("a"), _video("b")])}},
             {"data": {"domain": domain.pool_summaries([_video("b"), _video("c")])}}]
    pooled, note = domain.training_summary(folds)
    assert note is None and pooled["n_videos"] == 3
    assert domain.training_summary(folds + [{"data": {}}]) == (None, domain.NO_SUMMARY)


def test_synthetic_projects_are_found_by_the_synth_marker(tmp_path):
    from mouse_facial_expressions.synth.cohort import MARKER

    assert domain.SYNTH_MARKER.name == MARKER
    video = tmp_path / "proj" / "videos" / "processed" / "m1_rec1.mp4"
    video.parent.mkdir(parents=True)
    assert domain.is_synthetic_project(tmp_path / "proj") is False and domain.is_synthetic_project(None) is None
    assert domain.video_is_synthetic(video) is False
    (tmp_path / "proj" / "truth").mkdir()
    (tmp_path / "proj" / "truth" / "synth.json").write_text("{}")
    assert domain.video_is_synthetic(video) is True
    assert domain.video_is_synthetic(tmp_path / "elsewhere.mp4", root=tmp_path / "proj") is True


# ----------------------------------------------------------------------------- synthetic cohorts

def test_synth_lighting_scales_every_cohorts_camera_gain():
    from mouse_facial_expressions.synth.params import make_config
    from mouse_facial_expressions.synth.render import cohort_looks

    base = cohort_looks(np.random.default_rng(0), 3)
    dim = cohort_looks(np.random.default_rng(0), 3, lighting=0.75)
    assert [d.gain for d in dim] == pytest.approx([0.75 * b.gain for b in base])
    assert [d.background for d in dim] == [b.background for b in base]  # only the gain changes
    with pytest.raises(ValueError, match="lighting"):
        make_config("tiny", lighting=0)


def _extracted(out, **overrides):
    """A tiny synthetic project, prepared, keypoints imported and extracted; returns its config."""
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.io.keypoints import import_keypoints
    from mouse_facial_expressions.preprocess.extract import extract_videos
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.synth import generate_cohort

    cfg = load_config(generate_cohort(out, preset="tiny", **overrides))
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    assert extract_videos(cfg, progress=False).ok
    return cfg


@pytest.fixture(scope="module")
def run(tiny_cohort, tmp_path_factory):
    """The session's tiny trained run: its frame store (synth tiny, seed 0) is the training cohort A."""
    import torch

    from tiny_run import tiny_run

    torch.set_num_threads(1)
    return tiny_run(tiny_cohort, tmp_path_factory)


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """B: other mice, same settings; C: camera gain x 0.75 (4 mice, a task); D: head 1.3x larger (zoom)."""
    from mouse_facial_expressions.data.tasks import make_task, preset

    root = tmp_path_factory.mktemp("domain")
    small = dict(mice=2, recordings=[1], seconds=4.0)
    out = {"B": _extracted(root / "B", seed=5, **small),
           "C": _extracted(root / "C", seed=1, seconds=4.0, lighting=0.75),
           "D": _extracted(root / "D", seed=1, head_len=57.2, **small)}
    out["C_task"] = make_task(out["C"], preset("task1", n_folds=2, num_frames=3, frame_stride=1))
    return out


def _store_pool(cfg) -> dict:
    from mouse_facial_expressions.preprocess import store

    fdir = cfg.path("frames")
    return domain.pool_summaries(list(domain.store_summaries(fdir, store.complete_videos(fdir)).values()))


@pytest.mark.slow
def test_extract_records_each_videos_summary_in_the_store(run):
    from mouse_facial_expressions.preprocess import store

    fdir = run.cfg.path("frames")
    video = store.complete_videos(fdir)[0]
    meta = store.video_meta(fdir, video)
    assert meta["synthetic"] is True
    again = domain.video_summary(np.asarray(store.open_frames(fdir, video)), pd.read_parquet(store.index_path(fdir, video)))
    assert meta["domain"] == json.loads(json.dumps(again)) and meta["domain"]["face_px"]["q50"] > 0


@pytest.mark.slow
def test_same_settings_stay_silent_other_lighting_and_zoom_fire(run, cohorts):
    from mouse_facial_expressions.preprocess import store

    train = _store_pool(run.cfg)

    def check(cfg):  # -> (the videos with crops, {video: reasons})
        fdir = cfg.path("frames")
        videos = store.complete_videos(fdir)
        with_crops = [v for v in videos if len(pd.read_parquet(store.index_path(fdir, v)))]
        return with_crops, domain.check_store(train, fdir, videos)

    _, same = check(cohorts["B"])
    assert same == {}
    videos, darker = check(cohorts["C"])
    assert sorted(darker) == videos and all(r[0].startswith("intensity histogram distance") for r in darker.values())
    videos, zoomed = check(cohorts["D"])
    assert sorted(zoomed) == videos and all(any(x.startswith("face size") for x in r) for r in zoomed.values())


@pytest.mark.slow
def test_checkpoints_carry_their_folds_training_videos(run):
    from mouse_facial_expressions.inference.ensemble import load_ensemble

    ens = load_ensemble(run.run_dir)
    frames = pd.read_parquet(run.task_dir / "frames.parquet", columns=["video", "animal"])
    for h in ens.hparams:
        summary = h["data"]["domain"]
        train_videos = set(frames.loc[frames["animal"].isin(h["data"]["train_animals"]), "video"])
        assert {v["video"] for v in summary["videos"]} == train_videos and summary["synthetic"] is True


@pytest.mark.slow
def test_predict_fills_the_domain_warning_column(run, cohorts, tmp_path, caplog):
    from mouse_facial_expressions.inference.predict import predict_videos

    def videos(cfg):
        return sorted(cfg.path("processed_videos").glob("*.mp4"))

    same, zoomed = videos(cohorts["B"])[0], videos(cohorts["D"])[-1]  # m1_rec1_..., m2_rec1_...
    real = tmp_path / "real" / "cam1.mp4"  # a training video, copied outside any synth project
    real.parent.mkdir()
    src = videos(run.cfg)[0]
    shutil.copy(src, real)
    kp = tmp_path / "kp"
    kp.mkdir()
    for cfg, v, name in ((cohorts["B"], same, same.stem), (cohorts["D"], zoomed, zoomed.stem), (run.cfg, src, "cam1")):
        shutil.copy(cfg.path("keypoints") / f"{v.stem}.parquet", kp / f"{name}.parquet")
    with caplog.at_level(logging.WARNING, logger="mouse_facial_expressions.inference.predict"):
        report = predict_videos([same, zoomed, real], kp, run.run_dir, tmp_path / "out", progress=False)
    assert report.ok, report.summary()
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").fillna({"domain_warning": ""}).set_index("video")
    assert summary.loc[same.stem, "domain_warning"] == ""
    assert summary.loc[zoomed.stem, "domain_warning"].startswith("face size")
    assert summary.loc["cam1", "domain_warning"].startswith("synthetic model, real video")
    assert (summary["n_no_face"] == 0).all()  # other mice, a 1.3x zoom: faces all the same (preprocess.facecheck)
    logged = [r.getMessage() for r in caplog.records]
    assert any(zoomed.stem in m and "face size" in m for m in logged)
    assert "outside the training data: synthetic model, real video" in report.summary()


@pytest.mark.slow
def test_predict_with_an_old_checkpoint_says_the_check_was_skipped_once(run, tmp_path, caplog):
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.predict import predict_videos

    ens = load_ensemble(run.run_dir)
    for h in ens.hparams:  # as trained before the summary existed
        h["data"].pop("domain")
    videos = sorted(run.cfg.path("processed_videos").glob("*.mp4"))[:2]
    with caplog.at_level(logging.WARNING, logger="mouse_facial_expressions.inference.predict"):
        predict_videos(videos, run.cfg.path("keypoints"), ens, tmp_path, progress=False)
    assert [r.getMessage() for r in caplog.records].count(domain.NO_SUMMARY) == 1
    assert pd.read_csv(tmp_path / "summary.csv")["domain_warning"].isna().all()


@pytest.mark.slow
def test_zero_shot_evaluation_reports_the_videos_outside(run, cohorts, tmp_path):
    from mouse_facial_expressions.report.runs import report_zeroshot

    res = report_zeroshot(run.run_dir, cohorts["C_task"], tmp_path, n_boot=10)
    dom = res["domain"]
    n = pd.read_parquet(cohorts["C_task"] / "frames.parquet")["video"].nunique()
    assert dom["note"] is None and dom["n_videos"] == n > 1 and len(dom["warnings"]) == n
    html = (tmp_path / "report.html").read_text()
    assert f"Domain check: {n} of {n} videos lie outside" in html and "intensity histogram distance" in html
    assert json.loads((tmp_path / "zeroshot.json").read_text())["domain"]["warnings"] == dom["warnings"]
    inside = report_zeroshot(run.run_dir, run.task_dir, tmp_path / "own", n_boot=10)
    assert inside["domain"]["warnings"] == {} and "Domain check" not in (tmp_path / "own" / "report.html").read_text()
