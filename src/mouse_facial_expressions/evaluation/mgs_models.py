"""A model's Mouse Grimace Scale predictions against the raters and the truth (``mfe evaluate``).

A run trained with ``--targets au|au+class`` (models/parts/au.py) predicts, per test window, the
expected score of each action unit (``au_ot ... au_wc``, 0..2) and ``mgs`` (their mean). This
module compares them, per AU and for the total:

- with the **mean rater** of the task's rated frames (``au_ratings.parquet``; each rated frame
  takes the prediction of the test window whose centre is nearest, within the task's
  ``tolerance_s``): quadratic-weighted kappa, Pearson r and RMSE with bootstrap CIs over
  animals (:func:`evaluation.mgs.vs_mean_rater`), beside the raters' own agreement on the same
  frames (:func:`evaluation.mgs.inter_rater`: mean pairwise kappa and r, the ceiling);
- with the **synthetic truth** when the project has ``truth/truth.parquet`` (``mfe synth``):
  each test window's true intensity is the mean of ``2 * au_*`` over its frames; Pearson r and
  RMSE with CIs over animals (:func:`evaluation.mgs.vs_truth`).

Pure functions take tables; :func:`run_mgs` finds them from a run folder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from mouse_facial_expressions.data.task_files import TaskFiles
from mouse_facial_expressions.evaluation.mgs import TARGETS, vs_mean_rater, vs_truth
from mouse_facial_expressions.io.ratings import AUS, TRUTH_COLUMNS

log = logging.getLogger(__name__)

#: Prediction column of each row of the MGS table (:data:`evaluation.mgs.TARGETS`).
PRED_OF = {**{a: f"au_{a}" for a in AUS}, "total": "mgs"}
#: Columns of ``mgs.csv``.
MGS_COLUMNS = ["target", "n_items", "kappa", "kappa_low", "kappa_high", "r", "r_low", "r_high", "rmse",
               "ceiling_kappa", "ceiling_r", "loro_kappa", "loro_ceiling_kappa", "loro_r", "loro_ceiling_r", "truth_n_windows", "truth_r", "truth_r_low", "truth_r_high", "truth_rmse",
               "truth_rmse_low", "truth_rmse_high"]


def has_au_predictions(pred: pd.DataFrame) -> bool:
    """True when a predictions table holds the AU columns of a model with AU heads."""
    return all(c in pred.columns for c in PRED_OF.values())


def nearest_windows(items: pd.DataFrame, windows: pd.DataFrame, tolerance_s: float) -> np.ndarray:
    """For each rated frame (``video, time_s``), the row of ``windows`` (``video, start_time,
    end_time``) whose centre is nearest, or -1 when none of its video lies within ``tolerance_s``."""
    out = np.full(len(items), -1, dtype=np.int64)
    centre = (windows["start_time"].to_numpy(np.float64) + windows["end_time"].to_numpy(np.float64)) / 2.0
    by_video = windows.groupby(windows["video"].astype(str)).indices
    t_item = items["time_s"].to_numpy(np.float64)
    for video, idx in items.groupby(items["video"].astype(str)).indices.items():
        w = by_video.get(video)
        if w is None:
            continue
        w = w[np.argsort(centre[w], kind="stable")]
        c = centre[w]
        j = np.searchsorted(c, t_item[idx])
        left, right = np.clip(j - 1, 0, len(c) - 1), np.clip(j, 0, len(c) - 1)
        d_l, d_r = np.abs(t_item[idx] - c[left]), np.abs(c[right] - t_item[idx])
        pick = np.where(d_r < d_l, right, left)
        ok = np.minimum(d_l, d_r) <= tolerance_s + 1e-9
        out[idx[ok]] = w[pick[ok]]
    return out


def window_truth(windows: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Each window's true MGS intensities: per AU the mean of ``2 * au_*`` (0..2) over the truth
    frames of its video with ``start_time <= time <= end_time``, and ``total`` (their mean);
    NaN for a window without a truth frame. Rows align with ``windows``."""
    out = np.full((len(windows), len(AUS)), np.nan)
    start, end = windows["start_time"].to_numpy(np.float64), windows["end_time"].to_numpy(np.float64)
    frames = truth.groupby(truth["video"].astype(str)).indices
    t_all = truth["time"].to_numpy(np.float64)
    au_all = 2.0 * truth[[TRUTH_COLUMNS[a] for a in AUS]].to_numpy(np.float64)  # (F, 5) on 0..2
    for video, idx in windows.groupby(windows["video"].astype(str)).indices.items():
        f = frames.get(video)
        if f is None:
            continue
        f = f[np.argsort(t_all[f], kind="stable")]
        t = t_all[f]
        csum = np.vstack([np.zeros((1, len(AUS))), np.cumsum(au_all[f], axis=0)])  # (n + 1, 5)
        a, b = np.searchsorted(t, start[idx] - 1e-9, "left"), np.searchsorted(t, end[idx] + 1e-9, "right")
        n = (b - a)[:, None]
        out[idx] = np.where(n > 0, (csum[b] - csum[a]) / np.maximum(n, 1), np.nan)
    table = pd.DataFrame(out, columns=list(AUS), index=windows.index)
    table["total"] = table[list(AUS)].mean(axis=1)
    return table


