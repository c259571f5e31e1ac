"""Evaluation followed by the HTML report: what ``mfe evaluate`` runs.

The evaluation stage computes and writes the numbers (``evaluation.evaluate``); the
inference stage provides Grad-CAM maps (``inference.saliency``) and zero-shot scores
(``inference.zeroshot``); this module, above both, calls them and renders the report. The
CLI and ``pipeline.run_pipeline`` call these functions; a notebook can too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch

from mouse_facial_expressions.evaluation.evaluate import (compute_results, metadata_from_task, run_inputs, run_task,
                                                          run_training, write_results)
from mouse_facial_expressions.io.atomic import write_csv, write_json
from mouse_facial_expressions.report import figures as F
from mouse_facial_expressions.report.html import write_report

log = logging.getLogger(__name__)


def make_figures(results: dict, levels: dict[str, pd.DataFrame], saliency: list[dict] | None = None) -> dict[str, bytes]:
    """The report's figures (PNG bytes by id) from :func:`compute_results`' output."""
    thr = results["settings"]["threshold"]
    cohort = results["settings"]["cohort_column"]
    figs: dict[str, bytes] = {}
    if results["summary"]["labelled"]:
        figs["roc"] = F.roc_figure(levels)
        figs["confusion"] = F.confusion_figure(levels, thr)
        figs["calibration"] = F.calibration_figure(levels, results["settings"]["n_bins"])
    figs["animal_scores"] = F.animal_strip_figure(levels["animal"], thr, color_by=cohort)
    figs["timecourse"] = F.timecourse_figure(levels["window"], threshold=thr)
    if results["batch_effects"].get("available"):
        figs["cohorts"] = F.cohort_figure(levels["animal"], cohort, thr)
    if saliency:
        figs["saliency"] = F.saliency_figure(saliency)
    return figs




def report_predictions(predictions: pd.DataFrame, metadata: pd.DataFrame | None, out_dir: str | Path, *,
                       report: bool = True, saliency: list[dict] | None = None, **kwargs) -> dict:
    """Evaluate predictions, write the result files and (``report``) ``report.html``.

    Args:
        saliency: Grad-CAM examples for the report (``inference.saliency.run_saliency_examples``).
        **kwargs: passed to :func:`evaluation.evaluate.compute_results`.

    Returns:
        The results dict (as in ``metrics.json``) with ``paths`` (``report`` included).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results, levels = compute_results(predictions, metadata, **kwargs)
    extra = {}
    if report:
        extra["report"] = str(write_report(results, make_figures(results, levels, saliency), out / "report.html"))
    write_results(results, levels, out, extra)
    return results


def report_run(run_dir: str | Path, out_dir: str | Path | None = None,
               metadata: str | Path | pd.DataFrame | None = None, *, report: bool = True, **kwargs) -> dict:
    """``mfe evaluate RUN``: :func:`evaluation.evaluate.evaluate_run` plus the HTML report with
    Grad-CAM maps from the run's first fold (skipped, with a log line, when impossible)."""
    pred, meta, run_folder, warnings = run_inputs(run_dir, metadata)
    kwargs.setdefault("source", str(run_dir))
    kwargs.setdefault("title", f"mfe evaluation: {run_folder.name}")
    kwargs.setdefault("warnings", warnings)
    kwargs.setdefault("task", run_task(run_folder))
    kwargs.setdefault("training", run_training(run_folder))
    if report and "saliency" not in kwargs and list(run_folder.glob("fold*/fold.json")):
        kwargs["saliency"] = _run_saliency(run_folder)
        kwargs.setdefault("regions", _run_regions(run_folder, kwargs["task"].get("class_names")))
    return report_predictions(pred, meta, out_dir or run_folder / "evaluation", report=report, **kwargs)


def _run_saliency(run_folder: Path) -> list[dict] | None:
    from mouse_facial_expressions.inference.saliency import run_saliency_examples

    try:
        return run_saliency_examples(run_folder)
    except (FileNotFoundError, KeyError, ValueError) as err:
        log.warning("no saliency maps in the report: %s", err)
        return None


def _run_regions(run_folder: Path, class_names) -> list[dict] | None:
    from mouse_facial_expressions.inference.saliency import run_region_importance

    try:
        return run_region_importance(run_folder, class_names or ("class 0", "class 1"), per_class=16).to_dict(orient="records")
    except (FileNotFoundError, KeyError, ValueError) as err:
        log.warning("no region occlusion table in the report: %s", err)
        return None


def report_zeroshot(run_dir: str | Path, task_dir: str | Path, out_dir: str | Path | None = None, *,
                    window_step: int | None = None, batch_size: int = 16, precision: str = "32", **kwargs) -> dict:
    """``mfe evaluate RUN --task OTHER``: the run's fold ensemble scores every window of another
    cohort's task (:func:`inference.zeroshot.predict_task`), then evaluation and the report.

    Returns:
        The results (``metrics`` when labelled, else ``animal_scores``) with ``paths``
        (``predictions`` = the window predictions CSV). Output defaults to
        ``<run_dir>/zeroshot-<task folder name>``.
    """
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.zeroshot import domain_check, predict_task

    run_dir, task_dir = Path(run_dir), Path(task_dir)
    ens = load_ensemble(run_dir)
    ens.dtype = torch.bfloat16 if "bf16" in str(precision) else torch.float32
    out = Path(out_dir) if out_dir is not None else (run_dir if run_dir.is_dir() else run_dir.parent) / f"zeroshot-{task_dir.name}"
    out.mkdir(parents=True, exist_ok=True)
    pred = predict_task(ens, task_dir, window_step=window_step, batch_size=batch_size)
    write_csv(pred, out / "predictions.csv")
    checked = domain_check(ens, task_dir)  # the task's videos against the model's training data
    write_json(out / "zeroshot.json", {"run": str(run_dir), "task": str(task_dir), "members": ens.names, "n_windows": len(pred),
                                       "domain": checked})
    kwargs.setdefault("domain", checked)
    kwargs.setdefault("source", f"{run_dir} on {task_dir}")
    kwargs.setdefault("title", f"mfe zero-shot: {run_dir.name} on {task_dir.name}")
    results = report_predictions(pred, metadata_from_task(task_dir), out, **kwargs)
    results["paths"]["predictions"] = str(out / "predictions.csv")
    write_json(out / "metrics.json", results)
    return results
