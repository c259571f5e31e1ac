"""A run folder as evaluation reads it: its predictions, metadata, task, training, and the
sections its model's parts add (``evaluate_run``, what ``mfe evaluate RUN`` calls).

A model part declares the evaluation sections it adds (``models.parts.base.Part.metrics``);
:data:`SECTIONS` holds, per section, the function that computes it from a run folder and its
predictions (None when the run has nothing for it), and :func:`evaluate_run` iterates over them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from mouse_facial_expressions.data.task_files import TaskFiles
from mouse_facial_expressions.evaluation.aggregate import aggregate_levels, validate_predictions
from mouse_facial_expressions.evaluation.evaluate import (evaluate_predictions, join_metadata, metadata_from_task,
                                                          read_metadata)

log = logging.getLogger(__name__)


def _run_metadata(run_folder: Path) -> pd.DataFrame | None:
    """``<run>/metadata.csv``, else the metadata of the task named in ``<run>/params.json``."""
    if (run_folder / "metadata.csv").is_file():
        return read_metadata(run_folder / "metadata.csv")
    from mouse_facial_expressions.training.runs import run_task_dir

    task_dir = run_task_dir(run_folder)
    if task_dir is not None:
        meta = metadata_from_task(task_dir)
        if meta is None:
            log.info("no metadata: task folder %s (from %s) has no frames.parquet", task_dir, run_folder / "params.json")
        return meta
    return None


def read_predictions(run_dir: str | Path) -> pd.DataFrame:
    """``<run_dir>/predictions.csv`` (or the file itself when given a CSV path)."""
    p = Path(run_dir)
    f = p if p.suffix == ".csv" else p / "predictions.csv"
    if not f.is_file():
        raise FileNotFoundError(f"no predictions file: {f} (a run folder holds predictions.csv)")
    return pd.read_csv(f, dtype={"video": str, "animal": str})


def run_inputs(run_dir: str | Path, metadata: str | Path | pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None, Path, list[str]]:
    """``(predictions, metadata, run folder, warnings)`` of a run (see :func:`evaluate_run`)."""
    run = Path(run_dir)
    pred = read_predictions(run)
    run_folder = run.parent if run.suffix == ".csv" else run
    if metadata is None:
        meta = _run_metadata(run_folder)
    else:
        meta = read_metadata(metadata) if isinstance(metadata, (str, Path)) else metadata
    tuned = run_folder / "finetune.json"
    warnings = list(json.loads(tuned.read_text()).get("warnings", [])) if tuned.is_file() else []
    return pred, meta, run_folder, warnings


def run_reference(run: str | Path) -> pd.DataFrame | None:
    """The training animals' cross-validated scores at animal level: a run's own
    ``predictions.csv`` (each animal scored by the fold that did not train on it) with the
    run's metadata (``treatment``, ``cohort``, ...). The reference of the zero-shot cohort
    check and of ``--recalibrate controls``. ``run``: a run folder, its ``predictions.csv``,
    or a checkpoint inside a run folder (its parents are searched); None when none is found.
    """
    p = Path(run)
    candidates = [p.parent] if p.suffix == ".csv" else ([p] if p.is_dir() else []) + list(p.parents)[:3]
    for folder in candidates:
        if (folder / "predictions.csv").is_file():
            pred, meta, _, _ = run_inputs(folder)
            pred = join_metadata(validate_predictions(pred, str(folder / "predictions.csv")), meta)
            animals = aggregate_levels(pred)["animal"]
            animals.attrs["source"] = str(folder / "predictions.csv")
            return animals
    return None


def run_training(run_folder: Path) -> dict:
    """How a run was trained, for the report: model, backbone, image size, epochs, recipe,
    precision and per fold the kept epoch (1-based) and the seconds it took; ``{}`` without
    ``params.json``."""
    try:
        p = json.loads((run_folder / "params.json").read_text())
    except (OSError, ValueError):
        return {}
    folds = []
    for f in sorted(run_folder.glob("fold*/fold.json")):
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        folds.append({"fold": d.get("fold"), "kept_epoch": None if d.get("best_epoch") is None else int(d["best_epoch"]) + 1,
                      "epochs_trained": d.get("epochs_trained"), "seconds": d.get("seconds"), "precision": d.get("precision")})
    keys = ("model", "backbone", "pretrained", "image_size", "num_frames", "frame_stride", "epochs", "recipe", "select")
    return {**{k: p.get(k) for k in keys}, "folds": folds,
            "seconds": round(sum(f["seconds"] or 0 for f in folds), 1) if folds else None}


def run_task(run_folder: Path) -> dict:
    """What the report says about a run's task (``params.json`` -> ``task.yaml``): ``name``,
    ``description``, ``class_names`` and ``synthetic`` (its frame store's project was made by
    ``mfe synth``); ``{}`` when the task cannot be read."""
    from mouse_facial_expressions.data.tasks import load_spec, task_frames_dir
    from mouse_facial_expressions.preprocess.domain import is_synthetic_project
    from mouse_facial_expressions.training.runs import run_task_dir

    try:
        task_dir = run_task_dir(run_folder)
        spec = load_spec(task_dir / TaskFiles.SPEC)
    except (OSError, ValueError, AttributeError, TypeError):
        return {}
    frames = task_frames_dir(task_dir, spec) or task_dir.parent.parent / "frames"
    return {"name": spec.name, "description": spec.description, "class_names": list(spec.class_names),
            "synthetic": bool(is_synthetic_project(frames.parent))}


def evaluate_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    metadata: str | Path | pd.DataFrame | None = None,
    **kwargs,
) -> dict:
    """Evaluate ``<run_dir>/predictions.csv``; output defaults to ``<run_dir>/evaluation``.

    Metadata: ``metadata`` (a CSV path or table) if given, else ``<run_dir>/metadata.csv`` if
    present, else the video metadata of the task named in ``<run_dir>/params.json``
    (its ``frames.parquet``). Unlabelled predictions give per-animal scores (and the cohort check) only.
    A fine-tuned run's overlap warnings (``finetune.json``) join the results' warnings.
    Extra keyword arguments go to :func:`evaluate_predictions`. (``report.runs.report_run``
    does the same and adds the HTML report.)
    """
    pred, meta, run_folder = run_evaluation_inputs(run_dir, metadata, kwargs)
    return evaluate_predictions(pred, meta, out_dir or run_folder / "evaluation", **kwargs)


def run_evaluation_inputs(run_dir: str | Path, metadata, kwargs: dict) -> tuple[pd.DataFrame, pd.DataFrame | None, Path]:
    """``(predictions, metadata, run folder)`` of a run, and its evaluation settings filled into
    ``kwargs`` where not given: source, title, warnings, task, training, and the sections its
    model's parts add (:func:`run_sections`)."""
    pred, meta, run_folder, warnings = run_inputs(run_dir, metadata)
    kwargs.setdefault("source", str(run_dir))
    kwargs.setdefault("title", f"mfe evaluation: {run_folder.name}")
    kwargs.setdefault("warnings", warnings)
    kwargs.setdefault("task", run_task(run_folder))
    kwargs.setdefault("training", run_training(run_folder))
    for name, section in run_sections(run_folder, pred, kwargs.get("n_boot", 1000)).items():
        kwargs.setdefault(name, section)
    return pred, meta, run_folder


