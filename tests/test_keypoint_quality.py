"""Keypoints that cannot give a face never give training crops (issue 29, item 3).

Pure landmark-quality functions on hand-made numbers, then the pipeline on the tiny synthetic
project: keypoints shifted off the frame, a failed keypoint import, a pose file older than its video.
"""

from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.config import load_config
from mouse_facial_expressions.data.frame_quality import usable_frames
from mouse_facial_expressions.data.tasks import TaskError, load_task, make_task, preset
from mouse_facial_expressions.io.dlc import read_dlc, write_dlc
from mouse_facial_expressions.io.keypoints import KeypointImportError, import_keypoints, load_canonical, write_canonical
from mouse_facial_expressions.preprocess import extract as ex
from mouse_facial_expressions.preprocess import quality as q
from mouse_facial_expressions.preprocess.alignment import import_check
from mouse_facial_expressions.preprocess.prepare import prepare_videos
from mouse_facial_expressions.preprocess.store import load_index, open_frames

SHIFTED = "m2_rec1_preinjection"  # m2 keeps its recording 4, so task1's folds can still be made
TASK = dict(n_folds=2, num_frames=3, frame_stride=1)


# ----------------------------------------------------------------------------- pure functions


def test_outside_frame_uses_pixel_edges_and_ignores_missing_points():
    pts = np.array([[0.0, 0.0], [-0.6, 5.0], [99.4, 49.4], [99.6, 10.0], [10.0, 50.0], [np.nan, np.nan]])
    assert q.outside_frame(pts, 100, 50).tolist() == [False, True, False, True, True, False]
    faces = np.array([[[10, 10], [20, 10]], [[10, 10], [120, 10]]], float)  # (N, K, 2): any point counts
    assert q.outside_frame(faces, 100, 50).tolist() == [False, True]


def test_below_cutoff_counts_missing_likelihoods():
    assert q.below_cutoff(np.array([0.9, 0.6, 0.59, np.nan]), 0.6).tolist() == [False, False, True, True]


def test_min_separation_is_the_closest_pair():
    pts = np.array([[[0, 0], [3, 4], [10, 0]], [[0, 0], [0, 0.5], [9, 9]]], float)
    np.testing.assert_allclose(q.min_separation(pts), [5.0, 0.5])
    assert np.isinf(q.min_separation(np.zeros((2, 1, 2)))).all()


def test_axis_tilt_is_zero_for_the_direction_the_visible_side_implies():
    front = np.zeros((4, 2))
    back = np.array([[10, 0], [0, 10], [-10, 0], [-10, 0]], float)
    mirror = np.array([False, False, False, True])  # a right-side frame: its axis points left
    np.testing.assert_allclose(q.axis_tilt_deg(front, back, mirror), [0, 90, 180, 0])


def test_behind_front_is_the_projection_on_the_axis():
    front, back = np.array([[0.0, 0.0]] * 3), np.array([[10.0, 0.0]] * 3)
    nose = np.array([[-12.0, 3.0], [2.0, 8.0], [0.0, 9.0]])  # in front, behind, beside
    assert q.behind_front(front, back, nose).tolist() == [False, True, False]


def _face(eye=(50.0, 50.0), ear=(70.0, 50.0), nose=(25.0, 54.0)):
    """One hand-made left-side face (snout left): required points (eye, ear, nose), front, back, snout."""
    pts = np.array([[eye, ear, nose]], float)  # (1, 3, 2)
    return pts, pts[:, 0], pts[:, 1], pts[:, 2]


def _crop(pts: np.ndarray, centre=(50.0, 50.0), crop_size=100.0, out_size=100):
    """Crop coordinates of an unrotated crop of ``crop_size`` centred on ``centre``."""
    return (pts - np.asarray(centre)) * out_size / crop_size + (out_size - 1) / 2


@pytest.mark.parametrize("case, bad", [
    ("plausible", False),
    ("collapsed", True),      # eye and ear 1 px apart: under MIN_SEPARATION x crop_size = 2 px
    ("too big", True),        # the ear outside its own crop
    ("upside down", True),    # axis eye -> ear points left on a left-side frame
    ("nose behind", True),    # the snout behind the eye
])
def test_implausible_geometry(case, bad):
    face = {"plausible": {}, "collapsed": {"ear": (51.0, 50.0)}, "too big": {"ear": (130.0, 50.0)},
            "upside down": {"ear": (30.0, 50.0), "nose": (75.0, 54.0)},
            "nose behind": {"nose": (60.0, 58.0)}}[case]
    pts, front, back, snout = _face(**face)
    got = q.implausible_geometry(pts, front, back, _crop(pts), crop_size=100.0, out_size=100, snout=snout)
    assert got.tolist() == [bad]


def test_implausible_geometry_reads_right_side_frames_mirrored():
    pts, front, back, snout = _face(eye=(50, 50), ear=(30, 50), nose=(75, 54))  # snout right: a right-side face
    args = dict(crop_size=100.0, out_size=100, snout=snout)
    assert q.implausible_geometry(pts, front, back, _crop(pts), mirror=np.array([True]), **args).tolist() == [False]
    assert q.implausible_geometry(pts, front, back, _crop(pts), mirror=np.array([False]), **args).tolist() == [True]


