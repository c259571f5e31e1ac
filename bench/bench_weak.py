"""Weak supervision: plain video labels vs ``--weak em`` and ``--weak attention`` on cohorts whose sickness comes in bouts.

Each synthetic cohort (``mfe synth --preset P --synth-seed S --bout-fraction 0.3``: a treated
animal's face is affected only during bouts covering ~30% of its post-injection videos) goes
through prepare -> keypoints import -> extract -> ``task make --preset task1_table`` (rec1 = 0,
saline rec4 = 0, high rec4 = 1: every window of a high rec4 video is labelled 1, bout or not).
Then, per cohort, the same small advanced model (resnet18 from scratch), k-fold by animal:

  plain   every window's target is its video's label (soft-label LDL, as today);
  em      ``--weak em`` (training/weak.py): targets re-estimated each epoch by the E-step.
  em-bayes  ``--weak em --weak-posterior bayes``: the E-step's posterior from the scores under the prior.
  attention  ``--weak attention`` (models/mil.py): attention-MIL over bags of ``--bag`` windows
          of one video, trained on the video's label (same clips per epoch); windows scored alone.

Printed per method, mean over cohorts (min-max): video accuracy (mean window p1 >= 0.5 vs the
video's label, test animals), window bout AUROC (``evaluation/localisation.py``: within truly
sick videos, window p1 against "at least half the window's frames in a bout"; and over every
window), and the oracle on the true action units (``synth/oracle.py``: video accuracy; window
bout AUROC of the window's mean true AUs). Targets: EM raises the window bout AUROC by >= 0.10
over plain and does not lose video accuracy.

The model is the ``small`` training preset (``training/presets.py``) in fp32; a finished cohort
is reused (``synth.build.build_cohort``). ``--smoke``: ``em`` on one fold of the shared smallest
cohort (``synth.build.SMOKE``, bout fraction 0.3) with the ``smoke`` preset.

    .venv/bin/python bench/bench_weak.py OUT [--preset demo] [--seeds 1] [--epochs 4] [--epoch_size 160]
        [--methods plain em attention] [--weak_start 1] [--bag 8]
    .venv/bin/python bench/bench_weak.py /tmp/smoke_weak --smoke
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.synth.build import build_cohort
from mouse_facial_expressions.training import presets

METHODS = ("plain", "em", "em-bayes", "attention")
AU = ["au_orbital", "au_ear", "au_nose", "au_cheek", "au_whisker"]


def cohort_spec(a, seed: int):
    """synth (with bouts) -> prepare -> keypoints import -> extract -> task1_table."""
    from mouse_facial_expressions.synth.build import SMOKE, CohortSpec

    if a.smoke:
        return SMOKE
    return CohortSpec(preset=a.preset, seed=seed, synth={"bout_fraction": a.bout}, task_preset="task1_table",
                      task={"n_folds": a.n_folds, "version": "1"})


def train(task: str, models: Path, method: str, a) -> pd.DataFrame:
    from mouse_facial_expressions._logs import quiet_third_party
    from mouse_facial_expressions.training import train_cv
    from mouse_facial_expressions.training.presets import preset_params

    quiet_third_party()
    weak = ({"weak": "em", "weak_fraction": a.fraction, "weak_start": a.weak_start} if method.startswith("em")
            else {"weak": "attention", "weak_bag": a.bag} if method == "attention" else {})
    if method == "em-bayes":
        weak["weak_posterior"] = "bayes"
    p = preset_params("smoke" if a.smoke else "small", image_size=a.image_size, epochs=a.epochs,
                      epoch_size=a.epoch_size, num_frames=a.num_frames, frame_stride=a.frame_stride, workers=a.workers,
                      seed=a.train_seed,
                      run_name=f"{method}-t{a.train_seed}" + (f"-s{a.weak_start}" if method.startswith("em") and a.weak_start != 1 else "")
                      + (f"-b{a.bag}" if method == "attention" else ""),
                      precision="32-true", folds=a.folds, **weak)
    summary = train_cv(task, p, models, track=False, progress=False)
    return pd.read_csv(summary["predictions"])


def video_accuracy(pred: pd.DataFrame) -> float:
    """Accuracy of the videos' mean window p1 (``evaluation.aggregate``) at 0.5."""
    from bench_accuracy import accuracy, levels

    return accuracy(levels(pred)["video"])


def oracle_window_auroc(pred: pd.DataFrame, truth: pd.DataFrame) -> float:
    """The localisation AUROC of the windows' mean true action units (the ceiling)."""
    from mouse_facial_expressions.evaluation.localisation import localisation_auroc

    t = truth.assign(au=truth[AU].mean(1))
    by = {v: g for v, g in t.groupby("video")}
    au = []
    for v, s, e in zip(pred["video"], pred["start_time"], pred["end_time"]):
        g = by.get(v)
        au.append(float(g["au"][(g["time"] >= s - 1e-6) & (g["time"] <= e + 1e-6)].mean()) if g is not None else np.nan)
    return localisation_auroc(pred.assign(au=au), truth, score="au")


