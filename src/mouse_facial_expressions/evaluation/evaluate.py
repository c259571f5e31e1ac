"""Evaluate a run's predictions: metrics with CIs, breakdowns, batch effects, files, report.

``compute_results`` is pure (tables in, JSON-safe dict out); ``evaluate_predictions`` adds
the files (``metrics.json``, ``metrics.csv``, per-level prediction CSVs, ``breakdown.csv``,
``report.html``); ``evaluate_run`` reads ``<run>/predictions.csv`` (docs/ARCHITECTURE.md,
"Predictions") and metadata, and calls it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.evaluation.aggregate import aggregate_levels, validate_predictions
from mouse_facial_expressions.evaluation.batch_effects import check_batch_effects
from mouse_facial_expressions.evaluation.breakdown import add_sex, breakdown
from mouse_facial_expressions.evaluation.metrics import METRICS, THRESHOLD, bootstrap_ci, confusion_matrix

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
    f = Path(task_dir) / "frames.parquet"
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


def _run_metadata(run_folder: Path) -> pd.DataFrame | None:
    """``<run>/metadata.csv``, else the metadata of the task named in ``<run>/params.json``."""
    if (run_folder / "metadata.csv").is_file():
        return read_metadata(run_folder / "metadata.csv")
    params = run_folder / "params.json"
    if params.is_file():
        try:
            task_dir = json.loads(params.read_text()).get("task_dir")
        except (json.JSONDecodeError, AttributeError):
            return None
        if task_dir:
            meta = metadata_from_task(task_dir)
            if meta is None:
                log.info("no metadata: task folder %s (from %s) has no frames.parquet", task_dir, params)
            return meta
    return None


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
            out[name] = {"value": ci.value, "low": ci.low, "high": ci.high}
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
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """All numbers of an evaluation, without writing anything (``warnings``: lines from
    earlier stages, e.g. a fine-tuning overlap, shown with the batch-effect warnings).

    Args:
        predictions: the predictions table (``fold, video, animal, start_time, end_time, label, p1``).
        metadata: optional table joined by ``video`` (or ``animal``): ``treatment``, ``cohort``,
            ``sex``, ``recording``, ...
        n_boot: bootstrap resamples of animals for the CIs.

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
    be = check_batch_effects(levels["animal"], cohort, threshold=threshold, n_boot=n_boot, seed=seed)
    results["batch_effects"] = be
    results["warnings"] = list(warnings or []) + list(be.get("warnings", []))
    keep = [c for c in levels["animal"].columns if c != "videos"]
    scores = levels["animal"][keep].astype({"label": "Int64"})  # 0/1/empty, not 0.0/1.0/nan
    results["animal_scores"] = scores.to_dict(orient="records")
    return jsonable(results), levels


def make_figures(results: dict, levels: dict[str, pd.DataFrame], saliency: list[dict] | None = None) -> dict[str, bytes]:
    """The report's figures (PNG bytes by id) from :func:`compute_results`' output."""
    from mouse_facial_expressions.report import figures as F

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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` then rename onto ``path`` (readable like any new file, not 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def evaluate_predictions(
    predictions: pd.DataFrame,
    metadata: pd.DataFrame | None,
    out_dir: str | Path,
    *,
    report: bool = True,
    saliency: list[dict] | None = None,
    **kwargs,
) -> dict:
    """Evaluate predictions and write the results into ``out_dir``.

    Writes ``metrics.json`` (everything), ``metrics.csv`` (level, metric, value, ci_low,
    ci_high), ``predictions_{window,video,animal}.csv``, ``breakdown.csv`` and, with
    ``report``, the self-contained ``report.html``.

    Args:
        saliency: optional Grad-CAM examples for the report (see ``report.figures.saliency_figure``).
        **kwargs: passed to :func:`compute_results` (``n_boot``, ``seed``, ``threshold``,
            ``n_bins``, ``cohort``, ``source``, ``title``).

    Returns:
        The results dict (as in ``metrics.json``) with ``paths`` of the files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results, levels = compute_results(predictions, metadata, **kwargs)
    paths: dict[str, str] = {}
    for level, df in levels.items():
        p = out / f"predictions_{level}.csv"
        _atomic_write(p, lambda t, df=df: df.to_csv(t, index=False))
        paths[f"predictions_{level}"] = str(p)
    if results.get("breakdown"):
        p = out / "breakdown.csv"
        _atomic_write(p, lambda t: pd.DataFrame(results["breakdown"]).to_csv(t, index=False))
        paths["breakdown"] = str(p)
    p = out / "metrics.csv"
    _atomic_write(p, lambda t: metrics_long(results).to_csv(t, index=False))
    paths["metrics_csv"] = str(p)
    if report:
        from mouse_facial_expressions.report.html import write_report

        paths["report"] = str(write_report(results, make_figures(results, levels, saliency), out / "report.html"))
    paths["metrics_json"] = str(out / "metrics.json")
    results["paths"] = paths
    _atomic_write(out / "metrics.json", lambda t: Path(t).write_text(json.dumps(results, indent=2)))
    return results


def read_predictions(run_dir: str | Path) -> pd.DataFrame:
    """``<run_dir>/predictions.csv`` (or the file itself when given a CSV path)."""
    p = Path(run_dir)
    f = p if p.suffix == ".csv" else p / "predictions.csv"
    if not f.is_file():
        raise FileNotFoundError(f"no predictions file: {f} (a run folder holds predictions.csv)")
    return pd.read_csv(f, dtype={"video": str, "animal": str})


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
    Extra keyword arguments go to :func:`evaluate_predictions`.
    """
    run = Path(run_dir)
    pred = read_predictions(run)
    run_folder = run.parent if run.suffix == ".csv" else run
    if metadata is None:
        meta = _run_metadata(run_folder)
    else:
        meta = read_metadata(metadata) if isinstance(metadata, (str, Path)) else metadata
    kwargs.setdefault("source", str(run))
    kwargs.setdefault("title", f"mfe evaluation: {run_folder.name}")
    tuned = run_folder / "finetune.json"
    if tuned.is_file():
        kwargs.setdefault("warnings", list(json.loads(tuned.read_text()).get("warnings", [])))
    if "saliency" not in kwargs and kwargs.get("report", True) and list(run_folder.glob("fold*/fold.json")):
        kwargs["saliency"] = _run_saliency(run_folder)
    return evaluate_predictions(pred, meta, out_dir or run_folder / "evaluation", **kwargs)


def _run_saliency(run_folder: Path) -> list[dict] | None:
    """Grad-CAM examples from the run's first fold; None (with a log line) when impossible."""
    from mouse_facial_expressions.evaluation.saliency import run_saliency_examples

    try:
        return run_saliency_examples(run_folder)
    except (FileNotFoundError, KeyError, ValueError) as err:
        log.warning("no saliency maps in the report: %s", err)
        return None


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
            v = "nan" if d["value"] is None else f"{d['value']:.3f}"
            ci = "" if d["low"] is None else f" [{d['low']:.3f}, {d['high']:.3f}]"
            parts.append(f"{name} {v}{ci}")
        lines.append(f"{lv:>7} (n={ms[lv]['n']}): " + ", ".join(parts))
    if not ms:
        lines.append(f"no labels: scores for {results['summary']['n_animals']} animals in predictions_animal.csv")
    for w in results.get("warnings", []):
        lines.append(f"WARNING: {w}")
    return "\n".join(lines)
