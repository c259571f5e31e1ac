import numpy as np
import pytest

from mouse_facial_expressions.io.video import (
    VideoError, VideoWriter, count_frames, iter_frames, probe, read_frames, write_video,
)
from mouse_facial_expressions.synth.stamp import draw_stamp, read_stamp


def _stamped(n=30, h=120, w=160):
    for i in range(n):
        f = np.full((h, w), 180, np.uint8)
        f[60:100, 40:120] = 40
        yield draw_stamp(f, i)


def test_written_video_has_every_frame_in_order(tmp_path):
    p = tmp_path / "v.mp4"
    assert write_video(p, _stamped(30), fps=15) == 30
    assert count_frames(p) == 30
    info = probe(p)
    assert (info.width, info.height) == (160, 120) and info.fps == pytest.approx(15)
    assert [read_stamp(f) for _, f in iter_frames(p)] == list(range(30))


def test_grey_frames_keep_their_full_range_levels(tmp_path):
    p = tmp_path / "v.mp4"
    write_video(p, _stamped(5), fps=10)
    _, f = next(iter_frames(p))
    assert abs(int(f[80, 80]) - 40) <= 3 and abs(int(f[110, 150]) - 180) <= 3


def test_read_frames_returns_requested_indices_in_one_pass(tmp_path):
    p = tmp_path / "v.mp4"
    write_video(p, _stamped(30), fps=15)
    got = read_frames(p, [25, 3, 3, 10])
    assert sorted(got) == [3, 10, 25]
    assert {k: read_stamp(v) for k, v in got.items()} == {3: 3, 10: 10, 25: 25}


def test_read_past_the_end_names_the_file(tmp_path):
    p = tmp_path / "v.mp4"
    write_video(p, _stamped(10), fps=15)
    with pytest.raises(VideoError, match="v.mp4"):
        read_frames(p, [50])


def test_writer_leaves_nothing_behind_on_error(tmp_path):
    p = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(p, 15, 160, 120) as w:
            w.write(np.zeros((120, 160), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_video_gives_an_error_naming_it(tmp_path):
    p = tmp_path / "bad.mp4"
    p.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(VideoError, match="bad.mp4"):
        list(iter_frames(p))


def test_missing_video_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        probe(tmp_path / "nope.mp4")
