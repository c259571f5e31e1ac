"""`mfe extract` end to end on small stamped test videos with known face positions."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.config import CANONICAL_LANDMARKS, load_config
from mouse_facial_expressions.io.video import VideoWriter
from mouse_facial_expressions.preprocess import extract as ex
from mouse_facial_expressions.io.keypoints import load_canonical, write_canonical
from mouse_facial_expressions.preprocess.quality import FLAG_COLUMNS
from mouse_facial_expressions.preprocess.store import is_complete as store_is_complete
from mouse_facial_expressions.preprocess.store import load_index, open_frames
from mouse_facial_expressions.project import init_project
from mouse_facial_expressions.synth.stamp import draw_stamp

W, H, FPS = 192, 144, 30.0


def head_grey(i: int) -> int:
    """Head grey level encodes the frame number mod 8, so a crop tells which frame it came from."""
    return 40 + 14 * (i % 8)


def face_points(i: int, side: str) -> dict[str, tuple[float, float]]:
    sx = -1 if side == "left" else 1  # direction the snout points
    c = (W / 2 + 20 * np.sin(i / 15), H / 2 + 10 + 8 * np.cos(i / 11))
    a = 0.3 * np.sin(i / 9)
    offs = {"nose": (22 * sx, 6), "eye": (6 * sx, -4), "ear": (-12 * sx, -10)}
    ca, sa = np.cos(a), np.sin(a)
    return {k: (c[0] + ca * dx - sa * dy, c[1] + sa * dx + ca * dy) for k, (dx, dy) in offs.items()}


def side_of(i: int) -> str:
    return "left" if (i // 20) % 2 == 0 else "right"


def make_video(cfg, name: str, n: int = 60, kp_rows: int | None = None, nan_rows=()) -> pd.DataFrame:
    """A stamped video of a face (white eye dot, dark ear and nose) + its canonical keypoints."""
    vdir, kdir = cfg.path("processed_videos"), cfg.path("keypoints")
    vdir.mkdir(parents=True, exist_ok=True)
    kdir.mkdir(parents=True, exist_ok=True)
    rows = []
    with VideoWriter(vdir / f"{name}.mp4", FPS, W, H) as vw:
        for i in range(n):
            side = side_of(i)
            p = face_points(i, side)
            img = np.full((H, W), 215, np.uint8)
            pt = lambda k: tuple(int(round(v)) for v in p[k])  # noqa: E731
            centre = tuple(int(round(v)) for v in np.mean([p["nose"], p["eye"], p["ear"]], axis=0))
            cv2.ellipse(img, centre, (32, 20), 0, 0, 360, head_grey(i), -1, cv2.LINE_AA)
            cv2.circle(img, pt("ear"), 7, 10, -1, cv2.LINE_AA)
            cv2.circle(img, pt("nose"), 4, 10, -1, cv2.LINE_AA)
            cv2.circle(img, pt("eye"), 3, 255, -1, cv2.LINE_AA)
            draw_stamp(img, i)
            vw.write(img)
            hidden = "right" if side == "left" else "left"
            row = {"frame": i, "nose_x": p["nose"][0], "nose_y": p["nose"][1], "nose_likelihood": 0.98}
            for s, lik in ((side, 0.99), (hidden, 0.05)):
                for role in ("eye", "ear"):
                    row[f"{s}_{role}_x"], row[f"{s}_{role}_y"] = p[role]
                    row[f"{s}_{role}_likelihood"] = lik
            rows.append(row)
    cols = ["frame"] + [f"{lm}_{c}" for lm in CANONICAL_LANDMARKS for c in ("x", "y", "likelihood")]
    df = pd.DataFrame(rows)[cols]
    if kp_rows is not None:
        df = df.set_index("frame").reindex(np.arange(kp_rows)).rename_axis("frame").reset_index()
    for i in nan_rows:
        df.loc[df["frame"] == i, cols[1:]] = np.nan
    df.to_parquet(kdir / f"{name}.parquet")
    return df


@pytest.fixture
def project(tmp_path):
    cfg = init_project(tmp_path / "proj")
    # small crops at the video rate; written to mfe.yaml so the CLI sees the same settings
    (cfg.root / "mfe.yaml").write_text(yaml.safe_dump({"extract": {"crop_size": 64, "out_size": 64, "target_fps": 30.0}}))
    return load_config(cfg.root)


def _bright_spot(crop: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(np.argmax(cv2.GaussianBlur(crop, (5, 5), 0)), crop.shape)
    return int(x), int(y)


def test_eye_lands_on_its_stored_crop_position_and_sides_are_mirrored(project):
    make_video(project, "m1_rec1_preinjection")
    report = ex.extract_videos(project)
    assert report.ok and len(report.done) == 1
    idx = load_index(project.path("frames"))
    crops = open_frames(project.path("frames"), "m1_rec1_preinjection")
    assert len(idx) == 60 == len(crops)
    assert idx["side"].tolist() == [side_of(i) for i in idx["frame"]]
    assert not idx[list(FLAG_COLUMNS)].any().any() and not report.results[0].warnings  # a clean face: no flag
    for r in idx.itertuples():
        x, y = _bright_spot(crops[r.row])
        assert abs(x - r.eye_x) <= 1.5 and abs(y - r.eye_y) <= 1.5, (r.frame, x, y, r.eye_x, r.eye_y)
        # canonical: snout left, ear right of and above the eye, for both sides (mirrored)
        assert r.nose_x < r.eye_x < r.ear_x and abs(r.ear_y - r.eye_y) < 1e-6 and r.nose_y > r.eye_y


def test_crops_come_from_the_right_frames(project):
    make_video(project, "v")
    ex.extract_videos(project)
    idx = load_index(project.path("frames"))
    crops = open_frames(project.path("frames"), "v")
    for r in idx.itertuples():
        px, py = int(round((r.eye_x + r.nose_x) / 2)), int(round((r.eye_y + r.nose_y) / 2))
        grey = float(np.median(crops[r.row][py - 1:py + 2, px - 1:px + 2]))
        assert abs(grey - head_grey(r.frame)) < 6, (r.frame, grey)
    np.testing.assert_allclose(idx["time"], idx["frame"] / FPS)


def test_temporal_policy_keeps_the_target_rate_and_splits_runs_at_gaps(project):
    project.extract.target_fps = 10.0
    make_video(project, "v", nan_rows=range(20, 40))  # 0.67 s without keypoints
    ex.extract_videos(project)
    idx = load_index(project.path("frames"))
    assert idx["frame"].tolist() == [0, 3, 6, 9, 12, 15, 18, 42, 45, 48, 51, 54, 57]
    assert idx["run"].tolist() == [0] * 7 + [1] * 6


def test_nan_keypoints_make_frames_unusable(project):
    make_video(project, "v", nan_rows=[5, 6, 30])
    ex.extract_videos(project)
    frames = set(load_index(project.path("frames"))["frame"])
    assert not frames & {5, 6, 30} and len(frames) == 57


def test_a_face_centre_off_the_frame_is_dropped_and_a_landmark_off_it_flagged(project):
    kp = make_video(project, "v")
    kp.loc[kp["frame"] < 10, [c for c in kp.columns if c.endswith("_x")]] += 1000.0  # the whole face off the frame
    kp.loc[kp["frame"].between(10, 19), "nose_x"] = -40.0  # the nose off it, the face centre still on it
    write_canonical(kp, project.path("keypoints") / "v.parquet")
    report = ex.extract_videos(project)
    idx = load_index(project.path("frames"))
    assert idx["frame"].min() == 10 and len(idx) == 50  # the 10 blank crops are not stored
    assert idx.loc[idx["frame"] < 20, "flag_off_frame"].all() and not idx.loc[idx["frame"] >= 20, "flag_off_frame"].any()
    (res,) = report.results
    assert res.quality["centre_off_frame"] == 10 and res.quality["flag_off_frame"] == 10
    assert any("face centre of 10 of the 60 frames with a face lies off the 192x144 video frame" in w for w in res.warnings)
    assert any("10 of the 50 stored crops are flagged (10 with a landmark off the frame" in w for w in res.warnings)


def test_seed_policy_keeps_the_n_sharpest_of_every_kth_frame(project):
    project.extract.policy = "seed"
    project.extract.every_k = 10
    project.extract.n_sharpest = 3
    make_video(project, "v")
    ex.extract_videos(project)
    idx = load_index(project.path("frames"))
    assert len(idx) == 3 and (idx["frame"] % 10 == 0).all() and idx["frame"].is_monotonic_increasing


def test_second_run_skips_complete_videos(project):
    make_video(project, "v")
    ex.extract_videos(project)
    npy = project.path("frames") / "v.npy"
    before = os.stat(npy).st_mtime_ns
    report = ex.extract_videos(project)
    assert [r.status for r in report.results] == ["skipped"] and os.stat(npy).st_mtime_ns == before


def test_video_killed_mid_extraction_is_redone(project):
    make_video(project, "v")
    frames = project.path("frames")
    frames.mkdir(parents=True, exist_ok=True)
    np.save(frames / "v.npy", np.zeros((1, 2, 2), np.uint8))  # killed before the parquet
    (frames / ".v.parquet.tmp-4242").write_bytes(b"partial")
    report = ex.extract_videos(project)
    assert [r.status for r in report.results] == ["done"]
    assert open_frames(frames, "v").shape == (60, 64, 64)
    assert not [p for p in frames.iterdir() if p.name.startswith(".")]


def test_small_count_mismatch_warns_and_uses_the_common_range(project):
    make_video(project, "v", n=60, kp_rows=63)
    report = ex.extract_videos(project)
    assert report.ok and report.results[0].warnings
    assert "60 video frames vs 63 keypoint rows" in report.results[0].warnings[0]
    assert load_index(project.path("frames"))["frame"].max() == 59


def test_large_count_mismatch_fails_naming_both_counts(project):
    make_video(project, "v", n=60, kp_rows=54)  # 10% short
    report = ex.extract_videos(project)
    assert not report.ok
    err = report.failed[0].error
    assert "60 frames" in err and "54 keypoint rows" in err
    assert list(project.path("frames").glob("v.*")) == []


def test_truncated_video_fails_alone(project, capsys):
    for name in ("a", "b", "c"):
        make_video(project, name, n=30)
    path = project.path("processed_videos") / "b.mp4"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    report = ex.extract_videos(project)
    assert [r.video for r in report.done] == ["a", "c"]
    assert [r.video for r in report.failed] == ["b"] and "b.mp4" in report.failed[0].error
    assert "FAILED b" in report.summary()
    assert not (project.path("frames") / "b.npy").exists()
    # the CLI exits non-zero and lists the failure
    assert main(["extract", "--project", str(project.root)]) == 1
    assert "FAILED b" in capsys.readouterr().out


def test_missing_keypoints_fail_with_the_file_name(project):
    make_video(project, "v", n=10)
    (project.path("keypoints") / "v.parquet").unlink()
    report = ex.extract_videos(project)
    assert "v.parquet" in report.failed[0].error


def test_shards_split_the_sorted_videos(project):
    for name in ("a", "b", "c"):
        make_video(project, name, n=10)
    assert ex.list_videos(project, shard="1/2") == ["b"]
    assert ex.list_videos(project, shard="0/2") == ["a", "c"]
    with pytest.raises(ValueError, match="i/n"):
        ex.parse_shard("2")
    with pytest.raises(ValueError):
        ex.parse_shard("2/2")


def test_workers_and_png_format(project):
    for name in ("a", "b"):
        make_video(project, name, n=12)
    report = ex.extract_videos(project, workers=2, fmt="png")
    assert [r.status for r in report.results] == ["done", "done"]
    pngs = sorted(p.name for p in (project.path("frames") / "a").glob("*.png"))
    assert len(pngs) == 12 and pngs[0] == "frame00000.png"
    crop = cv2.imread(str(project.path("frames") / "a" / "frame00003.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(crop, open_frames(project.path("frames"), "a")[3])


def test_changed_settings_redo_every_video_and_say_why(project):
    for name in ("v", "w"):
        make_video(project, name, n=10)
    ex.extract_videos(project)
    project.extract.out_size = 32
    with pytest.raises(ValueError, match="re-extracted together.*leaves out w"):
        ex.extract_videos(project, videos=["v"])  # a store of two crop sizes would be worse than an error
    report = ex.extract_videos(project)
    assert [r.video for r in report.done] == ["v", "w"]
    assert "2 redone: settings changed" in report.summary()
    assert all("out_size 64 -> 32" in r.reasons[0] for r in report.done)
    assert open_frames(project.path("frames"), "v").shape[1:] == (32, 32)
    assert not ex.extract_videos(project).done  # fresh now


def test_cli_extract_with_preview(project, tmp_path):
    make_video(project, "v", n=30)
    out = tmp_path / "sheet.png"
    assert main(["extract", "--project", str(project.root), "--policy", "seed", "--preview", str(out)]) == 0
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] >= 160
    assert load_index(project.path("frames"))["frame"].tolist() == [0, 10, 20]


# ----------------------------------------------------------------------------- synthetic cohort


@pytest.fixture(scope="module")
def tiny_extracted(tiny_cohort, tmp_path_factory):
    """A copy of ``synth tiny`` -> prepare -> keypoints import -> extract, once for the tests below."""
    import shutil

    from mouse_facial_expressions.io.keypoints import import_keypoints
    from mouse_facial_expressions.preprocess.prepare import prepare_videos

    root = tmp_path_factory.mktemp("tiny-extract") / "project"
    shutil.copytree(tiny_cohort, root)
    cfg = load_config(root)
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    report = ex.extract_videos(cfg, progress=False)
    return cfg, report


def _truth_in_crops(cfg, idx: pd.DataFrame) -> pd.DataFrame:
    """True eye/ear/nose of the stored frames, mapped into crop coordinates with the frame's matrix."""
    from mouse_facial_expressions.preprocess import geometry

    truth = pd.read_parquet(cfg.root / "truth" / "truth.parquet")
    out = []
    for video, rows in idx.groupby("video"):
        kp = ex.read_keypoints(cfg.path("keypoints") / f"{video}.parquet")
        geo = ex.frame_geometry(kp, cfg.keypoints.pcutoff, cfg.extract.crop_size, cfg.extract.out_size)
        t = truth[truth["video"] == video].set_index("frame").loc[rows["frame"]]
        m = geo["matrix"][rows["frame"].to_numpy()]
        right = (rows["side"] == "right").to_numpy()[:, None]
        part = rows[["video", "frame", "side", "eye_x", "eye_y"]].copy()
        part["true_side"] = t["side"].to_numpy()
        for role in ("eye", "ear"):
            xy = np.where(right, t[[f"right_{role}_x", f"right_{role}_y"]], t[[f"left_{role}_x", f"left_{role}_y"]])
            part[[f"t_{role}_x", f"t_{role}_y"]] = geometry.transform_points(m, xy)
        part[["t_nose_x", "t_nose_y"]] = geometry.transform_points(m, t[["nose_x", "nose_y"]].to_numpy())
        out.append(part)
    return pd.concat(out, ignore_index=True)


