"""Evaluate a run's predictions: metrics with CIs, breakdowns, batch effects, files.

``compute_results`` is pure (tables in, JSON-safe dict out); ``write_results`` writes the
files (``metrics.json``, ``metrics.csv``, per-level prediction CSVs, ``breakdown.csv``);
``evaluate_predictions`` does both; ``evaluation.run_folder.evaluate_run`` reads a run folder's
``predictions.csv`` (docs/ARCHITECTURE.md, "Predictions") and metadata, and calls it. The HTML
report is the report stage's (``report.runs``), which calls these and then renders.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.data.predictions import AU_PREDICTION_COLUMNS, per_second
from mouse_facial_expressions.data.task_files import TaskFiles
from mouse_facial_expressions.evaluation.animal_table import DEFAULT_CLASS_NAMES, animal_scores_table
from mouse_facial_expressions.evaluation.aggregate import aggregate_levels, validate_predictions
from mouse_facial_expressions.evaluation.batch_effects import check_batch_effects
from mouse_facial_expressions.evaluation.breakdown import add_sex, breakdown
from mouse_facial_expressions.evaluation.metrics import METRICS, THRESHOLD, bootstrap_ci, confusion_matrix, format_ci
from mouse_facial_expressions.io.atomic import write_csv, write_text

log = logging.getLogger(__name__)

LEVELS = ("window", "video", "animal")
#: Metrics that get bootstrap CIs at every level (the rest of METRICS get none).
CI_METRICS = ("accuracy", "balanced_accuracy", "auroc", "f1", "precision", "recall", "ece")


def jsonable(obj):
    """Recursively turn numpy/pandas values into JSON types (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return None if math.isnan(float(obj)) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (pd.Timestamp, np.datetime64, pd.Timedelta)):
        return str(obj)  # e.g. the video table's recording timestamp
    return obj


def read_metadata(path: str | Path) -> pd.DataFrame:
    """A metadata CSV keyed by ``video`` (preferred) or ``animal``/``mouse`` (e.g. treatments.csv)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"metadata file not found: {p}")
    df = pd.read_csv(p)
    df.attrs["source"] = str(p)
    return df


#: Frame-level columns of a task's frames.parquet that are not video metadata.
_FRAME_COLUMNS = {"row", "frame", "time", "side", "sharpness", "intensity", "min_likelihood", "run",
                  "eye_x", "eye_y", "ear_x", "ear_y", "nose_x", "nose_y", "label", "soft"}


def metadata_from_task(task_dir: str | Path) -> pd.DataFrame | None:
    """Video-level metadata (``video``, ``animal``, ``recording``, ``treatment``, ``cohort``, ...)
    from a task folder's ``frames.parquet``: the columns constant within each video."""
    f = Path(task_dir) / TaskFiles.FRAMES
    if not f.is_file():
        return None
    df = pd.read_parquet(f)
    if "video" not in df.columns:
        return None
    cols = [c for c in df.columns if c not in _FRAME_COLUMNS and c != "video"]
    nun = df.groupby("video")[cols].nunique(dropna=False)
    keep = [c for c in cols if (nun[c] <= 1).all()]
    meta = df.groupby("video", as_index=False)[keep].first()
    meta.attrs["source"] = str(f)
    return meta


def join_metadata(pred: pd.DataFrame, meta: pd.DataFrame | None) -> pd.DataFrame:
    """Add metadata columns to the predictions, by ``video`` or else by ``animal``/``mouse``.

    Columns the predictions already have are kept from the predictions. Duplicate keys with
    different values are an error naming the file and the row.
    """
    if meta is None or meta.empty:
        return pred
    src = meta.attrs.get("source", "metadata")
    meta = meta.copy()
    if "video" in meta.columns:
        key = "video"
    elif "animal" in meta.columns or "mouse" in meta.columns:
        key = "animal"
        if "animal" not in meta.columns:
            meta = meta.rename(columns={"mouse": "animal"})
    else:
        raise ValueError(f"{src}: needs a 'video' or an 'animal'/'mouse' column to join on")
    meta[key] = meta[key].astype(str)
    extra = [c for c in meta.columns if c not in pred.columns and c != key and not str(c).startswith("Unnamed")]
    meta = meta[[key] + extra].drop_duplicates()
    dup = meta[key].duplicated(keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"{src}: row {meta.index[i]}: {key} {meta[key].iloc[i]!r} appears more than once with different values")
    return pred.merge(meta, on=key, how="left", validate="many_to_one")