def run_modalities(run_folder: Path, n_boot: int = 1000) -> dict | None:
    """A fused run's modality table (None for a face-only run)."""
    from mouse_facial_expressions.evaluation.modalities import modality_table, read_modality_predictions

    pred = read_modality_predictions(run_folder)
    return modality_table(pred, n_boot=n_boot) if pred is not None and (pred["variant"] != "all").any() else None


def run_mgs(run_folder: Path, pred: pd.DataFrame, n_boot: int = 1000) -> dict | None:
    """A run with action-unit heads: its MGS table (:func:`evaluation.mgs_models.run_mgs`); else None."""
    from mouse_facial_expressions.evaluation.mgs_models import run_mgs as _run_mgs

    return _run_mgs(run_folder, pred, n_boot=n_boot)


#: Evaluation section -> ``fn(run_folder, predictions, n_boot) -> dict | None`` (the parts' ``metrics``).
SECTIONS = {
    "modalities": lambda run_folder, pred, n_boot: run_modalities(run_folder, n_boot),
    "mgs": run_mgs,
}


def run_sections(run_folder: Path, pred: pd.DataFrame, n_boot: int = 1000) -> dict:
    """Every section a run's predictions hold: name -> its table (sections with nothing to show left out)."""
    out = {}
    for name, section in SECTIONS.items():
        value = section(run_folder, pred, n_boot)
        if value:
            out[name] = value
    return out
