"""Metadata CSVs as spreadsheets save them: other delimiters, and dates typed the short way (io/metadata.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mouse_facial_expressions.io.metadata import (
    RAW_VIDEO_COLUMNS,
    MetadataError,
    read_raw_videos,
    read_treatments,
)
from mouse_facial_expressions.io.metadata_csv import sniff_delimiter

RAW_ROWS = [
    ["m3", "1", "camA", "2022", "6", "13", "12", "36", "14", "0:13", "-1", "", "first day"],
    ["m3", "4", "camA", "2022", "6", "13", "16", "58", "50", "0:37", "11:03", "", "late, after injection"],
]


def _write(path: Path, rows: list[list[str]], delimiter: str) -> Path:
    path.write_text("\n".join(delimiter.join(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("delimiter", [";", "\t"], ids=["semicolon", "tab"])
def test_raw_videos_with_another_delimiter_reads_like_the_comma_file(tmp_path, delimiter):
    header = [*RAW_VIDEO_COLUMNS, "Notes"]
    comma = read_raw_videos(_write(tmp_path / "comma.csv", [header] + [
        [f'"{c}"' if "," in c else c for c in r] for r in RAW_ROWS], ","))
    other = read_raw_videos(_write(tmp_path / "other.csv", [header] + RAW_ROWS, delimiter))

    pd.testing.assert_frame_equal(other, comma)
    assert other.loc[3, "Notes"] == "late, after injection"  # a comma inside a ;-separated cell stays text
    assert other.loc[3, "end_s"] == 11 * 60 + 3


def test_treatments_with_semicolons_are_read(tmp_path):
    path = _write(tmp_path / "treatments.csv", [
        ["mouse", "date_of_birth", "treatment", "injection_time", "notes"],
        ["m3", "18.04.2022", "LPS high", "13:00", "weight 24,5 g"],  # decimal comma, as a German Excel saves
    ], ";")
    df = read_treatments(path)
    assert df.loc[2, "treatment"] == "LPS high"
    assert df.loc[2, "notes"] == "weight 24,5 g"


def test_a_missing_column_in_a_semicolon_file_is_named_alone(tmp_path):
    header = [c for c in RAW_VIDEO_COLUMNS if c != "camera"]
    rows = [[c for i, c in enumerate(r[:12]) if RAW_VIDEO_COLUMNS[i] != "camera"] for r in RAW_ROWS]
    with pytest.raises(MetadataError, match=r"missing required column\(s\) camera;") as err:
        read_raw_videos(_write(tmp_path / "raw_videos.csv", [header] + rows, ";"))
    assert "animal;" not in str(err.value)  # the header was split, not read as one column


def test_sniff_prefers_the_delimiter_that_finds_the_expected_columns():
    text = "a;b;c\n1,5;2,5;x,y,z\n"  # commas outnumber semicolons, but only ';' splits the header into a, b, c
    assert sniff_delimiter(text, ("a", "b", "c")) == ";"
    assert sniff_delimiter("a\tb\n1\t2\n") == "\t"


def test_a_two_digit_year_names_the_file_the_line_and_asks_for_four_digits(tmp_path):
    rows = [list(RAW_VIDEO_COLUMNS),
            ["# example row"] + [""] * 11,                                     # line 2: a comment
            ["m3", "1", "camA", "2022", "6", "13", "12", "36", "14", "", "", ""],  # line 3
            ["m3", "4", "camA", "24", "3", "4", "16", "58", "50", "", "", ""],      # line 4
            ]
    path = _write(tmp_path / "raw_videos.csv", rows, ",")
    with pytest.raises(MetadataError) as err:
        read_raw_videos(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "line 4" in msg and "line 3" not in msg
    assert "4 digits" in msg and "'year'" in msg
    assert "Cannot cast" not in msg


def test_a_year_pandas_cannot_hold_is_a_bad_date_on_its_line(tmp_path):
    rows = [list(RAW_VIDEO_COLUMNS), ["m3", "1", "camA", "1500", "6", "13", "12", "36", "14", "", "", ""]]
    with pytest.raises(MetadataError, match=r"not a valid date and time at line 2"):
        read_raw_videos(_write(tmp_path / "raw_videos.csv", rows, ","))


def test_an_excel_semicolon_file_with_a_bom_and_crlf_line_ends(tmp_path):
    path = tmp_path / "treatments.csv"
    path.write_bytes(b"\xef\xbb\xbfmouse;date_of_birth;treatment;injection_time;notes\r\nm3;1.1.2022;saline;;\r\n")
    df = read_treatments(path)
    assert list(df.columns) == ["mouse", "date_of_birth", "treatment", "injection_time", "notes"]
    assert df.loc[2, "treatment"] == "saline"
