"""``mfe evaluate RUN --task OTHER_TASK``: a run's fold ensemble, zero-shot, on another cohort.

Every animal of the other task is a test animal: every window of its frame store (formed
with the model's ``num_frames``/``frame_stride`` and the other task's ``max_gap_s``/
``short_runs``, non-overlapping by default, as evaluation scores test animals) is scored by
every fold model of the run, and ``p1`` is the mean over folds (``fold`` = -1 in the
predictions: several folds scored it; the members' values are in ``p1_fold<k>`` columns). The
model's parts add their columns (a run with action-unit heads: ``au_ot`` ... ``au_wc`` and ``mgs``,
the members' mean) and read what they need from the task (:func:`predict_task`).

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

from mouse_facial_expressions.data.sequences import window_span
from mouse_facial_expressions.data.predictions import MIXED_FOLD, PREDICTION_COLUMNS
from mouse_facial_expressions.inference.ensemble import FoldEnsemble
from mouse_facial_expressions.inference.predict import clip_batches, model_settings
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
                 videos: Collection[str] | None = None, ctx=None):
    """``(task, frame store folder, windows)``: the windows of another task's frame store that
    zero-shot scoring scores (the model's ``num_frames``/``frame_stride``, the task's
    ``max_gap_s``/``short_runs``, every ``window_step`` kept frames: default the window span);
    ``videos``: only these videos' windows (one recording cohort, ``inference.adabn``).

    The frames are those the model's parts score, as for a fold's test animals in training
    (``Part.select_frames``: a baseline-relative run leaves out the baseline recording, whose windows
    become ``ctx.context["test"]``); ``ctx``: the ``data.datasets.FoldContext`` they write to."""
    from mouse_facial_expressions.data.datasets import FoldContext
    from mouse_facial_expressions.data.tasks import load_task
    from mouse_facial_expressions.models.parts import bound_parts

    task = load_task(task_dir)
    if "row" not in task.frames.columns:
        raise ValueError(f"{task_dir}: this task was made from a flat table, not a frame store: no clips to score")
    fdir = _frames_dir(task)
    step = window_step or window_span(ens.num_frames, ens.frame_stride)
    frames = task.frames.copy()
    if "label" in frames.columns:
        frames["label"] = pd.to_numeric(frames["label"], errors="coerce").astype(float)
    ctx = ctx if ctx is not None else FoldContext(task_dir, task, -1, ens.num_frames, ens.frame_stride, step, settings=ens.data)
    for part in bound_parts(ens.models[0].config["parts"]):
        frames = part.select_frames(ctx, "test", frames)
    windows = ctx.windows(frames, "test")
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


class _Batches:
    """Re-iterable scoring batches of a window table: ``clip``, ``animal`` and the parts' input fields."""

    def __init__(self, windows: pd.DataFrame, ens: FoldEnsemble, crops_of, batch_size: int, fields: dict | None = None):
        self.windows, self.ens, self.crops_of, self.batch_size, self.fields = windows, ens, crops_of, batch_size, fields or {}

    def __iter__(self):
        animals = self.windows["animal"].astype(str).tolist()
        for a, clips in clip_batches(self.windows, self.ens, self.batch_size, crops_of=self.crops_of):
            rows = range(a, a + len(clips))
            yield {"clip": clips, "animal": animals[a:a + len(clips)],
                   **{k: torch.stack([f.item(None, i) for i in rows]) for k, f in self.fields.items()}}


def predict_task(ens: FoldEnsemble, task_dir: str | Path, *, window_step: int | None = None,
                 batch_size: int = 16, videos: Collection[str] | None = None) -> pd.DataFrame:
    """Score every window of a task's frame store (``videos``: of these videos only) with the ensemble.

    The model's parts read what they need from the task, as its test animals in training: the
    windows they score (``select_frames``), the windows they score against (a baseline-relative
    run: each animal's baseline recording) and their input fields (``score_fields``: a fused run's
    behaviour and physiology features from the task's project).

    Returns:
        The predictions table (``fold`` = -1, ``label`` NaN where unlabelled) plus one
        ``p1_<member>`` column per ensemble member, and the parts' columns (e.g. ``au_ot`` ... ``mgs``).
    """
    from mouse_facial_expressions.data.datasets import FoldContext
    from mouse_facial_expressions.models.parts import bound_parts

    step = window_step or window_span(ens.num_frames, ens.frame_stride)
    from mouse_facial_expressions.data.tasks import load_task

    ctx = FoldContext(task_dir, load_task(task_dir), -1, ens.num_frames, ens.frame_stride, step, settings=ens.data)
    task, fdir, windows = task_windows(ens, task_dir, window_step, videos, ctx=ctx)
    for w in check_store_compatible(ens, fdir):
        log.warning(w)
    crops_of = _crops_reader(fdir)
    if "test" in ctx.context:  # windows the parts score against (each animal's baseline recording)
        ens.set_context(_Batches(ctx.context["test"], ens, crops_of, batch_size))
    fields = {}
    for part in bound_parts(ens.models[0].config["parts"]):
        fields.update(part.score_fields(ctx, windows))
    scored = [ens.score(b) for b in _Batches(windows, ens, crops_of, batch_size, fields)]
    per_member = np.concatenate([p for p, _ in scored]) if scored else np.zeros((0, len(ens)))
    outputs = {k: np.concatenate([o[k] for _, o in scored]) for k in (scored[0][1] if scored else {})}
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
    return pred.assign(**ens.models[0].columns(outputs)) if len(pred) else pred
