import pandas as pd
import pytest

from mouse_facial_expressions.data.folds import (
    FoldError,
    animal_labels,
    check_folds,
    make_folds,
    read_folds,
    write_folds,
)


def _labels(n0=6, n1=5):
    return pd.Series([0] * n0 + [1] * n1, index=[f"a{i:02d}" for i in range(n0 + n1)])


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 42])
def test_no_animal_in_two_roles_over_seeds(seed):
    labels = _labels()
    folds = make_folds(labels, n_folds=5, val_fraction=0.25, seed=seed)
    check_folds(folds, labels.index)  # raises on leakage
    tested = []
    for f in folds:
        roles = [set(f[r]) for r in ("train", "val", "test")]
        assert not (roles[0] & roles[1]) and not (roles[0] & roles[2]) and not (roles[1] & roles[2])
        assert set().union(*roles) == set(labels.index)
        tested += f["test"]
    assert sorted(tested) == sorted(labels.index)


def test_animal_with_both_classes_has_one_role():
    # treated mice: rec1 -> 0, rec4 -> 1; saline mice: rec1 -> 0 only
    frames = pd.DataFrame(
        [{"animal": f"t{i}", "label": lab} for i in range(4) for lab in (0, 1)]
        + [{"animal": f"s{i}", "label": 0} for i in range(4)]
    )
    labels = animal_labels(frames)
    assert labels["t0"] == 1 and labels["s0"] == 0
    folds = make_folds(labels, n_folds=4, val_fraction=0.25, seed=7)
    check_folds(folds, labels.index)
    for f in folds:
        for a in labels.index:
            assert sum(a in f[r] for r in ("train", "val", "test")) == 1


def test_test_folds_are_stratified():
    labels = _labels(6, 6)
    folds = make_folds(labels, n_folds=3, seed=0)
    for f in folds:
        assert sorted(labels[f["test"]].tolist()) == [0, 0, 1, 1]


def test_validation_split_has_both_classes_when_possible():
    labels = _labels(8, 8)
    for f in make_folds(labels, n_folds=4, val_fraction=0.2, seed=1):
        assert set(labels[f["val"]]) == {0, 1}


def test_check_folds_names_leaking_animal():
    folds = [{"fold": 0, "train": ["a", "b"], "val": [], "test": ["b", "c"]}]
    with pytest.raises(FoldError, match=r"fold 0: animals \['b'\] are in both train and test"):
        check_folds(folds, ["a", "b", "c"])


def test_check_folds_names_animal_without_role():
    folds = [{"fold": 0, "train": ["a"], "val": [], "test": ["c"]}]
    with pytest.raises(FoldError, match=r"\['b'\] have no role"):
        check_folds(folds, ["a", "b", "c"])


def test_fewer_folds_when_a_class_is_small():
    folds = make_folds(_labels(6, 3), n_folds=5, seed=0)
    assert len(folds) == 3


def test_impossible_folds_are_a_clear_error():
    with pytest.raises(FoldError, match=r"class 1 has 1 animal"):
        make_folds(_labels(5, 1), n_folds=5)


def test_same_seed_same_folds_and_json_roundtrip(tmp_path):
    labels = _labels()
    a = make_folds(labels, seed=3)
    assert a == make_folds(labels, seed=3)
    assert a != make_folds(labels, seed=4)
    write_folds(tmp_path / "folds.json", a, seed=3)
    assert read_folds(tmp_path / "folds.json", animals=labels.index) == a
    assert '"n_folds": 5' in (tmp_path / "folds.json").read_text()


def test_read_folds_rechecks_leakage(tmp_path):
    write_folds(tmp_path / "folds.json", [{"fold": 0, "train": ["a", "b"], "val": ["b"], "test": ["c"]}], seed=0)
    with pytest.raises(FoldError, match=r"folds.json.*\['b'\] are in both train and val"):
        read_folds(tmp_path / "folds.json", animals=["a", "b", "c"])


def test_validation_never_takes_a_class_last_training_animal():
    labels = _labels(2, 2)
    for f in make_folds(labels, n_folds=2, val_fraction=0.5, seed=0):
        assert set(labels[f["train"]]) == {0, 1}
        assert f["val"] == []
