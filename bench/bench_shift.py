"""Scores on a new cohort: zero-shot, baseline-relative, recalibrated and normalised, on shifted cohorts.

One synthetic cohort to train on (``mfe synth --preset P --seed S``), test cohorts from another
seed (S + 1: other animals) rendered with one shift each (``mfe synth`` flags), every cohort
taken through prepare -> keypoints import -> extract -> ``task make --preset task1_table``
(rec1 = baseline, saline rec4 = 0, high rec4 = 1). Test cohorts are extracted with the training
cohort's crop settings, as zero-shot use does (a zoomed camera then gives a zoomed crop).

Models trained on the training cohort (advanced, k-fold by animal):
  plain      absolute scores;
  relative   baseline-relative (``--baseline-recording 1``);
  video_hist plain, on crops extracted with ``extract.normalize: video_hist`` (both cohorts).

Methods on each test cohort (``mfe evaluate RUN --task X`` and its options):
  plain             the plain run, zero-shot;
  relative          the relative run, against each animal's own rec1 (no labels);
  adabn             the plain run with BatchNorm statistics recomputed on the cohort (no labels);
  video_hist        the video_hist run on the cohort's video_hist store (no labels);
  controls          the plain run, threshold moved by the cohort's saline animals (uses their
                    treatment labels).

Scored rows: one per animal, its recording-4 video (mean window p1 >= 0.5; saline 0, high 1):
the question "is this animal sick after the injection", the same rows for every method (a
baseline-relative model does not score the baseline it is relative to). In-cohort figures: the
same rows of the training run's cross-validated predictions. Prints accuracy, balanced accuracy
and AUROC with bootstrap 95% CIs over animals, whether the batch-effect check fired (plain),
and the issue's targets: the best label-free method keeps >= 90% of its in-cohort accuracy on
every shifted cohort, and loses <= 2 points on the same-settings cohort.

    .venv/bin/python bench/bench_shift.py OUT [--preset demo] [--seed 0] [--epochs 6] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

#: Test cohorts: name -> ``mfe synth`` options (rendered with the test seed).
SHIFTS: dict[str, dict] = {
    "same settings": {},
    "brighter": {"brightness": 40.0},
    "darker": {"brightness": -40.0},
    "lower contrast": {"contrast": 0.6},
    "higher contrast": {"contrast": 1.4},
    "zoom 0.85x": {"zoom": 0.85},
    "zoom 1.2x": {"zoom": 1.2},
    "blur": {"blur": 1.5},
    "controls brighter": {"control_brightness": 40.0},
}
METHODS = ("plain", "relative", "adabn", "video_hist", "controls")
LABEL_FREE = ("relative", "adabn", "video_hist")
TASK_RULES = "task1_table"
RECORDING = 4  # the scored recording; 1 is the baseline
VH = "video_hist"


def _slug(name: str) -> str:
    return name.replace(" ", "_").replace(".", "")


def build_cohort(out: str, preset: str, seed: int, shift: dict, extract: dict | None, n_folds: int, normalize: bool) -> dict:
    """synth -> prepare -> keypoints -> extract (and a video_hist store) -> task1_table; returns the task folders."""
    from mouse_facial_expressions._logs import quiet_third_party
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.data.tasks import make_task, preset as task_preset
    from mouse_facial_expressions.io.keypoints import import_keypoints
    from mouse_facial_expressions.preprocess.extract import extract_videos
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.synth import generate_cohort

    quiet_third_party()
    out = Path(out)
    done = out / "bench_shift_tasks.json"
    if done.is_file():  # resumes: a finished cohort is not rebuilt
        return json.loads(done.read_text())
    t0 = time.time()
    generate_cohort(out, preset=preset, seed=seed, **shift)
    cfg = load_config(out)
    for k, v in (extract or {}).items():
        setattr(cfg.extract, k, v)
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    rep = extract_videos(cfg, progress=False)
    if not rep.ok:
        raise RuntimeError(f"{out}: extraction failed: {rep}")
    tasks = {"none": str(make_task(cfg, task_preset(TASK_RULES, n_folds=n_folds, version="1")))}
    if normalize:
        cfg.extract.normalize = VH
        cfg.paths.frames = f"frames-{VH}"
        rep = extract_videos(cfg, progress=False)
        if not rep.ok:
            raise RuntimeError(f"{out}: {VH} extraction failed: {rep}")
        tasks[VH] = str(make_task(cfg, task_preset(TASK_RULES, n_folds=n_folds, version=VH), frames_dir=cfg.path("frames")))
    tasks["crop"] = {"crop_size": cfg.extract.crop_size, "out_size": cfg.extract.out_size}
    tasks["seconds"] = round(time.time() - t0, 1)
    done.write_text(json.dumps(tasks))
    return tasks


def train(task_dir: str, models_dir: Path, name: str, args, **extra) -> Path:
    from mouse_facial_expressions.training import make_params, train_cv

    p = make_params("advanced", backbone="resnet18", image_size=args.image_size, epochs=args.epochs,
                    num_layers=args.num_layers, workers=args.workers, run_name=name, seed=args.train_seed, **extra)
    summary = train_cv(task_dir, p, models_dir, track=False, progress=False)
    return Path(summary["run_dir"])


def animal_rows(pred: pd.DataFrame, task_dir: str, threshold_col: str = "p1") -> pd.DataFrame:
    """One row per animal: its recording-4 windows' mean p1, label and treatment."""
    from mouse_facial_expressions.data.tasks import load_task

    frames = load_task(task_dir).frames
    rec = dict(zip(frames["video"].astype(str), pd.to_numeric(frames["recording"]).astype(int)))
    treat = frames.groupby(frames["animal"].astype(str))["treatment"].first()
    p = pred[pred["video"].astype(str).map(rec) == RECORDING]
    p = p[p["label"].notna()]
    rows = p.groupby(p["animal"].astype(str)).agg(p1=(threshold_col, "mean"), label=("label", "first")).reset_index()
    rows["treatment"] = rows["animal"].map(treat)
    return rows


