"""Hostile input, as a new user would meet it: what they see, and that nothing earlier is lost.

Every file is made here in a temporary folder: broken and odd videos, odd names, bad keypoints
and metadata, interrupted commands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    """An interrupted command says so in one line (no traceback) and keeps what was finished."""
    out = tmp_path / "cohort"
    proc = subprocess.Popen([sys.executable, "-m", "mouse_facial_expressions", "synth", str(out), "--preset", "tiny"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any((out / "videos" / "raw").glob("*.mp4")):
        time.sleep(0.05)  # wait until it is writing videos, well past start-up
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.strip()][-1] == "mfe synth: interrupted; rerun to resume"
    assert not list(out.rglob(".*.tmp-*")), "temporary files left behind"


def _faststart_copy(src: Path, dst: Path) -> None:
    """Re-mux ``src`` with the index first (moov before the frame data), as cameras often write."""
    import av

    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "faststart"}) as o:
        s_in = i.streams.video[0]
        s_out = o.add_stream_from_template(s_in)
        for packet in i.demux(s_in):
            if packet.dts is None:
                continue
            packet.stream = s_out
            o.mux(packet)


def test_a_truncated_video_is_reported_as_a_video_problem(tmp_path):
    """Header intact, frame data cut: extract must blame the video, not the keypoints."""
    from test_extract import make_video

    from mouse_facial_expressions.config import Config
    from mouse_facial_expressions.preprocess import extract as ex

    cfg = Config(root=tmp_path)
    make_video(cfg, "v", n=60)
    path = cfg.path("processed_videos") / "v.mp4"
    _faststart_copy(path, tmp_path / "fast.mp4")
    data = (tmp_path / "fast.mp4").read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    report = ex.extract_videos(cfg, progress=False)
    (failed,) = report.failed
    assert "truncated or corrupt" in failed.error and "v.mp4" in failed.error
    assert "keypoint rows" not in failed.error
    assert not list(cfg.path("frames").glob("v.*"))  # nothing half-written
