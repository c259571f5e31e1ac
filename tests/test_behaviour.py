"""Behaviour from body keypoints: features on hand-made numbers, windows, `mfe behaviour import`."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.config import BODY_LANDMARKS, Config
from mouse_facial_expressions.io.behaviour import import_behaviour, load_behaviour
from mouse_facial_expressions.io.dlc import write_dlc
from mouse_facial_expressions.io.keypoints import KeypointImportError, canonical_meta, write_canonical
from mouse_facial_expressions.io.video import VideoWriter
from mouse_facial_expressions.preprocess.behaviour import (
    BEHAVIOUR_FEATURES,
    distance_travelled,
    elongation,
    features_for_windows,
    head_movement_variance,
    immobility_fraction,
    rearing_proxy,
    speed,
    window_features,
)
from mouse_facial_expressions.project import init_project

# --------------------------------------------------------------------------- pure features


def test_speed_of_a_point_moving_3_right_4_down_per_frame_at_10_fps_is_50_px_per_s():
    xy = np.array([[0.0, 0.0], [3, 4], [6, 8], [9, 12]])
    np.testing.assert_allclose(speed(xy, fps=10.0), [np.nan, 50, 50, 50])
    np.testing.assert_allclose(speed(xy, fps=10.0, lag=2), [np.nan, np.nan, 50, 50])  # 10 px in 0.2 s


def test_speed_is_nan_next_to_a_missing_position():
    xy = np.array([[0.0, 0.0], [3, 4], [np.nan, np.nan], [9, 12], [12, 16]])
    np.testing.assert_allclose(speed(xy, fps=2.0), [np.nan, 10, np.nan, np.nan, 10])


def test_distance_travelled_sums_the_steps_and_skips_gaps():
    xy = np.array([[0.0, 0.0], [3, 4], [3, 4], [3, 10], [np.nan, np.nan], [0, 0]])
    assert distance_travelled(xy) == pytest.approx(5 + 0 + 6)
    assert np.isnan(distance_travelled(np.full((3, 2), np.nan)))


def test_immobility_fraction_of_a_known_speed_vector():
    v = np.array([0.0, 5, 19.9, 20, 50, np.nan])
    assert immobility_fraction(v, threshold=20.0) == pytest.approx(3 / 5)  # NaN frames do not count
    assert np.isnan(immobility_fraction(np.array([np.nan]), 20.0))


def test_elongation_is_the_nose_to_tail_base_distance():
    nose = np.array([[10.0, 0.0], [0, 0], [np.nan, 1]])
    tail = np.array([[4.0, 8.0], [0, 5], [0, 0]])
    np.testing.assert_allclose(elongation(nose, tail), [10, 5, np.nan])


def test_rearing_proxy_is_the_foreshortening_of_nose_to_centre_against_the_median():
    centre = np.array([[0.0, 0.0], [50, 50], [0, 0], [0, 0]])
    # nose-to-centre distances 10, 10 (3-4-5 x 2), 5 (rearing), 12 (stretched): median 10
    nose = np.array([[10.0, 0.0], [56, 58], [0, 5], [0, -12]])
    np.testing.assert_allclose(rearing_proxy(nose, centre), [0, 0, 0.5, 0])  # longer than usual counts as 0
    np.testing.assert_allclose(rearing_proxy(nose, centre, length=20.0), [0.5, 0.5, 0.75, 0.4])
    assert np.isnan(rearing_proxy(np.full((2, 2), np.nan), centre[:2])).all()


def test_head_movement_variance_by_hand():
    centre = np.array([[100.0, 100.0], [200, 100], [300, 100], [0, 0]])
    # image offsets (2, 1), (-4, 3), (2, 1) and a missing nose: var x = (4 + 16 + 4) / 3, var y = 8 / 9
    nose = np.array([[102.0, 101.0], [196, 103], [302, 101], [np.nan, np.nan]])
    assert head_movement_variance(nose, centre) == pytest.approx(8 + 8 / 9)
    assert np.isnan(head_movement_variance(nose[:1], centre[:1]))


def test_head_movement_in_the_body_frame_ignores_turning_the_whole_body():
    angles = np.array([0.0, np.pi / 2, np.pi, 2.0])
    rot = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # body axis, a rigid mouse turning round
    perp = np.stack([-rot[:, 1], rot[:, 0]], axis=1)
    centre = np.array([[50.0, 60.0]] * 4)
    tail = centre - 30 * rot
    nose = centre + 20 * rot + 3 * perp  # nose 20 px ahead and 3 px to one side, always
    assert head_movement_variance(nose, centre) > 100  # in image axes the turn looks like head movement
    assert head_movement_variance(nose, centre, tail) == pytest.approx(0.0, abs=1e-9)
    # the head swings 3 px to either side: across = +3, -3 -> variance 9
    swing = centre[:2] + 20 * rot[:2] + np.array([[3.0], [-3.0]]) * perp[:2]
    assert head_movement_variance(swing, centre[:2], tail[:2]) == pytest.approx(9.0)


# --------------------------------------------------------------------------- windows


def body_table(n: int = 20, lik: float = 0.9) -> pd.DataFrame:
    """Canonical body table: the centre moves 3 px right and 4 px down per frame; the mouse is 10 px long."""
    t = np.arange(n, dtype=np.float64)
    cols = {"frame": np.arange(n, dtype=np.int64)}
    pos = {"nose": (10 + 3 * t, 4 * t), "left_ear": (8 + 3 * t, 4 * t - 1), "right_ear": (8 + 3 * t, 4 * t + 1),
           "body_centre": (5 + 3 * t, 4 * t), "tail_base": (3 * t, 4 * t)}
    for lm in BODY_LANDMARKS:
        cols[f"{lm}_x"], cols[f"{lm}_y"] = pos[lm]
        cols[f"{lm}_likelihood"] = np.full(n, lik)
    return pd.DataFrame(cols)


def test_window_features_of_steady_motion():
    f = window_features(body_table(), fps=10.0, start_time=0.5, end_time=1.0, cfg=Config())
    assert list(f) == list(BEHAVIOUR_FEATURES)
    assert f["beh_speed"] == pytest.approx(50.0)
    assert f["beh_distance"] == pytest.approx(25.0)  # frames 5..9: 5 frames of 5 px
    assert f["beh_immobile"] == 0.0
    assert f["beh_elongation"] == pytest.approx(10.0)
    assert f["beh_rearing"] == pytest.approx(0.0)
    assert f["beh_head_var"] == pytest.approx(0.0)


def test_window_features_take_frames_in_start_inclusive_end_exclusive():
    table = body_table()
    still = table["frame"] >= 10  # the centre stops at frame 9's position
    table.loc[still, ["body_centre_x", "body_centre_y"]] = table.loc[9, ["body_centre_x", "body_centre_y"]].to_numpy()
    cfg = Config()
    # at 10 fps the speed lag is 2 frames: speeds 50 up to frame 9, 25 at frame 10 (5 px in 0.2 s), then 0
    late = window_features(table, 10.0, 1.2, 2.0, cfg)  # frames 12..19
    assert late["beh_speed"] == 0.0 and late["beh_immobile"] == 1.0 and late["beh_distance"] == 0.0
    # frames 9, 10, 11 (t = 0.9, 1.0, 1.1); a start off by float rounding still takes frame 9, 1.2 is out
    edge = window_features(table, 10.0, 0.9 + 1e-9, 1.2, cfg)
    assert edge["beh_speed"] == pytest.approx((50 + 25 + 0) / 3)
    assert edge["beh_distance"] == pytest.approx((50 + 25 + 0) / 10)
    assert edge["beh_immobile"] == pytest.approx(1 / 3)


def test_low_likelihood_points_are_ignored_and_too_few_frames_give_nan():
    table = body_table()
    table.loc[2:, "body_centre_likelihood"] = 0.6  # not above pcutoff 0.6
    f = window_features(table, 10.0, 0.0, 2.0, Config())
    assert np.isnan(f["beh_speed"]) and np.isnan(f["beh_immobile"]) and np.isnan(f["beh_head_var"])
    assert f["beh_elongation"] == pytest.approx(10.0)  # nose and tail base are still seen
    assert np.isnan(window_features(body_table(), 10.0, 0.0, 0.2, Config())["beh_elongation"])  # 2 frames < 3


def test_pixels_per_cm_reports_lengths_in_cm():
    cfg = Config()
    cfg.behaviour.pixels_per_cm = 5.0
    f = window_features(body_table(), 10.0, 0.5, 1.0, cfg)
    assert f["beh_speed"] == pytest.approx(10.0) and f["beh_elongation"] == pytest.approx(2.0)
    assert f["beh_immobile"] == 0.0  # the threshold stays in px/s: 50 px/s is not below 20


def _project_with_table(tmp_path, video="m1_rec1_preinjection", n=20):
    cfg = Config(root=tmp_path)
    write_canonical(body_table(n), cfg.path("behaviour") / f"{video}.parquet", meta={"fps": 10.0})
    return cfg


def test_features_for_windows_keeps_the_index_and_a_missing_video_gives_nan(tmp_path, caplog):
    cfg = _project_with_table(tmp_path)
    windows = pd.DataFrame({"video": ["m1_rec1_preinjection", "gone", "m1_rec1_preinjection"],
                            "start_time": [0.5, 0.0, 5.0], "end_time": [1.0, 1.0, 6.0]}, index=[7, 3, 7])
    with caplog.at_level(logging.WARNING):
        out = features_for_windows(cfg, windows)
    assert list(out.columns) == list(BEHAVIOUR_FEATURES) and list(out.index) == [7, 3, 7]
    assert out.iloc[0]["beh_speed"] == pytest.approx(50.0)
    assert out.iloc[1].isna().all() and out.iloc[2].isna().all()  # no table; beyond the video's end
    assert "gone" in caplog.text and "m1_rec1" not in caplog.text


def test_features_for_windows_agrees_with_window_features_and_is_fast(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    table = body_table(n)
    for c in [c for c in table.columns if c.endswith(("_x", "_y"))]:
        table[c] += rng.normal(0, 2, n)
    table["nose_likelihood"] = rng.uniform(0, 1, n)
    cfg = Config(root=tmp_path)
    write_canonical(table, cfg.path("behaviour") / "v.parquet", meta={"fps": 30.0})
    starts = rng.uniform(0, n / 30.0, 10_000)
    windows = pd.DataFrame({"video": "v", "start_time": starts, "end_time": starts + 2.0})
    t0 = time.perf_counter()
    out = features_for_windows(cfg, windows)
    assert time.perf_counter() - t0 < 2.0
    for i in (0, 1, 2):
        ref = window_features(table, 30.0, starts[i], starts[i] + 2.0, cfg)
        np.testing.assert_allclose(out.iloc[i].to_numpy(), [ref[k] for k in BEHAVIOUR_FEATURES], rtol=1e-9)


# --------------------------------------------------------------------------- import


def dlc_body(n: int, bodyparts=BODY_LANDMARKS) -> pd.DataFrame:
    """DLC analysis table (bodypart, coord): every point at (10 k, 20 k), likelihood 0.95."""
    cols = pd.MultiIndex.from_product([list(bodyparts), ["x", "y", "likelihood"]])
    values = np.zeros((n, len(cols)))
    for k in range(len(bodyparts)):
        values[:, 3 * k], values[:, 3 * k + 1], values[:, 3 * k + 2] = 10 * k, 20 * k, 0.95
    return pd.DataFrame(values, columns=cols)


@pytest.fixture
def body_project(tmp_path):
    """A project with one 12-frame 10-fps processed video and its DLC body file."""
    cfg = init_project(tmp_path / "proj")
    with VideoWriter(cfg.path("processed_videos") / "m1_rec1_preinjection.mp4", 10, 16, 16) as w:
        for i in range(12):
            w.write(np.full((16, 16), 10 * i, np.uint8))
    write_dlc(cfg.path("body_dlc") / "m1_rec1_preinjectionDLC_body.h5", dlc_body(12))
    return cfg


def test_import_behaviour_round_trip_and_skips_fresh_tables(body_project):
    (path,) = import_behaviour(body_project)
    assert path == body_project.path("behaviour") / "m1_rec1_preinjection.parquet"
    table, fps = load_behaviour(path)
    assert fps == pytest.approx(10.0) and len(table) == 12
    np.testing.assert_array_equal(table["tail_base_x"], 40.0)
    assert canonical_meta(path)["n_video_frames"] == 12
    stamp = path.stat().st_mtime_ns
    import_behaviour(body_project)
    assert path.stat().st_mtime_ns == stamp
    import_behaviour(body_project, overwrite=True)
    assert path.stat().st_mtime_ns != stamp


def test_import_behaviour_missing_bodypart_names_file_and_shows_a_mapping(body_project):
    src = write_dlc(body_project.path("body_dlc") / "m1_rec1_preinjectionDLC_body.h5",
                    dlc_body(12, ("nose", "left_ear", "right_ear", "spine", "tailbase")))
    with pytest.raises(KeypointImportError) as err:
        import_behaviour(body_project)
    msg = str(err.value)
    assert str(src) in msg and "['body_centre', 'tail_base']" in msg and "spine" in msg
    assert "tail_base: [tailbase]" in msg  # the mapping example suggests the file's own name


def test_import_behaviour_row_count_mismatch_and_missing_video(body_project):
    body_project.extract.max_count_mismatch = 2
    write_dlc(body_project.path("body_dlc") / "m1_rec1_preinjectionDLC_body.h5", dlc_body(15))
    write_dlc(body_project.path("body_dlc") / "m9_rec1_preinjectionDLC_body.h5", dlc_body(12))
    with pytest.raises(KeypointImportError) as err:
        import_behaviour(body_project)
    msg = str(err.value)
    assert "15 rows" in msg and "12 frames" in msg and "max_count_mismatch=2" in msg
    assert "m9_rec1_preinjection.mp4" in msg


def test_import_behaviour_no_usable_frames(body_project):
    low = dlc_body(12)
    low.loc[:, (slice(None), "likelihood")] = 0.1
    write_dlc(body_project.path("body_dlc") / "m1_rec1_preinjectionDLC_body.h5", low)
    with pytest.raises(KeypointImportError, match="no usable frames"):
        import_behaviour(body_project)


def test_behaviour_import_cli(body_project, capsys):
    assert main(["behaviour", "import", "-p", str(body_project.root)]) == 0
    assert "1 body tables" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["behaviour", "import", "--help"])
    assert exit_.value.code == 0
    assert "behaviour.bodyparts" in capsys.readouterr().out


def test_features_of_real_open_field_labels(real_data):
    """A real DeepLabCut open-field project (snout, ears, tail base; no body-centre label): the
    centre maps to the mean of snout and tail base, and the body length is the hand-labelled
    snout-to-tail-base distance of each frame."""
    from mouse_facial_expressions.config import Config
    from mouse_facial_expressions.io.keypoints import read_pose, to_canonical
    from mouse_facial_expressions.preprocess.behaviour import frame_features

    base = real_data / "dlc_openfield" / "labeled-data" / "m4s1" / "CollectedData_Pranav"
    mapping = {"nose": ["snout"], "left_ear": ["leftear"], "right_ear": ["rightear"], "body_centre": ["snout", "tailbase"],
               "tail_base": ["tailbase"]}
    table = to_canonical(read_pose(base.with_suffix(".h5")), mapping, extras=False)
    raw = pd.read_csv(base.with_suffix(".csv"), header=[0, 1, 2], index_col=0)
    sx, sy = raw.xs(("snout", "x"), axis=1, level=(1, 2)).iloc[:, 0], raw.xs(("snout", "y"), axis=1, level=(1, 2)).iloc[:, 0]
    tx, ty = raw.xs(("tailbase", "x"), axis=1, level=(1, 2)).iloc[:, 0], raw.xs(("tailbase", "y"), axis=1, level=(1, 2)).iloc[:, 0]
    feats = frame_features(table, 30.0, Config())
    assert len(table) == len(raw) > 100
    frames = table["frame"].to_numpy()
    np.testing.assert_allclose(feats["elongation"][frames], np.hypot(sx - tx, sy - ty).to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(table["body_centre_x"], (sx + tx).to_numpy() / 2)
    assert np.nanmax(feats["rearing"]) <= 1.0


def test_failed_body_import_moves_the_old_table_aside(body_project):
    (path,) = import_behaviour(body_project)
    write_dlc(body_project.path("body_dlc") / "m1_rec1_preinjectionDLC_body.h5", dlc_body(12, ("nose", "spine")))
    with pytest.raises(KeypointImportError, match="parquet.stale"):
        import_behaviour(body_project)
    assert not path.exists() and path.with_name(path.stem + ".parquet.stale").is_file()
    write_dlc(body_project.path("body_dlc") / "m1_rec1_preinjectionDLC_body.h5", dlc_body(12))
    import_behaviour(body_project)
    assert path.is_file() and not path.with_name(path.stem + ".parquet.stale").exists()
    assert not path.with_name(path.stem + ".import-failed.json").exists()
