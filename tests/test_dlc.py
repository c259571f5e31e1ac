"""DeepLabCut readers and writer: real layouts, analysis output, multi-animal, NaNs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.io.dlc import PoseFileError, read_dlc, read_dlc_table, write_dlc

REAL = Path(__file__).parent / "data"  # committed real fixtures (tests/data/README.md)
OPENFIELD = REAL / "dlc_openfield" / "labeled-data" / "m4s1" / "CollectedData_Pranav"
FACEMAP = REAL / "facemap_headfixed" / "labeled-data" / "cam1_G7c1_1" / "CollectedData_AVS"


def analysis_table(n=6, bodyparts=("nose", "left_eye"), seed=0) -> pd.DataFrame:
    """A DLC-analysis-like table with columns (bodypart, coord), integer frame index."""
    rng = np.random.default_rng(seed)
    cols = pd.MultiIndex.from_product([list(bodyparts), ["x", "y", "likelihood"]])
    values = rng.uniform(0, 100, size=(n, len(cols)))
    values[:, 2::3] = rng.uniform(0, 1, size=(n, len(bodyparts)))
    return pd.DataFrame(values, columns=cols)


def test_old_layout_h5_values_match_file():
    path = OPENFIELD.with_suffix(".h5")
    raw = pd.read_hdf(path)
    pose = read_dlc(path)
    assert pose.bodyparts == ["snout", "leftear", "rightear", "tailbase"]
    assert pose.data.loc["labeled-data/m4s1/img0000.png", ("snout", "x")] == raw.iloc[0][("Pranav", "snout", "x")]
    assert pose.data.iloc[0][("snout", "x")] == 21.521
    assert pose.data.iloc[3][("tailbase", "y")] == raw.iloc[3][("Pranav", "tailbase", "y")]
    assert len(pose) == 116 and pose.scorer == "Pranav" and not pose.has_likelihood


def test_old_layout_csv_equals_h5():
    h5 = read_dlc(OPENFIELD.with_suffix(".h5"))
    csv = read_dlc(OPENFIELD.with_suffix(".csv"))
    pd.testing.assert_frame_equal(h5.data, csv.data)


def test_hand_labels_get_likelihood_one():
    pose = read_dlc(OPENFIELD.with_suffix(".h5"))
    lik = pose.data.xs("likelihood", axis=1, level="coords").to_numpy()
    assert np.all(lik == 1.0)


def test_old_layout_frames_come_from_image_names():
    pose = read_dlc(OPENFIELD.with_suffix(".csv"))
    np.testing.assert_array_equal(pose.frames()[:5], [0, 1, 2, 3, 4])


def test_new_layout_h5_values_match_file():
    path = FACEMAP.with_suffix(".h5")
    raw = pd.read_csv(FACEMAP.with_suffix(".csv"), header=[0, 1, 2], index_col=[0, 1, 2])
    pose = read_dlc(path)
    label = "labeled-data/cam1_G7c1_1/img0397.png"
    expected = raw.loc[("labeled-data", "cam1_G7c1_1", "img0397.png"), ("AVS", "eye_top", "x")]
    assert pose.data.loc[label, ("eye_top", "x")] == expected == 590.509301779291
    assert pose.data.loc[label, ("eye_top", "y")] == 67.6393204831181
    assert len(pose) == 30 and len(pose.bodyparts) == 12


def test_new_layout_csv_equals_h5():
    h5 = read_dlc(FACEMAP.with_suffix(".h5"))
    csv = read_dlc(FACEMAP.with_suffix(".csv"))
    pd.testing.assert_frame_equal(h5.data, csv.data)
    assert csv.frames()[:2].tolist() == [192, 397]


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_analysis_round_trip(tmp_path, suffix):
    table = analysis_table()
    path = write_dlc(tmp_path / f"m1_rec1DLC_resnet50_faceshuffle1_1000{suffix}", table, scorer="DLC_resnet50")
    pose = read_dlc(path)
    assert pose.scorer == "DLC_resnet50" and pose.has_likelihood
    np.testing.assert_array_equal(pose.frames(), np.arange(6))
    np.testing.assert_array_equal(pose.data.to_numpy(), table.to_numpy())


def test_write_dlc_h5_has_dlc_layout(tmp_path):
    path = write_dlc(tmp_path / "vDLC_x.h5", analysis_table(n=3), scorer="DLC_x")
    raw = pd.read_hdf(path, key="df_with_missing")
    assert list(raw.columns.names) == ["scorer", "bodyparts", "coords"]
    assert raw.columns[0] == ("DLC_x", "nose", "x") and raw.columns[2] == ("DLC_x", "nose", "likelihood")
    assert raw.index.tolist() == [0, 1, 2]


def test_write_dlc_csv_has_dlc_header(tmp_path):
    path = write_dlc(tmp_path / "vDLC_x.csv", analysis_table(n=2), scorer="DLC_x")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("scorer,DLC_x,DLC_x")
    assert lines[1].startswith("bodyparts,nose,nose,nose,left_eye")
    assert lines[2] == "coords,x,y,likelihood,x,y,likelihood"
    assert lines[3].startswith("0,") and len(lines) == 5


def _multi_animal(tmp_path: Path, suffix=".h5") -> tuple[Path, pd.DataFrame]:
    parts = analysis_table(n=4, bodyparts=("nose", "eye"))
    frames = {"mouse1": parts, "mouse2": parts + 1000.0}
    table = pd.concat(frames, axis=1)
    single = analysis_table(n=4, bodyparts=("lamp",), seed=1)
    table = pd.concat([table, pd.concat({"single": single}, axis=1)], axis=1)
    return write_dlc(tmp_path / f"cageDLC_dlcrnetms5{suffix}", table), table


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_multi_animal_picks_individual(tmp_path, suffix):
    path, table = _multi_animal(tmp_path, suffix)
    assert read_dlc_table(path).columns.names == ["scorer", "individuals", "bodyparts", "coords"]
    pose = read_dlc(path, individual="mouse2")
    assert pose.individual == "mouse2" and pose.individuals == ("mouse1", "mouse2", "single")
    np.testing.assert_array_equal(pose.xyl("nose"), table["mouse2"]["nose"].to_numpy())
    # unique (scene) bodyparts ride along with the picked individual
    np.testing.assert_array_equal(pose.xyl("lamp"), table["single"]["lamp"].to_numpy())


def test_multi_animal_without_individual_names_them(tmp_path):
    path, _ = _multi_animal(tmp_path)
    with pytest.raises(PoseFileError, match=r"mouse1.*mouse2") as err:
        read_dlc(path)
    assert str(path) in str(err.value) and "--individual" in str(err.value)


def test_multi_animal_unknown_individual(tmp_path):
    path, _ = _multi_animal(tmp_path)
    with pytest.raises(PoseFileError, match=r"no individual 'mouse9'.*mouse1"):
        read_dlc(path, individual="mouse9")


def test_missing_hand_label_stays_nan(tmp_path):
    path = tmp_path / "CollectedData_me.csv"
    path.write_text(
        "scorer,me,me,me,me\nbodyparts,nose,nose,eye,eye\ncoords,x,y,x,y\n"
        "labeled-data/v/img0007.png,1.5,2.5,,\n"
        "labeled-data/v/img0009.png,3.5,4.5,5.5,6.5\n"
    )
    pose = read_dlc(path)
    eye = pose.xyl("eye")
    assert np.isnan(eye[0]).all()  # missing x/y -> likelihood NaN too
    np.testing.assert_array_equal(eye[1], [5.5, 6.5, 1.0])
    np.testing.assert_array_equal(pose.frames(), [7, 9])


def test_nan_position_with_likelihood_becomes_nan(tmp_path):
    table = analysis_table(n=3)
    table.loc[1, ("nose", "x")] = np.nan
    pose = read_dlc(write_dlc(tmp_path / "vDLC_s.h5", table))
    assert np.isnan(pose.xyl("nose")[1]).all()
    assert not np.isnan(pose.xyl("nose")[[0, 2]]).any()


def test_not_a_dlc_csv_names_the_file(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(PoseFileError, match="notes.csv: not a DeepLabCut CSV"):
        read_dlc(path)


def test_bad_number_names_the_row(tmp_path):
    path = tmp_path / "vDLC_s.csv"
    path.write_text(
        "scorer,s,s,s\nbodyparts,nose,nose,nose\ncoords,x,y,likelihood\n0,1,2,0.9\n1,oops,2,0.9\n"
    )
    with pytest.raises(PoseFileError, match=r"vDLC_s.csv: row 1 .*'oops'"):
        read_dlc(path)


def test_image_without_number_names_the_row(tmp_path):
    path = tmp_path / "CollectedData_me.csv"
    path.write_text("scorer,me,me\nbodyparts,nose,nose\ncoords,x,y\nlabeled-data/v/img0001.png,1,2\nlabeled-data/v/front.png,1,2\n")
    with pytest.raises(PoseFileError, match=r"row 1 .*front.png"):
        read_dlc(path).frames()


def hand_label_table(video="m1_rec1", frames=(0, 5, 9)) -> pd.DataFrame:
    """DLC's newer CollectedData layout: rows (labeled-data, video, image), columns (scorer, bodyparts, x|y)."""
    cols = pd.MultiIndex.from_product([["me"], ["nose", "eye"], ["x", "y"]], names=["scorer", "bodyparts", "coords"])
    values = np.arange(len(frames) * len(cols), dtype=np.float64).reshape(len(frames), len(cols))
    values[1, 2:] = np.nan  # a hidden eye
    rows = pd.MultiIndex.from_tuples([("labeled-data", video, f"img{f:02d}.png") for f in frames])
    return pd.DataFrame(values, index=rows, columns=cols)


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_hand_labels_round_trip(tmp_path, suffix):
    labels = hand_label_table()
    path = write_dlc(tmp_path / f"CollectedData_me{suffix}", labels, h5_format="fixed")
    pose = read_dlc(path)
    assert pose.scorer == "me" and not pose.has_likelihood
    np.testing.assert_array_equal(pose.frames(), [0, 5, 9])
    np.testing.assert_array_equal(pose.xyl("nose")[:, :2], labels["me"]["nose"].to_numpy())
    assert np.isnan(pose.xyl("eye")[1]).all()


def test_hand_labels_h5_is_fixed_format_as_dlc_writes(tmp_path):
    path = write_dlc(tmp_path / "CollectedData_me.h5", hand_label_table(), h5_format="fixed")
    raw = pd.read_hdf(path, key="df_with_missing")  # pandas' own reader: what DeepLabCut calls
    pd.testing.assert_frame_equal(raw, hand_label_table())
    with pd.HDFStore(path, mode="r") as store:
        assert store.get_storer("df_with_missing").format_type == "fixed"


def test_table_with_scorer_level_is_written_as_is(tmp_path):
    table = pd.concat({"net": analysis_table(n=3)}, axis=1, names=["scorer"])
    table.columns = table.columns.set_names(["scorer", "bodyparts", "coords"])
    path = write_dlc(tmp_path / "vDLC_net.csv", table, scorer="ignored")
    assert path.read_text().splitlines()[0].startswith("scorer,net,net")
    assert read_dlc(path).scorer == "net"


def test_write_dlc_refuses_unknown_h5_format(tmp_path):
    with pytest.raises(ValueError, match="h5_format"):
        write_dlc(tmp_path / "vDLC_x.h5", analysis_table(n=2), h5_format="parquet")
    assert not list(tmp_path.iterdir())
