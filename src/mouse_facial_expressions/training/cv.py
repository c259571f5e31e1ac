"""k-fold cross-validation by animal: train, select on validation animals, test once.

For each outer fold of the task: train on the fold's training animals, keep the checkpoint
with the best accuracy on the fold's (inner) validation animals (among epochs with equal
accuracy, the one with the lower validation loss: ``ClipClassifier``'s ``val_select``), then
score the fold's test animals once with that checkpoint. Outputs (``out`` = the project's ``models/`` folder)::

    <out>/checkpoints/<run_name>/task1-fold{k}-epoch=E-val_acc=A.ckpt            (baseline, seed names)
    <out>/checkpoints_advanced/<run_name>/advanced-fold{k}-epoch=E-val_acc=A.ckpt (advanced)
    <out>/checkpoints_resup/<run_name>/resup-fold{k}-epoch=E-val_acc=A.ckpt       (resup)
    <out>/runs/<run_name>/fold{k}/last.ckpt           resume point (every epoch; removed when the fold finishes)
    <out>/runs/<run_name>/fold{k}/predictions_test.csv  marks the fold finished
    <out>/runs/<run_name>/fold{k}/fold.json           selection + test accuracy
    <out>/runs/<run_name>/predictions.csv, summary.json, params.json, mlflow.json

Paths in ``fold.json``, ``summary.json`` and ``params.json`` are relative to the run folder
(``best_checkpoint``: ``../../checkpoints_advanced/<run_name>/advanced-fold0-...ckpt``;
``params.json``'s ``task_dir``: ``../../../tasks/task-1``), so a copied
or moved project uses its own files (``training.runs`` reads both forms back). The dicts
:func:`train_cv` and :func:`train_fold` return hold absolute paths.

Checkpoints have one folder per run, so two runs training at once never replace or delete
each other's files.

A rerun with the same parameters (same run name) skips finished folds and continues an
interrupted fold from its ``last.ckpt``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Callable

from mouse_facial_expressions.compat import import_torchvision

import_torchvision()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lightning.pytorch.utilities import rank_zero_only  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from mouse_facial_expressions.data.predictions import PREDICTION_COLUMNS  # noqa: E402
from mouse_facial_expressions.data.task_files import TaskFiles  # noqa: E402
from mouse_facial_expressions.io.atomic import write_text, write_csv  # noqa: E402
from mouse_facial_expressions.training import fold as _fold  # noqa: E402
from mouse_facial_expressions.training.fold import (CHECKPOINT_LAYOUT, _class_weights, augmentation_enabled,  # noqa: E402,F401
                                                    predict_windows, stored_record, task_fingerprint,
                                                    usable_resume_point)
from mouse_facial_expressions.training.module import ClipClassifier  # noqa: E402,F401  (training.finetune swaps it)
from mouse_facial_expressions.training.params import TrainParams  # noqa: E402
from mouse_facial_expressions.training.runs import check_run_name, record_path, resolve_recorded, run_roots  # noqa: E402
from mouse_facial_expressions.training.tracking import Tracker, default_tracking_uri, resolve_tracking  # noqa: E402

log = logging.getLogger(__name__)
# The seed's checkpoint folders are shared by folds and runs by design.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
# torch 2.13 deprecates a check Lightning's own code makes at every fit: not the user's to act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")

PRED_COLUMNS = PREDICTION_COLUMNS


def _default_datasets_fn():
    from mouse_facial_expressions.data.datasets import fold_datasets

    return fold_datasets


def _default_norm() -> tuple[list[float], list[float]] | tuple[None, None]:
    try:
        from mouse_facial_expressions.data import datasets

        return [float(v) for v in np.ravel(datasets.NORM_MEAN)], [float(v) for v in np.ravel(datasets.NORM_STD)]
    except (ImportError, AttributeError):
        return None, None


def _same_content(a: dict, b: dict) -> bool:
    """Two fingerprint dicts describe the same files (size and hash; the time may differ)."""
    return a.keys() == b.keys() and all((a[k]["size"], a[k]["hash"]) == (b[k]["size"], b[k]["hash"]) for k in a)


def train_fold(*args, **kwargs) -> dict:
    """:func:`training.fold.train_fold`, with this module's ``ClipClassifier`` (``training.finetune`` swaps it)."""
    saved = _fold.ClipClassifier
    _fold.ClipClassifier = ClipClassifier
    try:
        return _fold.train_fold(*args, **kwargs)
    finally:
        _fold.ClipClassifier = saved