def all_animals(pred: pd.DataFrame, task_dir: str) -> pd.DataFrame:
    """Animal rows over every labelled recording (animal, label), for the batch-effect check."""
    from mouse_facial_expressions.data.tasks import load_task

    frames = load_task(task_dir).frames
    treat = frames.groupby(frames["animal"].astype(str))["treatment"].first()
    p = pred[pred["label"].notna()]
    rows = p.groupby([p["animal"].astype(str), "label"]).agg(p1=("p1", "mean")).reset_index()
    rows["treatment"] = rows["animal"].map(treat)
    return rows


def scores(rows: pd.DataFrame, threshold: float, n_boot: int) -> dict:
    from mouse_facial_expressions.evaluation.metrics import bootstrap_ci

    out = {"n": len(rows)}
    for metric in ("accuracy", "balanced_accuracy", "auroc"):
        ci = bootstrap_ci(rows, metric, n=n_boot, threshold=threshold)
        out[metric], out[f"{metric}_low"], out[f"{metric}_high"] = ci.value, ci.low, ci.high
    return out


def evaluate_cohort(name: str, tasks: dict, runs: dict, reference: dict, args) -> list[dict]:
    """Every method on one test cohort: rows for the table."""
    import torch

    from mouse_facial_expressions.evaluation.batch_effects import check_batch_effects
    from mouse_facial_expressions.evaluation.recalibrate import controls_threshold
    from mouse_facial_expressions.inference.adabn import adapt_ensemble
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.zeroshot import predict_task, task_clips

    torch.set_num_threads(max(1, args.threads))
    out = []
    plain = load_ensemble(runs["plain"])
    pred_plain = predict_task(plain, tasks["none"])
    for method in args.methods:
        threshold, note = 0.5, ""
        if method == "plain":
            rows = animal_rows(pred_plain, tasks["none"])
        elif method == "relative":
            rows = animal_rows(predict_task(load_ensemble(runs["relative"]), tasks["none"]), tasks["none"])
        elif method == "adabn":
            adapted, _ = adapt_ensemble(plain, task_clips(plain, tasks["none"]))
            rows = animal_rows(predict_task(adapted, tasks["none"]), tasks["none"])
        elif method == VH:
            rows = animal_rows(predict_task(load_ensemble(runs[VH]), tasks[VH]), tasks[VH])
        elif method == "controls":
            rows = animal_rows(pred_plain, tasks["none"])
            new = all_animals(pred_plain, tasks["none"])
            thr = controls_threshold(new, reference["plain_all"])
            threshold, note = thr["new_threshold"], f"threshold {thr['new_threshold']:.3f}"
        else:
            raise ValueError(method)
        row = {"cohort": name, "method": method, "threshold": threshold, "note": note, **scores(rows, threshold, args.bootstrap)}
        if method == "plain":
            animals = all_animals(pred_plain, tasks["none"]).assign(cohort=name)
            check = check_batch_effects(animals, reference=reference["plain_all"], default_cohort=name)
            row["warning"] = bool(check.get("flagged"))
        out.append(row)
    return out


def in_cohort(runs: dict, train_tasks: dict, args) -> tuple[list[dict], dict]:
    """The training runs' cross-validated figures on the same rows, and the reference tables."""
    rows, ref = [], {}
    for method, run in (("plain", runs["plain"]), ("relative", runs.get("relative")), (VH, runs.get(VH))):
        if run is None:
            continue
        pred = pd.read_csv(Path(run) / "predictions.csv")
        task = train_tasks[VH] if method == VH else train_tasks["none"]
        a = animal_rows(pred, task)
        rows.append({"cohort": "in-cohort (CV)", "method": method, "threshold": 0.5, "note": "", **scores(a, 0.5, args.bootstrap)})
        if method == "plain":
            ref["plain_all"] = all_animals(pred, task)
    return rows, ref


