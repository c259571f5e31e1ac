"""``mfe evaluate RUN --task OTHER_TASK``: a run's fold ensemble, zero-shot, on another cohort.

Every animal of the other task is a test animal: every window of its frame store (formed
with the model's ``num_frames``/``frame_stride`` and the other task's ``max_gap_s``/
``short_runs``, non-overlapping by default, as evaluation scores test animals) is scored by
every fold model of the run, and ``p1`` is the mean over folds (``fold`` = -1 in the
predictions: several folds scored it; the members' values are in ``p1_fold<k>`` columns).

With labels the predictions go through :func:`evaluation.evaluate.evaluate_predictions`
(full metrics, CIs, breakdowns, batch-effect check, report). Without labels (the task's
``label`` column all empty) the same call gives scores per animal (and the cohort check).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mouse_facial_expressions.data.sequences import make_windows, window_span
from mouse_facial_expressions.evaluation.aggregate import MIXED_FOLD, PREDICTION_COLUMNS
from mouse_facial_expressions.evaluation.ensemble import FoldEnsemble, load_ensemble
from mouse_facial_expressions.evaluation.predict import model_settings, score_windows
from mouse_facial_expressions.preprocess import store

log = logging.getLogger(__name__)


def _frames_dir(task) -> Path:
    fdir = Path(task.spec.frames_dir) if task.spec.frames_dir else None
    if fdir is None or not fdir.is_dir():
        moved = Path(task.path).resolve().parent.parent / "frames"
        if not moved.is_dir():
            raise FileNotFoundError(f"{task.path}: its frame store {fdir} is missing")
        fdir = moved
    return fdir


def check_store_compatible(ens: FoldEnsemble, frames_dir: Path) -> list[str]:
    """Differences between the other store's extraction settings and the model's (warnings)."""
    theirs = store.read_store_json(frames_dir) or {}
    ours = model_settings(ens)
    if ours.get("source") == "config":
        return []
    keys = ("crop_size", "out_size", "policy", "target_fps")
    return [f"{frames_dir}: {k} = {theirs[k]!r} but the model was trained on {ours[k]!r}"
            for k in keys if k in theirs and theirs[k] != ours[k]]


def predict_task(ens: FoldEnsemble, task_dir: str | Path, *, window_step: int | None = None,
                 batch_size: int = 16) -> pd.DataFrame:
    """Score every window of a task's frame store with the ensemble.

    Returns:
        The predictions table (``fold`` = -1, ``label`` NaN where unlabelled) plus one
        ``p1_<member>`` column per ensemble member.
    """
    from mouse_facial_expressions.data.tasks import load_task

    task = load_task(task_dir)
    if "row" not in task.frames.columns:
        raise ValueError(f"{task_dir}: this task was made from a flat table, not a frame store: no clips to score")
    fdir = _frames_dir(task)
    for w in check_store_compatible(ens, fdir):
        log.warning(w)
    step = window_step or window_span(ens.num_frames, ens.frame_stride)
    frames = task.frames.copy()
    if "label" in frames.columns:
        frames["label"] = pd.to_numeric(frames["label"], errors="coerce").astype(float)
    windows = make_windows(frames, ens.num_frames, ens.frame_stride, task.spec.max_gap_s, task.spec.short_runs, step=step)
    maps: dict[str, np.ndarray] = {}

    def crops_of(video: str) -> np.ndarray:
        if video not in maps:
            maps[video] = store.open_frames(fdir, video)
        return maps[video]

    per_member = score_windows(None, windows, ens, batch_size, crops_of=crops_of) if len(windows) else np.zeros((0, len(ens)))
    pred = pd.DataFrame({
        "fold": MIXED_FOLD if len(ens) > 1 else 0,
        "video": windows["video"].astype(str).to_numpy(),
        "animal": windows["animal"].astype(str).to_numpy(),
        "start_time": windows["start_time"].to_numpy(float),
        "end_time": windows["end_time"].to_numpy(float),
        "label": pd.to_numeric(windows["label"], errors="coerce").to_numpy(float),
        "p1": per_member.mean(axis=1) if len(ens) else np.nan,
    })[PREDICTION_COLUMNS]
    if len(ens) > 1:
        for j, name in enumerate(ens.names):
            pred[f"p1_{name}"] = per_member[:, j]
    return pred


def evaluate_on_task(run_dir: str | Path, task_dir: str | Path, out_dir: str | Path | None = None, *,
                     window_step: int | None = None, batch_size: int = 16, precision: str = "32",
                     **eval_kwargs) -> dict:
    """Zero-shot evaluation of a run's fold ensemble on another task (another cohort).

    Args:
        run_dir: the trained run folder (or one ``.ckpt``).
        task_dir: the other cohort's task folder.
        out_dir: output folder (default ``<run_dir>/zeroshot-<task folder name>``).
        window_step: kept frames between window starts (default: the window span).
        precision: ``"32"`` or ``"bf16"``.
        **eval_kwargs: passed to :func:`evaluate_predictions` (``n_boot``, ``seed``,
            ``threshold``, ``cohort``, ``report``, ...).

    Returns:
        The results dict of :func:`evaluate_predictions` (``metrics`` when labelled, else
        ``animal_scores``) with ``paths`` (``predictions`` = the window predictions CSV).
    """
    from mouse_facial_expressions.evaluation.evaluate import evaluate_predictions, metadata_from_task

    run_dir, task_dir = Path(run_dir), Path(task_dir)
    ens = load_ensemble(run_dir)
    ens.dtype = torch.bfloat16 if "bf16" in str(precision) else torch.float32
    out = Path(out_dir) if out_dir is not None else (run_dir if run_dir.is_dir() else run_dir.parent) / f"zeroshot-{task_dir.name}"
    out.mkdir(parents=True, exist_ok=True)
    pred = predict_task(ens, task_dir, window_step=window_step, batch_size=batch_size)
    tmp = out / ".predictions.csv.tmp"
    pred.to_csv(tmp, index=False)
    tmp.replace(out / "predictions.csv")
    (out / "zeroshot.json").write_text(json.dumps({"run": str(run_dir), "task": str(task_dir),
                                                   "members": ens.names, "n_windows": len(pred)}, indent=1))
    eval_kwargs.setdefault("source", f"{run_dir} on {task_dir}")
    eval_kwargs.setdefault("title", f"mfe zero-shot: {run_dir.name} on {task_dir.name}")
    results = evaluate_predictions(pred, metadata_from_task(task_dir), out, **eval_kwargs)
    results["paths"]["predictions"] = str(out / "predictions.csv")
    return results
