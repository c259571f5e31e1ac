import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mouse_facial_expressions.data.soft_labels import (
    SoftLabelSpec,
    column_p1,
    create_soft_label,
    raters_p1,
    smoothing_p1,
    soft_p1,
    to_distribution,
)


def test_create_soft_label_matches_the_original():
    assert create_soft_label(1, 0.1) == [0.1, 0.9]
    assert create_soft_label(0, 0.1) == [0.9, 0.1]


def test_smoothing_distributions_sum_to_one():
    d = to_distribution(smoothing_p1(np.array([0, 1, 1, 0]), 0.2))
    np.testing.assert_allclose(d.sum(axis=1), 1.0)
    np.testing.assert_allclose(d[:, 1], [0.2, 0.8, 0.8, 0.2])


def test_dose_mapping_gives_graded_intensity():
    dose = pd.Series(["saline", "low", "mid", "high"], name="treatment")
    p1 = column_p1(dose, mapping={"saline": 0.0, "low": 0.33, "mid": 0.66, "high": 1.0})
    np.testing.assert_allclose(p1, [0.0, 0.33, 0.66, 1.0])
    np.testing.assert_allclose(to_distribution(p1).sum(axis=1), 1.0)


def test_hours_since_injection_scaled_and_clipped():
    hours = pd.Series([-1.0, 0.0, 2.0, 4.0, 6.0], name="hours")
    np.testing.assert_allclose(column_p1(hours, scale=(0.0, 4.0)), [0.0, 0.0, 0.5, 1.0, 1.0])


def test_unmapped_value_is_named():
    with pytest.raises(ValueError, match=r"\['mid'\]"):
        column_p1(pd.Series(["high", "mid"], name="treatment"), mapping={"high": 1.0})


def test_raters_scores_become_a_distribution():
    df = pd.DataFrame({"r1": [1, 0, 1.0], "r2": [1, 1, np.nan], "r3": [0, 1, 0.5]})
    p1 = raters_p1(df, ["r1", "r2", "r3"])
    np.testing.assert_allclose(p1, [2 / 3, 2 / 3, 0.75])
    np.testing.assert_allclose(to_distribution(p1).sum(axis=1), 1.0)


def test_raters_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="outside"):
        raters_p1(pd.DataFrame({"r1": [2.0]}), ["r1"])


def test_spec_dispatches_and_validates():
    df = pd.DataFrame({"label": [0, 1], "treatment": ["saline", "high"]})
    spec = SoftLabelSpec(source="column", column="treatment", mapping={"saline": 0.1, "high": 0.9})
    np.testing.assert_allclose(soft_p1(df, spec), [0.1, 0.9])
    with pytest.raises(ValidationError):
        SoftLabelSpec(source="column")
    with pytest.raises(ValidationError):
        SoftLabelSpec(source="smoothing", smoothin=0.1)