def test_tiny_cohort_side_and_mirroring_match_the_truth(tiny_extracted):
    cfg, report = tiny_extracted
    assert report.ok and len(report.done) == 8
    idx = load_index(cfg.path("frames"))
    assert len(idx) > 100 and set(idx["side"]) == {"left", "right"}
    tc = _truth_in_crops(cfg, idx)
    assert (tc["side"] == tc["true_side"]).mean() >= 0.98
    # after mirroring every crop faces left: true nose left of the true eye, true ear right of it
    assert (tc["t_nose_x"] < tc["t_eye_x"]).all() and (tc["t_ear_x"] > tc["t_eye_x"]).all()


def test_tiny_cohort_true_eye_lands_at_its_canonical_position(tiny_extracted):
    cfg, _ = tiny_extracted
    idx = load_index(cfg.path("frames"))
    tc = _truth_in_crops(cfg, idx)
    err = np.hypot(tc["t_eye_x"] - tc["eye_x"], tc["t_eye_y"] - tc["eye_y"])
    assert np.median(err) < 2.0 and np.quantile(err, 0.95) < 4.0, err.describe()
    # the true eye -> ear line is horizontal in the crop (within the keypoint jitter)
    angle = np.degrees(np.arctan2(tc["t_ear_y"] - tc["t_eye_y"], tc["t_ear_x"] - tc["t_eye_x"]))
    assert np.median(np.abs(angle)) < 5.0
    # and the eye sits at about the same spot in every crop
    assert idx["eye_y"].std() < 0.05 * cfg.extract.out_size


