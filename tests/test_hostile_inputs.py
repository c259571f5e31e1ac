"""Hostile input, as a new user would meet it: what they see, and that nothing earlier is lost.

Every file is made here in a temporary folder: broken and odd videos, odd names, bad keypoints
and metadata, interrupted commands.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child: SIGINT handled as in a terminal, even when this suite runs in the
    background (``cmd &`` and nohup start programs with SIGINT ignored, and Python then keeps
    ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    """An interrupted command says so in one line (no traceback) and keeps what was finished."""
    out = tmp_path / "cohort"
    proc = subprocess.Popen([sys.executable, "-m", "mouse_facial_expressions", "synth", str(out), "--preset", "tiny"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_in_a_terminal)
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


def test_a_ctrl_c_that_a_library_swallows_still_exits_130(capsys):
    """Ctrl-C landing in a finaliser or a library's ``except`` must not end as a silent success."""
    from argparse import Namespace

    from mouse_facial_expressions.cli import _run, _watch_ctrl_c

    def swallowing_command(args):
        try:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # what pressing Ctrl-C calls
        except KeyboardInterrupt:
            pass  # a library that catches it and carries on
        return 0

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (the suite may run in the background)
    try:
        seen, restore = _watch_ctrl_c()
        try:
            assert _run(Namespace(command="synth", func=swallowing_command, verbose=False), seen) == 130
        finally:
            restore()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
        assert capsys.readouterr().err.strip() == "mfe synth: interrupted; rerun to resume"
        seen, restore = _watch_ctrl_c()
        try:  # without Ctrl-C the command's own exit code stands
            assert _run(Namespace(command="synth", func=lambda a: 3, verbose=False), seen) == 3
        finally:
            restore()
    finally:
        signal.signal(signal.SIGINT, before)


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
    # av 18's FFmpeg reads up to the cut ("truncated or corrupt"); av 14-17 stop at the bad packet
    assert ("truncated or corrupt" in failed.error or "decoding failed after frame" in failed.error) and "v.mp4" in failed.error
    assert "keypoint rows" not in failed.error
    assert not list(cfg.path("frames").glob("v.*"))  # nothing half-written


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_is_named_and_leaves_no_partial_files(tmp_path, small_disk):
    from test_prepare import RAW_FILES, ROWS, make_raw, write_metadata

    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.project import init_project

    root = tmp_path / "proj"
    cfg = init_project(root)
    write_metadata(root, ROWS)
    for name in RAW_FILES:
        make_raw(cfg.path("raw_videos") / name, n=30)
    out = cfg.path("processed_videos")
    out.rmdir()
    out.symlink_to(small_disk)  # processed videos go to the small disk
    import shutil

    (small_disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 12_000))  # room for about one video
    report = prepare_videos(load_config(root), progress=False)
    assert report.failed, report.summary()
    for video, reason in report.failed.items():
        assert "disk full while writing" in reason and f"{video}.mp4" in reason
    assert not [p.name for p in small_disk.iterdir() if ".tmp" in p.name]  # no partial file stays
    (small_disk / "filler").unlink()  # space again: a rerun completes what failed and keeps the rest
    done_before = set(report.written)
    again = prepare_videos(load_config(root), progress=False)
    assert again.ok and set(again.skipped) == done_before and len(again.written) == len(report.failed)


def test_extract_on_a_full_disk_says_so_and_keeps_finished_videos(tmp_path, small_disk):
    import shutil

    from test_extract import make_video

    from mouse_facial_expressions.config import Config
    from mouse_facial_expressions.preprocess import extract as ex
    from mouse_facial_expressions.preprocess.store import is_complete

    cfg = Config(root=tmp_path, extract={"crop_size": 64, "out_size": 64, "target_fps": 30.0})
    for name in ("a", "b"):
        make_video(cfg, name, n=40)
    cfg.paths.frames = small_disk
    (small_disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 250_000))  # room for one video's crops
    report = ex.extract_videos(cfg, progress=False)
    assert [r.video for r in report.done] == ["a"], report.summary()
    (failed,) = report.failed
    assert "disk full while writing" in failed.error and "b.npy" in failed.error
    assert "requested and" not in failed.error
    assert is_complete(small_disk, "a") and not [p.name for p in small_disk.iterdir() if ".tmp" in p.name]


def _train_cmd(project: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "mouse_facial_expressions", "train", "-p", str(project), "--model", "advanced",
            "--backbone", "resnet18", "--num_layers", "1", "--num_heads", "2", "--d_model", "32", "--ff_dim", "32",
            "--epochs", str(epochs), "--image_size", "32", "--workers", "0", "--precision", "32-true",
            "--limit_batches", "2", "--folds", "0", "--no_tracking", "--run_name", "killed", "--seed", "1"]


