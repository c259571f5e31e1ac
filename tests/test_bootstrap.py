"""The one bootstrap (mouse_facial_expressions.bootstrap) on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pytest

from mouse_facial_expressions.bootstrap import (
    CI, bootstrap, bootstrap_stats, draw_groups, group_rows, percentile_ci, resample_groups)


def test_group_rows_are_in_sorted_key_order():
    rows = group_rows(["b", "a", "b", "c"])
    assert [r.tolist() for r in rows] == [[1], [0, 2], [3]]
    assert [r.tolist() for r in group_rows([10, 2, 10])] == [[1], [0, 2]]  # numbers sort as numbers


def test_group_rows_drop_or_isolate_rows_without_a_key():
    keys = ["a", None, "a", np.nan]
    assert [r.tolist() for r in group_rows(keys)] == [[0, 2]]
    assert sorted(r.tolist() for r in group_rows(keys, missing="alone")) == [[0, 2], [1], [3]]
    with pytest.raises(ValueError, match="missing"):
        group_rows(keys, missing="ignore")


def test_draw_groups_is_one_integers_call_of_the_seeded_stream():
    expected = np.random.default_rng(7).integers(0, 4, size=(5, 4))
    assert np.array_equal(draw_groups(4, 5, 7), expected)


def test_draw_groups_continues_a_shared_generator():
    rng, ref = np.random.default_rng(3), np.random.default_rng(3)
    first, second = draw_groups(2, 3, rng), draw_groups(5, 4, rng)
    assert np.array_equal(first, ref.integers(0, 2, size=(3, 2)))
    assert np.array_equal(second, ref.integers(0, 5, size=(4, 5)))


def test_a_resample_takes_every_row_of_a_drawn_group_as_often_as_it_is_drawn():
    members = [np.array([0, 1]), np.array([2])]
    draws = draw_groups(2, 20, 0)
    for rows, draw in zip(resample_groups(members, 20, 0), draws):
        assert rows.tolist() == [r for g in draw for r in members[g].tolist()]


def test_bootstrap_stats_without_resamples_or_groups_draw_nothing():
    rng = np.random.default_rng(0)
    assert len(bootstrap_stats(len, [np.array([0])], 0, rng)) == 0
    assert len(bootstrap_stats(len, [], 10, rng)) == 0
    assert np.array_equal(rng.integers(0, 9, 5), np.random.default_rng(0).integers(0, 9, 5))


def test_percentile_ci_leaves_out_and_counts_undefined_resamples():
    stats = np.r_[np.arange(95, dtype=float), [np.nan] * 5]
    ci = percentile_ci(1.0, stats)
    assert (ci.n_boot, ci.n_undefined, ci.n_resamples) == (95, 5, 100)
    assert ci.low == pytest.approx(np.percentile(np.arange(95), 2.5)) and ci.high == pytest.approx(np.percentile(np.arange(95), 97.5))


def test_more_than_a_tenth_undefined_gives_no_interval():
    ci = percentile_ci(0.5, np.r_[np.ones(89), [np.nan] * 11])
    assert np.isnan(ci.low) and np.isnan(ci.high) and ci.n_undefined == 11
    assert str(ci) == "0.500 [n/a (11 of 100 resamples undefined)]"


def test_bootstrap_of_a_constant_is_that_constant():
    ci = bootstrap(lambda idx: 2.0, ["a", "b", "c"], n=30, seed=1)
    assert ci == CI(2.0, 2.0, 2.0, 30, 0)


def test_bootstrap_point_estimate_uses_every_grouped_row():
    x = np.array([1.0, 2.0, 3.0, 10.0])
    assert bootstrap(lambda idx: x[idx].sum(), ["a", "a", None, "b"], n=0).value == 16.0
    assert bootstrap(lambda idx: x[idx].sum(), ["a", "a", None, "b"], n=0, missing="drop").value == 13.0
