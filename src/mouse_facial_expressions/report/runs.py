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

from mouse_facial_expressions.data.task_files import TaskFiles
from mouse_facial_expressions.evaluation.aggregate import aggregate_levels, validate_predictions
from mouse_facial_expressions.evaluation.evaluate import compute_results, join_metadata, metadata_from_task, write_results
from mouse_facial_expressions.evaluation.run_folder import run_evaluation_inputs, run_reference
from mouse_facial_expressions.evaluation.mgs_models import task_mgs
from mouse_facial_expressions.io.atomic import write_csv, write_json
from mouse_facial_expressions.report import figures as F
from mouse_facial_expressions.report.html import write_report

log = logging.getLogger(__name__)


def make_figures(results: dict, levels: dict[str, pd.DataFrame], saliency: list[dict] | None = None) -> dict[str, bytes]:
    """The report's figures (PNG bytes by id) from :func:`compute_results`' output."""
    thr = results["settings"]["threshold"]
    cohort = results["settings"]["cohort_column"]
    names = results.get("class_names")  # the task's names of label 0 and label 1
    figs: dict[str, bytes] = {}
    if results["summary"]["labelled"]:
        figs["roc"] = F.roc_figure(levels, class_names=names)
        figs["confusion"] = F.confusion_figure(levels, thr, class_names=names)
        figs["calibration"] = F.calibration_figure(levels, results["settings"]["n_bins"], class_names=names)
    figs["animal_scores"] = F.animal_strip_figure(levels["animal"], thr, color_by=cohort, class_names=names)
    figs["timecourse"] = F.timecourse_figure(levels["window"], threshold=thr, class_names=names)
    be = results["batch_effects"]
    if be.get("available"):
        animals = levels["animal"]
        if be.get("default_cohort") and cohort not in animals.columns:  # a zero-shot task without cohorts: one
            animals = animals.assign(**{cohort: be["default_cohort"]})
        figs["cohorts"] = F.cohort_figure(animals, cohort, thr, flagged=be.get("flagged"), class_names=names)
    if saliency:
        figs["saliency"] = F.saliency_figure(saliency, class_names=names)
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
    """``mfe evaluate RUN``: :func:`evaluation.run_folder.evaluate_run` plus the HTML report with
    Grad-CAM maps from the run's first fold (skipped, with a log line, when impossible)."""
    pred, meta, run_folder = run_evaluation_inputs(run_dir, metadata, kwargs)
    kwargs.setdefault("shift_context", {"setting": "in-cohort", "relative": _run_is_relative(run_folder)})
    if report and "saliency" not in kwargs and list(run_folder.glob("fold*/fold.json")):
        kwargs["saliency"] = _run_saliency(run_folder)
        kwargs.setdefault("regions", _run_regions(run_folder, kwargs["task"].get("class_names")))
    return report_predictions(pred, meta, out_dir or run_folder / "evaluation", report=report, **kwargs)