def test_tiny_cohort_runs_are_real_time(tiny_extracted):
    cfg, _ = tiny_extracted
    idx = load_index(cfg.path("frames"))
    step = 1.0 / cfg.extract.target_fps
    for _, rows in idx.groupby(["video", "run"]):
        dt = np.diff(rows["time"].to_numpy())
        assert (dt > 0).all() and (dt <= cfg.extract.max_gap_s + 1e-9).all()
        assert np.allclose(dt / step, np.round(dt / step), atol=0.05)  # on the target-rate grid


def test_tiny_cohort_second_run_does_nothing(tiny_extracted):
    cfg, _ = tiny_extracted
    report = ex.extract_videos(cfg, progress=False)
    assert {r.status for r in report.results} == {"skipped"}


def test_iter_frames_wanted_yields_none_for_unwanted_frames(project):
    from mouse_facial_expressions.io.video import iter_frames
    from mouse_facial_expressions.synth.stamp import read_stamp

    make_video(project, "v", n=8)
    wanted = np.array([False, True, False, True])  # frames past its end are unwanted too
    got = list(iter_frames(project.path("processed_videos") / "v.mp4", wanted=wanted))
    assert [i for i, _ in got] == list(range(8))
    assert [i for i, f in got if f is not None] == [1, 3]
    assert [read_stamp(f) for _, f in got if f is not None] == [1, 3]


