"""Window -> video -> animal aggregation on a hand-made table; breakdowns by metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.evaluation.aggregate import (
    MIXED_FOLD,
    aggregate_levels,
    to_animal,
    to_video,
    validate_predictions,
)
from mouse_facial_expressions.evaluation.breakdown import add_sex, breakdown, sex_from_id


def _windows() -> pd.DataFrame:
    # animal f1: rec1 (label 0) windows .2 .4 -> video .3
    #            rec4 (label 1) windows .9 -> .9 ; rec3 (label 1) windows .6 .8 1.0 -> .8
    #            animal f1 label 1 = mean(.9, .8) = .85 (video mean, NOT window mean .875)
    # animal m2: rec1 (label 0) window .1 -> .1
    rows = [
        (0, "f1_rec1_preinjection", "f1", 0, 2, 0, 0.2),
        (0, "f1_rec1_preinjection", "f1", 1, 3, 0, 0.4),
        (0, "f1_rec4_4h-postinjection", "f1", 0, 2, 1, 0.9),
        (0, "f1_rec3_2h-postinjection", "f1", 0, 2, 1, 0.6),
        (0, "f1_rec3_2h-postinjection", "f1", 5, 7, 1, 0.8),
        (0, "f1_rec3_2h-postinjection", "f1", 10, 12, 1, 1.0),
        (1, "m2_rec1_preinjection", "m2", 0, 2, 0, 0.1),
    ]
    df = pd.DataFrame(rows, columns=["fold", "video", "animal", "start_time", "end_time", "label", "p1"])
    df["cohort"] = df["animal"].map({"f1": "A", "m2": "B"})
    df["recording"] = df["video"].str.extract(r"_rec(\d)_")[0].astype(int)
    return validate_predictions(df)


def test_video_level_is_mean_of_windows():
    v = to_video(_windows()).set_index("video")
    assert v.loc["f1_rec1_preinjection", "p1"] == pytest.approx(0.3)
    assert v.loc["f1_rec3_2h-postinjection", "p1"] == pytest.approx(0.8)
    assert v.loc["m2_rec1_preinjection", "p1"] == pytest.approx(0.1)
    assert v.loc["f1_rec3_2h-postinjection", "n_windows"] == 3
    assert v.loc["f1_rec3_2h-postinjection", "end_time"] == 12
    assert len(v) == 4


def test_video_level_keeps_label_fold_and_metadata():
    v = to_video(_windows()).set_index("video")
    assert v.loc["f1_rec4_4h-postinjection", "label"] == 1
    assert v.loc["m2_rec1_preinjection", "fold"] == 1
    assert v.loc["f1_rec1_preinjection", "cohort"] == "A"
    assert v.loc["f1_rec3_2h-postinjection", "recording"] == 3


def test_animal_level_is_mean_of_videos_with_same_label():
    a = to_animal(to_video(_windows())).set_index(["animal", "label"])
    assert a.loc[("f1", 1), "p1"] == pytest.approx(0.85)
    assert a.loc[("f1", 0), "p1"] == pytest.approx(0.3)
    assert a.loc[("f1", 1), "n_videos"] == 2
    assert a.loc[("f1", 1), "n_windows"] == 4
    assert a.loc[("m2", 0), "cohort"] == "B"
    assert "recording" not in a.columns  # differs between f1's label-1 videos
    assert len(a) == 3


def test_fold_is_mixed_when_several_folds_scored_a_group():
    w = _windows()
    w.loc[w["video"] == "f1_rec4_4h-postinjection", "fold"] = 2
    v = to_video(w).set_index("video")
    a = to_animal(to_video(w)).set_index(["animal", "label"])
    assert v.loc["f1_rec4_4h-postinjection", "fold"] == 2
    assert a.loc[("f1", 1), "fold"] == MIXED_FOLD
    assert a.loc[("f1", 0), "fold"] == 0


def test_ensemble_rows_of_one_video_average_over_folds():
    w = _windows().iloc[[6, 6]].copy()  # the same window scored by two folds
    w["fold"] = [0, 1]
    w["p1"] = [0.2, 0.4]
    v = to_video(w)
    assert v["p1"].iloc[0] == pytest.approx(0.3) and v["fold"].iloc[0] == MIXED_FOLD


def test_unlabelled_videos_form_one_group_per_animal():
    w = _windows()
    w["label"] = np.nan
    a = to_animal(to_video(w))
    assert len(a) == 2
    f1 = a.set_index("animal").loc["f1"]
    assert f1["p1"] == pytest.approx((0.3 + 0.9 + 0.8) / 3)
    assert np.isnan(f1["label"])


def test_aggregate_levels_returns_three_tables():
    levels = aggregate_levels(_windows())
    assert [len(levels[k]) for k in ("window", "video", "animal")] == [7, 4, 3]


def test_video_with_two_labels_is_an_error():
    w = _windows()
    w.loc[0, "label"] = 1
    with pytest.raises(ValueError, match="f1_rec1_preinjection.*label"):
        to_video(w)


def test_validate_names_the_bad_row():
    w = _windows()
    w.loc[3, "p1"] = 1.5
    with pytest.raises(ValueError, match="row 3: p1"):
        validate_predictions(w, "run/predictions.csv")
    with pytest.raises(ValueError, match="missing column"):
        validate_predictions(w.drop(columns="fold"))


def test_empty_label_strings_mean_unlabelled():
    w = _windows()
    w["label"] = ""
    assert validate_predictions(w)["label"].isna().all()


def test_sex_from_id_prefix():
    assert [sex_from_id(a) for a in ["f12", "m3", "M7", "c1", "mouse3", "f_2"]] == [
        "female", "male", "male", "unknown", "unknown", "female"]


def test_add_sex_prefers_a_sex_column():
    df = pd.DataFrame({"animal": ["m1", "m2", "x3"], "sex": ["F", None, "male"]})
    assert add_sex(df)["sex"].tolist() == ["female", "male", "male"]


def test_breakdown_by_sex_and_cohort():
    a = to_animal(to_video(_windows()))
    bd = breakdown(a)
    assert set(bd["column"]) == {"sex", "cohort"}
    female = bd[(bd["column"] == "sex") & (bd["group"] == "female")].iloc[0]
    assert female["n"] == 2 and female["n_pos"] == 1 and female["n_neg"] == 1
    assert female["accuracy"] == pytest.approx(1.0)  # .3 called 0, .85 called 1
    male = bd[(bd["column"] == "sex") & (bd["group"] == "male")].iloc[0]
    assert np.isnan(male["auroc"])  # one class only


def test_breakdown_with_bootstrap_adds_cis():
    a = to_animal(to_video(_windows()))
    bd = breakdown(a, ["cohort"], n_boot=20)
    assert {"accuracy_low", "accuracy_high"} <= set(bd.columns)