def score_cohort(task: str, truth: pd.DataFrame, preds: dict[str, pd.DataFrame]) -> list[dict]:
    from mouse_facial_expressions.data.tasks import load_task
    from mouse_facial_expressions.evaluation.localisation import localisation_auroc
    from mouse_facial_expressions.synth.oracle import oracle_predictions, video_accuracy as oracle_acc

    rows = []
    for m, pred in preds.items():
        rows.append({"method": m, "video_acc": video_accuracy(pred), "bout_auroc": localisation_auroc(pred, truth),
                     "bout_auroc_all": localisation_auroc(pred, truth, scope="all")})
    any_pred = next(iter(preds.values()))
    t = load_task(task)
    folds = sorted(set(any_pred["fold"]))
    t.folds = [f for f in t.folds if int(f["fold"]) in folds]
    rows.append({"method": "oracle (true AUs)", "video_acc": oracle_acc(oracle_predictions(truth, t)),
                 "bout_auroc": oracle_window_auroc(any_pred, truth), "bout_auroc_all": float("nan")})
    return rows


def _fmt(values) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return "-"
    return f"{v.mean():.3f}" + (f" ({v.min():.3f}-{v.max():.3f})" if len(v) > 1 else "")


def table(results: pd.DataFrame) -> str:
    lines = ["| method | video accuracy | window bout AUROC (sick videos) | window bout AUROC (all windows) | minutes |",
             "|---|---|---|---|---|"]
    for m, g in results.groupby("method", sort=False):
        mins = g["seconds"].dropna() / 60 if "seconds" in g else []
        lines.append(f"| {m} | {_fmt(g['video_acc'])} | {_fmt(g['bout_auroc'])} | {_fmt(g['bout_auroc_all'])} | "
                     f"{_fmt(mins) if len(mins) else '-'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], help="synthetic cohort seeds (one cohort each)")
    ap.add_argument("--bout", type=float, default=0.3, help="--bout-fraction of the cohorts")
    ap.add_argument("--fraction", type=float, default=0.3, help="mfe train --weak-fraction (the E-step's prior)")
    ap.add_argument("--weak_start", type=int, default=1, help="mfe train --weak-start (epoch of the first E-step)")
    ap.add_argument("--bag", type=int, default=8, help="mfe train --weak-bag (windows per bag of --weak attention)")
    ap.add_argument("--n_folds", type=int, default=3)
    ap.add_argument("--folds", type=int, nargs="+", default=None, help="outer folds to run (default: all)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the small preset's (4)")
    ap.add_argument("--epoch_size", type=int, default=None, help="training clips per epoch (default: the small preset's, 160)")
    ap.add_argument("--image_size", type=int, default=None, help="default: the small preset's (48)")
    ap.add_argument("--num_frames", type=int, default=None, help="default: the small preset's (4)")
    ap.add_argument("--frame_stride", type=int, default=None, help="default: the small preset's (2)")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train_seed", type=int, default=1)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: the smoke cohort and preset, one fold, em only")
    a = ap.parse_args(argv)
    if a.smoke:
        a.seeds, a.folds, a.methods = a.seeds[:1], [0], ["em"]
    preset = presets.preset("smoke" if a.smoke else "small")
    for key in ("epochs", "epoch_size", "image_size", "num_frames", "frame_stride"):  # printed below
        setattr(a, key, getattr(a, key) or preset[key])
    import torch

    torch.set_num_threads(max(1, a.threads))
    t_all = time.time()
    rows = []
    for seed in a.seeds:
        cohort = a.out / f"cohort-s{seed}"
        task = build_cohort(cohort, cohort_spec(a, seed))
        truth = pd.read_parquet(cohort / "truth" / "truth.parquet")
        preds, secs = {}, {}
        for m in a.methods:
            t0 = time.time()
            preds[m] = train(task, cohort / "models", m, a)
            secs[m] = time.time() - t0
            print(f"seed {seed} {m}: trained in {secs[m] / 60:.1f} min", flush=True)
        for r in score_cohort(task, truth, preds):
            rows.append({"seed": seed, **r, "seconds": secs.get(r["method"])})
        print(table(pd.DataFrame([r for r in rows if r["seed"] == seed])), flush=True)
    results = pd.DataFrame(rows)
    a.out.mkdir(parents=True, exist_ok=True)
    results.to_csv(a.out / "bench_weak.csv", index=False)
    print(f"\n{a.preset} cohorts, bout fraction {a.bout}, seeds {a.seeds}; advanced resnet18 (1 layer, d 128) from scratch "
          f"at {a.image_size} px, {a.num_frames} frames stride {a.frame_stride}, {a.epochs} epochs x {a.epoch_size} clips, "
          f"folds {a.folds or 'all'} of {a.n_folds}, prior {a.fraction}, first E-step at epoch {a.weak_start}, bag {a.bag}; wall {(time.time() - t_all) / 60:.1f} min")
    print(table(results))
    by = results.groupby("method")
    if {"plain", "em"} <= set(by.groups):
        d_auc = by["bout_auroc"].mean()["em"] - by["bout_auroc"].mean()["plain"]
        d_acc = by["video_acc"].mean()["em"] - by["video_acc"].mean()["plain"]
        print(f"targets: EM window bout AUROC - plain = {d_auc:+.3f} (>= +0.10: {'met' if d_auc >= 0.10 else 'NOT met'}); "
              f"video accuracy {d_acc:+.3f} (>= 0: {'met' if d_acc >= 0 else 'NOT met'})")
    if {"plain", "attention"} <= set(by.groups):
        print(f"attention-MIL - plain: window bout AUROC {by['bout_auroc'].mean()['attention'] - by['bout_auroc'].mean()['plain']:+.3f}, "
              f"video accuracy {by['video_acc'].mean()['attention'] - by['video_acc'].mean()['plain']:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
