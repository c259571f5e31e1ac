"""Compare runs side by side: one row per run with the key metrics and their CIs, and each run's
accuracy minus the first run's on the animals both scored, with a paired bootstrap CI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.bootstrap import draw_groups, percentile_ci
from mouse_facial_expressions.evaluation.aggregate import aggregate_levels, validate_predictions
from mouse_facial_expressions.evaluation.evaluate import compute_results, read_metadata
from mouse_facial_expressions.evaluation.run_folder import _run_metadata, read_predictions
from mouse_facial_expressions.evaluation.metrics import format_ci

KEY_METRICS = ("accuracy", "balanced_accuracy", "auroc", "f1", "ece")


def _run_name(run: Path, all_runs: list[Path]) -> str:
    names = [r.name for r in all_runs]
    return run.name if names.count(run.name) == 1 else str(run)


def compare_runs(
    run_dirs: list[str | Path],
    level: str = "animal",
    metrics: tuple[str, ...] = KEY_METRICS,
    n_boot: int = 1000,
    seed: int = 0,
    metadata: str | Path | None = None,
) -> pd.DataFrame:
    """One row per run: ``run, level, n, n_animals`` then ``<m>, <m>_low, <m>_high`` per metric.

    Each run's ``predictions.csv`` is evaluated in memory with the same bootstrap settings
    (same seed), so the intervals are comparable; nothing is written. A run's own metadata
    (``metadata.csv`` or its task's, as in ``evaluate_run``) is used when present, else ``metadata``. Unlabelled runs get NaN metrics.
    """
    runs = check_distinct(run_dirs)
    rows = []
    for run in runs:
        folder = run.parent if run.suffix == ".csv" else run
        meta = _run_metadata(folder)
        if meta is None and metadata is not None:
            meta = read_metadata(metadata)
        res, _ = compute_results(read_predictions(run), meta, n_boot=n_boot, seed=seed, source=str(run))
        row: dict = {"run": _run_name(folder, [r.parent if r.suffix == ".csv" else r for r in runs]), "level": level}
        ms = res["metrics"].get(level)
        row["n"] = ms["n"] if ms else res["summary"]["n_windows"]
        row["n_animals"] = res["summary"]["n_animals"]
        for m in metrics:
            d = (ms or {}).get(m, {})
            row[m], row[f"{m}_low"], row[f"{m}_high"] = d.get("value"), d.get("low"), d.get("high")
            row[f"{m}_undefined"], row[f"{m}_resamples"] = d.get("n_undefined"), d.get("n_resamples")
        row["batch_warnings"] = len(res.get("warnings", []))
        rows.append(row)
    return pd.DataFrame(rows)


def format_compare(df: pd.DataFrame, metrics: tuple[str, ...] = KEY_METRICS, digits: int = 3) -> str:
    """The comparison as a plain-text table with ``value [low, high]`` cells."""

    def cell(r, m):
        return format_ci(r.get(m), r.get(f"{m}_low"), r.get(f"{m}_high"), r.get(f"{m}_undefined") or 0,
                         r.get(f"{m}_resamples") or 0, digits, missing="-")

    table = pd.DataFrame(
        {
            "run": df["run"],
            "level": df["level"],
            "n": df["n"],
            **{m: [cell(r, m) for r in df.to_dict(orient="records")] for m in metrics if m in df.columns},
            "batch warnings": df["batch_warnings"],
        }
    )
    return table.to_string(index=False)


def check_distinct(run_dirs: list[str | Path]) -> list[Path]:
    """The runs as paths; a run given twice (the same folder, or two with identical predictions)
    is an error: comparing a run with itself says nothing."""
    from mouse_facial_expressions.provenance import fingerprint

    if not run_dirs:
        raise ValueError("compare: no runs given")
    runs = [Path(r) for r in run_dirs]
    seen: dict = {}
    for run in runs:
        pred = run if run.suffix == ".csv" else run / "predictions.csv"
        for key in (pred.resolve(), fingerprint(pred)["hash"] if pred.is_file() else None):
            if key is not None and key in seen:
                raise ValueError(f"compare: {run} and {seen[key]} are the same run (same predictions); "
                                 "comparing a run with itself says nothing")
            if key is not None:
                seen[key] = run
    return runs


_UNITS = {"animal": ["animal", "label"], "video": ["video"], "window": ["video", "start_time"]}


def paired_differences(run_dirs: list[str | Path], level: str = "animal", n_boot: int = 1000, seed: int = 0,
                       threshold: float = 0.5) -> pd.DataFrame:
    """Each run's accuracy minus the first run's, on the ``level`` units both scored.

    The CI is a paired bootstrap over animals: each resample draws animals with replacement and
    takes both runs' units of those animals, so what the runs share (the same hard animals)
    cancels. Also the number of units only one of the two runs calls right.

    Returns:
        One row per later run: ``run, baseline, level, n_units, n_animals, accuracy_run,
        accuracy_baseline, difference, low, high, only_run_right, only_baseline_right``.
    """
    runs = check_distinct(run_dirs)
    if len(runs) < 2:
        raise ValueError("paired differences need at least two runs")
    keys = _UNITS[level]
    tables = []
    for run in runs:
        df = aggregate_levels(validate_predictions(read_predictions(run), str(run)))[level]
        df = df[df["label"].notna()]
        right = ((df["p1"] >= threshold).astype(int) == df["label"].astype(int)).to_numpy()
        tables.append(pd.DataFrame({"animal": df["animal"].astype(str).to_numpy(), "right": right},
                                   index=pd.MultiIndex.from_frame(df[keys])))
    names = [_run_name(r.parent if r.suffix == ".csv" else r, runs) for r in runs]
    rng = np.random.default_rng(seed)
    rows = []
    for name, table in zip(names[1:], tables[1:]):
        both = tables[0].join(table, how="inner", lsuffix="_base", rsuffix="_run")
        if both.empty:
            raise ValueError(f"compare: {name} and {names[0]} share no {level} units (scored on other animals)")
        animals = both["animal_base"].astype(str).to_numpy()
        d = both["right_run"].astype(float).to_numpy() - both["right_base"].astype(float).to_numpy()
        uniq, inverse = np.unique(animals, return_inverse=True)
        sums = np.bincount(inverse, weights=d, minlength=len(uniq))  # per animal: sum of differences
        counts = np.bincount(inverse, minlength=len(uniq))
        draws = draw_groups(len(uniq), n_boot, rng)  # (n_boot, n_animals)
        ci = percentile_ci(float(d.mean()), sums[draws].sum(axis=1) / counts[draws].sum(axis=1))
        rows.append({"run": name, "baseline": names[0], "level": level, "n_units": len(both), "n_animals": len(uniq),
                     "accuracy_run": float(both["right_run"].mean()), "accuracy_baseline": float(both["right_base"].mean()),
                     "difference": ci.value, "low": ci.low, "high": ci.high, "only_run_right": int((d > 0).sum()),
                     "only_baseline_right": int((d < 0).sum())})
    return pd.DataFrame(rows)


def format_paired(df: pd.DataFrame, digits: int = 3) -> str:
    """One line per run: the accuracy difference against the first run, with its paired CI."""
    lines = []
    for r in df.to_dict(orient="records"):
        lines.append(f"{r['run']} - {r['baseline']} ({r['level']} level, {r['n_units']} units of {r['n_animals']} animals "
                     f"scored by both): accuracy {r['accuracy_run']:.{digits}f} - {r['accuracy_baseline']:.{digits}f} = "
                     f"{r['difference']:+.{digits}f} [{r['low']:+.{digits}f}, {r['high']:+.{digits}f}] (paired bootstrap "
                     f"over animals); right only in {r['run']}: {r['only_run_right']}, only in {r['baseline']}: "
                     f"{r['only_baseline_right']}")
    return "\n".join(lines)
