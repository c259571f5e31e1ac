"""The synthetic cohort generator (`mfe synth`): files, schema, pixels vs truth, determinism."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.config import CANONICAL_LANDMARKS, load_config
from mouse_facial_expressions.io.video import count_frames, iter_frames, read_frames
from mouse_facial_expressions.synth import PRESETS, SCORER, contact_sheet, generate_cohort, make_config
from mouse_facial_expressions.synth.mouse import AU_NAMES, NEAR, draw_mouse, landmarks, to_image
from mouse_facial_expressions.synth.stamp import read_stamp, stamp_box

RAW_COLUMNS = ["animal", "recording", "camera", "year", "month", "day", "hour", "minutes",
               "seconds", "start", "end", "discard"]
MSS = re.compile(r"^\d+:[0-5]\d$")


def _secs(text: str) -> int:
    m, s = text.split(":")
    return int(m) * 60 + int(s)


def _raw_file(project: Path, row) -> Path:
    stamp = f"{row.year:04d}{row.month:02d}{row.day:02d}_{row.hour:02d}{row.minutes:02d}{row.seconds:02d}"
    files = list((project / "videos" / "raw").glob(f"{row.camera}__*__{stamp}.mp4"))
    assert len(files) == 1, f"raw video for {row.animal} rec{row.recording} at {stamp}: {files}"
    return files[0]


def _video_name(project: Path, row) -> str:
    labels = load_config(project).video.recording_labels
    return f"{row.animal}_rec{row.recording}_{labels[row.recording]}"


def _dlc(project: Path, video: str) -> pd.DataFrame:
    return pd.read_hdf(project / "keypoints" / "dlc" / f"{video}{SCORER}.h5", key="df_with_missing")


@pytest.fixture(scope="module")
def raw_csv(tiny_cohort) -> pd.DataFrame:
    return pd.read_csv(tiny_cohort / "metadata" / "raw_videos.csv", dtype={"start": str, "end": str})


@pytest.fixture(scope="module")
def truth(tiny_cohort) -> pd.DataFrame:
    return pd.read_parquet(tiny_cohort / "truth" / "truth.parquet")


# --- metadata -----------------------------------------------------------------------------

def test_raw_videos_csv_has_original_schema(raw_csv):
    assert list(raw_csv.columns) == RAW_COLUMNS
    assert all(s == "0" or MSS.match(s) for s in raw_csv.start)
    assert all(e == "-1" or MSS.match(e) for e in raw_csv.end)
    assert set(raw_csv.discard) <= {0, 1}


def test_every_csv_row_names_an_existing_raw_video(tiny_cohort, raw_csv):
    files = {_raw_file(tiny_cohort, row) for row in raw_csv.itertuples()}
    assert files == set((tiny_cohort / "videos" / "raw").glob("*.mp4"))
    assert all(re.match(r"^[A-Za-z0-9]+__\d+__\d{8}_\d{6}\.mp4$", f.name) for f in files)


def test_exactly_one_discard_row_with_its_video(tiny_cohort, raw_csv):
    discarded = raw_csv[raw_csv.discard == 1]
    assert len(discarded) == 1
    assert _raw_file(tiny_cohort, discarded.iloc[0]).is_file()
    kept = raw_csv[raw_csv.discard == 0]
    assert not kept.duplicated(["animal", "recording"]).any()


def test_most_rows_have_nontrivial_trims(raw_csv):
    kept = raw_csv[raw_csv.discard == 0]
    trimmed = (kept.start != "0") | (kept.end != "-1")
    assert trimmed.mean() >= 0.5
    assert (kept.start != "0").any() and (kept.end != "-1").any()


def test_treatments_csv_has_original_schema(tiny_cohort, raw_csv):
    treat = pd.read_csv(tiny_cohort / "metadata" / "treatments.csv")
    assert list(treat.columns)[:5] == ["mouse", "date_of_birth", "treatment", "injection_time", "notes"]
    assert {"cohort", "sex"} <= set(treat.columns)
    assert treat.groupby("treatment").sex.nunique().min() == 2
    assert set(treat.mouse) == set(raw_csv.animal)
    assert sorted(treat.treatment.value_counts().tolist()) == [2, 2]
    assert set(treat.treatment) == {"saline", "high"}


def test_project_config_fits_the_cohort(tiny_cohort):
    cfg = load_config(tiny_cohort)
    assert cfg.keypoints.pcutoff == 0.6
    assert cfg.extract.crop_size == make_config("tiny").crop_size
    assert cfg.extract.crop_size >= 2.2 * make_config("tiny").head_len


# --- DeepLabCut files ---------------------------------------------------------------------

def test_dlc_files_read_back_in_dlc_layout(tiny_cohort, raw_csv):
    for row in raw_csv[raw_csv.discard == 0].itertuples():
        video = _video_name(tiny_cohort, row)
        h5 = _dlc(tiny_cohort, video)
        csv = pd.read_csv(tiny_cohort / "keypoints" / "dlc" / f"{video}{SCORER}.csv", header=[0, 1, 2], index_col=0)
        assert h5.columns.names == ["scorer", "bodyparts", "coords"]
        assert list(h5.columns.get_level_values("scorer").unique()) == [SCORER]
        assert list(h5.columns.get_level_values("bodyparts").unique()) == list(CANONICAL_LANDMARKS)
        assert list(h5.columns.get_level_values("coords").unique()) == ["x", "y", "likelihood"]
        assert list(csv.columns) == list(h5.columns)
        np.testing.assert_allclose(csv.to_numpy(), h5.to_numpy(), rtol=1e-9)


def test_dlc_rows_are_frames_of_the_trimmed_video(tiny_cohort, raw_csv, truth):
    fps = make_config("tiny").fps
    for row in raw_csv[raw_csv.discard == 0].itertuples():
        n_raw = count_frames(_raw_file(tiny_cohort, row))
        start = 0 if row.start == "0" else round(_secs(row.start) * fps)
        stop = n_raw if row.end == "-1" else round(_secs(row.end) * fps)
        video = _video_name(tiny_cohort, row)
        assert len(_dlc(tiny_cohort, video)) == stop - start
        t = truth[truth.video == video]
        assert t.frame.tolist() == list(range(stop - start))
        assert t.raw_frame.tolist() == list(range(start, stop))


def test_hidden_keypoints_low_and_seen_keypoints_high_and_close(tiny_cohort, truth):
    for video, t in truth.groupby("video"):
        df = _dlc(tiny_cohort, video).droplevel("scorer", axis=1)
        right = (t.side == "right").to_numpy()
        lik = {b: df[(b, "likelihood")].to_numpy() for b in CANONICAL_LANDMARKS}
        far_eye = np.where(right, lik["left_eye"], lik["right_eye"])
        far_ear = np.where(right, lik["left_ear"], lik["right_ear"])
        assert (far_eye < 0.3).all() and (far_ear < 0.3).all()
        near = np.stack([lik["nose"], np.where(right, lik["right_eye"], lik["left_eye"]),
                         np.where(right, lik["right_ear"], lik["left_ear"])], 1)
        portrait = (t.visible & ~t.occluded).to_numpy()
        np.testing.assert_array_equal((near > 0.9).all(1), portrait)
        for b in CANONICAL_LANDMARKS:
            seen = lik[b] > 0.9
            err = np.hypot(df[(b, "x")].to_numpy() - t[f"{b}_x"].to_numpy(),
                           df[(b, "y")].to_numpy() - t[f"{b}_y"].to_numpy())[seen]
            assert seen.sum() == 0 or (err.max() < 7 and np.median(err) < 2)


# --- truth table --------------------------------------------------------------------------

def test_truth_table_columns_and_labels(truth):
    cols = {"video", "animal", "recording", "treatment", "cohort", "frame", "raw_frame", "time", "side",
            "visible", "blurred", "occluded", "rearing", "intensity", "label", "label_true"}
    cols |= {f"au_{k}" for k in AU_NAMES} | {f"{b}_{c}" for b in CANONICAL_LANDMARKS for c in "xy"}
    assert cols <= set(truth.columns)
    expected = ((truth.treatment != "saline") & (truth.recording >= 2)).astype(int)
    assert (truth.label_true == expected).all() and (truth.label == truth.label_true).all()
    assert set(truth.side) == {"left", "right"}
    for k in AU_NAMES:
        assert truth[f"au_{k}"].between(0, 1).all()
    assert truth.visible.mean() > 0.6


def test_treated_late_recordings_have_higher_intensity(truth):
    means = truth.groupby("label_true").intensity.mean()
    assert means[1] - means[0] > 0.25
    assert truth.groupby("label_true").au_orbital.mean().diff().iloc[-1] > 0.2


def test_geometry_snout_points_to_the_facing_side(truth):
    t = truth[truth.visible & (truth.yaw > 0.9)]
    left, right = t[t.side == "left"], t[t.side == "right"]
    assert len(left) and len(right)
    assert ((left.nose_x < left.left_eye_x) & (left.left_eye_x < left.left_ear_x)).all()
    assert ((right.nose_x > right.right_eye_x) & (right.right_eye_x > right.right_ear_x)).all()


# --- pixels -------------------------------------------------------------------------------

def test_frame_stamps_decode_after_h264(tiny_cohort, raw_csv):
    for row in raw_csv.itertuples():
        decoded = [read_stamp(frame) for _, frame in iter_frames(_raw_file(tiny_cohort, row))]
        assert decoded == list(range(len(decoded)))


def test_mouse_never_reaches_the_stamp(truth):
    y_stamp = stamp_box()[1]
    head_top = truth[[f"{b}_y" for b in CANONICAL_LANDMARKS]].min(axis=1)
    ear_tip_margin = 0.75 * make_config("tiny").head_len
    assert (head_top - ear_tip_margin > y_stamp).all()


def test_eye_keypoint_sits_on_the_dark_drawn_eye(tiny_cohort, truth):
    t = truth[truth.visible & ~truth.occluded & ~truth.blurred & (truth.au_orbital < 0.5)]
    t = t.groupby("video").head(3)
    darker = []
    for (raw_video,), rows in t.groupby(["raw_video"]):
        frames = read_frames(tiny_cohort / "videos" / "raw" / raw_video, rows.raw_frame)
        for r in rows.itertuples():
            side = r.side
            eye = np.array([getattr(r, f"{side}_eye_x"), getattr(r, f"{side}_eye_y")])
            ear = np.array([getattr(r, f"{side}_ear_x"), getattr(r, f"{side}_ear_y")])
            fur = eye + 0.5 * (ear - eye)  # between the eye and the ear: fur
            img = frames[r.raw_frame].astype(float)

            def patch(p):
                x, y = int(round(p[0])), int(round(p[1]))
                return img[y - 1:y + 2, x - 1:x + 2].mean()

            darker.append(patch(fur) - patch(eye))
    assert len(darker) >= 8
    assert np.median(darker) > 25 and np.mean(np.array(darker) > 10) > 0.9


def test_blurred_frames_are_less_sharp_on_the_face(tiny_cohort, truth):
    import cv2

    t = truth[truth.visible & ~truth.occluded]
    t = pd.concat([t[t.blurred].head(6), t[~t.blurred].groupby("video").head(2)])
    sharp = {True: [], False: []}
    for (raw_video,), rows in t.groupby(["raw_video"]):
        frames = read_frames(tiny_cohort / "videos" / "raw" / raw_video, rows.raw_frame)
        for r in rows.itertuples():
            x, y = int(getattr(r, f"{r.side}_eye_x")), int(getattr(r, f"{r.side}_eye_y"))
            roi = frames[r.raw_frame][max(0, y - 16):y + 16, max(0, x - 16):x + 16]
            sharp[r.blurred].append(cv2.Laplacian(roi, cv2.CV_32F).var())
    assert len(sharp[True]) >= 3, "tiny has too few blurred portrait frames for this test"
    assert np.median(sharp[True]) < 0.6 * np.median(sharp[False])


def _eye_pixels(orbital: float, s: int = -1) -> int:
    img = np.full((160, 220), 185, np.uint8)
    x, y, L = 110.0, 80.0, 44.0
    draw_mouse(img, x, y, s, 1.0, 0.0, 0.0, L, [orbital, 0, 0, 0, 0])
    ex, ey = to_image(*NEAR["eye"], x, y, s, 1.0, 0.0, L)
    win = img[int(ey) - 10:int(ey) + 11, int(ex) - 10:int(ex) + 11]
    return int((win < 35).sum())


@pytest.mark.parametrize("side", [-1, 1])
def test_orbital_tightening_closes_the_drawn_eye(side):
    counts = [_eye_pixels(o, side) for o in (0.0, 0.5, 1.0)]
    assert counts[0] > counts[1] > counts[2]
    assert counts[2] < 0.5 * counts[0]


@pytest.mark.parametrize("k", range(len(AU_NAMES)))
def test_each_action_unit_changes_the_face(k):
    def render(value):
        img = np.full((160, 220), 185, np.uint8)
        aus = np.zeros(5)
        aus[k] = value
        draw_mouse(img, 110.0, 80.0, -1, 1.0, 0.0, 0.0, 44.0, aus)
        return img.astype(int)

    changed = (np.abs(render(1.0) - render(0.0)) > 20).sum()
    assert changed > 30, f"{AU_NAMES[k]} changed only {changed} pixels"


def test_landmarks_follow_the_facing_side():
    lm = landmarks(np.array([100.0, 100.0]), np.array([80.0, 80.0]), np.array([-1.0, 1.0]), 1.0, 0.0, 40.0)
    assert lm["nose"][0, 0] < 100 < lm["nose"][1, 0]
    assert lm["left_eye"][0, 0] < lm["left_ear"][0, 0]
    assert lm["right_eye"][1, 0] > lm["right_ear"][1, 0]


# --- determinism, options, CLI --------------------------------------------------------------

SMALL = dict(mice=2, recordings=[1, 4], seconds=3.0)


def test_same_seed_gives_identical_truth_keypoints_and_pixels(tmp_path):
    a = generate_cohort(tmp_path / "a", "tiny", seed=7, **SMALL)
    b = generate_cohort(tmp_path / "b", "tiny", seed=7, **SMALL)
    pd.testing.assert_frame_equal(pd.read_parquet(a / "truth" / "truth.parquet"),
                                  pd.read_parquet(b / "truth" / "truth.parquet"))
    for f in (a / "keypoints" / "dlc").glob("*.h5"):
        pd.testing.assert_frame_equal(pd.read_hdf(f), pd.read_hdf(b / "keypoints" / "dlc" / f.name))
    for f in (a / "videos" / "raw").glob("*.mp4"):
        fa = np.stack([x for _, x in iter_frames(f)])
        fb = np.stack([x for _, x in iter_frames(b / "videos" / "raw" / f.name)])
        np.testing.assert_array_equal(fa, fb)


def test_another_seed_gives_other_data(tmp_path):
    a = generate_cohort(tmp_path / "a", "tiny", seed=1, **SMALL)
    b = generate_cohort(tmp_path / "b", "tiny", seed=2, **SMALL)
    ta, tb = (pd.read_parquet(p / "truth" / "truth.parquet") for p in (a, b))
    assert not np.allclose(ta.nose_x.to_numpy()[:20], tb.nose_x.to_numpy()[:20])


def test_label_noise_flips_whole_animals(tmp_path):
    p = generate_cohort(tmp_path / "p", "tiny", mice=4, recordings=[4], seconds=3.0, label_noise=0.5)
    t = pd.read_parquet(p / "truth" / "truth.parquet")
    flipped = t.groupby("animal").apply(lambda g: (g.label != g.label_true).mean(), include_groups=False)
    assert sorted(flipped.tolist()) == [0.0, 0.0, 1.0, 1.0]


def test_cohorts_differ_in_lighting_and_dates(tmp_path):
    p = generate_cohort(tmp_path / "p", "tiny", mice=4, recordings=[1], seconds=3.0, cohorts=2)
    raw = pd.read_csv(p / "metadata" / "raw_videos.csv")
    treat = pd.read_csv(p / "metadata" / "treatments.csv")
    assert sorted(treat.cohort.unique()) == [0, 1]
    assert treat.groupby("cohort").treatment.nunique().tolist() == [2, 2]
    cohort = raw.animal.map(dict(zip(treat.mouse, treat.cohort)))
    assert raw.groupby(cohort).month.first().nunique() == 2
    t = pd.read_parquet(p / "truth" / "truth.parquet")
    bright = {}
    for c in (0, 1):
        name = t[t.cohort == c].raw_video.iloc[0]
        frame = next(iter_frames(p / "videos" / "raw" / name))[1]
        bright[c] = np.median(frame[20:, :])
    assert abs(bright[0] - bright[1]) > 15


def test_unknown_preset_or_option_is_an_error():
    with pytest.raises(ValueError, match="preset"):
        make_config("huge")
    with pytest.raises(ValueError, match="mouse_count"):
        make_config("tiny", mouse_count=3)
    assert {"tiny", "demo", "bench"} <= set(PRESETS)
    assert make_config("bench").mice >= 20 and make_config("demo").cohorts == 2


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_cohort(tmp_path, "tiny", **SMALL)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_synth_writes_a_project_and_sheet(tmp_path, capsys):
    from mouse_facial_expressions.cli import main

    out = tmp_path / "cli"
    assert main(["synth", str(out), "--mice", "2", "--recordings", "1,4", "--seconds", "3",
                 "--size", "240x180", "--sheet"]) == 0
    assert "synthetic cohort" in capsys.readouterr().out
    assert len(list((out / "videos" / "raw").glob("*.mp4"))) == 5
    assert (out / "reports" / "contact_sheet.png").stat().st_size > 1000
    first = next(iter_frames(next((out / "videos" / "raw").glob("*.mp4"))))[1]
    assert first.shape == (180, 240)


def test_contact_sheet_shows_both_labels(tiny_cohort, tmp_path):
    import cv2

    png = contact_sheet(tiny_cohort, tmp_path / "sheet.png", n_per_class=2)
    img = cv2.imread(str(png))
    h = make_config("tiny").size[1]
    assert img.shape[0] >= 2 * h and img.shape[1] > 2 * h


def test_recording_without_label_is_an_error_before_writing(tmp_path):
    with pytest.raises(ValueError, match="no label"):
        generate_cohort(tmp_path / "p", "tiny", recordings=[1, 7])
    assert not (tmp_path / "p").exists()
