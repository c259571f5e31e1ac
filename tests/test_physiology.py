"""metadata/physiology.csv: validation errors that name the lines, and change from baseline."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.io.metadata import MetadataError
from mouse_facial_expressions.io.physiology import (
    PHYS_PREFIX,
    PhysiologyError,
    load_physiology,
    physiology_features,
    read_physiology,
)

VALID = """animal,recording,temperature_c,weight_g
m1,1,37.0,25.0
m1,4,35.5,24.0
# a comment line
m2,1,36.8,22.0

m2,4,36.0,21.5
m3,4,34.0,20.0
"""


def write(tmp_path, text: str, name: str = "physiology.csv", **kw):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", **kw))
    return path


def test_valid_table_types_and_line_index(tmp_path):
    table = read_physiology(write(tmp_path, VALID))
    assert list(table.columns) == ["animal", "recording", "temperature_c", "weight_g"]
    assert table["recording"].dtype == np.int64 and table["weight_g"].dtype == np.float64
    assert list(table.index) == [2, 3, 5, 7, 8]  # CSV lines: header 1, comment 4, blank 6
    assert table.loc[7, "temperature_c"] == 36.0


def test_semicolon_file_with_bom_and_crlf(tmp_path):
    text = "\ufeffanimal;recording;temperature_c\r\nm1;1;37,5\r\n"  # as Excel saves it in many locales
    table = read_physiology(write(tmp_path, text))
    assert list(table.columns) == ["animal", "recording", "temperature_c"]
    assert table.iloc[0]["temperature_c"] == 37.5


def test_tab_separated_file(tmp_path):
    table = read_physiology(write(tmp_path, "animal\trecording\tweight_g\nm1\t1\t25\n"))
    assert table.iloc[0]["weight_g"] == 25.0


def test_duplicate_rows_name_both_lines(tmp_path):
    text = VALID + "m1,4.0,35.0,24.0\n"
    with pytest.raises(PhysiologyError, match=r"'m1' recording 4 is on more than one line: lines 3, 9") as err:
        read_physiology(write(tmp_path, text))
    assert isinstance(err.value, MetadataError) and str(tmp_path / "physiology.csv") in str(err.value)


@pytest.mark.parametrize("cell", ["", "NaN", "warm"])
def test_empty_nan_or_non_numeric_measure_names_the_line(tmp_path, cell):
    text = VALID.replace("m2,1,36.8,22.0", f"m2,1,{cell},22.0")
    with pytest.raises(PhysiologyError, match=r"column 'temperature_c' is empty or not a number at line 5"):
        read_physiology(write(tmp_path, text))


def test_non_integer_recording_names_the_line(tmp_path):
    with pytest.raises(PhysiologyError, match=r"column 'recording' is empty or not a whole number at line 3"):
        read_physiology(write(tmp_path, VALID.replace("m1,4,", "m1,4.5,")))


def test_missing_key_column_and_no_measure_name_the_header_line(tmp_path):
    with pytest.raises(PhysiologyError, match=r"line 1: missing column\(s\) recording"):
        read_physiology(write(tmp_path, "animal,rec,weight_g\nm1,1,2\n"))
    with pytest.raises(PhysiologyError, match=r"line 1: no measure column"):
        read_physiology(write(tmp_path, "animal,recording\nm1,1\n"))


def items(*pairs) -> pd.DataFrame:
    return pd.DataFrame([{"animal": a, "recording": r} for a, r in pairs], index=[10 + i for i in range(len(pairs))])


def test_change_from_baseline_by_hand(tmp_path):
    table = read_physiology(write(tmp_path, VALID))
    out = physiology_features(table, items(("m1", 4), ("m2", 4), ("m1", 1)), baseline_recording=1)
    assert list(out.columns) == [f"{PHYS_PREFIX}temperature_c", f"{PHYS_PREFIX}weight_g"]
    assert list(out.index) == [10, 11, 12]
    np.testing.assert_allclose(out.to_numpy()[:2], [[35.5 - 37.0, 24.0 - 25.0], [36.0 - 36.8, 21.5 - 22.0]])
    assert out.loc[12].isna().all()  # the baseline itself: no change to measure (0 by construction says only "baseline")


def test_raw_values_without_a_baseline_recording(tmp_path):
    table = read_physiology(write(tmp_path, VALID))
    out = physiology_features(table, items(("m3", 4)), baseline_recording=None)
    np.testing.assert_allclose(out.to_numpy(), [[34.0, 20.0]])


def test_animal_without_baseline_uses_the_mean_baseline_and_warns(tmp_path, caplog):
    table = read_physiology(write(tmp_path, VALID))
    with caplog.at_level(logging.WARNING):
        out = physiology_features(table, items(("m3", 4)), baseline_recording=1)
    # mean baseline of m1 and m2: temperature (37.0 + 36.8) / 2 = 36.9, weight (25 + 22) / 2 = 23.5
    np.testing.assert_allclose(out.to_numpy(), [[34.0 - 36.9, 20.0 - 23.5]])
    assert "m3" in caplog.text


def test_missing_row_is_an_error_naming_animal_and_recording_unless_nan(tmp_path):
    table = read_physiology(write(tmp_path, VALID))
    with pytest.raises(PhysiologyError, match=r"no row for 1 animal/recording pair\(s\): animal m2 recording 3"):
        physiology_features(table, items(("m1", 4), ("m2", 3)), baseline_recording=1)
    out = physiology_features(table, items(("m1", 4), ("m2", 3)), baseline_recording=1, missing="nan")
    assert out.loc[11].isna().all() and out.loc[10].notna().all()


def test_no_animal_has_the_baseline_recording_is_an_error(tmp_path):
    table = read_physiology(write(tmp_path, VALID))
    with pytest.raises(PhysiologyError, match="baseline recording 0"):
        physiology_features(table, items(("m1", 4)), baseline_recording=0)


def test_load_physiology_reads_the_project_file(tmp_path):
    cfg = Config(root=tmp_path)
    cfg.path("metadata").mkdir()
    write(cfg.path("metadata"), VALID)
    assert len(load_physiology(cfg)) == 5
    assert cfg.behaviour.physiology_baseline_recording == 1
