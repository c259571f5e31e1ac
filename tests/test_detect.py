"""DeepLabCut step: the synthetic DLC project (`mfe synth --dlc-project`) and `mfe keypoints detect`."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.config import CANONICAL_LANDMARKS, load_config
from mouse_facial_expressions.io.dlc import read_dlc
from mouse_facial_expressions.io.keypoints import find_pose_files, load_canonical
from mouse_facial_expressions.preprocess import detect
from mouse_facial_expressions.preprocess.detect import (DLC_INSTALL, DetectError, describe_detect, detect_keypoints,
                                                        plan_detect)
from mouse_facial_expressions.synth import SCORER
from mouse_facial_expressions.synth.dlc_project import LABELLER, image_name, pick_frames, write_dlc_project
from mouse_facial_expressions.synth.stamp import read_stamp

SCORER_NEW = "DLC_CspnextS_mfefaceJan1shuffle1_snapshot_010"


@pytest.fixture(scope="module")
def dlc_project(tiny_cohort, tmp_path_factory) -> Path:
    """The synthetic DLC project of the tiny cohort: 6 frames in each of 3 videos (read-only)."""
    out = tmp_path_factory.mktemp("dlc") / "project"
    write_dlc_project(tiny_cohort, out, frames_per_video=6, videos=3)
    return out


# --------------------------------------------------------------------------- the synthetic DLC project


def test_pick_frames_spreads_evenly_and_keeps_all_when_few():
    assert pick_frames(91, 4).tolist() == [0, 30, 60, 90]
    assert pick_frames(3, 30).tolist() == [0, 1, 2]
    assert image_name(7, 90) == "img07.png" and image_name(7, 1200) == "img0007.png"


def test_dlc_config_is_a_single_animal_pytorch_project_with_the_five_landmarks(dlc_project, tiny_cohort):
    cfg = yaml.safe_load((dlc_project / "config.yaml").read_text())
    assert cfg["bodyparts"] == list(CANONICAL_LANDMARKS)
    assert cfg["engine"] == "pytorch" and cfg["multianimalproject"] is False
    assert cfg["scorer"] == LABELLER and cfg["Task"] and cfg["date"]
    assert Path(cfg["project_path"]) == dlc_project.resolve()
    assert {tuple(pair) for pair in cfg["skeleton"]} <= {(a, b) for a in CANONICAL_LANDMARKS for b in CANONICAL_LANDMARKS}
    labelled = sorted(p.name for p in (dlc_project / "labeled-data").iterdir())
    assert len(labelled) == 3
    processed = load_config(tiny_cohort).path("processed_videos")
    assert sorted(cfg["video_sets"]) == [str(processed / f"{v}.mp4") for v in labelled]
    assert all(v["crop"] == "0, 256, 0, 192" for v in cfg["video_sets"].values())
    assert cfg["numframes2pick"] == 6 and 0 < cfg["pcutoff"] < 1 and cfg["TrainingFraction"] == [0.95]


def test_collected_data_is_the_newer_dlc_layout(dlc_project):
    h5 = next((dlc_project / "labeled-data").glob(f"*/CollectedData_{LABELLER}.h5"))
    df = pd.read_hdf(h5)
    assert df.columns.names == ["scorer", "bodyparts", "coords"]
    assert set(df.columns.get_level_values("coords")) == {"x", "y"}
    assert df.index.nlevels == 3 and set(df.index.get_level_values(0)) == {"labeled-data"}
    assert set(df.index.get_level_values(1)) == {h5.parent.name}
    head = h5.with_suffix(".csv").read_text().splitlines()[:3]
    assert [line.split(",")[0] for line in head] == ["scorer", "bodyparts", "coords"]


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_labels_round_trip_through_keypoints_import_equal_the_truth(dlc_project, tiny_cohort, tmp_path, suffix):
    truth = pd.read_parquet(tiny_cohort / "truth" / "truth.parquet")
    cfg = load_config(tiny_cohort)
    for folder in sorted((dlc_project / "labeled-data").iterdir()):
        src = folder / f"CollectedData_{LABELLER}{suffix}"
        out = tmp_path / suffix
        assert main(["keypoints", "import", str(src), "-p", str(tiny_cohort), "--out", str(out)]) == 0
        table = load_canonical(out / f"{folder.name}.parquet")
        rows = truth[truth.video == folder.name].set_index("frame").loc[table.frame]
        assert len(table) == 6
        seen = read_dlc(cfg.path("dlc") / f"{folder.name}{SCORER}.h5")
        for name in CANONICAL_LANDMARKS:
            visible = seen.xyl(name)[table.frame, 2] > 0.5
            np.testing.assert_allclose(table[f"{name}_x"][visible], rows[f"{name}_x"][visible], rtol=0, atol=1e-9)
            np.testing.assert_allclose(table[f"{name}_y"][visible], rows[f"{name}_y"][visible], rtol=0, atol=1e-9)
            assert table[f"{name}_x"][~visible].isna().all()
            assert (table[f"{name}_likelihood"][visible] == 1.0).all()
        # the far-side eye and ear are never labelled
        far = np.where(rows.side.to_numpy() == "left", "right", "left")
        for f, side in enumerate(far):
            assert np.isnan(table[f"{side}_eye_x"].iloc[f]) and np.isnan(table[f"{side}_ear_x"].iloc[f])


def test_pngs_are_the_frames_their_names_say(dlc_project, tiny_cohort):
    truth = pd.read_parquet(tiny_cohort / "truth" / "truth.parquet")
    folder = sorted((dlc_project / "labeled-data").iterdir())[-1]
    rows = truth[truth.video == folder.name].set_index("frame")
    pngs = sorted(folder.glob("img*.png"))
    assert len(pngs) == 6
    for png in pngs:
        image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert image.shape == (192, 256, 3)
        frame = int(png.stem[3:])
        assert read_stamp(image[..., 0]) == rows.raw_frame[frame]  # the raw frame that is processed frame `frame`


def test_synth_cli_writes_the_dlc_project(tmp_path):
    out = tmp_path / "cohort"
    assert main(["synth", str(out), "--mice", "1", "--recordings", "1", "--seconds", "3",
                 "--dlc-project", str(tmp_path / "dlc"), "--dlc-frames", "4"]) == 0
    labelled = list((tmp_path / "dlc" / "labeled-data").glob("*/img*.png"))
    assert len(labelled) == 4 and (tmp_path / "dlc" / "config.yaml").is_file()


# --------------------------------------------------------------------------- detect: planning


def _project(tmp_path: Path, videos=("a", "b", "c")) -> tuple:
    """A project with processed 'videos' (never decoded by a fake DLC) and a DLC config file."""
    if not (tmp_path / "mfe.yaml").exists():  # `-p` refuses a folder that is not a project
        (tmp_path / "mfe.yaml").write_text("")
    cfg = load_config(tmp_path)
    folder = cfg.path("processed_videos")
    folder.mkdir(parents=True)
    for v in videos:
        (folder / f"{v}.mp4").write_bytes(b"not decoded by the fake")
    dlc = tmp_path / "dlc" / "config.yaml"
    dlc.parent.mkdir()
    dlc.write_text("Task: fake\n")
    return cfg, dlc


def _touch(path: Path, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))
    return path


def test_plan_skips_outputs_newer_than_the_video_and_redoes_older_ones(tmp_path):
    cfg, _ = _project(tmp_path)
    processed, dlc = cfg.path("processed_videos"), cfg.path("dlc")
    for v in "abc":
        _touch(processed / f"{v}.mp4", 1_000_000)
    _touch(dlc / f"aDLC_{SCORER_NEW}.h5", 1_000_500)  # newer than a.mp4: fresh
    _touch(dlc / f"bDLC_{SCORER_NEW}.h5", 999_000)  # older than b.mp4 (re-trimmed since): redo
    _touch(dlc / f"abDLC_{SCORER_NEW}.h5", 1_000_500)  # another video's output does not count for a
    jobs = {j.video.stem: j for j in plan_detect(sorted(processed.glob("*.mp4")), dlc)}
    assert not jobs["a"].run and jobs["a"].reason.startswith("fresh")
    assert jobs["b"].run and "newer" in jobs["b"].reason
    assert jobs["c"].run and jobs["c"].reason == "new"
    assert all(j.run for j in plan_detect(sorted(processed.glob("*.mp4")), dlc, force=True))
    text = describe_detect(cfg, tmp_path / "dlc")
    assert "2 to run, 1 fresh" in text and "skip a.mp4: fresh" in text


def test_missing_deeplabcut_names_the_pip_command(tmp_path, monkeypatch, capsys):
    cfg, dlc = _project(tmp_path, videos=("a",))
    monkeypatch.setitem(sys.modules, "deeplabcut", None)  # as if not installed (also where it is)
    with pytest.raises(ImportError) as err:
        detect_keypoints(cfg, dlc)
    assert DLC_INSTALL in str(err.value)
    assert main(["keypoints", "detect", "-p", str(tmp_path), "--dlc-config", str(dlc)]) == 1
    assert "pip install 'mouse-facial-expressions[dlc]'" in capsys.readouterr().err


def test_fresh_videos_need_no_deeplabcut(tmp_path, monkeypatch):
    cfg, dlc = _project(tmp_path, videos=("a",))
    out = _touch(cfg.path("dlc") / f"aDLC_{SCORER_NEW}.h5", (cfg.path("processed_videos") / "a.mp4").stat().st_mtime + 5)
    monkeypatch.setitem(sys.modules, "deeplabcut", None)
    assert detect_keypoints(cfg, dlc) == [out]


def test_dlc_config_comes_from_mfe_yaml_relative_to_the_project(tmp_path):
    (tmp_path / "mfe.yaml").write_text("keypoints:\n  dlc_config: dlc\n")
    _project(tmp_path, videos=("a",))
    cfg = load_config(tmp_path)
    assert detect.dlc_config_path(cfg) == (tmp_path / "dlc" / "config.yaml").resolve()
    with pytest.raises(ValueError, match="--dlc-config"):
        detect.dlc_config_path(load_config(tmp_path / "nowhere"))


# --------------------------------------------------------------------------- detect: running (fake DLC)


class FakeDLC:
    """Stands in for deeplabcut.analyze_videos: writes what DLC writes, or fails for ``bad``."""

    def __init__(self, bad=(), scorer=SCORER_NEW):
        self.bad, self.scorer, self.calls = set(bad), scorer, []

    def __call__(self, config, videos, destfolder, **options):
        self.calls.append((config, videos, destfolder, options))
        stem = Path(videos[0]).stem
        dest = Path(destfolder)
        prefix = f"{stem}{self.scorer}"
        (dest / f"{prefix}_meta.pickle").write_bytes(b"meta")
        if stem in self.bad:
            (dest / f"{prefix}.h5").write_bytes(b"half a file")  # killed mid-write
            raise RuntimeError(f"cannot decode {stem}")
        cols = pd.MultiIndex.from_product([[self.scorer], list(CANONICAL_LANDMARKS), ["x", "y", "likelihood"]],
                                          names=["scorer", "bodyparts", "coords"])
        pd.DataFrame(np.full((4, len(cols)), 0.5), columns=cols).to_hdf(
            dest / f"{prefix}.h5", key="df_with_missing", format="table", mode="w")
        return self.scorer


def test_one_bad_video_fails_alone_and_leaves_no_half_file(tmp_path):
    cfg, dlc = _project(tmp_path)
    fake = FakeDLC(bad={"b"})
    with pytest.raises(DetectError) as err:
        detect_keypoints(cfg, dlc, analyze=fake, device="cpu", batch_size=4, snapshot_index=-1, shuffle=2)
    assert "1 of 3 videos failed" in str(err.value) and "b.mp4: RuntimeError: cannot decode b" in str(err.value)
    out = cfg.path("dlc")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{v}{SCORER_NEW}{s}" for v in "ac" for s in (".h5", "_meta.pickle"))
    assert set(find_pose_files([out])) == {"a", "c"}  # what `mfe keypoints import` will read
    config, videos, destfolder, options = fake.calls[0]
    assert config == str(dlc.resolve()) and Path(destfolder).parent == out and Path(destfolder).name.startswith(".")
    assert options == {"shuffle": 2, "trainingsetindex": 0, "device": "cpu", "batch_size": 4,
                       "save_as_csv": False, "snapshot_index": -1}
    # the rerun resumes: only b runs
    again = FakeDLC()
    assert len(detect_keypoints(cfg, dlc, analyze=again)) == 3
    assert [Path(c[1][0]).stem for c in again.calls] == ["b"]


def test_cli_reports_each_failed_video_with_nonzero_exit(tmp_path, monkeypatch, capsys):
    _, dlc = _project(tmp_path)
    monkeypatch.setattr(detect, "load_analyze", lambda: FakeDLC(bad={"a", "c"}))
    assert main(["keypoints", "detect", "-p", str(tmp_path), "--dlc-config", str(dlc.parent)]) == 1
    err = capsys.readouterr().err
    assert "2 of 3 videos failed" in err and "a.mp4: RuntimeError: cannot decode a" in err and "c.mp4" in err


def test_a_redone_video_moves_the_old_models_output_aside(tmp_path):
    cfg, dlc = _project(tmp_path, videos=("a",))
    out = cfg.path("dlc")
    old = _touch(out / f"a{SCORER}.h5", 1.0)  # an older model's output, older than the video
    _touch(out / f"a{SCORER}.csv", 1.0)
    detect_keypoints(cfg, dlc, analyze=FakeDLC())
    assert find_pose_files([out]) == {"a": out / f"a{SCORER_NEW}.h5"}
    assert (out / "superseded" / old.name).is_file() and (out / "superseded" / f"a{SCORER}.csv").is_file()


def test_dlc_that_writes_no_h5_is_a_failure(tmp_path):
    cfg, dlc = _project(tmp_path, videos=("a",))
    with pytest.raises(DetectError, match="wrote no aDLC_<scorer>.h5"):
        detect_keypoints(cfg, dlc, analyze=lambda config, videos, destfolder, **kw: None)
    assert not any(cfg.path("dlc").iterdir())


# --------------------------------------------------------------------------- the real DeepLabCut


@pytest.mark.slow
def test_real_deeplabcut_trains_on_the_synthetic_project_and_detect_feeds_import(dlc_project, tiny_cohort, tmp_path):
    import shutil

    from mouse_facial_expressions.compat import import_torchvision

    import_torchvision()  # before deeplabcut, which imports torchvision (see compat)
    dlc = pytest.importorskip("deeplabcut", reason="DeepLabCut is an optional extra: pip install "
                              "'mouse-facial-expressions[dlc]'")

    from deeplabcut.core.config import ProjectConfig
    from deeplabcut.pose_estimation_pytorch.models.model import PoseModel

    from mouse_facial_expressions.preprocess.prepare import prepare_videos

    project = tmp_path / "dlc"
    shutil.copytree(dlc_project, project)
    config = write_dlc_project(tiny_cohort, project, frames_per_video=6, videos=3)  # project_path = the copy
    assert list(ProjectConfig.from_any(config).bodyparts) == list(CANONICAL_LANDMARKS)
    build = PoseModel.build  # no ImageNet download here: train from scratch
    PoseModel.build = staticmethod(lambda cfg, weight_init=None, pretrained_backbone=False: build(cfg, weight_init, False))
    try:
        dlc.create_training_dataset(str(config), net_type="cspnext_s", engine=dlc.Engine.PYTORCH, userfeedback=False)
        dlc.train_network(str(config), epochs=1, save_epochs=1, batch_size=4, device="cpu")
    finally:
        PoseModel.build = build
    cohort = tmp_path / "cohort"
    shutil.copytree(tiny_cohort, cohort)
    cfg = load_config(cohort)
    prepare_videos(cfg, progress=False)
    video = sorted(cfg.path("processed_videos").glob("*.mp4"))[0]
    outputs = detect_keypoints(cfg, config, videos=[video.stem], device="cpu", batch_size=8)
    assert len(outputs) == 1 and outputs[0].name.startswith(f"{video.stem}DLC_")
    assert find_pose_files([cfg.path("dlc")])[video.stem] == outputs[0]  # what `mfe keypoints import` reads
    pose = read_dlc(outputs[0])  # (a one-epoch model is too unsure for import's alignment check)
    assert pose.bodyparts == list(CANONICAL_LANDMARKS) and len(pose) == len(pd.read_parquet(
        tiny_cohort / "truth" / "truth.parquet").query("video == @video.stem"))
    assert np.isfinite(pose.xyl("nose")).all() and (cfg.path("dlc") / "superseded" / f"{video.stem}{SCORER}.h5").is_file()
    # mfe predict --live --dlc-config: the same snapshot, one frame at a time, gives analyze_videos' keypoints
    import av

    frame_pose = detect.load_frame_pose(config, device="cpu")
    assert frame_pose.bodyparts == list(CANONICAL_LANDMARKS) and frame_pose.snapshot.suffix == ".pt"
    with av.open(str(video)) as c:
        for i, fr in zip(range(2), c.decode(video=0)):
            want = np.stack([pose.xyl(bp)[i] for bp in frame_pose.bodyparts])
            np.testing.assert_allclose(frame_pose(fr.to_ndarray(format="rgb24")), want, atol=1e-3)


class _Pose:
    bodyparts = ["snout", "eye_l", "eye_r"]
    snapshot = "snapshot-best-040.pt"

    def __call__(self, rgb):
        return np.array([[10.0, 20.0, 0.9], [30.0, 40.0, 0.8], [50.0, 60.0, 0.7]])


def test_a_pose_models_bodyparts_are_mapped_to_landmarks():
    from mouse_facial_expressions.inference.streams import ModelKeypoints

    with pytest.raises(ValueError, match=r"snapshot-best-040.pt: bodyparts \['ear_l'\].*keypoints.bodyparts"):
        ModelKeypoints(_Pose(), {"nose": ["snout"], "left_eye": ["eye_l"], "left_ear": ["ear_l"]})
    model = ModelKeypoints(_Pose(), {"nose": ["snout"], "eyes": ["eye_l", "eye_r"]})
    row = model.row(7, np.zeros((4, 4, 3), np.uint8)).iloc[0]
    assert row["frame"] == 7 and (row["nose_x"], row["nose_y"], row["nose_likelihood"]) == (10, 20, 0.9)
    assert (row["eyes_x"], row["eyes_y"], row["eyes_likelihood"]) == (40, 50, 0.7)  # mean position, least sure


def test_live_pose_model_without_deeplabcut_says_how_to_install(monkeypatch, tmp_path):
    from mouse_facial_expressions.preprocess import detect

    (tmp_path / "config.yaml").write_text("Task: x\n")
    monkeypatch.setattr(detect, "dlc_available", lambda: False)
    with pytest.raises(ImportError, match=re.escape(DLC_INSTALL)):
        detect.load_frame_pose(tmp_path)
    with pytest.raises(FileNotFoundError, match="DeepLabCut project config not found"):
        detect.load_frame_pose(tmp_path / "nowhere")


@pytest.mark.parametrize("argv, message", [
    (["v.mp4", "--dlc-config", "dlc"], "--dlc-config is for --live"),
    (["--live", "0"], "--keypoints FILE|DIR is required (or --dlc-config PATH with --live)"),
    (["v.mp4"], "--keypoints FILE|DIR is required"),
    (["--live", "0", "--keypoints", "kp.csv", "--dlc-config", "dlc"], "not both"),
])
def test_predict_keypoint_sources_are_checked_before_anything_loads(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no mfe.yaml here
    assert main(["predict", *argv, "--model", "nowhere"]) == 1
    assert message in capsys.readouterr().err