def fmt(r: dict, key: str) -> str:
    v, lo, hi = r.get(key), r.get(f"{key}_low"), r.get(f"{key}_high")
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    ci = f" ({lo:.2f}-{hi:.2f})" if lo is not None and not np.isnan(lo) else ""
    return f"{v:.3f}{ci}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="work folder (cohorts, runs, results; a rerun resumes)")
    ap.add_argument("--preset", default="demo", help="mfe synth preset of every cohort")
    ap.add_argument("--seed", type=int, default=0, help="synth seed of the training cohort; test cohorts use seed + 1")
    ap.add_argument("--shifts", nargs="+", default=list(SHIFTS), choices=list(SHIFTS), metavar="SHIFT",
                    help=f"test cohorts (default: all: {', '.join(SHIFTS)})")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--image_size", type=int, default=64)
    ap.add_argument("--num_layers", type=int, default=2)
    ap.add_argument("--train_seed", type=int, default=97531)
    ap.add_argument("--n_folds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=0, help="data loader workers per training")
    ap.add_argument("--jobs", type=int, default=2, help="cohorts built side by side (processes)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads when scoring")
    ap.add_argument("--bootstrap", type=int, default=1000, help="resamples of animals for the CIs")
    args = ap.parse_args()

    from mouse_facial_expressions._logs import quiet_third_party
    from mouse_facial_expressions.config import load_config  # noqa: F401  (fail early on a broken install)

    quiet_third_party()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    normalize = VH in args.methods
    t0 = time.time()
    train_dir = out / f"train-seed{args.seed}"
    train_tasks = build_cohort(str(train_dir), args.preset, args.seed, {}, None, args.n_folds, normalize)
    crop = train_tasks["crop"]
    jobs = {name: (str(out / f"test-seed{args.seed + 1}-{_slug(name)}"), args.preset, args.seed + 1, SHIFTS[name], crop,
                   args.n_folds, normalize) for name in args.shifts}
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        futures = {name: pool.submit(build_cohort, *job) for name, job in jobs.items()}
        test_tasks = {name: f.result() for name, f in futures.items()}
    print(f"cohorts built ({time.time() - t0:.0f} s): training {train_dir.name}, tests {', '.join(args.shifts)}", flush=True)

    models = out / "models"
    runs = {"plain": train(train_tasks["none"], models, "plain", args)}
    if "relative" in args.methods:
        runs["relative"] = train(train_tasks["none"], models, "relative", args, baseline_recording=1)
    if normalize:
        runs[VH] = train(train_tasks[VH], models, VH, args)
    print(f"models trained ({time.time() - t0:.0f} s)", flush=True)

    rows, ref = in_cohort(runs, train_tasks, args)
    for name in args.shifts:
        rows += evaluate_cohort(name, test_tasks[name], runs, ref, args)
        print(f"  scored {name} ({time.time() - t0:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "bench_shift.csv", index=False)

    import platform

    print(f"\nbench_shift: {args.preset} cohorts, training seed {args.seed}, test seed {args.seed + 1}; advanced resnet18 at "
          f"{args.image_size} px, {args.epochs} epochs, {args.n_folds} folds; {platform.processor() or platform.machine()}; "
          f"{time.time() - t0:.0f} s")
    print("animal level, recording 4 (saline 0, high 1), mean window p1 >= threshold; 95% bootstrap CIs over animals")
    print(f"{'cohort':20s} {'method':11s} {'n':>3s} {'accuracy':>18s} {'balanced acc.':>18s} {'AUROC':>18s}  notes")
    for r in rows:
        warn = "" if "warning" not in r else ("batch-effect warning" if r["warning"] else "no warning")
        print(f"{r['cohort']:20s} {r['method']:11s} {r['n']:3d} {fmt(r, 'accuracy'):>18s} {fmt(r, 'balanced_accuracy'):>18s} "
              f"{fmt(r, 'auroc'):>18s}  {' '.join(x for x in (r['note'], warn) if x)}")
    ref_acc = {r["method"]: r["accuracy"] for r in rows if r["cohort"] == "in-cohort (CV)"}
    print("\ntargets (best label-free method: " + ", ".join(m for m in LABEL_FREE if m in args.methods) + ")")
    for name in args.shifts:
        best = max((r for r in rows if r["cohort"] == name and r["method"] in LABEL_FREE and r["method"] in ref_acc),
                   key=lambda r: r["accuracy"] / max(ref_acc[r["method"]], 1e-9), default=None)
        if best is None:
            continue
        ratio = best["accuracy"] / max(ref_acc[best["method"]], 1e-9)
        drop = ref_acc[best["method"]] - best["accuracy"]
        goal = f"loses {100 * drop:.1f} points (target <= 2)" if name == "same settings" else f"keeps {100 * ratio:.0f}% (target >= 90%)"
        ok = (drop <= 0.02 + 1e-9) if name == "same settings" else ratio >= 0.9
        print(f"  {name:20s} {best['method']:11s} {best['accuracy']:.3f} vs in-cohort {ref_acc[best['method']]:.3f}: {goal}"
              f" {'met' if ok else 'NOT met'}")
    print(f"table: {out / 'bench_shift.csv'}")


if __name__ == "__main__":
    sys.exit(main())
