"""``mfe evaluate RUN --task OTHER_TASK``: a run's fold ensemble, zero-shot, on another cohort.

Every animal of the other task is a test animal: every window of its frame store (formed
with the model's ``num_frames``/``frame_stride`` and the other task's ``max_gap_s``/
``short_runs``, non-overlapping by default, as evaluation scores test animals) is scored by
every fold model of the run, and ``p1`` is the mean over folds (``fold`` = -1 in the
predictions: several folds scored it; the members' values are in ``p1_fold<k>`` columns). A
run with action-unit heads adds ``au_ot`` ... ``au_wc`` and ``mgs`` (the members' mean).

``report.runs.report_zeroshot`` evaluates them (full metrics with labels, scores per
animal without) and writes the report. :func:`task_clips` yields the same windows' clips
in batches, for ``inference.adabn`` (``--recalibrate adabn``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mouse_facial_expressions.data.sequences import make_windows, window_span
from mouse_facial_expressions.data.predictions import MIXED_FOLD, PREDICTION_COLUMNS, au_prediction_columns
from mouse_facial_expressions.inference.ensemble import FoldEnsemble
from mouse_facial_expressions.inference.predict import clip_batches, model_settings, score_windows_au
from mouse_facial_expressions.preprocess import domain, store

log = logging.getLogger(__name__)


def _frames_dir(task) -> Path:
    from mouse_facial_expressions.data.tasks import task_frames_dir

    fdir = task_frames_dir(task.path, task.spec)  # relative to the task; older absolute paths re-rooted
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
    found = [f"{frames_dir}: {k} = {theirs[k]!r} but the model was trained on {ours[k]!r}"
             for k in keys if k in theirs and theirs[k] != ours[k]]
    norm, trained = store.normalization_of(frames_dir), ours.get("normalize", "none")
    if norm != trained:
        found.append(f"{frames_dir}: normalize = {norm!r} but the model was trained on {trained!r} crops "
                     "(extract this cohort with the model's extract.normalize)")
    return found


def domain_check(ens: FoldEnsemble, task_dir: str | Path) -> dict:
    """The domain check of another task's videos: the frame store's recorded summary of each
    (``preprocess.domain``) against the model's training summary; each video outside is logged.

    Returns:
        ``{"n_videos", "warnings": {video: "reason; reason"} (videos outside only), "note"}``
        (``note``: why the check was skipped, else None).
    """
    from mouse_facial_expressions.data.tasks import load_task

    task = load_task(task_dir)
    videos = sorted(task.frames["video"].astype(str).unique())
    train, note = domain.training_summary(ens.hparams)
    if note:
        log.warning(note)
        return {"n_videos": len(videos), "warnings": {}, "note": note}
    found = {v: "; ".join(r) for v, r in domain.check_store(train, _frames_dir(task), videos).items()}
    for v, text in found.items():
        log.warning("%s lies outside the model's training data: %s", v, text)
    return {"n_videos": len(videos), "warnings": found, "note": None}


def task_windows(ens: FoldEnsemble, task_dir: str | Path, window_step: int | None = None,
                 videos: Collection[str] | None = None):
    """``(task, frame store folder, windows)``: the windows of another task's frame store that
    zero-shot scoring scores (the model's ``num_frames``/``frame_stride``, the task's
    ``max_gap_s``/``short_runs``, every ``window_step`` kept frames: default the window span);
    ``videos``: only these videos' windows (one recording cohort, ``inference.adabn``)."""
    from mouse_facial_expressions.data.tasks import load_task

    task = load_task(task_dir)
    if "row" not in task.frames.columns:
        raise ValueError(f"{task_dir}: this task was made from a flat table, not a frame store: no clips to score")
    fdir = _frames_dir(task)
    step = window_step or window_span(ens.num_frames, ens.frame_stride)
    frames = task.frames.copy()
    if "label" in frames.columns:
        frames["label"] = pd.to_numeric(frames["label"], errors="coerce").astype(float)
    windows = make_windows(frames, ens.num_frames, ens.frame_stride, task.spec.max_gap_s, task.spec.short_runs, step=step)
    if videos is not None:
        windows = windows[windows["video"].astype(str).isin({str(v) for v in videos})].reset_index(drop=True)
    return task, fdir, windows


def _crops_reader(fdir: Path):
    maps: dict[str, np.ndarray] = {}

    def crops_of(video: str) -> np.ndarray:
        if video not in maps:
            maps[video] = store.open_frames(fdir, video)
        return maps[video]

    return crops_of


def task_clips(ens: FoldEnsemble, task_dir: str | Path, *, window_step: int | None = None,
               batch_size: int = 16, videos: Collection[str] | None = None) -> Iterator[torch.Tensor]:
    """The clips :func:`predict_task` scores, ``(B, T, C, H, W)`` float32 batches in window order
    (what ``inference.adabn`` recomputes BatchNorm statistics from); ``videos``: only theirs."""
    _, fdir, windows = task_windows(ens, task_dir, window_step, videos)
    for _, clips in clip_batches(windows, ens, batch_size, crops_of=_crops_reader(fdir)):
        yield clips


def predict_task(ens: FoldEnsemble, task_dir: str | Path, *, window_step: int | None = None,
                 batch_size: int = 16, videos: Collection[str] | None = None) -> pd.DataFrame:
    """Score every window of a task's frame store (``videos``: of these videos only) with the ensemble.

    Returns:
        The predictions table (``fold`` = -1, ``label`` NaN where unlabelled) plus one
        ``p1_<member>`` column per ensemble member.
    """
    task, fdir, windows = task_windows(ens, task_dir, window_step, videos)
    for w in check_store_compatible(ens, fdir):
        log.warning(w)
    crops_of = _crops_reader(fdir)
    au = None
    if ens.relative:  # scored against each animal's own baseline windows, which are not scored
        from mouse_facial_expressions.inference.relative import animal_references, score_relative, split_baseline

        recording_of = dict(zip(task.frames["video"].astype(str), pd.to_numeric(task.frames["recording"], errors="coerce")))
        baseline, windows = split_baseline(windows, recording_of, ens.baseline_recording)
        refs = animal_references(baseline, ens, crops_of, batch_size)
        per_member = score_relative(windows, refs, ens, crops_of, batch_size) if len(windows) else np.zeros((0, len(ens)))
    else:
        per_member, au = score_windows_au(None, windows, ens, batch_size, crops_of=crops_of)
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
    if au is not None:  # a run with action-unit heads: au_ot ... au_wc and mgs (data.predictions)
        pred = pred.assign(**au_prediction_columns(au))
    return pred