@pytest.mark.slow
def test_a_killed_training_resumes_after_its_last_finished_epoch(tiny8_task, tmp_path):
    import shutil

    import torch

    project = tmp_path / "project"
    shutil.copytree(tiny8_task.parent.parent, project)
    last = project / "models" / "runs" / "killed" / "fold0" / "last.ckpt"
    proc = subprocess.Popen(_train_cmd(project, 6), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not last.is_file() and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()  # as hard as a power cut: no clean-up code runs
    proc.communicate()
    assert last.is_file(), "no last.ckpt after the first epoch"
    k = int(torch.load(last, map_location="cpu", weights_only=True)["epoch"])  # the last finished epoch (0-based)
    assert k < 5 and not (last.parent / "predictions_test.csv").exists()
    again = subprocess.run(_train_cmd(project, 6), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    epochs = [int(ln.split()[3].split("/")[0]) for ln in again.stdout.splitlines() if ln.startswith("fold 0 epoch ")]
    assert epochs == list(range(k + 2, 7))  # 1-based: continues with the epoch after the last finished one
    record = json.loads((last.parent / "fold.json").read_text())
    assert record["epochs_trained"] == 6 and sorted(map(int, record["history"])) == list(range(6))


def test_an_unreadable_last_checkpoint_is_moved_aside_and_the_fold_starts_over(tmp_path, caplog):
    from mouse_facial_expressions.training.cv import usable_resume_point

    last = tmp_path / "last.ckpt"
    last.write_bytes(b"PK\x03\x04 truncated")
    with caplog.at_level("WARNING"):
        assert usable_resume_point(last, 0) is None
    assert not last.exists() and len(list(tmp_path.glob("last.ckpt.unreadable-*"))) == 1
    assert "last.ckpt" in caplog.text and "starts over" in caplog.text


def test_a_checkpoint_with_pickled_objects_is_refused_in_one_line(tmp_path):
    import torch

    from mouse_facial_expressions.io.checkpoint import UnsafeCheckpointError, load_weights_only

    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}, "payload": Path("/etc")}, path)  # any non-tensor object
    with pytest.raises(UnsafeCheckpointError) as err:
        load_weights_only(path)
    msg = str(err.value)
    assert "model.ckpt" in msg and "will not unpickle" in msg and "\n" not in msg
    assert "weights_only=False" not in msg


def test_training_refuses_a_task_whose_frame_store_changed(tiny8_task, tmp_path):
    import shutil

    import pandas as pd

    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.preprocess.store import open_frames, video_meta, write_video_frames
    from mouse_facial_expressions.training import make_params, train_cv

    from mouse_facial_expressions.data.tasks import make_task, preset

    project = tmp_path / "project"
    shutil.copytree(tiny8_task.parent.parent, project)
    cfg = load_config(project)
    task_dir = make_task(cfg, preset("task1", n_folds=2, num_frames=3, frame_stride=1))  # made from this copy's store
    frames = cfg.path("frames")
    video = sorted(p.stem for p in frames.glob("*.parquet"))[0]
    index = pd.read_parquet(frames / f"{video}.parquet")
    crops = open_frames(frames, video)[:-2].copy()
    write_video_frames(frames, video, crops, index.iloc[:-2], video_meta(frames, video))  # re-extracted: 2 crops fewer
    params = make_params("advanced", backbone="resnet18", num_layers=1, num_heads=2, d_model=32, ff_dim=32, epochs=1,
                         image_size=32, workers=0, precision="32-true", limit_batches=1)
    with pytest.raises(ValueError, match=rf"changed since `mfe task make`.*video {video} changed.*rerun `mfe task make`"):
        train_cv(task_dir, params, cfg.path("models"), folds=[0], track=False, progress=False)
    assert not (cfg.path("models") / "runs").exists()


def test_a_finished_fold_is_redone_when_its_task_changed(tiny8_task, tmp_path, capsys):
    import shutil

    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.data.tasks import make_task, preset
    from mouse_facial_expressions.training import make_params, train_cv

    project = tmp_path / "project"
    shutil.copytree(tiny8_task.parent.parent, project)
    cfg = load_config(project)
    task_dir = make_task(cfg, preset("task1", n_folds=2, num_frames=3, frame_stride=1))
    params = make_params("advanced", backbone="resnet18", num_layers=1, num_heads=2, d_model=32, ff_dim=32, epochs=1,
                         image_size=32, workers=0, precision="32-true", limit_batches=1, run_name="r")
    train_cv(task_dir, params, cfg.path("models"), folds=[0], track=False, progress=False)
    train_cv(task_dir, params, cfg.path("models"), folds=[0], track=False, progress=False)
    assert "fold 0: finished earlier, skipped" in capsys.readouterr().out
    make_task(cfg, preset("task1", n_folds=2, num_frames=3, frame_stride=1, seed=7))  # other folds, same folder
    train_cv(task_dir, params, cfg.path("models"), folds=[0], track=False, progress=False)
    assert "fold 0: redone: the task changed" in capsys.readouterr().out


# ----------------------------------------------------------------------------- files and names