def mgs_table(pred: pd.DataFrame, ratings: pd.DataFrame | None = None, targets: pd.DataFrame | None = None,
              truth: pd.DataFrame | None = None, *, tolerance_s: float = 0.5, n_boot: int = 1000, seed: int = 0) -> dict:
    """The MGS section of an evaluation.

    Args:
        pred: window predictions with :data:`PRED_OF` columns (``au_ot ... au_wc``, ``mgs``), ``video,
            animal, start_time, end_time``.
        ratings: the task's ratings rows (``au_ratings.parquet``: item, rater, au, score, animal).
        targets: the task's ``au_targets.parquet`` (item -> video, time_s of each rated frame).
        truth: a synthetic cohort's ``truth/truth.parquet`` (``video, time, au_*``).
        tolerance_s: a rated frame takes the nearest test window within this (the task's).

    Returns:
        ``{"rows": [one per target of :data:`evaluation.mgs.TARGETS`, columns :data:`MGS_COLUMNS`],
        "n_rated_items", "n_matched_items", "n_raters", "tolerance_s", "truth", "n_windows"}``.
    """
    rows = {t: {"target": t} for t in TARGETS}
    info = {"tolerance_s": float(tolerance_s), "n_windows": int(len(pred)), "truth": truth is not None,
            "n_rated_items": 0, "n_matched_items": 0, "n_raters": 0}
    if ratings is not None and targets is not None and len(targets):
        pick = nearest_windows(targets, pred, tolerance_s)
        hit = pick >= 0
        items = targets.loc[hit, "item"].astype(str).to_numpy()
        matched = ratings[ratings["item"].astype(str).isin(set(items))]
        info.update(n_rated_items=int(len(targets)), n_matched_items=int(hit.sum()), n_raters=int(matched["rater"].nunique()))
        if len(matched):
            wide = pred.iloc[pick[hit]][[PRED_OF[t] for t in TARGETS]].set_axis(list(TARGETS), axis=1)
            table = vs_mean_rater(matched, wide.assign(item=items).reset_index(drop=True), n_boot=n_boot, seed=seed)
            for t in table.index:
                rows[t].update({k: table.loc[t, k] for k in table.columns if k in MGS_COLUMNS})
    if truth is not None:
        true = window_truth(pred, truth)
        groups = pred["animal"].astype(str).to_numpy()
        for t in TARGETS:
            cis = vs_truth(pred[PRED_OF[t]].to_numpy(float), true[t].to_numpy(float), groups, n_boot=n_boot, seed=seed)
            rows[t].update(truth_n_windows=int(true[t].notna().sum()), truth_r=cis["r"].value, truth_r_low=cis["r"].low,
                           truth_r_high=cis["r"].high, truth_rmse=cis["rmse"].value, truth_rmse_low=cis["rmse"].low,
                           truth_rmse_high=cis["rmse"].high)
    info["rows"] = [{c: r.get(c, np.nan) for c in MGS_COLUMNS} | {"target": r["target"]} for r in rows.values()]
    return info