def _loaded_record(rec: dict, run_dir: Path) -> dict:
    """A stored fold record with ``best_checkpoint`` as an absolute path here (older runs: re-rooted)."""
    if not rec.get("best_checkpoint"):
        return rec
    return {**rec, "best_checkpoint": str(resolve_recorded(rec["best_checkpoint"], run_dir, run_roots(run_dir, project=False)))}


def train_cv(
    task_dir: str | Path,
    params: TrainParams,
    out_dir: str | Path,
    folds: list[int] | None = None,
    *,
    datasets_fn: Callable | None = None,
    fold_specs: list[dict] | None = None,
    norm: tuple | None = None,
    tracking_uri: str | None = None,
    experiment: str = "mfe",
    track: bool = True,
    progress: bool | None = None,
    fold_callbacks: Callable | None = None,
) -> dict:
    """Cross-validate ``params.model`` on a task folder (see module docstring for outputs).

    Args:
        task_dir: the task folder (``tasks/task-<version>``).
        params: :class:`TrainParams` (``make_params`` resolves defaults).
        out_dir: the project's models folder.
        folds: outer folds to run (default: ``params.folds`` or every fold).
        datasets_fn: ``fold_datasets``-compatible callable (default: ``data.datasets.fold_datasets``).
        fold_specs: the folds (dicts fold/train/val/test); default: the task's ``folds.json``.
        norm: (mean, std) recorded in checkpoints; default: ``data.datasets.NORM_MEAN/STD``.
        tracking_uri: MLflow URI (default ``sqlite:///<out_dir>/mlruns.db``).
        track: log to MLflow (without the ``[track]`` extra: off with a notice, an error when
            ``tracking_uri`` is given; :func:`training.tracking.resolve_tracking`).
        progress: Lightning progress bar (default: when stderr is a terminal).
        fold_callbacks: ``(fold, test_loader) -> [Lightning callbacks]`` added to each fold's trainer
            (diagnostics only; selection never sees them).

    Returns:
        The summary dict (also ``<out>/runs/<run_name>/summary.json``): run_name, run_dir,
        per-fold records, mean test/val accuracy.
    """
    if params.run_name is not None:
        check_run_name(params.run_name)  # before anything is read or written
    track = resolve_tracking(track, tracking_uri)  # no MLflow: off with a notice, or an error for an explicit URI
    task_dir, out_dir = Path(task_dir), Path(out_dir)
    params = dataclasses.replace(params)
    if params.baseline_recording is None and (task_dir / TaskFiles.SPEC).is_file():
        from mouse_facial_expressions.data.tasks import load_spec

        params.baseline_recording = load_spec(task_dir / TaskFiles.SPEC).baseline_recording  # the task's, if it names one
    params.model_config()  # parts that cannot work together fail here, before any fold
    if fold_specs is None or params.num_frames is None or params.frame_stride is None:
        from mouse_facial_expressions.data.tasks import load_task

        task = load_task(task_dir)
        fold_specs = fold_specs if fold_specs is not None else list(task.folds)
        params.num_frames = params.num_frames or task.spec.num_frames
        params.frame_stride = params.frame_stride or task.spec.frame_stride
    if fold_specs is None or (task_dir / TaskFiles.PROVENANCE).is_file():
        from mouse_facial_expressions.data.tasks import stale_inputs

        stale = stale_inputs(task_dir)
        if stale:
            raise ValueError(f"{task_dir}: its inputs changed since `mfe task make` wrote it: {', '.join(stale[:8])}"
                             f"{f' and {len(stale) - 8} more' if len(stale) > 8 else ''}; rerun `mfe task make` "
                             "(same --dataset_version) so the task labels, folds and windows match the frame store")
    datasets_fn = datasets_fn or _default_datasets_fn()
    norm = norm or _default_norm()
    wanted = folds if folds is not None else params.folds
    specs = [s for s in fold_specs if wanted is None or int(s["fold"]) in set(wanted)]
    if wanted is not None and len(specs) != len(set(wanted)):
        have = sorted(int(s["fold"]) for s in fold_specs)
        raise ValueError(f"--folds {wanted}: the task {task_dir} has folds {have}")
    run_name = check_run_name(params.run_name or params.default_run_name())
    run_dir = Path(os.path.abspath(out_dir / "runs" / run_name))
    run_dir.mkdir(parents=True, exist_ok=True)
    task_abs = Path(os.path.abspath(task_dir))
    # task_dir relative to the run folder; training.runs.run_task_dir reads it (and older runs' absolute paths)
    write_text(run_dir / "params.json", json.dumps({**params.to_dict(), "task_dir": record_path(task_abs, run_dir)},
                                                   indent=1, default=str))
    progress = (os.isatty(2) if progress is None else progress)

    tracker, parent, fold_runs = None, None, {}
    if track and rank_zero_only.rank == 0:
        state = json.loads((run_dir / "mlflow.json").read_text()) if (run_dir / "mlflow.json").is_file() else {}
        uri = tracking_uri or default_tracking_uri(out_dir)
        tracker = Tracker(uri, experiment, artifact_dir=out_dir / "mlartifacts")
        same_store = state.get("tracking_uri") == uri
        parent = tracker.start_run(run_name, {**params.to_dict(), "task_dir": str(task_dir)}, run_id=state.get("parent") if same_store else None)
        fold_runs = dict(state.get("folds", {})) if same_store else {}

    records = []
    current_task = task_fingerprint(task_dir)
    for spec in specs:
        fold = int(spec["fold"])
        done = run_dir / f"fold{fold}" / "predictions_test.csv"
        rec_path = done.parent / "fold.json"
        rec = _loaded_record(json.loads(rec_path.read_text()), run_dir) if done.is_file() and rec_path.is_file() else {"fold": fold}
        if done.is_file() and rec.get("task") is not None and not _same_content(rec["task"], current_task):
            tqdm.write(f"fold {fold}: redone: the task changed since it was trained ({task_dir})")
            done.unlink()
        if done.is_file():
            records.append(rec)
            tqdm.write(f"fold {fold}: finished earlier, skipped ({done})")
            continue
        rec = train_fold(task_dir, spec, params, out_dir, run_dir, datasets_fn, norm, tracker, parent, fold_runs, progress,
                         fold_callbacks)
        if rec:
            records.append(rec)
            tqdm.write(
                f"fold {fold}: val_acc {rec['val_acc'] if rec['val_acc'] is None else round(rec['val_acc'], 3)} "
                f"-> test_acc {rec['test_acc']:.3f} on {rec['n_test_windows']} windows of "
                f"{len(rec['test_animals'])} animals ({rec['seconds']:.0f} s, {rec['precision']}); {rec['best_checkpoint']}"
            )
    if rank_zero_only.rank != 0:
        return {}
    # The run's results so far: folds finished here or by earlier calls with other --folds.
    finished = sorted(run_dir.glob("fold*/predictions_test.csv"), key=lambda f: int(f.parent.name[4:]))
    by_fold = {int(r["fold"]): r for r in records}
    for f in finished:
        if int(f.parent.name[4:]) not in by_fold and (f.parent / "fold.json").is_file():
            by_fold[int(f.parent.name[4:])] = _loaded_record(json.loads((f.parent / "fold.json").read_text()), run_dir)
    records = [by_fold[k] for k in sorted(by_fold)]
    frames = [pd.read_csv(f) for f in finished]
    if frames:
        pred = pd.concat(frames, ignore_index=True)
        write_csv(pred[PRED_COLUMNS + [c for c in pred.columns if c not in PRED_COLUMNS]], run_dir / "predictions.csv")  # + the parts' columns
    test_accs = [r["test_acc"] for r in records if r.get("test_acc") is not None]
    val_accs = [r["val_acc"] for r in records if r.get("val_acc") is not None]
    summary = dict(
        run_name=run_name, run_dir=str(run_dir), model=params.model, task_dir=str(task_abs), folds=records,
        mean_test_acc=float(np.mean(test_accs)) if test_accs else None,
        mean_val_acc=float(np.mean(val_accs)) if val_accs else None,
        predictions=str(run_dir / "predictions.csv"),
    )
    stored = {**summary, "run_dir": ".", "task_dir": record_path(task_abs, run_dir), "predictions": "predictions.csv",
              "folds": [stored_record(r, run_dir) for r in records]}  # paths relative to the run folder
    write_text(run_dir / "summary.json", json.dumps(stored, indent=1))
    if tracker is not None:
        if summary["mean_test_acc"] is not None:
            tracker.log_metrics(parent, {"mean_test_acc": summary["mean_test_acc"]})
        if (run_dir / "predictions.csv").is_file():
            tracker.log_artifact(parent, run_dir / "predictions.csv")
        tracker.end_run(parent)
        summary["mlflow_parent_run"] = parent
    return summary