def test_reimported_keypoints_or_a_retrimmed_video_are_redone(project, capsys):
    for name in ("a", "b", "c"):
        make_video(project, name, n=30)
    assert len(ex.extract_videos(project).done) == 3
    kp = load_canonical(project.path("keypoints") / "a.parquet")
    kp["nose_x"] += 3.0  # keypoints re-imported with another model
    write_canonical(kp, project.path("keypoints") / "a.parquet")
    make_video(project, "b", n=24)  # video re-trimmed (and its keypoints with it)
    assert main(["extract", "--project", str(project.root), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "extract a: keypoints changed" in plan and "skip    c: fresh" in plan
    report = ex.extract_videos(project)
    assert [r.video for r in report.done] == ["a", "b"] and [r.video for r in report.skipped] == ["c"]
    assert report.done[0].reasons == ["keypoints changed"] and report.done[1].reasons == ["video changed", "keypoints changed"]
    assert "2 redone: keypoints changed (2), video changed (1)" in report.summary()
    assert load_index(project.path("frames")).query("video == 'b'")["frame"].max() < 24


def test_a_failed_redo_keeps_the_previous_crops(project):
    make_video(project, "v", n=30)
    ex.extract_videos(project)
    frames = project.path("frames")
    before = (frames / "v.npy").read_bytes(), (frames / "v.parquet").read_bytes()
    (project.path("processed_videos") / "v.mp4").write_bytes(b"garbage")  # stale now, and unreadable
    report = ex.extract_videos(project, overwrite=True)
    assert [r.video for r in report.failed] == ["v"]
    assert ((frames / "v.npy").read_bytes(), (frames / "v.parquet").read_bytes()) == before
    assert store_is_complete(frames, "v") and not list(frames.glob(".v.*"))


def test_crops_renamed_without_their_index_are_not_taken_for_complete(project):
    make_video(project, "v", n=30)
    ex.extract_videos(project)
    frames = project.path("frames")
    np.save(frames / "v.npy", np.zeros((3, 64, 64), np.uint8))  # a run killed between the two renames
    assert not store_is_complete(frames, "v")
    assert [r.video for r in ex.extract_videos(project).done] == ["v"]
