"""Canonical keypoint tables: mapping, parquet round trip, file discovery, `mfe keypoints`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.config import CANONICAL_LANDMARKS, load_config
from mouse_facial_expressions.io.dlc import Pose, read_dlc, write_dlc
from mouse_facial_expressions.io.keypoint_info import describe
from mouse_facial_expressions.io.keypoints import (
    KeypointImportError,
    canonical_meta,
    find_pose_files,
    import_keypoints,
    landmark_array,
    load_canonical,
    to_canonical,
    video_name,
    write_canonical,
)
from mouse_facial_expressions.project import init_project

REAL = Path(__file__).parent / "data"  # committed real fixtures (tests/data/README.md)
FACEMAP = REAL / "facemap_headfixed" / "labeled-data" / "cam1_G7c1_1" / "CollectedData_AVS.h5"
EYE = ["eye_top", "eye_front", "eye_bottom", "eye_back"]


def face_table(n=5, seed=0, bodyparts=CANONICAL_LANDMARKS) -> pd.DataFrame:
    """DLC-analysis-like table (bodypart, coord) with the canonical face bodyparts."""
    rng = np.random.default_rng(seed)
    cols = pd.MultiIndex.from_product([list(bodyparts), ["x", "y", "likelihood"]])
    values = rng.uniform(0, 200, size=(n, len(cols)))
    values[:, 2::3] = rng.uniform(0, 1, size=(n, len(bodyparts)))
    df = pd.DataFrame(values, columns=cols)
    for bp in bodyparts:  # frame 0 is a clean left-side portrait, so `mfe keypoints import` can align it
        df.loc[0, (bp, "likelihood")] = 0.05 if bp.startswith("right") else 0.99
    return df


def make_pose(parts: dict[str, np.ndarray], index=None) -> Pose:
    """A Pose from bodypart -> (n, 3) arrays."""
    data = pd.concat({bp: pd.DataFrame(a, columns=["x", "y", "likelihood"]) for bp, a in parts.items()}, axis=1)
    data.columns = data.columns.set_names(["bodyparts", "coords"])
    if index is not None:
        data.index = index
    return Pose(data=data, source=Path("made-up.h5"))


@pytest.mark.parametrize(
    "name, video",
    [
        ("m1_rec1_preinjectionDLC_resnet50_faceJan1shuffle1_100000.h5", "m1_rec1_preinjection"),
        ("m1_rec1DLC_resnet50_faceJan1shuffle1_100000_filtered.csv", "m1_rec1"),
        ("labeled-data/m4s1/CollectedData_Pranav.h5", "m4s1"),
        ("m2_rec4.h5", "m2_rec4"),
        ("m2_rec4.mp4.predictions.slp", "m2_rec4"),
        ("labels.v001.000_m2_rec4.analysis.h5", "m2_rec4"),
    ],
)
def test_video_name_from_file_name(name, video):
    assert video_name(name) == video


def test_find_pose_files_prefers_h5_over_csv(tmp_path):
    for suffix in (".csv", ".h5"):
        write_dlc(tmp_path / f"m1_rec1DLC_s{suffix}", face_table())
    write_dlc(tmp_path / "m2_rec1DLC_s.csv", face_table())
    found = find_pose_files([tmp_path])
    assert found == {"m1_rec1": tmp_path / "m1_rec1DLC_s.h5", "m2_rec1": tmp_path / "m2_rec1DLC_s.csv"}


def test_find_pose_files_duplicate_video_names_both_files(tmp_path):
    a = write_dlc(tmp_path / "m1_rec1DLC_netA.h5", face_table())
    b = write_dlc(tmp_path / "m1_rec1DLC_netB_filtered.h5", face_table())
    with pytest.raises(ValueError, match="m1_rec1") as err:
        find_pose_files([tmp_path])
    assert str(a) in str(err.value) and str(b) in str(err.value)


def test_to_canonical_default_mapping_columns_and_values():
    table = face_table()
    pose = make_pose({bp: table[bp].to_numpy() for bp in CANONICAL_LANDMARKS})
    canon = to_canonical(pose, {n: [n] for n in CANONICAL_LANDMARKS})
    assert list(canon.columns) == ["frame"] + [f"{n}_{c}" for n in CANONICAL_LANDMARKS for c in ("x", "y", "likelihood")]
    assert canon["frame"].dtype == np.int64
    np.testing.assert_array_equal(canon["right_ear_y"], table[("right_ear", "y")])
    np.testing.assert_array_equal(canon["nose_likelihood"], table[("nose", "likelihood")])


def test_facemap_mapping_averages_eye_points():
    raw = pd.read_hdf(FACEMAP)
    mapping = {"left_eye": EYE, "nose": ["nose_tip"]}
    canon = to_canonical(read_dlc(FACEMAP), mapping)
    mapped = ["frame", "left_eye_x", "left_eye_y", "left_eye_likelihood", "nose_x", "nose_y", "nose_likelihood"]
    assert list(canon.columns[:7]) == mapped
    # the bodyparts the mapping does not use follow under their own names, in the file's order
    extras = ["nose_top", "nose_bottom", "whisker_1", "whisker_2", "whisker_3", "mouth", "lip"]
    assert list(canon.columns[7:]) == [f"{b}_{c}" for b in extras for c in ("x", "y", "likelihood")]
    assert canon["mouth_x"].iloc[0] == raw.loc[("labeled-data", "cam1_G7c1_1", "img0192.png")][("AVS", "mouth", "x")]
    assert list(to_canonical(read_dlc(FACEMAP), mapping, extras=False).columns) == mapped
    row = raw.loc[("labeled-data", "cam1_G7c1_1", "img0192.png")]
    expected_x = np.mean([row[("AVS", bp, "x")] for bp in EYE])
    first = canon.iloc[0]
    assert first["frame"] == 192
    assert first["left_eye_x"] == pytest.approx(expected_x, abs=1e-12)
    assert first["nose_y"] == row[("AVS", "nose_tip", "y")]
    assert (canon["left_eye_likelihood"] == 1.0).all()


def test_averaged_landmark_likelihood_is_min_and_nan_propagates():
    a = np.array([[0.0, 0.0, 0.9], [1.0, 1.0, 0.8]])
    b = np.array([[2.0, 4.0, 0.7], [np.nan, np.nan, np.nan]])
    canon = to_canonical(make_pose({"a": a, "b": b}), {"eye": ["a", "b"]})
    np.testing.assert_array_equal(canon.iloc[0][["eye_x", "eye_y", "eye_likelihood"]], [1.0, 2.0, 0.7])
    assert canon.iloc[1][["eye_x", "eye_y", "eye_likelihood"]].isna().all()


def test_rows_sorted_by_frame_and_duplicates_rejected():
    a = np.arange(9, dtype=float).reshape(3, 3)
    canon = to_canonical(make_pose({"a": a}, index=["img0009.png", "img0002.png", "img0005.png"]), {"a": ["a"]})
    assert canon["frame"].tolist() == [2, 5, 9] and canon["a_x"].tolist() == [3.0, 6.0, 0.0]
    with pytest.raises(ValueError, match="frame 2 appears more than once"):
        to_canonical(make_pose({"a": a}, index=["img2.png", "img2.png", "img3.png"]), {"a": ["a"]})


def test_missing_bodypart_error_names_file_missing_and_available():
    pose = make_pose({"snout": np.zeros((2, 3)), "leftear": np.zeros((2, 3))})
    with pytest.raises(ValueError) as err:
        to_canonical(pose, {"nose": ["snout"], "left_eye": ["lefteye"]})
    msg = str(err.value)
    assert "made-up.h5" in msg and "['lefteye']" in msg and "['snout', 'leftear']" in msg


def test_canonical_parquet_round_trip(tmp_path):
    table = face_table(n=4)
    table.loc[2, ("nose", "x")] = np.nan
    pose = make_pose({bp: table[bp].to_numpy() for bp in CANONICAL_LANDMARKS})
    canon = to_canonical(pose, {n: [n] for n in CANONICAL_LANDMARKS})
    path = write_canonical(canon, tmp_path / "v.parquet", meta={"source": "x"})
    back = load_canonical(path)
    pd.testing.assert_frame_equal(back, canon)
    assert canonical_meta(path) == {"source": "x"}
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_landmark_array_shape_and_order():
    canon = pd.DataFrame({"frame": [0, 1], "eye_x": [1.0, 2.0], "eye_y": [3.0, 4.0], "eye_likelihood": [0.5, 0.6],
                          "nose_x": [5.0, 6.0], "nose_y": [7.0, 8.0], "nose_likelihood": [0.7, 0.8]})
    arr = landmark_array(canon, ["nose", "eye"])
    assert arr.shape == (2, 2, 3)
    np.testing.assert_array_equal(arr[1], [[6.0, 8.0, 0.8], [2.0, 4.0, 0.6]])
    with pytest.raises(KeyError, match=r"\['ear'\].*\['eye', 'nose'\]"):
        landmark_array(canon, ["ear"])


def test_load_canonical_rejects_other_tables(tmp_path):
    path = tmp_path / "bad.parquet"
    pd.DataFrame({"frame": [0], "nose_x": [1.0]}).to_parquet(path)
    with pytest.raises(ValueError, match="bad.parquet"):
        load_canonical(path)


# --------------------------------------------------------------------------- import


@pytest.fixture
def project(tmp_path):
    """A project folder with two DLC analysis outputs (one as .h5 + .csv, one .csv only)."""
    cfg = init_project(tmp_path / "proj")
    dlc = cfg.path("dlc")
    for suffix in (".h5", ".csv"):
        write_dlc(dlc / f"m1_rec1_preinjectionDLC_resnet50_faceshuffle1_1000{suffix}", face_table(seed=1))
    write_dlc(dlc / "m2_rec4_4h-postinjectionDLC_resnet50_faceshuffle1_1000.csv", face_table(seed=2))
    return cfg


def test_import_cli_end_to_end(project):
    assert main(["keypoints", "import", "-p", str(project.root)]) == 0
    out = project.path("keypoints")
    assert sorted(p.name for p in out.iterdir()) == ["m1_rec1_preinjection.parquet", "m2_rec4_4h-postinjection.parquet"]
    canon = load_canonical(out / "m2_rec4_4h-postinjection.parquet")
    np.testing.assert_array_equal(canon["left_ear_x"], face_table(seed=2)[("left_ear", "x")])
    assert canonical_meta(out / "m1_rec1_preinjection.parquet")["source"].endswith(".h5")


def test_import_skips_up_to_date_and_redoes_changed(project):
    first = import_keypoints(project)
    stamps = {p: p.stat().st_mtime_ns for p in first}
    assert import_keypoints(project) == first
    assert {p: p.stat().st_mtime_ns for p in first} == stamps
    src = project.path("dlc") / "m2_rec4_4h-postinjectionDLC_resnet50_faceshuffle1_1000.csv"
    write_dlc(src, face_table(seed=3))
    os.utime(src, ns=(stamps[first[1]] + 10**9, stamps[first[1]] + 10**9))
    import_keypoints(project)
    assert first[0].stat().st_mtime_ns == stamps[first[0]]
    np.testing.assert_array_equal(load_canonical(first[1])["nose_x"], face_table(seed=3)[("nose", "x")])


def test_import_failure_lists_file_and_writes_the_others(project, tmp_path):
    bad = write_dlc(project.path("dlc") / "m3_rec1DLC_s.h5", face_table(bodyparts=("snout",)))
    with pytest.raises(KeypointImportError) as err:
        import_keypoints(project, out=tmp_path / "out")
    assert str(bad) in str(err.value) and "snout" in str(err.value)
    assert len(list((tmp_path / "out").glob("*.parquet"))) == 2


def test_import_duplicate_videos_writes_nothing(project, tmp_path):
    write_dlc(project.path("dlc") / "m2_rec4_4h-postinjection.h5", face_table())
    assert main(["keypoints", "import", "-p", str(project.root), "--out", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o").exists()


def test_import_multi_animal_with_individual_flag(tmp_path):
    cfg = init_project(tmp_path / "proj")
    both = pd.concat({"a": face_table(seed=4), "b": face_table(seed=5)}, axis=1)
    write_dlc(cfg.path("dlc") / "cageDLC_ma.h5", both)
    assert main(["keypoints", "import", "-p", str(cfg.root)]) == 1  # no individual: error
    assert main(["keypoints", "import", "-p", str(cfg.root), "--individual", "b"]) == 0
    canon = load_canonical(cfg.path("keypoints") / "cage.parquet")
    np.testing.assert_array_equal(canon["nose_y"], face_table(seed=5)[("nose", "y")])


def test_import_custom_landmark_set_from_config(tmp_path):
    cfg = init_project(tmp_path / "proj")
    (cfg.root / "mfe.yaml").write_text("keypoints:\n  bodyparts:\n    eye: [eye_top, eye_bottom]\n    nose: [nose_tip]\n")
    write_dlc(cfg.path("dlc") / "vDLC_s.h5", face_table(bodyparts=("eye_top", "eye_bottom", "nose_tip")))
    (path,) = import_keypoints(load_config(cfg.root))
    assert list(load_canonical(path).columns)[1:4] == ["eye_x", "eye_y", "eye_likelihood"]


def test_info_cli_prints_bodyparts_and_individuals(tmp_path, capsys):
    both = pd.concat({"a": face_table(), "b": face_table()}, axis=1)
    path = write_dlc(tmp_path / "cageDLC_ma.csv", both)
    assert main(["keypoints", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "individuals: a, b" in out and "right_ear" in out and "rows: 5 (frames 0..4)" in out
    assert "canonical keypoint table" in describe(write_canonical(
        to_canonical(read_dlc(path, "a"), {"nose": ["nose"]}), tmp_path / "c.parquet"))


def test_import_tiny_cohort(tiny_cohort, tmp_path):
    cfg = load_config(tiny_cohort)
    expected = find_pose_files([cfg.path("dlc")])
    outputs = import_keypoints(cfg, out=tmp_path / "canonical")
    assert sorted(p.stem for p in outputs) == sorted(expected)
    for p in outputs:
        canon = load_canonical(p)
        assert len(canon) > 0 and set(CANONICAL_LANDMARKS) <= set(c.rsplit("_", 1)[0] for c in canon.columns[1:])
