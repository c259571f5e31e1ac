import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.data.datasets import BalancedWindowSampler
from mouse_facial_expressions.data.sequences import make_windows, select_per_video, window_span


def _frames(times, video="v", run=None, label=0, animal="a"):
    times = np.asarray(times, dtype=float)
    return pd.DataFrame(
        {
            "video": video,
            "animal": animal,
            "row": np.arange(len(times)),
            "time": times,
            "run": 0 if run is None else run,
            "label": label,
            "soft": 0.1 if label == 0 else 0.9,
        }
    )


def test_windows_never_cross_gaps():
    rng = np.random.default_rng(0)
    dt = np.where(rng.random(300) < 0.05, 2.0, 0.1)  # occasional 2 s gaps, one run id
    f = _frames(np.cumsum(dt))
    w = make_windows(f, num_frames=5, frame_stride=2, max_gap_s=0.5, short_runs="drop")
    assert len(w) > 0
    times = f["time"].to_numpy()
    for rows in w["rows"]:
        span = np.arange(rows[0], rows[-1] + 1)
        assert np.diff(times[span]).max() <= 0.5 + 1e-9


def test_windows_stay_inside_one_run():
    f = _frames(np.arange(20) * 0.1, run=np.repeat([0, 1], 10))
    w = make_windows(f, num_frames=3, frame_stride=2, max_gap_s=1.0)
    for rows in w["rows"]:
        assert len(set(f["run"].to_numpy()[rows])) == 1
    assert len(w) == 2 * (10 - window_span(3, 2) + 1)


def test_window_frames_are_stride_apart_with_times():
    f = _frames(np.arange(12) * 0.1)
    w = make_windows(f, num_frames=4, frame_stride=3, max_gap_s=0.5)
    assert w["rows"].iloc[0] == [0, 3, 6, 9]
    assert w["start_time"].iloc[0] == pytest.approx(0.0) and w["end_time"].iloc[0] == pytest.approx(0.9)
    assert len(w) == 12 - 10 + 1


def test_short_runs_resampled_or_dropped():
    f = _frames(np.arange(4) * 0.1)
    res = make_windows(f, num_frames=10, frame_stride=2, max_gap_s=0.5, short_runs="resample")
    assert len(res) == 1 and len(res["rows"].iloc[0]) == 10 and res["resampled"].iloc[0]
    assert set(res["rows"].iloc[0]) == {0, 1, 2, 3}
    assert res["rows"].iloc[0] == sorted(res["rows"].iloc[0])
    assert len(make_windows(f, 10, 2, 0.5, short_runs="drop")) == 0


def test_same_input_same_windows():
    f = _frames(np.cumsum(np.r_[0, np.full(50, 0.1), 3.0, np.full(30, 0.1)]))
    a = make_windows(f, 5, 2, 0.5, step=3)
    b = make_windows(f.sample(frac=1.0, random_state=1), 5, 2, 0.5, step=3)  # row order does not matter
    pd.testing.assert_frame_equal(a, b)


def test_select_per_video_evenly_spaced():
    f = pd.concat([_frames(np.arange(40) * 0.1, video="v1"), _frames(np.arange(40) * 0.1, video="v2")])
    w = make_windows(f, 2, 1, 0.5)  # 39 windows per video
    sel = select_per_video(w, 3)
    assert sel.groupby("video").size().tolist() == [3, 3]
    assert sel[sel["video"] == "v1"]["start_time"].round(1).tolist() == [0.0, 1.9, 3.8]
    pd.testing.assert_frame_equal(sel, select_per_video(w, 3))


def _imbalanced_windows():
    # class 0: 3 videos, one with many more windows; class 1: one video
    f = pd.concat(
        [
            _frames(np.arange(200) * 0.1, video="big0", animal="a"),
            _frames(np.arange(20) * 0.1, video="small0", animal="b"),
            _frames(np.arange(20) * 0.1, video="small0b", animal="c"),
            _frames(np.arange(30) * 0.1, video="one1", animal="d", label=1),
        ]
    )
    return make_windows(f, 4, 2, 0.5)


def test_sampler_balances_classes_then_videos():
    w = _imbalanced_windows()
    s = BalancedWindowSampler(w, epoch_size=6000, seed=0)
    idx = s.indices()
    labels = w["label"].to_numpy()[idx]
    assert abs(labels.mean() - 0.5) < 0.03  # windows are ~93% class 0
    videos = pd.Series(w["video"].to_numpy()[idx][labels == 0]).value_counts(normalize=True)
    assert all(abs(videos - 1 / 3) < 0.04)


def test_sampler_seeded_and_different_per_epoch():
    w = _imbalanced_windows()
    a, b = BalancedWindowSampler(w, 100, seed=5), BalancedWindowSampler(w, 100, seed=5)
    assert list(a) == list(b) and len(a) == 100
    a.set_epoch(1)
    assert list(a) != list(b)