def _level_metrics(df: pd.DataFrame, n_boot: int, seed: int, threshold: float) -> dict:
    out: dict = {}
    for name in METRICS:
        if name in CI_METRICS:
            ci = bootstrap_ci(df, name, n=n_boot, seed=seed, threshold=threshold)
            out[name] = ci.as_dict()  # value, low, high, n_undefined, n_resamples
        else:
            out[name] = {"value": METRICS[name](df["label"], df["p1"], threshold), "low": None, "high": None}
    out.update(n=len(df), n_pos=int((df["label"] == 1).sum()), n_animals=int(df["animal"].nunique()))
    return out


def _per_fold(levels: dict[str, pd.DataFrame], threshold: float) -> list[dict]:
    rows = []
    for level, df in levels.items():
        lab = df[df["label"].notna()]
        for fold, part in lab.groupby("fold"):
            row = {"level": level, "fold": int(fold), "n": len(part), "animals": int(part["animal"].nunique())}
            for m in ("accuracy", "balanced_accuracy", "auroc"):
                row[m] = METRICS[m](part["label"], part["p1"], threshold)
            rows.append(row)
    return rows


def compute_results(
    predictions: pd.DataFrame,
    metadata: pd.DataFrame | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    threshold: float = THRESHOLD,
    n_bins: int = 10,
    cohort: str = "cohort",
    source: str = "predictions",
    title: str | None = None,
    warnings: list[str] | None = None,
    domain: dict | None = None,
    class_names: list[str] | None = None,
    task: dict | None = None,
    training: dict | None = None,
    regions: list[dict] | None = None,
    reference: pd.DataFrame | None = None,
    reference_name: str = "the training animals' cross-validated scores",
    default_cohort: str | None = None,
    recalibration: dict | None = None,
    modalities: dict | None = None,
    mgs: dict | None = None,
    shift_context: dict | None = None,
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """All numbers of an evaluation, without writing anything (``warnings``: lines from
    earlier stages, e.g. a fine-tuning overlap, shown with the batch-effect warnings; ``domain``:
    the domain check of zero-shot videos, ``inference.zeroshot.domain_check``, kept as ``domain``).

    Args:
        predictions: the predictions table (``fold, video, animal, start_time, end_time, label, p1``).
        metadata: optional table joined by ``video`` (or ``animal``): ``treatment``, ``cohort``,
            ``sex``, ``recording``, ...
        n_boot: bootstrap resamples of animals for the CIs.
        reference: animal-level scores the cohort check compares each cohort with (zero-shot:
            the run's own cross-validated predictions, :func:`run_reference`); default: the
            other cohorts pooled. ``default_cohort`` names the cohort of animals without one.
        recalibration: the raw-vs-recalibrated comparison of ``mfe evaluate RUN --task X
            --recalibrate ...`` (``report.runs``), kept as ``recalibration`` for the report.
        modalities: a fused run's modality table (:func:`evaluation.modalities.modality_table`),
            kept as ``modalities`` for the report.
        mgs: a run with action-unit heads: its Mouse Grimace Scale table
            (:func:`evaluation.mgs_models.mgs_table`), kept as ``mgs`` (written to ``mgs.csv``).
        shift_context: what shapes the cohort check's remedy (``setting``, ``relative``,
            ``recalibrated``, ``recalibrations``: :func:`evaluation.batch_effects.check_batch_effects`).

    Returns:
        ``(results, levels)``: the JSON-safe results (``summary``, ``settings``, ``metrics``
        per level, ``confusion``, ``per_fold``, ``breakdown``, ``batch_effects``,
        ``animal_scores``, ``warnings``) and the ``window``/``video``/``animal`` tables.
    """
    pred = validate_predictions(predictions, source)
    pred = add_sex(join_metadata(pred, metadata))
    levels = aggregate_levels(pred)
    for df in levels.values():
        df["called_positive"] = df["p1"] >= threshold
    labelled = {k: v[v["label"].notna()] for k, v in levels.items()}
    has_labels = len(labelled["window"]) > 0
    results: dict = {
        "title": title or "mfe evaluation report",
        "source": source,
        "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {"n_boot": n_boot, "seed": seed, "threshold": threshold, "n_bins": n_bins, "cohort_column": cohort},
        "summary": {
            "n_windows": len(pred),
            "n_videos": int(pred["video"].nunique()),
            "n_animals": int(pred["animal"].nunique()),
            "n_folds": int(pred["fold"].nunique()),
            "n_cohorts": int(pred[cohort].nunique()) if cohort in pred.columns else None,
            "labelled": has_labels,
            "n_labelled_windows": len(labelled["window"]),
        },
        "metrics": {},
        "confusion": {},
    }
    if has_labels:
        for level in LEVELS:
            df = labelled[level]
            results["metrics"][level] = _level_metrics(df, n_boot, seed, threshold)
            results["confusion"][level] = confusion_matrix(df["label"], df["called_positive"].astype(int)).tolist()
        results["per_fold"] = _per_fold(levels, threshold)
        parts = [breakdown(labelled["animal"], n_boot=n_boot, seed=seed, threshold=threshold).assign(level="animal")]
        if "recording" in levels["video"].columns and "recording" not in labelled["animal"].columns:
            parts.append(breakdown(labelled["video"], ["recording"], threshold=threshold).assign(level="video"))
        bd = pd.concat(parts, ignore_index=True)
        results["breakdown"] = bd[["level"] + [c for c in bd.columns if c != "level"]].to_dict(orient="records")
    else:
        cols = [c for c in ("sex", "treatment", "cohort") if c in levels["animal"].columns]
        if cols:
            bd = breakdown(levels["animal"], cols, metrics=("mean_p1",)).assign(level="animal")
            results["breakdown"] = bd.to_dict(orient="records")
    be = check_batch_effects(levels["animal"], cohort, threshold=threshold, n_boot=n_boot, seed=seed,
                             reference=reference, reference_name=reference_name, default_cohort=default_cohort,
                             **(shift_context or {}))
    results["batch_effects"] = be
    results["warnings"] = list(warnings or []) + list(be.get("warnings", []))
    if domain is not None:
        results["domain"] = domain
    results["task"] = dict(task or {})
    results["training"] = dict(training or {})
    if modalities:
        results["modalities"] = modalities  # each modality alone / left out (evaluation/modalities.py)
    if mgs:
        results["mgs"] = mgs  # AU predictions vs the raters and the truth (evaluation/mgs_models.py)
    if recalibration:
        results["recalibration"] = recalibration  # raw vs recalibrated zero-shot numbers (report.runs)
    if regions:
        results["regions"] = list(regions)  # region occlusion (inference.occlusion), for the report
    results["class_names"] = list(class_names or results["task"].get("class_names") or DEFAULT_CLASS_NAMES)
    labelled_w = levels["window"][levels["window"]["label"].notna()]
    p = labelled_w["p1"].to_numpy(float)
    results["summary"]["window_confidence"] = float(np.maximum(p, 1 - p).mean()) if len(p) else None
    keep = [c for c in levels["animal"].columns if c != "videos"]
    scores = levels["animal"][keep].astype({"label": "Int64"})  # 0/1/empty, not 0.0/1.0/nan
    results["animal_scores"] = scores.to_dict(orient="records")
    return jsonable(results), levels


def metrics_long(results: dict) -> pd.DataFrame:
    """``level, metric, value, ci_low, ci_high`` rows of the headline metrics."""
    rows = []
    for level, ms in results.get("metrics", {}).items():
        for name, d in ms.items():
            if isinstance(d, dict):
                rows.append({"level": level, "metric": name, "value": d["value"], "ci_low": d["low"], "ci_high": d["high"]})
            else:
                rows.append({"level": level, "metric": name, "value": d, "ci_low": None, "ci_high": None})
    return pd.DataFrame(rows, columns=["level", "metric", "value", "ci_low", "ci_high"])


def seconds_table(windows: pd.DataFrame) -> pd.DataFrame:
    """Per second of each video (``data.predictions.per_second``: the windows overlapping
    ``[second, second + 1)``, weighted by overlap): ``video, animal, second, coverage, p1`` and, for
    a run with action-unit heads, ``au_ot ... au_wc, mgs`` (as ``mfe predict``'s ``<video>_seconds.csv``)."""
    keep = [c for c in ("video", "start_time", "end_time", "p1", *AU_PREDICTION_COLUMNS) if c in windows.columns]
    parts = []
    for video, g in windows[keep].groupby("video", sort=True):
        sec = per_second(g.sort_values("start_time"))
        if "animal" in windows.columns:
            sec.insert(1, "animal", windows.loc[g.index, "animal"].iloc[0])
        parts.append(sec)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def write_results(results: dict, levels: dict[str, pd.DataFrame], out_dir: str | Path,
                  extra_paths: dict[str, str] | None = None) -> dict[str, str]:
    """Write ``predictions_{window,video,animal}.csv``, ``predictions_second.csv`` (:func:`seconds_table`),
    ``breakdown.csv``, ``metrics.csv``,
    ``animal_scores.csv`` (one row per animal-condition, in words: ``evaluation.animal_table``),
    ``mgs.csv`` (runs with action-unit heads) and, last, ``metrics.json`` (``results`` with ``paths``) into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    paths: dict[str, str] = {}
    for level, df in levels.items():
        paths[f"predictions_{level}"] = str(write_csv(df, out / f"predictions_{level}.csv"))
    if "window" in levels and len(levels["window"]):
        paths["predictions_second"] = str(write_csv(seconds_table(levels["window"]), out / "predictions_second.csv"))
    if results.get("breakdown"):
        paths["breakdown"] = str(write_csv(pd.DataFrame(results["breakdown"]), out / "breakdown.csv"))
    paths["metrics_csv"] = str(write_csv(metrics_long(results), out / "metrics.csv"))
    if results.get("mgs"):
        paths["mgs"] = str(write_csv(pd.DataFrame(results["mgs"]["rows"]), out / "mgs.csv"))
    settings = results.get("settings", {})
    wide = animal_scores_table(levels["window"], levels["animal"], results.get("class_names") or DEFAULT_CLASS_NAMES,
                               threshold=settings.get("threshold", THRESHOLD), n_boot=min(int(settings.get("n_boot", 1000)), 1000),
                               seed=int(settings.get("seed", 0)))
    paths["animal_scores"] = str(write_csv(wide, out / "animal_scores.csv"))
    paths.update(extra_paths or {})
    paths["metrics_json"] = str(out / "metrics.json")
    results["paths"] = paths
    write_text(out / "metrics.json", json.dumps(results, indent=2))
    return paths


def evaluate_predictions(predictions: pd.DataFrame, metadata: pd.DataFrame | None, out_dir: str | Path,
                         **kwargs) -> dict:
    """Evaluate predictions and write the results into ``out_dir`` (:func:`write_results`).

    Args:
        **kwargs: passed to :func:`compute_results` (``n_boot``, ``seed``, ``threshold``,
            ``n_bins``, ``cohort``, ``source``, ``title``, ``warnings``).

    Returns:
        The results dict (as in ``metrics.json``) with ``paths`` of the files written.
    """
    results, levels = compute_results(predictions, metadata, **kwargs)
    write_results(results, levels, out_dir)
    return results


def headline(results: dict, level: str = "animal") -> str:
    """A few lines with the main metrics and CIs, for the terminal."""
    lines = []
    ms = results.get("metrics", {})
    for lv in (level,) + tuple(x for x in reversed(LEVELS) if x != level):
        if lv not in ms:
            continue
        parts = []
        for name in ("accuracy", "balanced_accuracy", "auroc", "ece"):
            d = ms[lv][name]
            parts.append(f"{name} {format_ci(d['value'], d['low'], d['high'], d.get('n_undefined') or 0, d.get('n_resamples') or 0)}")
        unit = " animal-conditions" if lv == "animal" else ""  # one animal in one condition
        lines.append(f"{lv:>7} (n={ms[lv]['n']}{unit}): " + ", ".join(parts))
    if not ms:
        lines.append(f"no labels: scores for {results['summary']['n_animals']} animals in predictions_animal.csv")
    total = next((r for r in (results.get("mgs") or {}).get("rows", []) if r["target"] == "total"), None)
    if total is not None:  # a run with action-unit heads (evaluation/mgs_models.py)
        f = lambda v: "nan" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"MGS total (n={total.get('n_items') or 0} rated frames): vs mean rater kappa {f(total.get('kappa'))}, "
                     f"r {f(total.get('r'))} (raters among themselves: kappa {f(total.get('ceiling_kappa'))}); "
                     f"vs truth r {f(total.get('truth_r'))}; per AU in mgs.csv")
    for w in results.get("warnings", []):
        lines.append(f"WARNING: {w}")
    return "\n".join(lines)


#: Run-folder readers that moved to :mod:`evaluation.run_folder`; importing them from here still works.
_MOVED = {"evaluate_run", "read_predictions", "run_inputs", "run_reference", "run_training", "run_task",
          "run_modalities", "run_mgs", "run_sections", "SECTIONS", "_run_metadata"}


def __getattr__(name: str):
    if name in _MOVED:
        from mouse_facial_expressions.evaluation import run_folder

        return getattr(run_folder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