def test_flagged_treats_missing_columns_and_values_as_unflagged():
    old = pd.DataFrame({"frame": [0, 1]})  # a store written before the flags
    assert q.flagged(old).tolist() == [False, False]
    mixed = pd.DataFrame({"flag_off_frame": [True, False, np.nan], "flag_geometry": [False, True, np.nan]})
    assert q.flagged(mixed).tolist() == [True, True, False]


def test_usable_frames_leaves_out_flagged_rows_and_videos_too_short_for_a_window():
    frames = pd.DataFrame({
        "video": ["a"] * 6 + ["b"] * 4 + ["d"] * 2, "row": [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 0, 1],
        "time": [0, .1, .2, .3, .4, .5] + [0, .1, .2, .3] + [0, .1], "run": 0, "label": 0,
        "flag_off_frame": [False, True, False, False, False, False] + [True, True, False, False] + [False] * 2,
        "flag_geometry": [False] * 6 + [False, False, True, False] + [False] * 2})
    spec = preset("task1", num_frames=3, frame_stride=1)
    kept, report = usable_frames(frames, spec, empty_videos=["c"])
    assert kept["video"].tolist() == ["a"] * 5 + ["d"] * 2 and kept.loc[kept["video"] == "a", "row"].tolist() == [0, 2, 3, 4, 5]
    rows = report.set_index("video")
    assert rows.loc["a", ["flagged", "usable", "left_out"]].tolist() == [1, 5, ""]
    assert rows.loc["b", ["flag_off_frame", "flag_geometry", "flagged", "usable"]].tolist() == [2, 1, 3, 1]
    assert rows.loc["b", "left_out"] == "1 usable crop left, fewer than the 3 of one window"
    assert rows.loc["c", "left_out"].startswith("no crop in the frame store")
    assert "d" not in rows.index  # short but unflagged: resampled into a window, as tasks always did
    _, report = usable_frames(frames, preset("task1", num_frames=3, frame_stride=1, short_runs="drop"))
    assert report.set_index("video").loc["d", "left_out"] == "no run of 3 usable crops for a window (short_runs: drop)"


# ----------------------------------------------------------------------------- the pipeline


def _dlc_file(cfg, video: str):
    (path,) = cfg.path("dlc").glob(f"{video}DLC_*.h5")
    return path


def _edit_pose(path, fn) -> None:
    pose = read_dlc(path)
    data = pose.data.copy()
    for bp in pose.bodyparts:
        fn(data, bp)
    write_dlc(path, data, scorer=pose.scorer)


def _shift(dx: float, dy: float):
    def fn(data, bp):
        data[(bp, "x")] += dx
        data[(bp, "y")] += dy

    return fn


def test_keypoints_shifted_off_the_frame_give_no_training_crop(tiny_project, caplog):
    cfg = load_config(tiny_project)
    prepare_videos(cfg, progress=False)
    _edit_pose(_dlc_file(cfg, SHIFTED), _shift(1000.0, -500.0))
    import_keypoints(cfg, check=import_check(cfg))  # the frames still align: the import cannot tell
    report = ex.extract_videos(cfg, progress=False)
    assert report.ok
    res = {r.video: r for r in report.results}
    n_face = res[SHIFTED].quality["face_frames"]
    assert n_face > 0 and res[SHIFTED].quality["centre_off_frame"] == n_face and res[SHIFTED].n_stored == 0
    assert any(f"face centre of {n_face} of the {n_face} frames" in w for w in res[SHIFTED].warnings)
    assert f"{SHIFTED}: the face centre" in report.summary()
    others = [r for v, r in res.items() if v != SHIFTED]
    assert all(r.quality["centre_off_frame"] == 0 and not r.warnings for r in others)

    with caplog.at_level(logging.WARNING, logger="mouse_facial_expressions"):
        task = load_task(make_task(cfg, preset("task1", **TASK)))
    assert SHIFTED not in set(task.frames["video"]) and len(task.frames)
    for video, rows in task.frames.groupby("video"):  # no flat crop (the frame's border) in the task
        crops = open_frames(cfg.path("frames"), video)[rows["row"].to_numpy()].reshape(len(rows), -1)
        assert crops.std(axis=1).min() > 5 and rows["sharpness"].min() > 0, video
    said = f"frame quality: {SHIFTED}: video left out: no crop in the frame store"
    assert any(said in r.getMessage() for r in caplog.records)
    assert said in (task.path / "README.md").read_text()


