"""``mfe predict``: same crops and same scores as extraction + evaluation, outputs, failures."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from mouse_facial_expressions.inference.ensemble import load_ensemble
from mouse_facial_expressions.inference.predict import SUMMARY_COLUMNS, load_keypoints, model_settings, predict_videos
from mouse_facial_expressions.preprocess import store
from mouse_facial_expressions.preprocess.extract import crop_video
from mouse_facial_expressions.training.runs import fold_checkpoints

torch.set_num_threads(1)
pytestmark = pytest.mark.slow


def _video(run, name):
    return run.cfg.path("processed_videos") / f"{name}.mp4"


def _fold0(run):
    preds = pd.read_csv(run.run_dir / "fold0" / "predictions_test.csv")
    return preds, dict(fold_checkpoints(run.run_dir))[0]


def test_crops_are_the_frame_store_crops(run):
    video = "m1_rec1_preinjection"
    ens = load_ensemble(run.run_dir)
    s = model_settings(ens)
    assert s["source"].endswith("store.json")
    crops, frames, _ = crop_video(_video(run, video), load_keypoints(run.cfg.path("keypoints") / f"{video}.parquet"), s)
    stored = np.asarray(store.open_frames(run.cfg.path("frames"), video))
    index = pd.read_parquet(store.index_path(run.cfg.path("frames"), video))
    assert np.array_equal(crops, stored)  # bit-identical
    assert np.array_equal(frames["frame"], index["frame"]) and np.array_equal(frames["run"], index["run"])


def test_predict_gives_the_same_scores_as_evaluate_on_the_same_windows(run, tmp_path):
    preds, ckpt = _fold0(run)
    videos = sorted(preds["video"].unique())
    report = predict_videos([_video(run, v) for v in videos], run.cfg.path("keypoints"), ckpt, tmp_path, progress=False)
    assert report.ok, report.summary()
    for v in videos:
        scores = pd.read_csv(tmp_path / f"{v}_scores.csv")
        ref = preds[preds["video"] == v]
        both = ref.merge(scores, on=["video", "start_time"], suffixes=("_eval", ""))
        assert len(both) == len(ref) == len(scores) > 0  # the same windows
        np.testing.assert_allclose(both["end_time"], both["end_time_eval"])
        np.testing.assert_allclose(both["p1"], both["p1_eval"], atol=1e-5)


def test_run_folder_scores_with_the_fold_ensemble(run, tmp_path):
    preds, _ = _fold0(run)
    video = sorted(preds["video"].unique())[0]
    predict_videos(_video(run, video), run.cfg.path("keypoints"), run.run_dir, tmp_path, progress=False)
    scores = pd.read_csv(tmp_path / f"{video}_scores.csv")
    assert list(scores.columns) == ["video", "start_time", "end_time", "p1", "p1_fold0", "p1_fold1", "no_face",
                                    "no_face_reason"]
    assert not scores["no_face"].any()  # the face check passed every window of a training-like video
    np.testing.assert_allclose(scores["p1"], scores[["p1_fold0", "p1_fold1"]].mean(axis=1))
    ref = preds[preds["video"] == video].merge(scores, on="start_time")
    np.testing.assert_allclose(ref["p1_fold0"], ref["p1_x"], atol=1e-5)  # fold 0's own test windows


def test_dlc_keypoints_give_the_same_scores_as_canonical(run, tmp_path):
    video = "m2_rec4_4h-postinjection"
    _, ckpt = _fold0(run)
    predict_videos(_video(run, video), run.cfg.path("keypoints") / f"{video}.parquet", ckpt, tmp_path / "a", progress=False)
    predict_videos(_video(run, video), run.cfg.path("dlc"), ckpt, tmp_path / "b", cfg=run.cfg, progress=False)
    a = pd.read_csv(tmp_path / "a" / f"{video}_scores.csv")
    b = pd.read_csv(tmp_path / "b" / f"{video}_scores.csv")
    pd.testing.assert_frame_equal(a, b)


def test_outputs_summary_and_timecourse(run, tmp_path):
    video = "m3_rec1_preinjection"
    _, ckpt = _fold0(run)
    predict_videos(_video(run, video), run.cfg.path("keypoints"), ckpt, tmp_path, progress=False)
    summary = pd.read_csv(tmp_path / "summary.csv")
    scores = pd.read_csv(tmp_path / f"{video}_scores.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    row = summary.iloc[0]
    assert row["status"] == "done" and row["n_windows"] == len(scores)
    assert row["mean_p1"] == pytest.approx(scores["p1"].mean())
    assert row["frac_positive"] == pytest.approx((scores["p1"] > 0.5).mean())
    assert 0 < row["seconds_scored"] <= row["video_seconds"]
    assert (tmp_path / f"{video}_timecourse.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # COLUMNS.md describes every column, in the task's class names
    from mouse_facial_expressions.data.tasks import load_task

    names = load_task(run.task_dir).spec.class_names
    text = (tmp_path / "COLUMNS.md").read_text()
    assert f"Class 1 is **{names[1]}**" in text and f"class 0 is **{names[0]}**" in text
    for col in [*SUMMARY_COLUMNS, *scores.columns]:
        assert f"`{col}`" in text or col.startswith("p1_fold"), col


def test_a_missing_keypoint_file_or_a_bad_video_fails_alone(run, tmp_path):
    from mouse_facial_expressions.cli import main

    vids = tmp_path / "videos"
    vids.mkdir()
    for v in ("m1_rec1_preinjection", "m4_rec1_preinjection"):
        shutil.copy(_video(run, v), vids)
    (vids / "broken.mp4").write_bytes(b"not a video")
    kp = tmp_path / "kp"
    kp.mkdir()
    shutil.copy(run.cfg.path("keypoints") / "m1_rec1_preinjection.parquet", kp)  # m4 has none
    shutil.copy(run.cfg.path("keypoints") / "m1_rec1_preinjection.parquet", kp / "broken.parquet")
    _, ckpt = _fold0(run)
    code = main(["predict", str(vids), "--keypoints", str(kp), "--model", str(ckpt), "--out", str(tmp_path / "out")])
    assert code == 1
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("video")
    assert summary.loc["m1_rec1_preinjection", "status"] == "done"
    assert summary.loc["m4_rec1_preinjection", "status"] == "failed"
    assert "no keypoint file" in summary.loc["m4_rec1_preinjection", "error"]
    assert summary.loc["broken", "status"] == "failed"
    assert (tmp_path / "out" / "m1_rec1_preinjection_scores.csv").is_file()


def test_settings_fall_back_to_the_project_config_without_the_training_store(run):
    ens = load_ensemble(run.run_dir)
    ens.data["task_dir"] = "/nonexistent/task"  # the model travelled without its frame store
    s = model_settings(ens, run.cfg)
    assert s["source"] == "config"
    assert s["crop_size"] == run.cfg.extract.crop_size and s["target_fps"] == run.cfg.extract.target_fps
    assert (s["num_frames"], s["frame_stride"], s["image_size"]) == (3, 1, 32)  # always the checkpoint's


def test_a_second_call_into_the_same_folder_merges_the_summary(run, tmp_path):
    from mouse_facial_expressions.cli import main

    _, ckpt = _fold0(run)
    out = tmp_path / "out"
    kp = run.cfg.path("keypoints")
    first, second = _video(run, "m1_rec1_preinjection"), _video(run, "m4_rec1_preinjection")
    broken = tmp_path / "m4_rec1_preinjection.mp4"
    broken.write_bytes(b"not a video")  # first try of m4 fails
    assert main(["predict", str(first), "--keypoints", str(kp / "m1_rec1_preinjection.parquet"), "--model", str(ckpt), "--out", str(out)]) == 0
    assert main(["predict", str(broken), "--keypoints", str(kp / "m4_rec1_preinjection.parquet"), "--model", str(ckpt), "--out", str(out)]) == 1
    s = pd.read_csv(out / "summary.csv").set_index("video")
    assert list(s.index) == ["m1_rec1_preinjection", "m4_rec1_preinjection"] and s.loc["m4_rec1_preinjection", "status"] == "failed"
    # rerun only the failed video: its row is replaced, the other stays
    assert main(["predict", str(second), "--keypoints", str(kp / "m4_rec1_preinjection.parquet"), "--model", str(ckpt), "--out", str(out)]) == 0
    s = pd.read_csv(out / "summary.csv").set_index("video")
    assert list(s.index) == ["m1_rec1_preinjection", "m4_rec1_preinjection"]
    assert (s["status"] == "done").all()


def _shm_blocks() -> set[str]:
    from pathlib import Path

    return {p.name for p in Path("/dev/shm").glob("psm_*")} if Path("/dev/shm").is_dir() else set()


def test_decode_workers_give_the_same_scores_and_leave_no_shared_memory(run, tmp_path):
    vids = tmp_path / "videos"
    vids.mkdir()
    names = ["m1_rec1_preinjection", "m2_rec1_preinjection", "m3_rec4_4h-postinjection", "m4_rec1_preinjection"]
    for v in names:
        shutil.copy(_video(run, v), vids)
    (vids / "broken.mp4").write_bytes(b"not a video")  # fails alone, in a worker
    kp = tmp_path / "kp"
    shutil.copytree(run.cfg.path("keypoints"), kp)
    shutil.copy(kp / "m1_rec1_preinjection.parquet", kp / "broken.parquet")
    before = _shm_blocks()
    serial = predict_videos(vids, kp, run.run_dir, tmp_path / "w0", cfg=run.cfg, progress=False, workers=0, batch_size=4)
    pooled = predict_videos(vids, kp, run.run_dir, tmp_path / "w2", cfg=run.cfg, progress=False, workers=2, batch_size=4)
    assert [r.video for r in pooled.failed] == ["broken"] and "cannot open video" in pooled.failed[0].error
    assert [r.video for r in pooled.results if r.status == "done"] == sorted(names)
    for v in names:
        a = pd.read_csv(tmp_path / "w0" / f"{v}_scores.csv")
        b = pd.read_csv(tmp_path / "w2" / f"{v}_scores.csv")
        assert len(a) == len(b) > 0
        pd.testing.assert_frame_equal(a.drop(columns=[c for c in a if c.startswith("p1")]),
                                      b.drop(columns=[c for c in b if c.startswith("p1")]))
        p1 = [c for c in a if c.startswith("p1")]
        np.testing.assert_allclose(a[p1].to_numpy(), b[p1].to_numpy(), rtol=0, atol=1e-6)  # batches span videos
    s0, s2 = serial.summary_table(), pooled.summary_table()
    assert list(s0["video"]) == list(s2["video"]) and list(s0["status"]) == list(s2["status"])
    assert list(s0["n_windows"]) == list(s2["n_windows"])
    np.testing.assert_allclose(s0["mean_p1"].fillna(-1), s2["mean_p1"].fillna(-1), rtol=0, atol=1e-6)
    assert _shm_blocks() == before  # every shared-memory block was unlinked


def test_without_a_gpu_auto_says_so_in_one_line():
    from mouse_facial_expressions.inference.predict import resolve_device

    dev, dtype, line = resolve_device("auto")
    if torch.cuda.is_available():
        assert dev.type == "cuda" and dtype == torch.bfloat16
    else:
        assert dev.type == "cpu" and dtype == torch.float32
        assert line.startswith("no GPU found: scoring on the CPU (fp32") and "\n" not in line


def test_live_scoring_of_a_growing_keypoint_file_writes_windows_as_they_complete(run, tmp_path):
    """A video file opened as a stream while its keypoints are appended row by row: each
    window's row appears before the keypoints are complete, and the windows and scores are
    those of the offline ``mfe predict``."""
    import threading
    import time

    from mouse_facial_expressions.inference.predict import model_settings, predict_videos
    from mouse_facial_expressions.inference.streams import predict_live

    video = "m3_rec4_4h-postinjection"
    kp = load_keypoints(run.cfg.path("keypoints") / f"{video}.parquet")
    ens = load_ensemble(run.run_dir)
    offline = predict_videos(_video(run, video), run.cfg.path("keypoints") / f"{video}.parquet", ens, tmp_path / "off",
                             cfg=run.cfg, progress=False)
    want = pd.read_csv(tmp_path / "off" / f"{video}_scores.csv")
    assert offline.ok and len(want) >= 2

    growing, out = tmp_path / "live_kp.csv", tmp_path / "live" / "scores.csv"
    rows_seen_when_half_written = []

    def writer():
        lines = kp.to_csv(index=False, float_format="%.10g").splitlines(keepends=True)
        with open(growing, "w") as fh:
            for k, line in enumerate(lines):
                fh.write(line)
                fh.flush()
                if k == len(lines) // 2:  # wait (on a busy machine too) for a window before writing on
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and not (out.is_file() and len(out.read_text().splitlines()) > 1):
                        time.sleep(0.05)
                    rows_seen_when_half_written.append(len(out.read_text().splitlines()) - 1 if out.is_file() else 0)
                time.sleep(0.004)

    th = threading.Thread(target=writer)
    th.start()
    rep = predict_live(str(_video(run, video)), growing, ens, out, model_settings(ens, run.cfg), name=video,
                       keypoint_timeout_s=5)
    th.join()
    got = pd.read_csv(out)
    assert rep.stopped_by == "end of stream" and rep.n_windows == len(got) == len(want)
    assert rows_seen_when_half_written and rows_seen_when_half_written[0] >= 1  # written while the keypoints still grew
    np.testing.assert_allclose(got[["start_time", "end_time"]].to_numpy(), want[["start_time", "end_time"]].to_numpy(), atol=1e-6)
    p1 = [c for c in want if c.startswith("p1")]
    np.testing.assert_allclose(got[p1].to_numpy(), want[p1].to_numpy(), rtol=0, atol=1e-5)


def test_live_scoring_stops_when_the_keypoints_stop(run, tmp_path):
    from mouse_facial_expressions.inference.predict import model_settings
    from mouse_facial_expressions.inference.streams import predict_live

    video = "m1_rec1_preinjection"
    kp = load_keypoints(run.cfg.path("keypoints") / f"{video}.parquet")
    growing = tmp_path / "kp.csv"
    kp.iloc[:10].to_csv(growing, index=False)  # the pose estimator died after 10 frames
    ens = load_ensemble(run.run_dir)
    rep = predict_live(str(_video(run, video)), growing, ens, tmp_path / "s.csv", model_settings(ens, run.cfg),
                       keypoint_timeout_s=0.5)
    assert rep.stopped_by.startswith("no keypoints for frame 10") and rep.n_frames == 11


class _FakePose:
    """Stands in for a DeepLabCut model (preprocess.detect.FramePose): each frame's pose is looked
    up by the frame's pixels in the video's keypoint table; its bodyparts come in another order than
    the landmarks, with one the mapping does not use."""

    def __init__(self, video, kp: pd.DataFrame):
        import av

        landmarks = [c[:-2] for c in kp.columns if c.endswith("_x")]
        self.bodyparts = ["tailbase", *reversed(landmarks)]
        self.poses: dict[bytes, list[np.ndarray]] = {}
        by_frame = kp.set_index("frame")
        with av.open(str(video)) as c:
            for i, fr in enumerate(c.decode(video=0)):
                xyl = [[np.nan, np.nan, 0.0]] + [[by_frame.at[i, f"{bp}_{k}"] for k in ("x", "y", "likelihood")]
                                                 for bp in self.bodyparts[1:]]
                self.poses.setdefault(fr.to_ndarray(format="rgb24").tobytes(), []).append(np.array(xyl))
        self.calls = 0

    def __call__(self, rgb):
        self.calls += 1
        return self.poses[rgb.tobytes()].pop(0)


def test_live_scoring_with_a_pose_model_gives_the_offline_scores(run, tmp_path):
    """--live with --dlc-config: the model computes each kept frame's keypoints (and only those
    frames'), and the windows and scores are those of the offline ``mfe predict``."""
    from mouse_facial_expressions.inference.predict import model_settings, predict_videos
    from mouse_facial_expressions.inference.streams import ModelKeypoints, predict_live

    video = "m3_rec4_4h-postinjection"
    kp = load_keypoints(run.cfg.path("keypoints") / f"{video}.parquet")
    ens = load_ensemble(run.run_dir)
    predict_videos(_video(run, video), run.cfg.path("keypoints") / f"{video}.parquet", ens, tmp_path / "off",
                   cfg=run.cfg, progress=False)
    want = pd.read_csv(tmp_path / "off" / f"{video}_scores.csv")
    pose = _FakePose(_video(run, video), kp)
    landmarks = pose.bodyparts[1:]
    rep = predict_live(str(_video(run, video)), ModelKeypoints(pose, {lm: [lm] for lm in landmarks}), ens,
                       tmp_path / "live.csv", model_settings(ens, run.cfg), name=video)
    got = pd.read_csv(tmp_path / "live.csv")
    assert rep.stopped_by == "end of stream" and rep.n_windows == len(got) == len(want) >= 2
    assert rep.n_kept <= pose.calls < rep.n_frames  # the model ran on the kept-rate grid, not on every frame
    np.testing.assert_allclose(got[["start_time", "end_time"]].to_numpy(), want[["start_time", "end_time"]].to_numpy(), atol=1e-6)
    p1 = [c for c in want if c.startswith("p1")]
    np.testing.assert_allclose(got[p1].to_numpy(), want[p1].to_numpy(), rtol=0, atol=1e-5)


