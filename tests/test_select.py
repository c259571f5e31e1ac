"""Frame selection policies."""

from __future__ import annotations

import numpy as np
import pytest

from mouse_facial_expressions.preprocess import select


def test_time_grid_30_to_10_fps_takes_every_third_frame():
    assert np.flatnonzero(select.time_grid(10, 30.0, 10.0)).tolist() == [0, 3, 6, 9]


def test_time_grid_non_integer_ratio_follows_real_time():
    idx = np.flatnonzero(select.time_grid(11, 25.0, 10.0))
    assert idx.tolist() == [0, 3, 5, 8, 10]  # nearest frames to 0, .1, .2, .3, .4 s (ties round up)
    assert np.abs(idx / 25.0 - np.arange(len(idx)) / 10.0).max() <= 0.5 / 25.0 + 1e-9


def test_time_grid_above_video_rate_keeps_every_frame():
    assert select.time_grid(7, 30.0, 60.0).all()


def test_seed_candidates_every_kth_usable_frame():
    usable = np.ones(35, bool)
    usable[20] = False
    assert select.seed_candidates(usable, 10).tolist() == [0, 10, 30]


def test_n_sharpest_keeps_top_n_and_skips_nan():
    s = np.array([1.0, 5.0, np.nan, 3.0, 5.0, 0.5])
    keep = select.n_sharpest(s, 3)
    assert np.flatnonzero(keep).tolist() == [1, 3, 4]
    assert select.n_sharpest(s, 100).sum() == 5


def test_temporal_policy_applies_thresholds_in_time_order():
    usable = np.ones(12, bool)
    usable[6] = False
    cand = select.candidates("temporal", usable, 30.0, target_fps=10.0, every_k=10)
    assert cand.tolist() == [0, 3, 9]
    keep = select.final_choice("temporal", np.array([50.0, 5.0, 80.0]), np.array([0.9, 0.9, 0.5]),
                               n_keep=1, min_sharpness=10.0, min_likelihood=0.6)
    assert keep.tolist() == [True, False, False]


def test_seed_policy_final_choice_is_n_sharpest():
    keep = select.final_choice("seed", np.array([1.0, 9.0, 4.0]), np.ones(3), n_keep=2,
                               min_sharpness=100.0, min_likelihood=0.99)
    assert keep.tolist() == [False, True, True]


def test_runs_split_at_gaps_longer_than_max_gap():
    t = np.array([0.0, 0.1, 0.2, 0.8, 0.9, 1.4, 2.0])
    assert select.split_runs(t, 0.5).tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert select.split_runs(np.zeros(0), 0.5).tolist() == []


def test_unknown_policy_is_an_error():
    with pytest.raises(ValueError, match="unknown selection policy"):
        select.candidates("best", np.ones(3, bool), 30.0, target_fps=10.0, every_k=1)