def _run_is_relative(run_folder: Path) -> bool:
    """Whether a run scores windows against each animal's baseline (``params.json``'s ``baseline_recording``)."""
    import json

    try:
        return json.loads((run_folder / "params.json").read_text()).get("baseline_recording") is not None
    except (OSError, ValueError, AttributeError):
        return False


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
                    window_step: int | None = None, batch_size: int = 16, precision: str = "32",
                    recalibrate: str | list[str] | tuple[str, ...] | None = None, baseline_recording: int = 1,
                    recalibrate_by: str | None = None, **kwargs) -> dict:
    """``mfe evaluate RUN --task OTHER``: the run's fold ensemble scores every window of another
    cohort's task (:func:`inference.zeroshot.predict_task`), then evaluation and the report.

    The cohort check compares the task's controls and positives with the run's own
    cross-validated predictions (:func:`evaluation.evaluate.run_reference`); a task without a
    cohort column is one cohort named after its folder.

    Args:
        recalibrate: ``"controls"``, ``"adabn"`` and/or ``"baseline"`` (:func:`recalibrated_zeroshot`):
            each is evaluated NEXT TO the raw zero-shot numbers, never instead of them.
        baseline_recording: the recording that is each animal's baseline (``baseline``).
        recalibrate_by: the metadata column whose groups ``adabn`` recalibrates separately
            (default: the ``cohort`` column; ``"none"``: the whole task at once).

    Returns:
        The results (``metrics`` when labelled, else ``animal_scores``; ``recalibration`` with
        ``recalibrate``) with ``paths`` (``predictions`` = the window predictions CSV). Output
        defaults to ``<run_dir>/zeroshot-<task folder name>``.
    """
    from mouse_facial_expressions.evaluation.recalibrate import METHODS
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.zeroshot import domain_check, predict_task

    methods = [recalibrate] if isinstance(recalibrate, str) else list(recalibrate or [])
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown recalibration {unknown}: choose from {', '.join(METHODS)}")
    run_dir, task_dir = Path(run_dir), Path(task_dir)
    meta = metadata_from_task(task_dir)
    reference = run_reference(run_dir)
    if "controls" in methods:  # refused before anything is scored
        _check_controls_possible(meta, reference, run_dir, task_dir)
    if "adabn" in methods:
        adabn_groups(meta, recalibrate_by, kwargs.get("cohort", "cohort"))  # a --recalibrate-by column the task lacks
    if reference is None:
        log.warning("%s: no predictions.csv of the run found: the cohort check compares cohorts with each other", run_dir)
    ens = load_ensemble(run_dir)
    ens.dtype = torch.bfloat16 if "bf16" in str(precision) else torch.float32
    out = Path(out_dir) if out_dir is not None else (run_dir if run_dir.is_dir() else run_dir.parent) / f"zeroshot-{task_dir.name}"
    out.mkdir(parents=True, exist_ok=True)
    pred = predict_task(ens, task_dir, window_step=window_step, batch_size=batch_size)
    write_csv(pred, out / "predictions.csv")
    checked = domain_check(ens, task_dir)  # the task's videos against the model's training data
    kwargs.setdefault("domain", checked)
    kwargs.setdefault("source", f"{run_dir} on {task_dir}")
    kwargs.setdefault("title", f"mfe zero-shot: {run_dir.name} on {task_dir.name}")
    kwargs.setdefault("reference", reference)
    kwargs.setdefault("default_cohort", task_dir.name)
    kwargs.setdefault("mgs", task_mgs(task_dir, pred, n_boot=kwargs.get("n_boot", 1000)))  # runs with action-unit heads
    info = {"run": str(run_dir), "task": str(task_dir), "members": ens.names, "n_windows": len(pred), "domain": checked,
            "reference": None if reference is None else reference.attrs.get("source")}
    context = {"setting": "zero-shot", "relative": bool(ens.relative)}
    if methods:
        kwargs["recalibration"] = recalibrated_zeroshot(
            ens, task_dir, pred, meta, reference, methods, out, window_step=window_step, batch_size=batch_size,
            baseline_recording=baseline_recording, recalibrate_by=recalibrate_by,
            **{k: kwargs[k] for k in ("threshold", "n_boot", "seed", "cohort") if k in kwargs})
        info["recalibration"] = kwargs["recalibration"]["methods"]
        context["recalibrations"] = {m: d["flagged_after"] for m, d in kwargs["recalibration"]["methods"].items()}
    kwargs.setdefault("shift_context", context)
    write_json(out / "zeroshot.json", info)
    results = report_predictions(pred, meta, out, **kwargs)
    results["paths"]["predictions"] = str(out / "predictions.csv")
    for m in methods:
        results["paths"][f"predictions_recalibrated_{m}"] = str(out / f"predictions_recalibrated_{m}.csv")
        results["paths"][f"metrics_recalibrated_{m}"] = str(out / f"recalibrated-{m}" / "metrics.json")
    if methods:
        results["paths"]["recalibration"] = str(out / "recalibration.csv")
    write_json(out / "metrics.json", results)
    return results


def _baseline_recalibration(ens, task_dir: Path, pred: pd.DataFrame, reference: pd.DataFrame | None,
                            recording: int) -> tuple[pd.DataFrame, dict]:
    """:func:`evaluation.recalibrate.baseline_shift` with the recordings of both tasks: the new
    cohort's and the training task's (named in the checkpoints), and the run's own window scores."""
    from mouse_facial_expressions.data.tasks import load_task
    from mouse_facial_expressions.evaluation.recalibrate import baseline_shift

    if reference is None or not reference.attrs.get("source"):
        raise FileNotFoundError(f"--recalibrate baseline needs the run's own predictions.csv (the training animals' "
                                f"baseline scores) next to {ens.source}: none found")
    train_task = Path(str(ens.data.get("task_dir") or ""))
    if not (train_task / TaskFiles.FRAMES).is_file():
        raise FileNotFoundError(f"--recalibrate baseline needs the training task {train_task} (its recordings): not found")

    def recordings(task) -> dict:
        f = load_task(task).frames
        if "recording" not in f.columns:
            raise ValueError(f"{task}: --recalibrate baseline needs a 'recording' column in frames.parquet")
        return dict(zip(f["video"].astype(str), f["recording"]))

    return baseline_shift(pred, recordings(task_dir), pd.read_csv(reference.attrs["source"]), recordings(train_task), recording)


