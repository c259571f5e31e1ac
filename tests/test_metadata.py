"""Metadata readers and the video table (io/metadata.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.io.metadata import (
    MetadataError,
    load_video_table,
    parse_trim,
    read_raw_videos,
    read_treatments,
    video_table,
)

LABELS = Config().video.recording_labels
RAW_HEADER = "animal,recording,camera,year,month,day,hour,minutes,seconds,start,end,discard"
TRT_HEADER = "mouse,date_of_birth,treatment,injection_time,notes"
SEED = Path(__file__).parent / "data" / "seed"  # the seed codebase's metadata templates


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def files(tmp_path):
    raw = _write(tmp_path / "raw_videos.csv", [
        RAW_HEADER + ",Notes",
        "m3,1,camA,2022,6,13,12,36,14,0:13,-1,,",              # line 2
        "m3,4,camA,2022,6,13,16,58,50,0:37,11:03,,late",       # line 3
        "f1,1,camA,2023,3,2,12,7,30,,,0,",                      # line 4
        "f1,4,camA,2023,3,2,16,20,23,0,-1,1,early stop",        # line 5 (discarded)
        "c9,1,camB,2023,3,2,16,25,0,1:00:05,,0,",               # line 6
    ])
    trt = _write(tmp_path / "treatments.csv", [
        TRT_HEADER + ",cohort,weight",
        "m3,18 April 2022,saline,12:52,,A,25",
        "f1,13 November 22,high,12:23,approx timing,B,21",
        "c9,2024-01-15,control,10:00,sham,B,30",
    ])
    return raw, trt


@pytest.mark.parametrize("value, seconds", [
    ("0:13", 13.0), ("11:03", 663.0), ("1:02:03", 3723.0), ("0:13.5", 13.5), ("13", 13.0),
    ("7.25", 7.25), (42, 42.0), ("0", 0.0), (0, 0.0), (" 0:05 ", 5.0),
])
def test_parse_trim_valid(value, seconds):
    assert parse_trim(value, "raw_videos.csv", 2) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["-1", -1, "", None, float("nan")])
def test_parse_trim_none_means_no_trim(value):
    assert math.isnan(parse_trim(value, "raw_videos.csv", 2))


@pytest.mark.parametrize("value", ["abc", "1:75", "1::2", "-5", "1:2:3:4", "1:60:00", "-0:05", "1:x"])
def test_parse_trim_invalid_names_file_and_row(value):
    with pytest.raises(MetadataError, match=r"raw_videos\.csv line 7: invalid trim time"):
        parse_trim(value, "raw_videos.csv", 7)


def test_read_raw_videos_types_and_trims(files):
    df = read_raw_videos(files[0])
    assert list(df.index) == [2, 3, 4, 5, 6]  # CSV line numbers, header = line 1
    assert df["recording"].dtype == "int64" and df["discard"].tolist() == [0, 0, 0, 1, 0]
    assert df.loc[2, "timestamp"] == pd.Timestamp("2022-06-13 12:36:14")
    assert df["start_s"].tolist() == [13.0, 37.0, 0.0, 0.0, 3605.0]
    assert math.isnan(df.loc[2, "end_s"]) and df.loc[3, "end_s"] == 663.0
    assert df.loc[3, "Notes"] == "late"  # extra columns are kept


def test_read_raw_videos_missing_columns_named(tmp_path):
    p = _write(tmp_path / "raw_videos.csv", ["animal,recording,camera,year,month,day,hour,start,end",
                                             "m1,1,c,2022,1,1,1,0,-1"])
    with pytest.raises(MetadataError) as err:
        read_raw_videos(p)
    msg = str(err.value)
    assert str(p) in msg and "minutes, seconds, discard" in msg


def test_read_raw_videos_bad_values_name_lines(tmp_path):
    p = _write(tmp_path / "raw_videos.csv", [
        RAW_HEADER,
        "m1,1,c,2022,1,1,1,0,0,0,-1,0",
        "m2,x,c,2022,1,1,1,0,0,0,-1,0",      # line 3: bad recording
        "m3,1,c,2022,13,1,1,0,0,0,-1,0",     # line 4: month 13
        "m4,1,c,2022,1,1,1,0,0,oops,-1,0",   # line 5: bad trim
        "m5,1,c,2022,1,1,1,0,0,0:30,0:10,0",  # line 6: end before start
    ])
    with pytest.raises(MetadataError) as err:
        read_raw_videos(p)
    msg = str(err.value)
    assert str(p) in msg
    assert "'recording'" in msg and "line 3" in msg
    assert "valid date and time at line 4" in msg
    assert "line 5: invalid trim time 'oops'" in msg
    assert "line 6: end '0:10' is not after start '0:30'" in msg


def test_read_treatments_duplicate_mouse_lists_lines(tmp_path):
    p = _write(tmp_path / "treatments.csv", [TRT_HEADER, "m1,x,saline,1:00,", "m2,x,high,1:00,",
                                             "m1,x,high,1:00,"])
    with pytest.raises(MetadataError,
                       match=r"treatments\.csv: mouse 'm1' is listed more than once, at lines 2, 4"):
        read_treatments(p)


def test_read_treatments_case_hint(tmp_path):
    p = _write(tmp_path / "treatments.csv",
               ["mouse,date_of_birth,treatment,injection_time,Notes", "m1,x,s,1,"])
    with pytest.raises(MetadataError, match=r"missing required column\(s\) notes \(found 'Notes'"):
        read_treatments(p)


def test_video_table_rows_and_columns(files):
    vt = video_table(read_raw_videos(files[0]), read_treatments(files[1]), LABELS)
    assert list(vt.index) == [2, 3, 4, 6]  # discarded line 5 is skipped
    assert vt["video"].tolist() == ["m3_rec1_preinjection", "m3_rec4_4h-postinjection",
                                    "f1_rec1_preinjection", "c9_rec1_preinjection"]
    assert list(vt.columns[:13]) == ["video", "animal", "recording", "camera", "timestamp", "start_s",
                                     "end_s", "treatment", "date_of_birth", "injection_time", "notes",
                                     "sex", "cohort"]
    assert vt["sex"].tolist()[:3] == ["m", "m", "f"] and pd.isna(vt.loc[6, "sex"])
    assert vt["cohort"].tolist() == ["A", "A", "B", "B"]
    assert vt.loc[4, "treatment"] == "high" and vt.loc[4, "date_of_birth"] == "13 November 22"
    assert "Notes" in vt.columns and "weight" in vt.columns


def test_video_table_same_animal_recording_twice(tmp_path, files):
    lines = files[0].read_text().splitlines()
    lines.append("m3,4,camA,2022,6,13,17,0,5,0,-1,0,")  # line 7: second m3 rec4, not discarded
    raw = _write(tmp_path / "raw2.csv", lines)
    with pytest.raises(MetadataError, match=r"lines 3, 7 are all m3 recording 4"):
        video_table(read_raw_videos(raw), read_treatments(files[1]), LABELS)


def test_video_table_exact_duplicate_rows(tmp_path, files):
    lines = files[0].read_text().splitlines()
    lines += [lines[1], lines[1]]  # lines 7 and 8 copy line 2
    raw = _write(tmp_path / "raw2.csv", lines)
    with pytest.raises(MetadataError, match=r"lines 2, 7, 8 are exact duplicates"):
        video_table(read_raw_videos(raw), read_treatments(files[1]), LABELS)


def test_video_table_animal_missing_from_treatments(tmp_path, files):
    trt = _write(tmp_path / "t.csv", files[1].read_text().splitlines()[:3])  # drops c9
    with pytest.raises(MetadataError, match=r"animal\(s\) c9 at line 6 are missing from"):
        video_table(read_raw_videos(files[0]), read_treatments(trt), LABELS)


def test_video_table_recording_without_label(files):
    with pytest.raises(MetadataError, match=r"recording number\(s\) \[4\] at line 3 have no label"):
        video_table(read_raw_videos(files[0]), read_treatments(files[1]), {0: "a", 1: "b"})


def test_video_table_reports_all_problems_at_once(tmp_path, files):
    lines = files[0].read_text().splitlines() + ["zz,1,camA,2022,6,13,12,0,0,0,-1,0,"]
    raw = _write(tmp_path / "raw2.csv", lines + [lines[2]])
    with pytest.raises(MetadataError) as err:
        video_table(read_raw_videos(raw), read_treatments(files[1]), LABELS)
    msg = str(err.value)
    assert "lines 3, 8 are exact duplicates" in msg and "zz at line 7" in msg


def test_load_video_table_from_config(tmp_path, files):
    cfg = Config(root=tmp_path)
    cfg.paths.metadata = Path(".")
    vt = load_video_table(cfg)
    assert len(vt) == 4


def test_seed_templates_read():
    raw = read_raw_videos(SEED / "raw_videos_chronic_TEMPLATE.csv")
    trt = read_treatments(SEED / "treatments_chronic_TEMPLATE.csv")
    vt = video_table(raw, trt, {1: "day1", 7: "day7", 14: "day14"})
    assert len(vt) == 9 and vt["video"].iloc[0] == "c1_rec1_day1"
    assert vt["end_s"].isna().all() and (vt["start_s"] == 0).all()


def test_end_zero_means_to_the_end(tmp_path):
    p = _write(tmp_path / "raw_videos.csv", [RAW_HEADER, "m1,1,c,2022,1,1,1,0,0,0:05,0,0"])
    df = read_raw_videos(p)
    assert df.loc[2, "start_s"] == 5.0 and math.isnan(df.loc[2, "end_s"])


def test_animal_id_must_be_a_safe_file_name(tmp_path, files):
    raw = _write(tmp_path / "raw2.csv", [RAW_HEADER, "../m3,1,camA,2022,6,13,12,36,14,0,-1,0"])
    trt = _write(tmp_path / "t2.csv", [TRT_HEADER, "../m3,x,saline,1,"])
    with pytest.raises(MetadataError,
                       match=r"animal id\(s\) \['../m3'\] at line 2 cannot be part of a file name"):
        video_table(read_raw_videos(raw), read_treatments(trt), LABELS)


def test_a_csv_that_is_not_utf8_names_the_file_line_and_encoding(tmp_path):
    raw = tmp_path / "treatments.csv"
    raw.write_bytes((TRT_HEADER + "\nm3,2022,saline,12:52,\nf1,2022,high,12:23,Gewicht gemessen (K\xf6rper)\n").encode("latin-1"))
    with pytest.raises(MetadataError, match=r"treatments.csv: line 3 is not valid utf-8.*--encoding latin-1"):
        read_treatments(raw)
    df = read_treatments(raw, encoding="latin-1")
    assert df.loc[3, "notes"] == "Gewicht gemessen (Körper)"


def test_metadata_encoding_setting_reaches_the_video_table(tmp_path, files):
    raw, trt = files
    trt.write_bytes(trt.read_text().replace("approx timing", "ca. 12 Uhr gemäß Plan").encode("cp1252"))
    cfg = Config(root=tmp_path)
    cfg.paths.metadata = tmp_path
    with pytest.raises(MetadataError, match="not valid utf-8"):
        load_video_table(cfg)
    cfg.metadata.encoding = "cp1252"
    table = load_video_table(cfg)
    assert len(table) == 4 and "ca. 12 Uhr gemäß Plan" in set(table["notes"].dropna())  # the discarded row is left out


def test_unknown_encoding_is_a_config_error():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown text encoding"):
        Config(metadata={"encoding": "utf-9"})


def test_comment_lines_are_skipped_and_line_numbers_kept(tmp_path):
    raw = _write(tmp_path / "raw_videos.csv", [
        RAW_HEADER,
        "# m9,1,camA,2024,2,1,10,30,0,0:13,11:03,0,a comment may have more cells",  # line 2
        "m1,1,camA,2022,1,1,1,0,0,0:05,-1,0",                                       # line 3
        "  #m8,1,camA,2024,2,1,10,30,0,0,-1,0",                                     # line 4
    ])
    trt = _write(tmp_path / "treatments.csv", [TRT_HEADER, "# m9,2023-11-20,saline,11:00,x", "m1,,saline,,"])
    df = read_raw_videos(raw)
    assert list(df.index) == [3] and list(df["animal"]) == ["m1"]
    assert list(read_treatments(trt)["mouse"]) == ["m1"]
