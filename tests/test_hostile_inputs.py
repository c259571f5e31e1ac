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