def test_flagged_crops_are_stored_but_left_out_of_the_task_with_counts(tiny_project, caplog):
    cfg = load_config(tiny_project)
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    video = "m1_rec1_preinjection"
    table = cfg.path("keypoints") / f"{video}.parquet"
    kp = load_canonical(table)
    first = kp["frame"] < 30  # nose and seen ear swapped there: the axis points to the snout, the face upside down
    left_seen = kp["left_ear_likelihood"] >= kp["right_ear_likelihood"]
    for c in ("x", "y"):
        nose, ear = kp[f"nose_{c}"].copy(), kp[f"left_ear_{c}"].where(left_seen, kp[f"right_ear_{c}"])
        kp.loc[first, f"nose_{c}"] = ear[first]
        kp.loc[first, f"left_ear_{c}"] = kp.loc[first, f"right_ear_{c}"] = nose[first]
    write_canonical(kp, table)
    assert ex.extract_videos(cfg, progress=False).ok
    idx = load_index(cfg.path("frames"))
    mine = idx[idx["video"] == video]
    assert list(q.FLAG_COLUMNS) == [c for c in idx.columns if c.startswith("flag_")]
    bad = mine["frame"] < 30
    assert bad.any() and mine.loc[bad, "flag_geometry"].all() and not mine.loc[~bad, "flag_geometry"].any()
    assert not idx.loc[idx["video"] != video, list(q.FLAG_COLUMNS)].any().any()  # no false alarm on the others

    with caplog.at_level(logging.WARNING, logger="mouse_facial_expressions"):
        task = load_task(make_task(cfg, preset("task1", **TASK)))
    kept = task.frames[task.frames["video"] == video]
    assert len(kept) == (~bad).sum() and (kept["frame"] >= 30).all()
    n = int(bad.sum())
    said = (f"frame quality: {video}: {n} of {len(mine)} labelled crops flagged and left out "
            f"(an implausible face geometry {n})")
    assert any(r.getMessage() == said for r in caplog.records)
    assert said in (task.path / "README.md").read_text()


def test_a_failed_import_leaves_no_table_to_crop_from(tiny_project):
    cfg = load_config(tiny_project)
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    assert ex.extract_videos(cfg, progress=False).ok
    video, pose = SHIFTED, _dlc_file(cfg, SHIFTED)
    good = tiny_project / "good.h5"
    shutil.copy2(pose, good)

    def unsure(data, bp):
        data[(bp, "likelihood")] = 0.1  # below keypoints.pcutoff everywhere

    _edit_pose(pose, unsure)
    with pytest.raises(KeypointImportError, match=video):
        import_keypoints(cfg, check=import_check(cfg))
    kdir = cfg.path("keypoints")
    assert not (kdir / f"{video}.parquet").exists()  # nothing left under the name extract reads
    assert (kdir / f"{video}.parquet.stale").is_file() and (kdir / f"{video}.import-failed.json").is_file()
    assert ex.video_status(cfg, video) == [ex.IMPORT_FAILED]

    report = ex.extract_videos(cfg, progress=False)
    (failed,) = report.failed
    assert failed.video == video and "the last `mfe keypoints import`" in failed.error and pose.name in failed.error
    with pytest.raises(TaskError, match=f"{video}.*failed"):
        make_task(cfg, preset("task1", **TASK))  # its crops come from the earlier pose file

    shutil.copy2(good, pose)  # fixed: the next import redoes it and forgets the failure
    import_keypoints(cfg, check=import_check(cfg))
    assert (kdir / f"{video}.parquet").is_file() and not list(kdir.glob(f"{video}.*stale*"))
    assert not (kdir / f"{video}.import-failed.json").exists()
    assert ex.extract_videos(cfg, progress=False).ok
    assert video in set(load_task(make_task(cfg, preset("task1", **TASK))).frames["video"])


def test_a_pose_file_older_than_its_video_is_warned_about(tiny_project, caplog):
    marker = tiny_project / "truth" / "synth.json"
    synth = marker.read_text()
    marker.unlink()  # a project of real videos, whose pose files DeepLabCut made from them
    cfg = load_config(tiny_project)
    prepare_videos(cfg, progress=False)
    video = "m1_rec4_4h-postinjection"
    mp4 = cfg.path("processed_videos") / f"{video}.mp4"
    for path in cfg.path("dlc").iterdir():  # as DLC would have made them: after the videos
        os.utime(path, ns=(mp4.stat().st_mtime_ns + 60 * 10**9,) * 2)
    old = _dlc_file(cfg, video)
    stamp = mp4.stat().st_mtime_ns - 19 * 60 * 10**9  # made 19 minutes before this cut of the video
    os.utime(old, ns=(stamp, stamp))

    with caplog.at_level(logging.WARNING, logger="mouse_facial_expressions"):
        import_keypoints(cfg)
    said = [r.getMessage() for r in caplog.records if "is older than the video" in r.getMessage()]
    assert len(said) == 1 and str(old) in said[0] and str(mp4) in said[0] and "19.0 min later" in said[0]
    assert "modified" in said[0].split(str(mp4))[1]  # both files with their modification times

    report = ex.extract_videos(cfg, progress=False)
    warned = {r.video for r in report.results if any("is older than the video" in w for w in r.warnings)}
    assert warned == {video}

    # mfe synth writes its pose files before `mfe prepare` cuts the videos: not warned there
    marker.write_text(synth)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mouse_facial_expressions"):
        import_keypoints(cfg)
    assert not [r for r in caplog.records if "is older than the video" in r.getMessage()]