def test_cli_live_with_dlc_config_loads_the_projects_model(run, tmp_path, monkeypatch, capsys):
    from mouse_facial_expressions.cli import main
    from mouse_facial_expressions.preprocess import detect

    video = "m1_rec1_preinjection"
    pose = _FakePose(_video(run, video), load_keypoints(run.cfg.path("keypoints") / f"{video}.parquet"))
    pose.snapshot = "snapshot-best-040.pt"
    asked = []
    monkeypatch.setattr(detect, "load_frame_pose", lambda config, **kw: asked.append((config, kw)) or pose)
    out = tmp_path / "out"
    assert main(["predict", "--live", str(_video(run, video)), "--dlc-config", str(tmp_path / "dlc"), "--dlc-shuffle", "2",
                 "--model", str(run.run_dir), "--out", str(out), "--project", str(run.cfg.root), "--backend", "torch"]) == 0
    assert asked == [(tmp_path / "dlc", {"shuffle": 2, "device": "cpu"})]
    text = capsys.readouterr().out
    assert "keypoints: DeepLabCut model snapshot-best-040.pt on each kept frame" in text
    scores = pd.read_csv(out / f"{video}_live_scores.csv")
    assert len(scores) >= 1 and pose.calls >= 10 and f"{len(scores)} windows" in text