def _check_controls_possible(meta: pd.DataFrame | None, reference: pd.DataFrame | None, run_dir: Path,
                              task_dir: Path) -> None:
    """``--recalibrate controls`` needs control animals in the task and the run's own predictions."""
    from mouse_facial_expressions.evaluation.recalibrate import control_animal_scores

    if reference is None:
        raise FileNotFoundError(f"--recalibrate controls needs the run's own predictions.csv (the training controls' "
                                f"scores): none found at or above {run_dir}")
    table = (meta if meta is not None else pd.DataFrame(columns=["animal"])).assign(p1=0.5)
    try:
        control_animal_scores(table)
    except ValueError as err:
        raise ValueError(f"{task_dir}: {err}") from None


def adabn_groups(meta: pd.DataFrame | None, by: str | None, cohort: str = "cohort") -> tuple[dict | None, str]:
    """video -> group for ``--recalibrate adabn`` and the column used (``"none"``: the whole task).

    ``by``: a metadata column, ``"none"``, or None (the ``cohort`` column when the task has one,
    else the whole task). An explicit column the task lacks is refused."""
    if by is not None and by.lower() in ("none", "task"):
        return None, "none"
    column = by or cohort
    if meta is None or column not in meta.columns or meta[column].isna().all():
        if by is not None:
            have = ", ".join(c for c in (meta.columns if meta is not None else []) if c != "video") or "none"
            raise ValueError(f"--recalibrate-by {by}: the task's metadata has no such column (columns: {have})")
        return None, "none"
    return dict(zip(meta["video"].astype(str), meta[column])), column


def _animals(pred: pd.DataFrame, meta: pd.DataFrame | None) -> pd.DataFrame:
    return aggregate_levels(join_metadata(validate_predictions(pred), meta))["animal"]


