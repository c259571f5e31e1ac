"""``mfe predict`` with a lab's own keypoint files: --individual, errors that name the user's
file, a keypoint file named for another video, and --preview."""

from __future__ import annotations

import logging
import shutil

import cv2
import pandas as pd
import pytest
import torch

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.inference.predict import predict_videos
from mouse_facial_expressions.io.dlc import read_dlc, write_dlc
from mouse_facial_expressions.training.runs import fold_checkpoints

torch.set_num_threads(1)
pytestmark = pytest.mark.slow
VIDEO = "m1_rec1_preinjection"


@pytest.fixture(scope="module")
def ckpt(run):
    return dict(fold_checkpoints(run.run_dir))[0]


def _video(run):
    return run.cfg.path("processed_videos") / f"{VIDEO}.mp4"


def _pose(run) -> pd.DataFrame:
    """The video's DLC keypoints: columns (bodypart, coord), one row per frame."""
    (dlc,) = run.cfg.path("dlc").glob(f"{VIDEO}DLC_*.h5")
    return read_dlc(dlc).data


def test_individual_picks_the_animal_of_a_multi_animal_file(run, ckpt, tmp_path, capsys):
    pose = _pose(run)
    decoy = pose.copy()
    decoy.loc[:, (slice(None), ["x", "y"])] += 40.0  # another mouse, elsewhere in the frame
    multi = write_dlc(tmp_path / f"{VIDEO}DLC_multi.h5", pd.concat({"decoy": decoy, "mouse1": pose}, axis=1))
    args = ["predict", str(_video(run)), "--keypoints", str(multi), "--model", str(ckpt), "--project", str(run.project)]

    assert main(args + ["--out", str(tmp_path / "none")]) == 1  # which animal? the error says how to choose
    error = pd.read_csv(tmp_path / "none" / "summary.csv")["error"].iloc[0]
    assert "--individual NAME" in error and "decoy" in error and "mouse1" in error

    assert main(args + ["--out", str(tmp_path / "picked"), "--individual", "mouse1"]) == 0
    single = run.cfg.path("keypoints") / f"{VIDEO}.parquet"
    predict_videos(_video(run), single, ckpt, tmp_path / "single", progress=False)
    picked = pd.read_csv(tmp_path / "picked" / f"{VIDEO}_scores.csv")
    pd.testing.assert_frame_equal(picked, pd.read_csv(tmp_path / "single" / f"{VIDEO}_scores.csv"))


@pytest.mark.parametrize("damage", ["missing_bodypart", "duplicate_row", "negative_frame"])
def test_keypoint_errors_name_the_users_file_not_a_temporary_copy(run, ckpt, tmp_path, damage):
    pose = _pose(run)
    if damage == "missing_bodypart":
        pose = pose.drop(columns="right_ear", level=0)
    elif damage == "duplicate_row":
        pose = pd.concat([pose.iloc[:3], pose.iloc[2:]])
    else:
        pose.index = pose.index - 1  # frames -1 .. n-2
    mine = write_dlc(tmp_path / "my keypoints" / f"{VIDEO}DLC_lab.csv", pose)
    report = predict_videos(_video(run), mine, ckpt, tmp_path / "out", cfg=run.cfg, progress=False)
    (res,) = report.results
    assert res.status == "failed"
    assert str(mine) in res.error, res.error
    assert "mfe-predict-" not in res.error and "kp.parquet" not in res.error  # the temporary canonical copy
    assert {"missing_bodypart": "right_ear", "duplicate_row": "more than once",
            "negative_frame": "negative frame"}[damage] in res.error


def test_a_keypoint_file_named_for_another_video_is_used_with_a_warning(run, ckpt, tmp_path, caplog):
    other = tmp_path / "m2_rec4_4h-postinjection.parquet"
    shutil.copy(run.cfg.path("keypoints") / f"{VIDEO}.parquet", other)  # right data, misleading name
    with caplog.at_level(logging.WARNING, logger="mouse_facial_expressions.inference.predict"):
        report = predict_videos(_video(run), other, ckpt, tmp_path / "a", progress=False)
    (res,) = report.results
    assert res.status == "done"
    assert "'m2_rec4_4h-postinjection'" in res.warnings[0] and f"'{VIDEO}'" in res.warnings[0]
    assert res.warnings[0] in caplog.text
    assert f"warning: {res.warnings[0]}" in report.summary()  # what mfe predict prints

    caplog.clear()
    report = predict_videos(_video(run), run.cfg.path("keypoints") / f"{VIDEO}.parquet", ckpt, tmp_path / "b",
                            progress=False)
    assert not any("named for video" in w for w in report.results[0].warnings)
    assert "named for video" not in caplog.text


def test_preview_writes_a_sheet_of_the_scored_crops_and_only_when_asked(run, ckpt, tmp_path, capsys):
    kp = str(run.cfg.path("keypoints") / f"{VIDEO}.parquet")
    out = tmp_path / "with"
    assert main(["predict", str(_video(run)), "--keypoints", kp, "--model", str(ckpt), "--out", str(out),
                 "--preview"]) == 0
    png = out / f"{VIDEO}_preview.png"
    assert f"preview: {png}" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sheet = cv2.imread(str(png))
    n_scored = len(pd.read_csv(out / f"{VIDEO}_scores.csv"))
    assert n_scored > 0
    # 160-px tiles, at most 6 columns and 24 tiles (4 rows)
    h, w = sheet.shape[:2]
    assert h % 160 == 0 and w % 160 == 0 and 160 <= h <= 4 * 160 and 160 <= w <= 6 * 160
    assert sheet.std() > 5  # face crops, not a blank image

    report = predict_videos(_video(run), kp, ckpt, tmp_path / "without", progress=False)
    assert report.ok and report.results[0].preview_png is None
    assert not list((tmp_path / "without").glob("*preview*"))


def test_head_fixed_pose_files_for_a_dlc_face_model_are_refused_naming_its_alignment(run, ckpt, tmp_path):
    """A DeepLabCut file of a head-fixed rig (one eye, the nose; no ears), mapped by its project's
    keypoints.bodyparts: the error says which alignment the model was trained with, before any
    video is decoded, instead of asking to map the ears."""
    from mouse_facial_expressions.config import Config

    pose = _pose(run)
    headfixed = pose[["left_eye", "nose"]].rename(columns={"left_eye": "eye_centre", "nose": "nose_tip"}, level=0)
    mine = write_dlc(tmp_path / f"{VIDEO}DLC_rig.h5", headfixed)
    cfg = Config.model_validate({"keypoints": {"bodyparts": {"eye": ["eye_centre"], "nose": ["nose_tip"]}},
                                 "extract": {"alignment": "headfixed_eye_nose"}})
    with pytest.raises(ValueError) as err:
        predict_videos(_video(run), mine, ckpt, tmp_path / "out", cfg=cfg, progress=False)
    text = str(err.value)
    assert str(mine) in text and "trained on crops aligned with extract.alignment 'dlc_face'" in text
    assert "['left_eye', 'right_eye', 'left_ear', 'right_ear']" in text and "must be trained on crops from it" in text
