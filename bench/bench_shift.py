"""Scores on a new cohort: zero-shot, baseline-relative, recalibrated and normalised, on shifted cohorts.

One synthetic cohort to train on (``mfe synth --preset P --synth-seed S``), test cohorts from another
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
  baseline          the plain run, each animal's scores moved by its own rec1 windows
                    (``--recalibrate baseline``; no labels);
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

    .venv/bin/python bench/bench_shift.py OUT [--preset demo] [--seed 0] [--epochs 6] [--jobs 2] [--confounds]
    .venv/bin/python bench/bench_shift.py --table OUT/bench_shift.csv     # print a finished run again
    .venv/bin/python bench/bench_shift.py /tmp/smoke_shift --smoke           # seconds: the smallest settings

The model is the ``bench`` training preset (``training/presets.py``: resnet18 at 64 px, 2 layers),
6 epochs. Cohorts are built and reused by ``synth.build.build_cohort`` (their tasks' provenance).
Animal rows are ``evaluation.aggregate``'s: an animal's p1 is the mean of its videos' p1.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import levels  # noqa: E402

from mouse_facial_expressions.training import presets  # noqa: E402

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
METHODS = ("plain", "relative", "baseline", "adabn", "video_hist", "controls")
LABEL_FREE = ("relative", "baseline", "adabn", "video_hist")
TASK_RULES = "task1_table"
RECORDING = 4  # the scored recording; 1 is the baseline
VH = "video_hist"


def _slug(name: str) -> str:
    return name.replace(" ", "_").replace(".", "")


def build_tasks(out: str, preset: str, seed: int, shift: dict, extract: dict | None, n_folds: int, normalize: bool,
                task1: bool = False, smoke: bool = False) -> dict:
    """One cohort (``synth.build.build_cohort``; ``smoke``: the shared smallest cohort at ``seed``)
    and its tasks: ``none`` (task1_table), ``task1`` (the original rule: saline rec4 unlabelled),
    ``video_hist`` (crops of ``extract.normalize: video_hist`` in their own frame store); ``crop``:
    the cohort's crop settings."""
    from dataclasses import replace

    from mouse_facial_expressions._logs import quiet_third_party
    from mouse_facial_expressions.synth.build import SMOKE, CohortSpec, build_cohort, project_config

    quiet_third_party()
    t0 = time.time()
    spec = CohortSpec(preset=preset, seed=seed, synth=shift, task_preset=TASK_RULES, extract=extract or {},
                      task={"n_folds": n_folds, "version": "1"})
    if smoke:
        spec = replace(SMOKE, seed=seed, synth={**SMOKE.synth, **shift}, extract=extract or {})
    tasks = {"none": str(build_cohort(out, spec))}
    if task1:
        tasks["task1"] = str(build_cohort(out, replace(spec, task_preset="task1", task={**spec.task, "version": "task1"})))
    if normalize:
        vh = replace(spec, extract={**spec.extract, "normalize": VH}, frames=f"frames-{VH}", task={**spec.task, "version": VH})
        tasks[VH] = str(build_cohort(out, vh))
    cfg = project_config(out, spec)
    tasks["crop"] = {"crop_size": cfg.extract.crop_size, "out_size": cfg.extract.out_size}
    tasks["seconds"] = round(time.time() - t0, 1)
    return tasks


def pool(n: int):
    """``n`` worker processes, or for ``n <= 1`` one thread of this process (no fork)."""
    return ProcessPoolExecutor(n) if n > 1 else ThreadPoolExecutor(1)


def _threads(args) -> None:
    import torch

    torch.set_num_threads(max(1, args.threads))


def train(task_dir: str, models_dir: Path, name: str, args, **extra) -> Path:
    """The ``bench`` preset (``smoke``: the ``smoke`` preset, one fold) trained on ``task_dir``."""
    from mouse_facial_expressions._logs import quiet_third_party
    from mouse_facial_expressions.training import train_cv
    from mouse_facial_expressions.training.presets import preset_params

    quiet_third_party()
    _threads(args)
    p = preset_params("smoke" if args.smoke else "bench", image_size=args.image_size, epochs=args.epochs,
                      num_layers=args.num_layers, workers=args.workers, run_name=name, seed=args.train_seed,
                      folds=[0] if args.smoke else None, **extra)
    summary = train_cv(task_dir, p, models_dir, track=False, progress=False)
    return Path(summary["run_dir"])


