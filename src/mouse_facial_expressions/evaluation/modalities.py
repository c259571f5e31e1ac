"""The modality table of a fused run: each modality alone, each left out, and all together.

``mfe train --modalities ...`` scores each fold's test windows once per subset of the model's
modalities (``fold<k>/predictions_modalities.csv``, column ``variant``: ``all``,
``only_<m>``, ``without_<m>``). The model was trained with modality dropout, so each subset is
one it learned to score with. This module turns those tables into:

- one row per variant: accuracy at window, video and animal level, animal-level AUROC, and a
  95% bootstrap CI of the animal accuracy over animals;
- each modality's contribution: the fused model's animal accuracy minus its accuracy with that
  modality left out (leave-one-modality-out; with two modalities, "without m" is the other alone).

These are readings of one fused model. Models trained on one modality each (``bench/bench_fusion.py``)
are the other comparison, and the stricter one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mouse_facial_expressions.data.modalities import MODALITIES
from mouse_facial_expressions.evaluation.aggregate import aggregate_levels
from mouse_facial_expressions.evaluation.metrics import METRICS, THRESHOLD, bootstrap_ci


def read_modality_predictions(run_dir: str | Path) -> pd.DataFrame | None:
    """Every fold's ``predictions_modalities.csv`` of a run, or None when it has none."""
    files = sorted(Path(run_dir).glob("fold*/predictions_modalities.csv"))
    if not files:
        return None
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def _modalities_of(variant: str, fused: list[str]) -> list[str]:
    if variant.startswith("only_"):
        return [variant[len("only_"):]]
    if variant.startswith("without_"):
        return [m for m in fused if m != variant[len("without_"):]]
    return list(fused)


def modality_table(pred: pd.DataFrame, n_boot: int = 1000, seed: int = 0, threshold: float = THRESHOLD) -> dict:
    """``{"rows": [...], "contributions": [...]}`` from a run's modality predictions (labelled windows only).

    Each row: ``variant``, ``modalities`` (``+``-joined), ``window_accuracy``, ``video_accuracy``,
    ``animal_accuracy`` with ``animal_low``/``animal_high`` (bootstrap over animals), ``animal_auroc``,
    ``n_animals``. Each contribution: ``modality``, ``animal_accuracy_drop`` (all minus without it),
    ``auroc_drop``.
    """
    pred = pred[pred["label"].notna()]
    variants = set(pred["variant"])
    fused = [m for m in MODALITIES if f"only_{m}" in variants]
    rows = []
    for variant, part in pred.groupby("variant", sort=False):
        levels = aggregate_levels(part.drop(columns="variant"))
        animal = levels["animal"]
        ci = bootstrap_ci(animal, "accuracy", n=n_boot, seed=seed, threshold=threshold)
        rows.append(dict(
            variant=variant, modalities="+".join(_modalities_of(variant, fused) or ["(model's)"]),
            window_accuracy=METRICS["accuracy"](levels["window"]["label"], levels["window"]["p1"], threshold),
            video_accuracy=METRICS["accuracy"](levels["video"]["label"], levels["video"]["p1"], threshold),
            animal_accuracy=ci.value, animal_low=ci.low, animal_high=ci.high,
            animal_auroc=METRICS["auroc"](animal["label"], animal["p1"], threshold), n_animals=int(animal["animal"].nunique()),
        ))
    by = {r["variant"]: r for r in rows}
    contributions = []
    if "all" in by:
        for m in fused:
            other = by.get(f"without_{m}") or (by.get(f"only_{fused[1 - fused.index(m)]}") if len(fused) == 2 else None)
            if other is not None:
                contributions.append(dict(modality=m, animal_accuracy_drop=by["all"]["animal_accuracy"] - other["animal_accuracy"],
                                          auroc_drop=by["all"]["animal_auroc"] - other["animal_auroc"]))
    return {"rows": rows, "contributions": contributions}