# ----------------------------------------------------------------------------- names, short videos, alignment (issue 29)

def test_two_videos_of_the_same_name_in_two_folders_keep_both_outputs(run, tmp_path):
    _, ckpt = _fold0(run)
    out = tmp_path / "out"
    day1, day2 = tmp_path / "day1" / "cam.mp4", tmp_path / "day2" / "cam.mp4"
    for path, v in ((day1, "m1_rec1_preinjection"), (day2, "m4_rec1_preinjection")):
        path.parent.mkdir()
        shutil.copy(_video(run, v), path)
        shutil.copy(run.cfg.path("keypoints") / f"{v}.parquet", path.with_suffix(".parquet"))
    assert predict_videos(day1, day1.with_suffix(".parquet"), ckpt, out, progress=False).ok
    first = pd.read_csv(out / "cam_scores.csv")
    assert predict_videos(day2, day2.with_suffix(".parquet"), ckpt, out, progress=False).ok
    pd.testing.assert_frame_equal(pd.read_csv(out / "cam_scores.csv"), first)  # not replaced
    second = pd.read_csv(out / "day2__cam_scores.csv")
    assert (second["video"] == "day2__cam").all() and not second["p1"].equals(first["p1"])
    s = pd.read_csv(out / "summary.csv").set_index("video")
    assert list(s.index) == ["cam", "day2__cam"]
    assert s.loc["cam", "source"] == str(day1.resolve()) and s.loc["day2__cam", "source"] == str(day2.resolve())
    # day1 again: its own row and files are replaced, day2's stay
    assert predict_videos(day1, day1.with_suffix(".parquet"), ckpt, out, progress=False).results[0].video == "cam"
    assert len(pd.read_csv(out / "summary.csv")) == 2
    # both in one call: each named with its folder
    kp = tmp_path / "kp"
    kp.mkdir()
    shutil.copy(day1.with_suffix(".parquet"), kp / "cam.parquet")
    both = predict_videos([day1, day2], kp, ckpt, tmp_path / "both", progress=False)
    assert [r.video for r in both.results] == ["day1__cam", "day2__cam"]
    assert (tmp_path / "both" / "day1__cam_scores.csv").is_file() and (tmp_path / "both" / "day2__cam_scores.csv").is_file()