def animal_rows(pred: pd.DataFrame, task_dir: str) -> pd.DataFrame:
    """One row per animal: its labelled recording-4 video (p1 = mean window p1,
    ``evaluation.aggregate``), label and treatment."""
    from mouse_facial_expressions.data.tasks import load_task

    frames = load_task(task_dir).frames
    rec = dict(zip(frames["video"].astype(str), pd.to_numeric(frames["recording"]).astype(int)))
    treat = frames.groupby(frames["animal"].astype(str))["treatment"].first()
    video = levels(pred)["video"]
    rows = video[(video["video"].map(rec) == RECORDING) & video["label"].notna()][["animal", "p1", "label"]]
    return rows.reset_index(drop=True).assign(treatment=lambda d: d["animal"].map(treat))


def recordings(task_dir: str) -> dict:
    from mouse_facial_expressions.data.tasks import load_task

    f = load_task(task_dir).frames
    return dict(zip(f["video"].astype(str), f["recording"]))


def all_animals(pred: pd.DataFrame, task_dir: str) -> pd.DataFrame:
    """Animal rows (animal, label: mean video p1, ``evaluation.aggregate``) over every labelled
    recording, for the batch-effect check."""
    from mouse_facial_expressions.data.tasks import load_task

    frames = load_task(task_dir).frames
    treat = frames.groupby(frames["animal"].astype(str))["treatment"].first()
    animal = levels(pred)["animal"]
    rows = animal[animal["label"].notna()][["animal", "label", "p1"]].reset_index(drop=True)
    return rows.assign(treatment=lambda d: d["animal"].map(treat))


def scores(rows: pd.DataFrame, threshold: float, n_boot: int) -> dict:
    from mouse_facial_expressions.evaluation.metrics import bootstrap_ci

    out = {"n": len(rows)}
    for metric in ("accuracy", "balanced_accuracy", "auroc"):
        ci = bootstrap_ci(rows, metric, n=n_boot, threshold=threshold)
        out[metric], out[f"{metric}_low"], out[f"{metric}_high"] = ci.value, ci.low, ci.high
    return out


def evaluate_cohort(name: str, tasks: dict, runs: dict, reference: dict, args) -> list[dict]:
    """Every method on one test cohort: rows for the table."""
    from mouse_facial_expressions.evaluation.batch_effects import check_batch_effects
    from mouse_facial_expressions.evaluation.recalibrate import controls_threshold
    from mouse_facial_expressions.inference.adabn import adapt_ensemble
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.zeroshot import predict_task, task_clips

    _threads(args)
    out = []
    plain = load_ensemble(runs["plain"])
    pred_plain = predict_task(plain, tasks["none"])
    for method in args.methods:
        threshold, note = 0.5, ""
        if method == "plain":
            rows = animal_rows(pred_plain, tasks["none"])
        elif method == "relative":
            rows = animal_rows(predict_task(load_ensemble(runs["relative"]), tasks["none"]), tasks["none"])
        elif method == "baseline":
            from mouse_facial_expressions.evaluation.recalibrate import baseline_shift

            shifted, _ = baseline_shift(pred_plain, recordings(tasks["none"]), reference["plain_windows"],
                                        reference["train_recordings"], 1)
            rows = animal_rows(shifted, tasks["none"])
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
            ref["plain_windows"], ref["train_recordings"] = pred, recordings(task)
    return rows, ref


def cue_jobs(out: Path, args) -> dict:
    """The recording-time cue cohorts (``--rec-cue 4:30``: every animal's recording 4 is brighter,
    treated or not), training seed and test seed, with task1 and task1_table."""
    cue = {"rec_cue": ((RECORDING, args.cue),)}
    # the cue is in the folder name: a finished cohort is reused by a rerun, never one of another cue
    return {f"cue {role}": (str(out / f"cue{args.cue:g}-seed{s}"), args.preset, s, cue, None, args.n_folds, False, True,
                            args.smoke) for role, s in (("train", args.seed), ("test", args.seed + 1))}


#: The confound models: name -> (task key of the cued training cohort, extra training settings).
CUE_MODELS = {"task1": ("task1", {}), "task1_table": ("none", {}), "task1_table, relative": ("none", {"baseline_recording": 1})}