def test_a_file_that_is_not_a_video_fails_alone_naming_it(tmp_path):
    from test_extract import make_video

    from mouse_facial_expressions.config import Config
    from mouse_facial_expressions.preprocess import extract as ex

    cfg = Config(root=tmp_path, extract={"crop_size": 64, "out_size": 64, "target_fps": 30.0})
    make_video(cfg, "good", n=20)
    make_video(cfg, "text", n=20)
    (cfg.path("processed_videos") / "text.mp4").write_text("this is a spreadsheet, saved as .mp4 by mistake\n")
    report = ex.extract_videos(cfg, progress=False)
    assert [r.video for r in report.done] == ["good"]
    (failed,) = report.failed
    assert "text.mp4" in failed.error and "cannot open video" in failed.error


def test_shell_commands_in_names_are_never_run(tmp_path):
    from test_prepare import RAW_FILES, ROWS, make_raw, write_metadata

    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.io.metadata import MetadataError
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.project import init_project

    root = tmp_path / "proj"
    cfg = init_project(root)
    evil_dir = cfg.path("raw_videos") / "day1 $(touch PWNED); touch PWNED2 `touch PWNED3`"
    for name in RAW_FILES:  # raw files in a day folder whose name is a shell command
        make_raw(evil_dir / name)
    write_metadata(root, ROWS)
    report = prepare_videos(load_config(root), progress=False)
    assert report.ok and len(report.written) == 3
    write_metadata(root, ["m1$(touch PWNED4),1,camA,2024,2,1,10,0,0,0,-1,0"])
    with pytest.raises(MetadataError, match=r"animal id.*at line 2 cannot be part of a file name"):
        prepare_videos(load_config(root), progress=False)
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))  # nothing was ever run


@pytest.mark.parametrize("kp_rows, expect", [(12, "keypoint rows"), (60, "keypoint rows")])
def test_keypoints_far_shorter_or_longer_than_the_video_name_both_counts(tmp_path, kp_rows, expect):
    from test_extract import make_video

    from mouse_facial_expressions.config import Config
    from mouse_facial_expressions.preprocess import extract as ex

    cfg = Config(root=tmp_path, extract={"crop_size": 64, "out_size": 64, "target_fps": 30.0})
    make_video(cfg, "v", n=30, kp_rows=kp_rows)
    (failed,) = ex.extract_videos(cfg, progress=False).failed
    assert "30 frames" in failed.error and f"{kp_rows} {expect}" in failed.error and "v.parquet" in failed.error


def test_nan_keypoints_leave_those_frames_out_without_failing(tmp_path):
    from test_extract import make_video

    from mouse_facial_expressions.config import Config
    from mouse_facial_expressions.preprocess import extract as ex
    from mouse_facial_expressions.preprocess.store import load_index

    cfg = Config(root=tmp_path, extract={"crop_size": 64, "out_size": 64, "target_fps": 30.0})
    make_video(cfg, "v", n=30, nan_rows=range(10, 20))
    report = ex.extract_videos(cfg, progress=False)
    assert report.ok
    kept = set(load_index(cfg.path("frames"))["frame"])
    assert kept and not kept & set(range(10, 20))


def test_duplicate_and_missing_metadata_rows_stop_before_anything_is_written(tmp_path):
    from test_prepare import RAW_FILES, ROWS, make_raw, write_metadata

    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.io.metadata import MetadataError
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.project import init_project

    root = tmp_path / "proj"
    cfg = init_project(root)
    for name in RAW_FILES:
        make_raw(cfg.path("raw_videos") / name)
    write_metadata(root, ROWS + [ROWS[0]])  # line 6 repeats line 2
    with pytest.raises(MetadataError, match=r"lines 2, 6"):
        prepare_videos(load_config(root), progress=False)
    write_metadata(root, ROWS)
    (root / "metadata" / "treatments.csv").write_text("mouse,date_of_birth,treatment,injection_time,notes\nm1,,high,,\n")
    with pytest.raises(MetadataError, match=r"f2"):  # f2 has no treatments row
        prepare_videos(load_config(root), progress=False)
    assert not list(cfg.path("processed_videos").iterdir())


def test_a_task_is_not_made_from_stale_crops(tiny8_task, tmp_path):
    import shutil

    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.data.tasks import TaskError, make_task, preset
    from mouse_facial_expressions.io.keypoints import load_canonical, write_canonical

    project = tmp_path / "project"
    shutil.copytree(tiny8_task.parent.parent, project)
    cfg = load_config(project)
    kp_file = sorted(cfg.path("keypoints").glob("*.parquet"))[0]
    kp = load_canonical(kp_file)
    kp["nose_x"] += 2.0  # keypoints re-imported; crops not yet redone
    write_canonical(kp, kp_file)
    with pytest.raises(TaskError, match=rf"(?s)stale.*{kp_file.stem}: keypoints changed.*run `mfe extract` first"):
        make_task(cfg, preset("task1", n_folds=2, num_frames=3, frame_stride=1))
