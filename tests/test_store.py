"""Frame store: atomic per-video files, completeness, index and memory maps."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.preprocess import store


def _index(video: str, n: int) -> pd.DataFrame:
    frames = np.arange(n) * 3
    df = pd.DataFrame({
        "video": video, "row": np.arange(n), "frame": frames, "time": frames / 30.0,
        "side": ["left", "right"] * (n // 2) + ["left"] * (n % 2),
        "sharpness": np.linspace(1, 2, n), "intensity": 100.0, "min_likelihood": 0.9, "run": 0,
    })
    for c in ("eye_x", "eye_y", "ear_x", "ear_y", "nose_x", "nose_y"):
        df[c] = 1.0
    return df


def _crops(n: int, s: int = 8) -> np.ndarray:
    return (np.arange(n * s * s) % 251).astype(np.uint8).reshape(n, s, s)


def test_write_then_load_index_and_memmap(tmp_path):
    store.write_video_frames(tmp_path, "a", _crops(4), _index("a", 4), {"fps": 30.0})
    store.write_video_frames(tmp_path, "b", _crops(2), _index("b", 2), {"fps": 25.0})
    idx = store.load_index(tmp_path)
    assert list(idx.columns) == store.INDEX_COLUMNS
    assert idx["video"].tolist() == ["a"] * 4 + ["b"] * 2
    mm = store.open_frames(tmp_path, "a")
    assert isinstance(mm, np.memmap) and mm.shape == (4, 8, 8) and mm.dtype == np.uint8
    np.testing.assert_array_equal(mm, _crops(4))
    assert store.video_meta(tmp_path, "b")["fps"] == 25.0


def test_no_temporary_files_left_after_a_write(tmp_path):
    store.write_video_frames(tmp_path, "a", _crops(3), _index("a", 3), {"fps": 30.0}, png=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a.npy", "a.parquet"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["frame00000.png", "frame00003.png", "frame00006.png"]


def test_npy_without_parquet_is_incomplete_and_cleaned(tmp_path):
    # simulate a run killed between the .npy rename and the .parquet rename
    np.save(tmp_path / "a.npy", _crops(2))
    (tmp_path / ".a.parquet.tmp-123").write_bytes(b"half")
    assert not store.is_complete(tmp_path, "a")
    assert store.complete_videos(tmp_path) == []
    removed = store.clean_partial(tmp_path, "a")
    assert {p.name for p in removed} == {"a.npy", ".a.parquet.tmp-123"}
    assert list(tmp_path.iterdir()) == []


def test_clean_partial_keeps_complete_outputs_unless_asked(tmp_path):
    store.write_video_frames(tmp_path, "a", _crops(2), _index("a", 2), {"fps": 30.0})
    (tmp_path / ".a.npy.tmp-9").write_bytes(b"x")
    store.clean_partial(tmp_path, "a")
    assert store.is_complete(tmp_path, "a") and not (tmp_path / ".a.npy.tmp-9").exists()
    store.clean_partial(tmp_path, "a", all_outputs=True)
    assert list(tmp_path.iterdir()) == []


def test_clean_partial_does_not_touch_other_videos_with_a_common_prefix(tmp_path):
    store.write_video_frames(tmp_path, "m1_rec1", _crops(1), _index("m1_rec1", 1), {"fps": 30.0})
    np.save(tmp_path / "m1.npy", _crops(1))
    store.clean_partial(tmp_path, "m1")
    assert store.is_complete(tmp_path, "m1_rec1") and not (tmp_path / "m1.npy").exists()


def test_store_json_lists_fps_of_complete_videos(tmp_path):
    store.write_video_frames(tmp_path, "a", _crops(1), _index("a", 1), {"fps": 30.0})
    np.save(tmp_path / "b.npy", _crops(1))  # incomplete: not listed
    data = store.write_store_json(tmp_path, {"out_size": 8, "crop_size": 300, "policy": "temporal", "target_fps": 10.0})
    on_disk = json.loads((tmp_path / store.STORE_JSON).read_text())
    assert on_disk == data
    assert on_disk["fps"] == {"a": 30.0} and on_disk["out_size"] == 8 and on_disk["policy"] == "temporal"


def test_bad_index_is_rejected_before_anything_is_written(tmp_path):
    bad = _index("a", 3).drop(columns=["run"])
    with pytest.raises(ValueError, match="lacks columns"):
        store.write_video_frames(tmp_path, "a", _crops(3), bad, {})
    with pytest.raises(ValueError, match="index rows"):
        store.write_video_frames(tmp_path, "a", _crops(2), _index("a", 3), {})
    assert not any(tmp_path.iterdir())


def test_empty_video_and_missing_store(tmp_path):
    store.write_video_frames(tmp_path, "a", _crops(0), _index("a", 0), {"fps": 30.0})
    assert store.open_frames(tmp_path, "a").shape == (0, 8, 8)
    assert store.load_index(tmp_path).empty
    with pytest.raises(FileNotFoundError):
        store.load_index(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="not a complete video"):
        store.open_frames(tmp_path, "zzz")