def test_a_video_shorter_than_one_window_is_not_scored(run, tmp_path):
    from mouse_facial_expressions.cli import main
    from mouse_facial_expressions.io.video import iter_frames, probe, write_video

    src = _video(run, "m1_rec1_preinjection")
    short = tmp_path / "short.mp4"
    frames = [f for i, f in iter_frames(src) if i < 1]  # a 1-frame video
    write_video(short, frames, fps=probe(src).fps)
    kp = pd.read_parquet(run.cfg.path("keypoints") / "m1_rec1_preinjection.parquet").iloc[:1]
    kp.to_parquet(tmp_path / "short.parquet")
    _, ckpt = _fold0(run)
    out = tmp_path / "out"
    assert main(["predict", str(short), "--keypoints", str(tmp_path / "short.parquet"), "--model", str(ckpt),
                 "--out", str(out)]) == 1
    row = pd.read_csv(out / "summary.csv").iloc[0]
    assert row["status"] == "failed" and row["error"].startswith("too short: 1 usable frame(s) kept, one window needs 3")
    assert not (out / "short_scores.csv").exists()


def test_keypoints_without_the_models_landmarks_are_refused_up_front_naming_its_alignment(run, tmp_path):
    from mouse_facial_expressions.config import Config

    _, ckpt = _fold0(run)
    video = "m1_rec1_preinjection"
    kp = pd.read_parquet(run.cfg.path("keypoints") / f"{video}.parquet")
    headfixed = kp[["frame"]].copy()  # a head-fixed rig: one eye and the nose, no ears
    for role, src in (("eye", "left_eye"), ("nose", "nose")):
        for c in ("x", "y", "likelihood"):
            headfixed[f"{role}_{c}"] = kp[f"{src}_{c}"]
    headfixed.to_parquet(tmp_path / f"{video}.parquet")
    with pytest.raises(ValueError) as err:
        predict_videos(_video(run, video), tmp_path / f"{video}.parquet", ckpt, tmp_path / "out", progress=False)
    text = str(err.value)
    assert "trained on crops aligned with extract.alignment 'dlc_face'" in text and "left_ear" in text
    assert "a model for this rig must be trained on crops from it" in text and "'headfixed_eye_nose' fits" in text
    assert "map them in keypoints.bodyparts" not in text
    assert not (tmp_path / "out").exists()  # refused before anything was written
    # a project set up for another alignment: said up front, the model's alignment is used
    cfg = Config.model_validate({"extract": {"alignment": "headfixed_eye_nose"}})
    report = predict_videos(_video(run, video), run.cfg.path("keypoints") / f"{video}.parquet", ckpt, tmp_path / "b",
                            cfg=cfg, progress=False)
    assert report.ok and len(report.notes) == 1
    assert "this project's extract.alignment is 'headfixed_eye_nose'" in report.notes[0]
    assert f"note: {report.notes[0]}" in report.summary()