def run_mgs(run_folder: str | Path, pred: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict | None:
    """:func:`mgs_table` of a run trained with AU heads on its own task (``params.json``
    ``task_dir``: :func:`task_mgs`). None for a run without AU predictions."""
    if not has_au_predictions(pred):
        return None
    run_folder = Path(run_folder)
    from mouse_facial_expressions.training.runs import run_task_dir

    task_dir = run_task_dir(run_folder)
    if task_dir is None:
        log.warning("%s: no MGS comparison with the raters: params.json names no task", run_folder)
    return task_mgs(task_dir, pred, n_boot, seed)


def task_mgs(task_dir: str | Path | None, pred: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict | None:
    """:func:`mgs_table` of AU predictions on a task's windows: the task's ratings and targets
    (``mfe task make --au-ratings``; none: the section says so) and, for a synthetic cohort,
    ``truth/truth.parquet`` of the task's project. Used for a run's own task and for another
    cohort's (``mfe evaluate RUN --task OTHER``). None for predictions without AU columns."""
    if not has_au_predictions(pred):
        return None
    from mouse_facial_expressions.data.au_targets import load_au_ratings, load_au_targets
    from mouse_facial_expressions.data.tasks import load_spec, task_frames_dir

    spec = None
    if task_dir is not None:
        task_dir = Path(task_dir)
        try:
            spec = load_spec(task_dir / TaskFiles.SPEC)
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("%s: no MGS comparison with the raters: the task cannot be read (%s)", task_dir, err)
            task_dir = None
    ratings = load_au_ratings(task_dir) if task_dir is not None else None
    targets = load_au_targets(task_dir) if task_dir is not None else None
    truth = None
    if spec is not None:
        fdir = task_frames_dir(task_dir, spec)
        project = fdir.parent if fdir is not None else task_dir.parent.parent
        if (project / "truth" / "truth.parquet").is_file():
            truth = pd.read_parquet(project / "truth" / "truth.parquet", columns=["video", "time", *TRUTH_COLUMNS.values()])
    tol = spec.au.tolerance_s if spec is not None and spec.au is not None else 0.5
    return mgs_table(pred, ratings, targets, truth, tolerance_s=tol, n_boot=n_boot, seed=seed)


def image_agreement(scores: pd.DataFrame, ratings: pd.DataFrame, n_boot: int = 1000,
                    seed: int = 0) -> tuple[pd.DataFrame | None, list[str]]:
    """The model's expected MGS scores on still images (``mfe predict --images``,
    ``inference.images``) against the raters of the same images.

    Rated items are joined to the scored images by file name: an item ``img3.png``,
    ``photos/img3.png`` or ``img3`` rates the image ``img3.png`` (its stem). Only images scored
    without error count, for the raters' ceiling too.

    Args:
        scores: ``images_scores.csv`` rows (``image``, ``status``, ``au_ot`` ... ``au_wc``, ``mgs``).
        ratings: a ratings table (:func:`io.ratings.load_ratings`: one row per item, rater, AU).
        n_boot: bootstrap resamples of the CIs (items without an animal are resampled alone).

    Returns:
        ``(table, notes)``: the table (None when no rated item is a scored image) has one row per
        AU and ``total`` (the MGS score, mean of the AUs): ``target, n_images, n_raters``, then
        :func:`evaluation.mgs.vs_mean_rater`'s ``kappa`` (quadratic-weighted Cohen's kappa),
        ``r`` (Pearson), ``rmse`` with ``_low``/``_high`` CIs, and ``ceiling_kappa``,
        ``ceiling_r`` (the raters' mean pairwise agreement; NaN with one rater).
    """
    from mouse_facial_expressions.evaluation.mgs import vs_mean_rater

    done = scores[scores["status"] == "done"]
    key_to_image: dict[str, str] = {}
    for name in done["image"].astype(str):
        key_to_image.setdefault(name, name)
        key_to_image.setdefault(PurePosixPath(name).stem, name)
    notes: list[str] = []
    item_image: dict[str, str] = {}
    taken: dict[str, str] = {}
    for item in ratings["item"].astype(str).unique():
        base = str(item).replace("\\", "/").rsplit("/", 1)[-1]
        image = key_to_image.get(base) or key_to_image.get(PurePosixPath(base).stem)
        if image is None:
            continue
        if image in taken:
            notes.append(f"rated items {taken[image]!r} and {item!r} both name image {image}: only the first is used")
            continue
        taken[image], item_image[item] = item, image
    n_items = ratings["item"].nunique()
    if not item_image:
        notes.append(f"none of the {n_items} rated items is a scored image (items are matched to image file names): "
                     "no agreement")
        return None, notes
    if len(item_image) < n_items:
        notes.append(f"{n_items - len(item_image)} of the {n_items} rated items are not scored images: left out")
    matched = ratings[ratings["item"].astype(str).isin(item_image.keys())].copy()
    matched["item"] = matched["item"].astype(str).map(item_image)
    pred = done.set_index("image").loc[sorted(item_image.values())]
    wide = pd.DataFrame({t: pred[PRED_OF[t]].to_numpy(float) for t in PRED_OF}).assign(item=list(pred.index))
    table = vs_mean_rater(matched, wide, n_boot=n_boot, seed=seed)
    table = table.rename(columns={"n_items": "n_images"}).reset_index()
    table.insert(2, "n_raters", int(matched["rater"].nunique()))
    return table, notes