def recalibrated_zeroshot(ens, task_dir: Path, pred: pd.DataFrame, meta: pd.DataFrame | None,
                          reference: pd.DataFrame | None, methods: list[str], out: Path, *,
                          window_step: int | None = None, batch_size: int = 16, threshold: float = 0.5,
                          n_boot: int = 1000, seed: int = 0, cohort: str = "cohort", baseline_recording: int = 1,
                          recalibrate_by: str | None = None) -> dict:
    """Each recalibration of the raw zero-shot predictions ``pred``, evaluated beside them.

    - ``controls``: the same scores at the threshold moved by the new cohort's control animals
      (:func:`evaluation.recalibrate.controls_threshold`, against ``reference``, the run's
      cross-validated predictions; needed).
    - ``adabn``: the task scored again by copies of the ensemble whose BatchNorm statistics were
      recomputed per recording cohort (``recalibrate_by``, :func:`adabn_groups`; a group too small
      gets the whole task's: :func:`inference.adabn.predict_task_adabn`), at the same threshold.
    - ``baseline``: each animal's scores moved by its own ``baseline_recording`` windows
      (:func:`evaluation.recalibrate.baseline_shift`; no labels); baseline windows not scored.

    Writes per method ``predictions_recalibrated_<method>.csv`` (window predictions, with the
    ``threshold`` applied) and ``recalibrated-<method>/`` (the evaluation files, metrics.json
    with CIs), and ``recalibration.csv`` (the comparison rows; ``recalibrated_by``: adabn's
    grouping, each group's statistics). Each method's details hold ``flagged_after``: the
    cohorts its own cohort check still flags.

    Returns:
        ``{"level": "animal", "methods": {method: details}, "comparison": [rows]}``: rows
        ``zero-shot (raw)`` and ``recalibrated (<method>)`` (:func:`evaluation.recalibrate.scoring_row`).
    """
    from mouse_facial_expressions.evaluation.recalibrate import controls_threshold, scoring_row

    raw = _animals(pred, meta)
    rows = [{**scoring_row("zero-shot (raw)", raw, threshold), "recalibrated_by": ""}]
    details: dict[str, dict] = {}
    for method in methods:
        if method == "controls":
            if reference is None:
                raise FileNotFoundError(f"--recalibrate controls needs the run's own predictions.csv (the training "
                                        f"controls' scores) next to {ens.source}: none found")
            d = controls_threshold(raw, reference, threshold)
            d["reference"] = reference.attrs.get("source")
            new_pred, thr = pred, d["new_threshold"]
            log.info("recalibrated (controls): threshold %.3f -> %.3f (logit offset %+.3f from %d control animals)",
                     threshold, thr, d["offset_logit"], d["n_new_controls"])
        elif method == "baseline":
            new_pred, d = _baseline_recalibration(ens, task_dir, pred, reference, baseline_recording)
            thr = threshold
            d.update(threshold=threshold, new_threshold=threshold)
            log.info("recalibrated (baseline): each animal moved by its own recording-%d windows (%d animals%s)",
                     baseline_recording, len(d["offsets_logit"]),
                     f"; no baseline: {', '.join(d['dropped_animals'])}" if d["dropped_animals"] else "")
        else:
            from mouse_facial_expressions.inference.adabn import predict_task_adabn

            groups, by = adabn_groups(meta, recalibrate_by, cohort)
            new_pred, d = predict_task_adabn(ens, task_dir, groups, window_step=window_step, batch_size=batch_size)
            d.update(method="adabn", threshold=threshold, new_threshold=threshold, by=by,
                     recalibrated_by=_grouping_text(by, d["groups"]),
                     uses=f"no labels: the BatchNorm statistics of every fold model were recomputed on the new cohort's "
                          f"{d['n_clips']} clips, {_grouping_text(by, d['groups'])}")
            thr = threshold
        called = new_pred.assign(threshold=thr, called_positive=new_pred["p1"] >= thr)
        write_csv(called, out / f"predictions_recalibrated_{method}.csv")
        res, levels = compute_results(new_pred, meta, n_boot=n_boot, seed=seed, threshold=thr, cohort=cohort,
                                      reference=reference, default_cohort=task_dir.name,
                                      source=f"{ens.source} on {task_dir}, recalibrated ({method})",
                                      title=f"mfe zero-shot, recalibrated ({method})",
                                      shift_context={"setting": "zero-shot", "relative": bool(ens.relative),
                                                     "recalibrated": method})
        d["flagged_after"] = list(res["batch_effects"].get("flagged", []))
        res["recalibration"] = {"method": method, **d}
        write_results(res, levels, out / f"recalibrated-{method}")
        details[method] = d
        rows.append({**scoring_row(f"recalibrated ({method})", levels["animal"], thr),
                     "recalibrated_by": d.get("recalibrated_by", "")})
    write_csv(pd.DataFrame(rows), out / "recalibration.csv")
    return {"level": "animal", "methods": details, "comparison": rows}


def _grouping_text(by: str, groups: list[dict]) -> str:
    """Which statistics each group got, in words (the printed line and ``recalibration.csv``)."""
    if by == "none":
        return "one set over the whole task"
    parts = [f"{g['group']} ({g['n_animals']} animals, {g['n_windows']} windows): "
             + ("own" if g["statistics"] == "own" else f"whole task's, {g['reason']}") for g in groups]
    return f"per {by}: " + "; ".join(parts)


def score_images(images, keypoints, model, out_dir, *, ratings=None, n_boot: int = 1000, **kwargs):
    """``mfe predict --images``: :func:`inference.images.predict_images` and, with ``ratings`` (a
    ratings parquet from ``mfe ratings import``, or its table), the agreement of the model's MGS
    scores with the raters of the same images (:func:`evaluation.mgs_models.image_agreement`)
    in ``images_agreement.csv``; a run without action-unit heads gets a note instead.

    Returns:
        The :class:`inference.images.ImagesReport` (``agreement`` set when written)."""
    from mouse_facial_expressions.evaluation.mgs_models import image_agreement
    from mouse_facial_expressions.inference.images import AGREEMENT_CSV, predict_images
    from mouse_facial_expressions.io.ratings import load_ratings

    rated = None if ratings is None else ratings if isinstance(ratings, pd.DataFrame) else load_ratings(ratings)
    report = predict_images(images, keypoints, model, out_dir, **kwargs)
    if rated is not None:
        if not report.has_au:
            report.notes.append(f"{model}: the model has no action-unit heads (train with --targets au or au+class), "
                                "so there are no MGS scores to compare with the ratings: no agreement written")
        else:
            report.agreement, notes = image_agreement(report.scores, rated, n_boot=n_boot)
            report.notes += notes
            if report.agreement is not None:
                report.files.append(write_csv(report.agreement, Path(out_dir) / AGREEMENT_CSV))
    for n in report.notes:
        log.info(n)
    return report
