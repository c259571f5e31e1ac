"""Animal-grouped folds: outer test folds, inner train/validation split, leakage check.

Every split is by animal: an animal's frames are all in train, all in val or all in test
of a fold. The outer split is ``StratifiedGroupKFold`` over animals, stratified on the
animal's label (1 when any of its labelled videos is class 1, e.g. a treated mouse whose
rec1 is 0 and rec4 is 1). The training animals of each outer fold are split again into
train and validation (model selection and early stopping); the test fold is only used for
the final test. Folds are stored as JSON, never pickle.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

ROLES = ("train", "val", "test")


class FoldError(ValueError):
    """Folds that leak or cannot be made; the message names the animals."""


def animal_labels(frames: pd.DataFrame, animal_col: str = "animal", label_col: str = "label") -> pd.Series:
    """Stratification label per animal: 1 when any of its rows is class 1, else 0."""
    return frames.groupby(animal_col)[label_col].max().astype(int).sort_index()


def make_folds(
    labels: pd.Series,
    n_folds: int = 5,
    val_fraction: float = 0.2,
    seed: int = 42,
) -> list[dict]:
    """Outer stratified folds by animal, each with an inner train/val split by animal.

    Args:
        labels: animal -> stratification label (0/1), see :func:`animal_labels`.
        n_folds: wanted number of outer folds; lowered (with a warning) to the number of
            animals in the smaller class when that is smaller.
        val_fraction: share of each fold's training animals used for validation
            (per class, at least one animal when the class has two or more; a class's
            last training animal is never moved to validation, so val may be empty).
        seed: random seed (same seed, same folds).

    Returns:
        ``[{"fold": k, "train": [...], "val": [...], "test": [...]}, ...]`` (sorted names).

    Raises:
        FoldError: fewer than two animals in a class.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = labels.sort_index()
    counts = labels.value_counts().reindex([0, 1], fill_value=0)
    smallest = int(counts.min())
    if smallest < 2:
        raise FoldError(
            f"cannot make animal-grouped folds: class {int(counts.idxmin())} has {smallest} animal(s) "
            f"(class 0: {list(labels.index[labels == 0])}, class 1: {list(labels.index[labels == 1])}); "
            "each class needs at least 2 animals"
        )
    k = min(n_folds, smallest)
    if k < n_folds:
        log.warning("only %d animals in the smaller class: using %d outer folds instead of %d", smallest, k, n_folds)
    animals = labels.index.to_numpy()
    y = labels.to_numpy()
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    rng = np.random.default_rng(seed)
    folds = []
    for i, (train_idx, test_idx) in enumerate(splitter.split(animals, y, groups=animals)):
        train, val = _inner_split(labels.iloc[train_idx], val_fraction, rng)
        folds.append({"fold": i, "train": sorted(train), "val": sorted(val), "test": sorted(animals[test_idx].tolist())})
    return folds


def _inner_split(labels: pd.Series, val_fraction: float, rng: np.random.Generator) -> tuple[list, list]:
    """Train/val split of one fold's training animals, stratified per class when possible."""
    if val_fraction <= 0:
        return labels.index.tolist(), []
    val: list = []
    for c in sorted(labels.unique()):
        members = labels.index[labels == c].to_numpy()
        if len(members) < 2:  # keep the only animal of a class for training
            continue
        n_val = int(np.clip(round(val_fraction * len(members)), 1, len(members) - 1))
        val += rng.permutation(members)[:n_val].tolist()
    if not val:  # taking any animal would leave a class without training animals
        log.warning("no validation animals: every class has a single training animal (%s)", list(labels.index))
    train = [a for a in labels.index if a not in set(val)]
    return train, val


def check_folds(folds: list[dict], animals) -> None:
    """Leakage check, run every time folds are made or loaded.

    Checks that in every fold each animal has exactly one role (train, val or test), that
    every animal of the task has a role, that no unknown animal appears, and that each
    animal is tested in exactly one fold.

    Raises:
        FoldError: naming the fold and the animals.
    """
    animals = set(map(str, animals))
    tested: dict[str, list[int]] = {}
    for f in folds:
        k = f["fold"]
        roles = {r: set(map(str, f.get(r, []))) for r in ROLES}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = roles[a] & roles[b]
            if both:
                raise FoldError(f"fold {k}: animals {sorted(both)} are in both {a} and {b} (leakage)")
        for r in ROLES:
            for animal in map(str, f.get(r, [])):
                if list(map(str, f.get(r, []))).count(animal) > 1:
                    raise FoldError(f"fold {k}: animal {animal!r} is listed twice in {r}")
        seen = set().union(*roles.values())
        missing, unknown = animals - seen, seen - animals
        if missing:
            raise FoldError(f"fold {k}: animals {sorted(missing)} have no role")
        if unknown:
            raise FoldError(f"fold {k}: animals {sorted(unknown)} are not in the task")
        if not roles["train"] or not roles["test"]:
            raise FoldError(f"fold {k}: empty {'train' if not roles['train'] else 'test'} set")
        for a in roles["test"]:
            tested.setdefault(a, []).append(k)
    twice = {a: ks for a, ks in tested.items() if len(ks) > 1}
    if twice:
        raise FoldError(f"animals tested in more than one fold: {twice}")
    never = animals - set(tested)
    if never:
        raise FoldError(f"animals never tested: {sorted(never)}")


def write_folds(path: str | Path, folds: list[dict], seed: int) -> None:
    """Write ``folds.json`` atomically: ``{"n_folds", "seed", "folds": [...]}``."""
    from mouse_facial_expressions.io.atomic import write_json

    write_json(path, {"n_folds": len(folds), "seed": seed, "folds": folds})


def read_folds(path: str | Path, animals=None) -> list[dict]:
    """Read ``folds.json`` (and run :func:`check_folds` when ``animals`` is given)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        folds = doc["folds"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise FoldError(f"{path}: not a folds file ({err})") from err
    if animals is not None:
        try:
            check_folds(folds, animals)
        except FoldError as err:
            raise FoldError(f"{path}: {err}") from err
    return folds
