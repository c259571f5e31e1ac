"""Simulated Mouse Grimace Scale raters for a synthetic cohort (``mfe synth --raters K``).

Each rater scores one frame per video every ``every_s`` seconds from the true AU intensities
of the truth table (``au_*`` in 0..1, mapped onto the MGS 0..2 scale), with their own bias
(added to every score) and noise (SD of a Gaussian error), then rounds to 0, 1 or 2:

    score = clip(round(2 * au + bias + noise * N(0, 1)), 0, 2)

:func:`rate_truth` returns the wide rating sheet (``video, frame, time_s, animal`` and
``ot1, nb1, cb1, ep1, wc1, ot2, ...``, the layout ``mfe ratings import`` reads) and the rater
parameters; :func:`write_rater_sheet` writes ``ratings/synthetic_raters.csv`` and
``truth/raters.json`` (bias, noise and each rater's distance to the truth) into a project.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.io.ratings import AUS, TRUTH_COLUMNS

SHEET = Path("ratings") / "synthetic_raters.csv"
PARAMS = Path("truth") / "raters.json"


def rater_params(k: int, seed: int = 0, bias_sd: float = 0.25, noise: tuple[float, float] = (0.2, 0.5)) -> list[dict]:
    """``k`` raters, each ``{"rater": "<i>", "bias": b, "noise": s}`` (b ~ N(0, bias_sd), s ~ U(noise))."""
    if k < 1:
        raise ValueError(f"--raters must be at least 1, got {k}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 15, k]))
    bias = rng.normal(0.0, bias_sd, k)
    sd = rng.uniform(*noise, k)
    return [{"rater": str(i + 1), "bias": round(float(b), 4), "noise": round(float(s), 4)} for i, (b, s) in enumerate(zip(bias, sd))]


def rated_frames(truth: pd.DataFrame, every_s: float) -> pd.DataFrame:
    """One truth row per video at t = 0, every_s, 2 * every_s, ... (the first frame at or after each)."""
    if every_s <= 0:
        raise ValueError(f"--rating-every must be positive, got {every_s}")
    rows = []
    for _, v in truth.sort_values(["video", "frame"]).groupby("video", sort=True):
        t = v["time"].to_numpy(dtype=float)
        marks = np.arange(0.0, t[-1] + 1e-9, every_s)
        idx = np.unique(np.searchsorted(t, marks - 1e-9))
        rows.append(v.iloc[idx[idx < len(v)]])
    return pd.concat(rows, ignore_index=True)


def rate_truth(truth: pd.DataFrame, k: int, every_s: float = 3.0, seed: int = 0,
               params: list[dict] | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """The wide rating sheet of ``k`` simulated raters over ``truth`` and their parameters.

    ``params`` (a list of ``{"rater", "bias", "noise"}``) replaces the drawn raters."""
    params = rater_params(k, seed) if params is None else params
    frames = rated_frames(truth, every_s)
    sheet = pd.DataFrame({"video": frames["video"], "frame": frames["frame"].astype(int),
                          "time_s": frames["time"].round(4), "animal": frames["animal"]})
    true = np.stack([2.0 * frames[TRUTH_COLUMNS[a]].to_numpy(dtype=float) for a in AUS], 1)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 16, len(params)]))
    for p in params:
        scores = np.clip(np.rint(true + p["bias"] + p["noise"] * rng.standard_normal(true.shape)), 0, 2).astype(int)
        for j, a in enumerate(AUS):
            sheet[f"{a}{p['rater']}"] = scores[:, j]
    return sheet, _with_distances(params, sheet, true)


def _with_distances(params: list[dict], sheet: pd.DataFrame, true: np.ndarray) -> list[dict]:
    """Each rater's RMSE and Pearson r to the true 0..2 intensities, per AU and for the MGS total."""
    from mouse_facial_expressions.evaluation.mgs import pearson_r, rmse, weighted_kappa

    out = []
    for p in params:
        scores = np.stack([sheet[f"{a}{p['rater']}"].to_numpy(dtype=float) for a in AUS], 1)
        d = {**p, "n_frames": int(len(sheet))}
        total, true_total = scores.mean(1), true.mean(1)
        d["mgs_total"] = {"rmse": _r(rmse(total, true_total)), "r": _r(pearson_r(total, true_total)),
                          "mean_minus_truth": _r(float(np.mean(total - true_total)))}
        d["per_au"] = {a: {"rmse": _r(rmse(scores[:, j], true[:, j])), "r": _r(pearson_r(scores[:, j], true[:, j])),
                           "kappa_vs_rounded_truth": _r(weighted_kappa(scores[:, j], np.rint(true[:, j])))}
                       for j, a in enumerate(AUS)}
        out.append(d)
    return out


def _r(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def write_rater_sheet(project: str | Path, k: int, every_s: float = 3.0, seed: int = 0) -> tuple[Path, Path]:
    """Rate ``<project>/truth/truth.parquet`` with ``k`` simulated raters; write
    ``ratings/synthetic_raters.csv`` and ``truth/raters.json``; return both paths."""
    from mouse_facial_expressions.io.atomic import write_csv, write_json

    project = Path(project)
    truth = pd.read_parquet(project / "truth" / "truth.parquet")
    sheet, params = rate_truth(truth, k, every_s, seed)
    csv_path = write_csv(sheet, project / SHEET)
    json_path = write_json(project / PARAMS, {
        "model": "score = clip(round(2 * au + bias + noise * N(0, 1)), 0, 2), au = truth au_* in 0..1",
        "every_s": every_s, "seed": seed, "sheet": str(SHEET), "raters": params})
    return csv_path, json_path
