"""Face check (``preprocess.facecheck``): no score without a face. Landmark ratios and crop
statistics against the training crops' range; a top-view open-field video whose body keypoints
are mapped onto the face landmarks gets no score, a synthetic face video is scored."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.preprocess import domain, facecheck

#: A real top-view open-field video (DeepLabCut's demo, 1 s cut, 640 x 480, dark mouse on a white floor).
OPENFIELD = Path(__file__).parent / "data" / "dlc_openfield" / "videos" / "m3v1mp4.mp4"


def _index(nose, eye, ear, n: int = 1, sharpness: float = 100.0) -> pd.DataFrame:
    cols = {"video": ["v"] * n, "sharpness": [sharpness] * n}
    for role, (x, y) in (("nose", nose), ("eye", eye), ("ear", ear)):
        cols[f"{role}_x"], cols[f"{role}_y"] = [float(x)] * n, [float(y)] * n
    return pd.DataFrame(cols)


def _face_video(name: str, grey: int, nose_x: float, sharpness: float = 100.0, n: int = 4) -> dict:
    """A per-video summary of ``n`` flat crops of grey level ``grey`` with noise (SD about 20)."""
    rng = np.random.default_rng(0)
    crops = np.clip(grey + rng.normal(0, 20, (n, 16, 16)), 0, 255).astype(np.uint8)
    return domain.video_summary(crops, _index((nose_x, 0), (0, 0), (10, 0), n, sharpness).assign(video=name))


# ----------------------------------------------------------------------------- pure functions

def test_landmark_ratios_are_distances_over_the_eye_ear_distance():
    r = facecheck.landmark_ratios(_index(nose=(-15, 0), eye=(0, 0), ear=(10, 0)))
    assert r["nose_eye"][0] == pytest.approx(1.5) and r["nose_ear"][0] == pytest.approx(2.5)
    scaled = facecheck.landmark_ratios(_index(nose=(-45, 0), eye=(0, 0), ear=(30, 0)))  # zoomed x3: same shape
    assert scaled["nose_eye"][0] == pytest.approx(1.5)
    no_ear = facecheck.landmark_ratios(_index((-15, 0), (0, 0), (0, 0)).drop(columns=["ear_x", "ear_y"]))
    assert np.isnan(no_ear["nose_eye"][0])  # head-fixed alignment: no ear, no geometry


def test_video_summary_records_the_face_quantities():
    s = _face_video("a", 120, -15)
    face = s["face"]
    assert set(face) == {"grey_mean", "grey_sd", "sharpness", "nose_eye", "nose_ear"}
    assert face["nose_eye"]["q50"] == pytest.approx(1.5) and 110 < face["grey_mean"]["q50"] < 130
    assert 15 < face["grey_sd"]["q50"] < 25


def test_training_limits_widen_the_training_range():
    train = domain.pool_summaries([_face_video("a", 120, -12), _face_video("b", 130, -15)])
    limits, note = facecheck.training_limits(train)
    assert note is None
    lo, hi = limits["nose_eye"]
    assert lo == pytest.approx(1.2 / facecheck.GEOMETRY_FACTOR) and hi == pytest.approx(1.5 * facecheck.GEOMETRY_FACTOR)
    g_lo, g_hi = limits["grey_mean"]
    assert g_hi - g_lo > 2 * facecheck.GREY_MARGIN


def test_old_summaries_give_crop_statistics_only_and_no_summary_no_check():
    videos = [_face_video("a", 120, -12), _face_video("b", 130, -15)]
    for v in videos:
        v.pop("face")  # recorded before the face check
    limits, note = facecheck.training_limits(domain.pool_summaries(videos))
    assert set(limits) == {"grey_mean", "sharpness"} and note == facecheck.NO_GEOMETRY
    assert facecheck.training_limits(None) == (None, facecheck.NO_CHECK)


def test_a_window_outside_is_marked_with_the_quantity_and_the_limits():
    limits = {"nose_eye": (0.8, 2.2), "grey_sd": (10.0, 100.0)}
    feats = pd.DataFrame({"nose_eye": [1.3, 1.3, 1.3, 0.3, 0.3, 0.3], "grey_sd": [40.0] * 6})
    windows = pd.DataFrame({"rows": [[0, 1, 2], [3, 4, 5]]})
    reasons = facecheck.check_windows(feats, windows, limits)
    assert reasons[0] == ""
    assert reasons[1] == "landmark geometry nose-eye/eye-ear 0.3 (limits 0.8-2.2)"  # grey_sd 40 is inside


def test_the_median_over_a_windows_crops_decides():
    limits = {"nose_eye": (0.8, 2.2)}
    one_bad = pd.DataFrame({"nose_eye": [1.3, 1.3, 0.3]})
    assert facecheck.check_windows(one_bad, pd.DataFrame({"rows": [[0, 1, 2]]}), limits) == [""]
    two_bad = pd.DataFrame({"nose_eye": [1.3, 0.3, 0.3]})
    assert facecheck.check_windows(two_bad, pd.DataFrame({"rows": [[0, 1, 2]]}), limits)[0] != ""


def test_a_video_gets_no_score_only_when_more_than_half_of_its_windows_are_marked():
    assert facecheck.video_verdict(["", "x 1 (limits 2-3)"]) is None  # half: still scored
    why = facecheck.video_verdict(["", "sharpness 1 (limits 2-3)", "sharpness 1.5 (limits 2-3)"])
    assert why.startswith("no face: 2 of 3 windows") and "sharpness in 2" in why
    assert facecheck.video_verdict([]) is None


# ----------------------------------------------------------------------------- videos

def openfield_keypoints(video: Path) -> pd.DataFrame:
    """Top-view body keypoints of the open-field mouse, mapped onto the face landmarks as a lab
    did: the dark blob's long axis (tail removed by an opening) gives the snout (front end, kept
    consistent between frames), the tail base (back end) and the ears (a quarter of the length
    behind the snout, to either side); snout -> nose, left ear -> left_eye, tail base -> left_ear,
    the right side unseen (dlc_face needs exactly one side)."""
    import av
    import cv2

    rows, heading = [], None
    with av.open(str(video)) as c:
        for fr in c.decode(video=0):
            g = fr.to_ndarray(format="gray")
            mask = (g < 60).astype(np.uint8)
            mask[:30], mask[-30:], mask[:, :25], mask[:, -25:] = 0, 0, 0, 0  # the arena's walls
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((9, 9), np.uint8))
            n, lab, stats, _ = cv2.connectedComponentsWithStats(mask)
            k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            ys, xs = np.nonzero(lab == k)
            pts = np.stack([xs, ys], 1).astype(float)
            c0 = pts.mean(0)
            ax = np.linalg.eigh(np.cov((pts - c0).T))[1][:, 1]
            if heading is not None and ax @ heading < 0:
                ax = -ax
            heading = ax
            proj = (pts - c0) @ ax
            snout, tail = c0 + ax * proj.max(), c0 + ax * proj.min()
            ear = snout - ax * 0.25 * (proj.max() - proj.min()) + np.array([-ax[1], ax[0]]) * 0.12 * (proj.max() - proj.min())
            rows.append([*snout, *ear, *tail])
    a = np.asarray(rows)
    kp = pd.DataFrame({"frame": np.arange(len(a))})
    for j, name in enumerate(("nose", "left_eye", "left_ear")):
        kp[f"{name}_x"], kp[f"{name}_y"], kp[f"{name}_likelihood"] = a[:, 2 * j], a[:, 2 * j + 1], 0.95
    for name in ("right_eye", "right_ear"):
        kp[f"{name}_x"], kp[f"{name}_y"], kp[f"{name}_likelihood"] = np.nan, np.nan, 0.0
    return kp


@pytest.mark.slow
def test_an_open_field_video_gets_no_score_and_a_face_video_is_scored(run, tmp_path, caplog):
    from mouse_facial_expressions.inference.predict import predict_videos

    kp = tmp_path / "kp"
    kp.mkdir()
    openfield_keypoints(OPENFIELD).to_parquet(kp / f"{OPENFIELD.stem}.parquet")
    face = run.cfg.path("processed_videos") / "m1_rec1_preinjection.mp4"
    (kp / f"{face.stem}.parquet").write_bytes((run.cfg.path("keypoints") / f"{face.stem}.parquet").read_bytes())
    with caplog.at_level(logging.WARNING):
        report = predict_videos([OPENFIELD, face], kp, run.run_dir, tmp_path / "out", progress=False)
    assert facecheck.NO_GEOMETRY not in caplog.text  # a new checkpoint carries the geometry
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("video")
    of = summary.loc[OPENFIELD.stem]
    assert of["status"] == "failed" and of["error"].startswith("no face:") and "landmark geometry" in of["error"]
    assert np.isnan(of["mean_p1"]) and of["n_windows"] == 0 and of["n_no_face"] > 0
    scores = pd.read_csv(tmp_path / "out" / f"{OPENFIELD.stem}_scores.csv")
    assert len(scores) == of["n_no_face"] and scores["no_face"].all() and scores["p1"].isna().all()
    assert scores["no_face_reason"].str.contains("nose-eye/eye-ear").all()
    assert not report.ok and [r.video for r in report.failed] == [OPENFIELD.stem]
    # the synthetic face: every window scored, none marked
    fs = pd.read_csv(tmp_path / "out" / f"{face.stem}_scores.csv")
    assert len(fs) > 0 and not fs["no_face"].any() and fs["p1"].notna().all()
    assert summary.loc[face.stem, "status"] == "done" and summary.loc[face.stem, "n_no_face"] == 0
    assert "`no_face`" in (tmp_path / "out" / "COLUMNS.md").read_text()


@pytest.mark.slow
def test_an_old_checkpoint_checks_crop_statistics_only_and_says_so_once(run, tmp_path, caplog):
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.predict import predict_videos

    ens = load_ensemble(run.run_dir)
    for h in ens.hparams:  # as trained before the face record existed
        for v in h["data"]["domain"]["videos"]:
            v.pop("face", None)
    videos = sorted(run.cfg.path("processed_videos").glob("*.mp4"))[:2]
    with caplog.at_level(logging.WARNING, logger="mouse_facial_expressions.inference.predict"):
        report = predict_videos(videos, run.cfg.path("keypoints"), ens, tmp_path, progress=False)
    assert [r.getMessage() for r in caplog.records].count(facecheck.NO_GEOMETRY) == 1
    assert report.ok and all(r.n_no_face == 0 for r in report.results)
    assert "no_face" in pd.read_csv(tmp_path / f"{videos[0].stem}_scores.csv").columns