def score_cue(name: str, run: str, test_tasks: dict, args) -> dict:
    """task1 (saline rec4 unlabelled) can learn the cue; task1_table (saline rec4 = 0) and the
    baseline-relative model on it should not. Scored zero-shot on the other cued cohort."""
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.zeroshot import predict_task

    _threads(args)
    a = animal_rows(predict_task(load_ensemble(run), test_tasks["none"]), test_tasks["none"])
    saline = a[a["label"] == 0]
    return {"cohort": f"rec4 cue +{args.cue:g}", "method": name, "threshold": 0.5,
            "note": f"saline rec4 called sick: {int((saline['p1'] >= 0.5).sum())}/{len(saline)}", **scores(a, 0.5, args.bootstrap)}


def fmt(r: dict, key: str) -> str:
    v, lo, hi = r.get(key), r.get(f"{key}_low"), r.get(f"{key}_high")
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    ci = f" ({lo:.2f}-{hi:.2f})" if lo is not None and not np.isnan(lo) else ""
    return f"{v:.3f}{ci}"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 2 and argv[0] == "--table":  # print an earlier run's table again
        report(pd.read_csv(argv[1]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="work folder (cohorts, runs, results; a rerun resumes)")
    ap.add_argument("--preset", default="demo", help="mfe synth preset of every cohort")
    ap.add_argument("--seed", type=int, default=0, help="synth seed of the training cohort; test cohorts use seed + 1")
    ap.add_argument("--shifts", nargs="+", default=list(SHIFTS), choices=list(SHIFTS), metavar="SHIFT",
                    help=f"test cohorts (default: all: {', '.join(SHIFTS)})")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--image_size", type=int, default=None, help="default: the bench preset's (64)")
    ap.add_argument("--num_layers", type=int, default=None, help="default: the bench preset's (2)")
    ap.add_argument("--train_seed", type=int, default=97531)
    ap.add_argument("--n_folds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=0, help="data loader workers per training")
    ap.add_argument("--jobs", type=int, default=2, help="cohorts built side by side (processes)")
    ap.add_argument("--train_jobs", type=int, default=1, help="models trained (and cohorts scored) side by side (processes)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per training or scoring process")
    ap.add_argument("--bootstrap", type=int, default=1000, help="resamples of animals for the CIs")
    ap.add_argument("--confounds", action="store_true", help="also the recording-time cue: task1 vs task1_table vs "
                    "baseline-relative, trained and scored on cohorts whose recording 4 is brighter for every animal")
    ap.add_argument("--cue", type=float, default=30.0, help="grey levels added to recording 4 (--confounds)")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: the smoke cohort (synth.build.SMOKE) "
                    "and a brighter one, plain and baseline, one fold of the smoke preset, in this process")
    args = ap.parse_args(argv)
    if args.smoke:
        args.shifts, args.methods, args.epochs, args.bootstrap = ["brighter"], ["plain", "baseline"], 1, 20
        args.jobs = args.train_jobs = 1
    preset = presets.preset("smoke" if args.smoke else "bench")
    args.image_size, args.num_layers = args.image_size or preset["image_size"], args.num_layers or preset["num_layers"]

    from mouse_facial_expressions._logs import quiet_third_party

    quiet_third_party()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    normalize = VH in args.methods
    t0 = time.time()
    train_dir = out / f"train-seed{args.seed}"
    with pool(args.jobs) as workers:
        first = workers.submit(build_tasks, str(train_dir), args.preset, args.seed, {}, None, args.n_folds, normalize,
                               smoke=args.smoke)
        extra = {k: workers.submit(build_tasks, *job) for k, job in (cue_jobs(out, args) if args.confounds else {}).items()}
        train_tasks = first.result()  # the test cohorts take its crop settings
        jobs = {name: (str(out / f"test-seed{args.seed + 1}-{_slug(name)}"), args.preset, args.seed + 1, SHIFTS[name],
                       train_tasks["crop"], args.n_folds, normalize, False, args.smoke) for name in args.shifts}
        futures = {name: workers.submit(build_tasks, *job) for name, job in jobs.items()}
        test_tasks = {name: f.result() for name, f in futures.items()}
        cue_tasks = {k: f.result() for k, f in extra.items()}
    print(f"cohorts built ({time.time() - t0:.0f} s): training {train_dir.name}, tests {', '.join(args.shifts)}"
          f"{', recording-4 cue' if args.confounds else ''}", flush=True)

    models = out / "models"
    todo = {"plain": (train_tasks["none"], {})}
    if "relative" in args.methods:
        todo["relative"] = (train_tasks["none"], {"baseline_recording": 1})
    if normalize:
        todo[VH] = (train_tasks[VH], {})
    for name, (key, kw) in (CUE_MODELS.items() if args.confounds else ()):
        todo[f"cue{args.cue:g} {name}"] = (cue_tasks["cue train"][key], kw)  # models of another cue are others
    with pool(args.train_jobs) as workers:
        futures = {name: workers.submit(train, task, models, _slug(name).replace(",", ""), args, **kw)
                   for name, (task, kw) in todo.items()}
        runs = {name: f.result() for name, f in futures.items()}
    print(f"models trained ({time.time() - t0:.0f} s)", flush=True)

    rows, ref = in_cohort(runs, train_tasks, args)
    with pool(args.train_jobs) as workers:
        futures = [workers.submit(evaluate_cohort, name, test_tasks[name], runs, ref, args) for name in args.shifts]
        cue = [workers.submit(score_cue, name, runs[f"cue{args.cue:g} {name}"], cue_tasks["cue test"], args)
               for name in (CUE_MODELS if args.confounds else ())]
        for f in futures:
            rows += f.result()
        rows += [f.result() for f in cue]
    print(f"scored ({time.time() - t0:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "bench_shift.csv", index=False)
    import platform

    print(f"\nbench_shift: {args.preset} cohorts, training seed {args.seed}, test seed {args.seed + 1}; advanced resnet18 at "
          f"{args.image_size} px, {args.epochs} epochs, {args.n_folds} folds; {platform.processor() or platform.machine()}; "
          f"{time.time() - t0:.0f} s")
    report(table)
    print(f"table: {out / 'bench_shift.csv'}")
    return 0


def report(table: pd.DataFrame) -> None:
    """The table, and the targets: on each shifted cohort the best label-free method keeps >= 90%
    of the in-cohort figure (the plain run's cross-validated accuracy: what the model does on its
    own cohort), and on the same-settings cohort it loses <= 2 points."""
    rows = table.to_dict("records")
    print("animal level, recording 4 (saline 0, high 1), mean window p1 >= threshold; 95% bootstrap CIs over animals")
    print(f"{'cohort':20s} {'method':22s} {'n':>3s} {'accuracy':>18s} {'balanced acc.':>18s} {'AUROC':>18s}  notes")
    for r in rows:
        w = r.get("warning")
        warn = "" if w is None or (isinstance(w, float) and np.isnan(w)) else ("batch-effect warning" if w else "no warning")
        note = r.get("note") if isinstance(r.get("note"), str) else ""
        print(f"{r['cohort']:20s} {r['method']:22s} {int(r['n']):3d} {fmt(r, 'accuracy'):>18s} {fmt(r, 'balanced_accuracy'):>18s} "
              f"{fmt(r, 'auroc'):>18s}  {' '.join(x for x in (note, warn) if x)}")
    ref = next((r["accuracy"] for r in rows if r["cohort"] == "in-cohort (CV)" and r["method"] == "plain"), None)
    if ref is None:
        return
    print(f"\ntargets: best label-free method ({', '.join(LABEL_FREE)}) against the in-cohort figure {ref:.3f} "
          "(plain run, cross-validated)")
    shifted = [c for c in dict.fromkeys(r["cohort"] for r in rows) if c in SHIFTS]
    for name in shifted:
        best = max((r for r in rows if r["cohort"] == name and r["method"] in LABEL_FREE), key=lambda r: r["accuracy"], default=None)
        if best is None:
            continue
        ratio, drop = best["accuracy"] / max(ref, 1e-9), ref - best["accuracy"]
        if name == "same settings":
            goal, ok = f"loses {100 * drop:.1f} points (target <= 2)", drop <= 0.02 + 1e-9
        else:
            goal, ok = f"keeps {100 * ratio:.0f}% (target >= 90%)", ratio >= 0.9
        print(f"  {name:20s} {best['method']:22s} {best['accuracy']:.3f}: {goal} {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
