"""`mfe prepare`: raw file lookup, frame-exact cuts, resumability, failures (preprocess/prepare.py)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.config import load_config
from mouse_facial_expressions.io.metadata import MetadataError
from mouse_facial_expressions.io.video import VideoWriter, iter_frames
from mouse_facial_expressions.preprocess.prepare import (
    PrepareError,
    match_raw_video,
    parse_raw_name,
    prepare_videos,
)
from mouse_facial_expressions.project import init_project
from mouse_facial_expressions.synth.stamp import draw_stamp, read_stamp

FPS = 10
N_RAW = 30
RAW_HEADER = "animal,recording,camera,year,month,day,hour,minutes,seconds,start,end,discard"
# line 2: cut 0:01.3..0:02.5 -> raw frames 13..24; line 3: whole video; line 4: discarded (no
# raw file at all); line 5: metadata time 1 s before the file name's time, start 0.7 s -> 7..29.
ROWS = [
    "m1,1,camA,2024,2,1,10,0,0,0:01.3,0:02.5,0",
    "m1,4,camA,2024,2,1,14,0,0,0,-1,0",
    "f2,1,camA,2024,2,1,10,30,0,0,-1,1",
    "f2,1,camB,2024,2,1,10,31,1,0:00.7,-1,",
]
RAW_FILES = ["camA__111__20240201_100000.mp4", "camA__111__20240201_140000.mp4",
             "camB__222__20240201_103102.mp4"]
VIDEOS = ["m1_rec1_preinjection", "m1_rec4_4h-postinjection", "f2_rec1_preinjection"]


def make_raw(path: Path, n: int = N_RAW, gop: int = 10) -> None:
    """A 160x120 grey video whose frame i carries stamp i (keyframes every ``gop`` frames)."""
    with VideoWriter(path, FPS, 160, 120, gray=True, gop=gop) as w:
        for i in range(n):
            frame = np.full((120, 160), 90, np.uint8)
            frame[60:, :] = (i * 7) % 200
            w.write(draw_stamp(frame, i))


def write_metadata(root: Path, rows: list[str]) -> None:
    (root / "metadata" / "raw_videos.csv").write_text("\n".join([RAW_HEADER, *rows]) + "\n")
    (root / "metadata" / "treatments.csv").write_text(
        "mouse,date_of_birth,treatment,injection_time,notes\n"
        "m1,2023-11-01,high,12:00,\nf2,2023-11-02,saline,12:30,\n")


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "proj"
    cfg = init_project(root)
    write_metadata(root, ROWS)
    for name in RAW_FILES:
        make_raw(cfg.path("raw_videos") / name)
    return root


def stamps(path: Path) -> list[int]:
    return [read_stamp(f) for _, f in iter_frames(path)]


def outputs(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "videos" / "processed").iterdir())


def test_parse_raw_name_variants():
    f = parse_raw_name("Basler_acA1920-40um__22907383__20220613_123614602.mp4")
    assert f.camera == "Basler_acA1920-40um" and f.serial == "22907383"
    assert f.time == datetime(2022, 6, 13, 12, 36, 14)  # milliseconds dropped
    assert parse_raw_name("notes.txt") is None and parse_raw_name("cam__1__2022.mp4") is None


def test_match_raw_video_exact_beats_near_and_near_must_be_unique():
    files = [parse_raw_name(n) for n in ("c__1__20240101_100000.mp4", "c__1__20240101_100001.mp4",
                                         "d__1__20240101_100000.mp4")]
    match, _ = match_raw_video(files, "c", datetime(2024, 1, 1, 10, 0, 0), 2.0)
    assert match.path.name == "c__1__20240101_100000.mp4"
    match, cands = match_raw_video(files, "c", datetime(2024, 1, 1, 9, 59, 59), 2.0)
    assert match is None and len(cands) == 2  # ambiguous
    assert match_raw_video(files, "d", datetime(2024, 1, 1, 10, 0, 3), 2.0) == (None, [])


def test_cut_is_frame_exact(project):
    report = prepare_videos(load_config(project), progress=False)
    assert report.ok and sorted(report.written) == sorted(VIDEOS)
    processed = project / "videos" / "processed"
    assert stamps(processed / "m1_rec1_preinjection.mp4") == list(range(13, 25))
    assert stamps(processed / "m1_rec4_4h-postinjection.mp4") == list(range(N_RAW))
    assert stamps(processed / "f2_rec1_preinjection.mp4") == list(range(7, N_RAW))  # 1 s name offset
    meta = json.loads((processed / "m1_rec1_preinjection.prepare.json").read_text())
    assert (meta["start_frame"], meta["end_frame"], meta["n_frames"]) == (13, 25, 12)
    assert meta["source"] == RAW_FILES[0] and meta["row"] == 2


def test_discarded_rows_are_skipped(project):
    prepare_videos(load_config(project), progress=False)
    assert outputs(project) == sorted([f"{v}.mp4" for v in VIDEOS] + [f"{v}.prepare.json" for v in VIDEOS])


def test_second_run_does_nothing(project):
    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    files = sorted((project / "videos" / "processed").iterdir())
    before = {p: p.stat().st_mtime_ns for p in files}
    report = prepare_videos(cfg, progress=False)
    assert report.written == [] and sorted(report.skipped) == sorted(VIDEOS)
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_duplicate_rows_stop_before_writing(project):
    write_metadata(project, ROWS + [ROWS[1].replace(",14,0,0,", ",14,5,0,")])  # line 6: m1 rec4 again
    with pytest.raises(MetadataError, match=r"lines 3, 6 are all m1 recording 4"):
        prepare_videos(load_config(project), progress=False)
    assert outputs(project) == []


def test_missing_raw_video_names_the_row(project):
    (project / "videos" / "raw" / RAW_FILES[1]).unlink()
    with pytest.raises(PrepareError, match=r"missing raw video for row 3 \(m1, recording 4, camA, "
                                           r"2024-02-01 14:00:00\), looked in .*videos/raw"):
        prepare_videos(load_config(project), progress=False)
    assert outputs(project) == []


def test_ambiguous_raw_video_lists_candidates(project):
    make_raw(project / "videos" / "raw" / "camB__333__20240201_103100.mp4")  # also 1 s off row 5
    with pytest.raises(PrepareError, match=r"ambiguous raw video for row 5 .*camB__222__.*camB__333__"):
        prepare_videos(load_config(project), progress=False)
    assert outputs(project) == []


@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_corrupt_raw_video_fails_alone(project, damage, capsys):
    bad = project / "videos" / "raw" / RAW_FILES[1]
    if damage == "garbage":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    else:
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    assert main(["prepare", "--project", str(project)]) == 1
    out = capsys.readouterr().out
    assert "2 written" in out and "1 failed" in out and "FAILED m1_rec4_4h-postinjection" in out
    names = outputs(project)
    assert "m1_rec4_4h-postinjection.mp4" not in names and not [n for n in names if "tmp" in n]
    assert "m1_rec1_preinjection.mp4" in names and "f2_rec1_preinjection.mp4" in names


def test_changed_trim_is_redone_and_says_why(project, capsys):
    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    write_metadata(project, [ROWS[0].replace("0:01.3", "0:01.5"), *ROWS[1:]])
    assert main(["prepare", "-p", str(project), "--dry-run"]) == 0
    assert "redo (settings changed: start_s 1.3 -> 1.5)" in capsys.readouterr().out
    report = prepare_videos(cfg, progress=False)
    assert report.written == ["m1_rec1_preinjection"] and sorted(report.skipped) == sorted(VIDEOS[1:])
    assert "1 redone: settings changed" in report.summary()
    assert stamps(project / "videos" / "processed" / "m1_rec1_preinjection.mp4")[0] == 15


def test_a_replaced_raw_video_is_redone(project):
    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    make_raw(project / "videos" / "raw" / RAW_FILES[1], n=N_RAW - 4)  # re-exported camera file
    report = prepare_videos(cfg, progress=False)
    assert report.written == ["m1_rec4_4h-postinjection"] and report.redone == {"m1_rec4_4h-postinjection": ["raw video changed"]}
    assert len(stamps(project / "videos" / "processed" / "m1_rec4_4h-postinjection.mp4")) == N_RAW - 4


def test_a_touched_raw_video_stays_fresh(project):
    import os

    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    raw = project / "videos" / "raw" / RAW_FILES[0]
    os.utime(raw, ns=(raw.stat().st_atime_ns, raw.stat().st_mtime_ns + 10**9))  # copied or touched: same content
    assert prepare_videos(cfg, progress=False).written == []


def test_a_failed_redo_keeps_the_previous_output(project):
    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    out = project / "videos" / "processed" / "m1_rec4_4h-postinjection.mp4"
    before = out.read_bytes()
    (project / "videos" / "raw" / RAW_FILES[1]).write_bytes(b"not a video any more")
    report = prepare_videos(cfg, progress=False)
    assert list(report.failed) == ["m1_rec4_4h-postinjection"]
    assert out.read_bytes() == before  # the last good output is still there
    assert not list(out.parent.glob(".*tmp*"))


def test_output_without_record_is_redone(project):
    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    (project / "videos" / "processed" / "m1_rec1_preinjection.prepare.json").unlink()
    report = prepare_videos(cfg, progress=False)
    assert report.written == ["m1_rec1_preinjection"]


def test_dry_run_prints_plan_and_writes_nothing(project, capsys):
    assert main(["prepare", "-p", str(project), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"row 2: {RAW_FILES[0]} -> m1_rec1_preinjection.mp4  [frames 13..24 at 10 fps]  write" in out
    assert "row 5: camB__222__20240201_103102.mp4 -> f2_rec1_preinjection.mp4  [frames 7..end" in out
    assert outputs(project) == []


def test_raw_video_cut_short_mid_stream_fails(project):
    """A file whose index is intact but whose frame data stops early (moov first, then cut)."""
    import av

    bad = project / "videos" / "raw" / RAW_FILES[1]
    with av.open(str(bad), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for i in range(N_RAW):
            frame = draw_stamp(np.random.default_rng(i).integers(0, 255, (120, 160), dtype=np.uint8), i)
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="gray")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    bad.write_bytes(bad.read_bytes()[: int(bad.stat().st_size * 0.5)])
    report = prepare_videos(load_config(project), progress=False)
    assert list(report.failed) == ["m1_rec4_4h-postinjection"]
    assert "m1_rec4_4h-postinjection.mp4" not in outputs(project)
    assert sorted(report.written) == ["f2_rec1_preinjection", "m1_rec1_preinjection"]


REAL_VIDEO = Path(__file__).parent / "data" / "dlc_openfield" / "videos" / "m3v1mp4.mp4"


def test_real_video_first_frame_is_the_frame_at_start(tmp_path):
    """Real open-field footage (the first 40 frames of DeepLabCut's m3v1mp4.mp4, H.264 with one
    keyframe, at frame 0): output frame 0 is raw frame 15 (0.5 s at 30 fps), not the keyframe
    before it."""
    import shutil

    root = tmp_path / "proj"
    cfg = init_project(root)
    shutil.copy(REAL_VIDEO, cfg.path("raw_videos") / "top__1__20220101_120000.mp4")
    write_metadata(root, ["m1,1,top,2022,1,1,12,0,0,0:00.5,0:01,0"])
    report = prepare_videos(cfg, progress=False)
    assert report.written == ["m1_rec1_preinjection"]
    out = [f.astype(float) for _, f in iter_frames(cfg.path("processed_videos") / "m1_rec1_preinjection.mp4")]
    raw = {i: f.astype(float) for i, f in iter_frames(REAL_VIDEO, 0, 40)}
    assert len(out) == 15  # frames 15..29
    for k in (0, 14):
        err = {i: np.abs(out[k] - raw[i]).mean() for i in raw}
        assert min(err, key=err.get) == 15 + k


def test_tiny_cohort_stamps_match_truth(tiny_project):
    """On `synth tiny`, every processed frame carries the raw index the truth table expects."""
    import pandas as pd

    project = tiny_project
    report = prepare_videos(load_config(project), progress=False)
    truth = pd.read_parquet(project / "truth" / "truth.parquet", columns=["video", "frame", "raw_frame"])
    assert report.ok and sorted(report.written) == sorted(truth["video"].unique())
    for video, t in truth.groupby("video"):
        got = stamps(project / "videos" / "processed" / f"{video}.mp4")
        assert got == t.sort_values("frame")["raw_frame"].tolist(), video


def make_vfr_raw(path: Path, intervals_ms: list[int]) -> np.ndarray:
    """A grey video whose frame i carries stamp i and is shown at sum(intervals_ms[:i]) ms;
    returns the frame times in seconds."""
    from fractions import Fraction

    import av

    times = np.concatenate([[0], np.cumsum(intervals_ms[:-1])]).astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            frame = np.full((120, 160), 90, np.uint8)
            vf = av.VideoFrame.from_ndarray(draw_stamp(frame, i), format="gray").reformat(format="yuv420p")
            vf.pts, vf.time_base = int(t), Fraction(1, 1000)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return times / 1000.0


def test_variable_frame_rate_is_trimmed_by_timestamps(tmp_path, caplog):
    root = tmp_path / "proj"
    cfg = init_project(root)
    # 2 s at 5 fps (10 frames), then 4 s at 20 fps (80 frames): average ~15 fps
    times = make_vfr_raw(cfg.path("raw_videos") / "camA__111__20240201_100000.mp4", [200] * 10 + [50] * 80)
    write_metadata(root, ["m1,1,camA,2024,2,1,10,0,0,0:01,0:05,0"])
    with caplog.at_level("WARNING"):
        report = prepare_videos(load_config(root), progress=False)
    assert report.ok, report.summary()
    out = root / "videos" / "processed" / "m1_rec1_preinjection.mp4"
    got = stamps(out)
    shown = np.flatnonzero((times >= 1.0 - 1e-9) & (times < 5.0 - 1e-9))  # frames shown from 1 s up to 5 s
    assert got[0] == shown[0] == 5 and got[-1] == shown[-1]  # by the average rate it would start at frame ~15
    assert got == list(range(shown[0], shown[-1] + 1))
    record = json.loads((out.parent / "m1_rec1_preinjection.prepare.json").read_text())
    assert record["variable_frame_rate"] is True and record["start_time_s"] == pytest.approx(1.0)
    assert any("variable frame rate" in r.getMessage() for r in caplog.records)


def test_constant_frame_rate_is_not_called_variable(project):
    prepare_videos(load_config(project), progress=False)
    record = json.loads((project / "videos" / "processed" / "m1_rec1_preinjection.prepare.json").read_text())
    assert record["variable_frame_rate"] is False


def test_missing_raw_video_suggests_discard_or_skip_missing(project):
    (project / "videos" / "raw" / RAW_FILES[1]).unlink()
    with pytest.raises(PrepareError, match=r"discard=1.*--skip-missing"):
        prepare_videos(load_config(project), progress=False)


def test_skip_missing_prepares_the_others_and_lists_the_skipped(project, capsys):
    (project / "videos" / "raw" / RAW_FILES[1]).unlink()
    assert main(["prepare", "-p", str(project), "--skip-missing"]) == 0
    out = capsys.readouterr().out
    assert "1 skipped (raw video missing)" in out and "SKIPPED m1_rec4_4h-postinjection" in out
    assert outputs(project) == sorted(f"{v}{ext}" for v in ("m1_rec1_preinjection", "f2_rec1_preinjection")
                                      for ext in (".mp4", ".prepare.json"))
