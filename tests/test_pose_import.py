"""The shared pose-file -> table loop: fresh tables kept, failures collected and marked stale."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mouse_facial_expressions.io.keypoint_status import import_failure
from mouse_facial_expressions.io.pose_import import KeypointImportError, failure_line, import_pose_tables


def _write(table: pd.DataFrame, dst: Path, meta: dict) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    table.assign(tag=meta["tag"]).to_csv(dst, index=False)


def _run(tmp_path: Path, files: dict, fresh=(), broken=()):
    made = []

    def make(video, src):
        if video in broken:
            raise ValueError(f"{src}: broken")
        made.append(video)
        return pd.DataFrame({"frame": [0, 1]}), {"tag": video}

    out = import_pose_tables(files, lambda v: tmp_path / "out" / f"{v}.parquet",
                             lambda v, src, dst: [] if v in fresh else ["new"], make, _write)
    return out, made


def test_fresh_tables_are_kept_and_not_made(tmp_path):
    files = {"b": tmp_path / "b.h5", "a": tmp_path / "a.h5"}
    out, made = _run(tmp_path, files, fresh={"a"})
    assert made == ["b"]
    assert out == [tmp_path / "out" / "a.parquet", tmp_path / "out" / "b.parquet"]  # video order
    assert (tmp_path / "out" / "b.parquet").is_file() and not (tmp_path / "out" / "a.parquet").exists()


def test_a_failure_does_not_stop_the_others_and_is_listed_at_the_end(tmp_path):
    files = {"a": tmp_path / "a.h5", "b": tmp_path / "b.h5"}
    with pytest.raises(KeypointImportError, match=r"1 of 2 pose files failed") as err:
        _run(tmp_path, files, broken={"a"})
    assert f"{tmp_path / 'a.h5'}: broken" in str(err.value)
    assert (tmp_path / "out" / "b.parquet").is_file()


def test_a_failure_moves_the_old_table_aside_and_a_success_clears_it(tmp_path):
    dst = tmp_path / "out" / "a.parquet"
    dst.parent.mkdir()
    dst.write_text("old")
    with pytest.raises(KeypointImportError):
        _run(tmp_path, {"a": tmp_path / "a.h5"}, broken={"a"})
    assert not dst.exists() and (tmp_path / "out" / "a.parquet.stale").read_text() == "old"
    assert import_failure(dst)["stale_table"] == "a.parquet.stale"
    _run(tmp_path, {"a": tmp_path / "a.h5"})
    assert dst.is_file() and import_failure(dst) is None
    assert not (tmp_path / "out" / "a.parquet.stale").exists()


def test_an_error_in_the_status_fails_the_video(tmp_path):
    def status(video, src, dst):
        raise FileNotFoundError(f"{video}.mp4: no such processed video")

    with pytest.raises(KeypointImportError, match=r"1 of 1 body pose files failed.*\n  v1.mp4: no such") as err:
        import_pose_tables({"v1": tmp_path / "v1DLC_s.h5"}, lambda v: tmp_path / f"{v}.parquet", status,
                           None, _write, files_name="body pose files", name_by_video=True)
    assert "v1DLC_s.h5" not in str(err.value)  # the message named the video: no file prefix


def test_failure_line_names_the_file_once():
    src = Path("/x/vDLC_s.h5")
    assert failure_line("/x/vDLC_s.h5: bad", src) == "  /x/vDLC_s.h5: bad"
    assert failure_line("bad", src) == "  /x/vDLC_s.h5: bad"
    assert failure_line("v.mp4 missing", src, video="v") == "  v.mp4 missing"
    assert failure_line("v.mp4 missing", src) == "  /x/vDLC_s.h5: v.mp4 missing"


def test_import_settings_are_the_mapping_and_the_individual():
    from mouse_facial_expressions.io.pose_import import import_settings

    assert import_settings({"nose": ["snout"]}, None) == {"bodyparts": {"nose": ["snout"]}, "individual": None}
