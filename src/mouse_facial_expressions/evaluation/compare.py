"""Compare runs side by side: one row per run with the key metrics and their CIs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mouse_facial_expressions.evaluation.evaluate import _run_metadata, compute_results, read_metadata, read_predictions

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
    if not run_dirs:
        raise ValueError("compare_runs: no runs given")
    runs = [Path(r) for r in run_dirs]
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
        row["batch_warnings"] = len(res.get("warnings", []))
        rows.append(row)
    return pd.DataFrame(rows)


def format_compare(df: pd.DataFrame, metrics: tuple[str, ...] = KEY_METRICS, digits: int = 3) -> str:
    """The comparison as a plain-text table with ``value [low, high]`` cells."""

    def cell(r, m):
        v, lo, hi = r.get(m), r.get(f"{m}_low"), r.get(f"{m}_high")
        if v is None or pd.isna(v):
            return "-"
        if lo is None or pd.isna(lo):
            return f"{v:.{digits}f}"
        return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

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
