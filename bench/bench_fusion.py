"""Multimodal fusion: face, behaviour and physiology alone and fused, on synthetic cohorts.

Each cohort (``mfe synth --preset P --synth-seed S --effect-size E``: every modality carries the
latent sickness, each imperfectly: a subtle face effect, body motion with per-animal activity,
physiology with per-animal gain and measurement noise) goes through prepare -> keypoints
import -> behaviour import -> extract -> ``task make --preset task1_table`` (rec1 = 0, saline
rec4 = 0, high rec4 = 1: the controls' later recording keeps "any change since baseline" from
being enough). A copy of the cohort whose ``metadata/physiology.csv`` is replaced by the same
animals with ``--physiology-effect 0`` (same draws, no information) checks that an
uninformative modality costs nothing.

Per cohort, k-fold by animal, the same small advanced face model (resnet18 from scratch) and
the same budget for every variant (``mfe train --modalities ...``, ``--fusion late`` by default):

  face, behaviour, physiology           one modality each
  face+behaviour                        fused
  face+behaviour+physiology             fused (all three)
  face+behaviour+physiology (null)      fused, on the cohort whose physiology is uninformative

Printed per variant, mean over cohorts (min-max): animal accuracy (mean p1 of an animal's
videos with the same label >= 0.5), animal AUROC, video accuracy, and video accuracy on the
recordings after the baseline (physiology is change from the baseline, so it has nothing to say
about the baseline itself: a physiology-only model scores it 0.5); next to the face oracle (a
logistic regression on the true action units, same folds). Targets (issue 17): the fused model
beats the best single modality at animal level, over 3 cohorts; with uninformative physiology,
adding it loses nothing against face+behaviour.

The model is the ``small`` training preset (``training/presets.py``) at 48 px; a finished cohort
is reused (``synth.build.build_cohort``: its task's provenance). ``--smoke`` runs the last
variant (fused, null physiology) on the shared smallest cohort (``synth.build.SMOKE``), one fold of the ``smoke`` preset.

    .venv/bin/python bench/bench_fusion.py OUT [--preset demo] [--seeds 1 2 3] [--epochs 4]
    .venv/bin/python bench/bench_fusion.py /tmp/smoke_fusion --smoke
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
from bench_weak import _fmt  # mean (min-max) over cohorts, as bench_weak prints it

from mouse_facial_expressions.synth.build import build_cohort
from mouse_facial_expressions.training import presets

#: The synthetic cohorts' baseline videos (``<animal>_rec1_...``).
BASELINE_VIDEOS = "_rec1_"

VARIANTS = {  # name -> (modalities, cohort)
    "face": ("face", "main"),
    "behaviour": ("behaviour", "main"),
    "physiology": ("physiology", "main"),
    "face+behaviour": ("face,behaviour", "main"),
    "face+behaviour+physiology": ("face,behaviour,physiology", "main"),
    "face+behaviour+physiology (null physiology)": ("face,behaviour,physiology", "null"),
}


def cohort_spec(a, seed: int):
    """synth (every modality informative, ``--effect_size`` ...) -> ... -> behaviour import -> task1_table."""
    from mouse_facial_expressions.synth.build import SMOKE, CohortSpec

    if a.smoke:
        return SMOKE
    return CohortSpec(preset=a.preset, seed=seed, synth={"effect_size": a.effect_size, "behaviour_effect": a.behaviour_effect,
                      "physiology_effect": a.physiology_effect}, task_preset="task1_table",
                      task={"n_folds": a.folds, "version": "1"}, behaviour=True, workers=a.workers)


def null_physiology_copy(main: Path, spec) -> Path:
    """The cohort with ``metadata/physiology.csv`` from ``--physiology-effect 0`` (frames shared)."""
    from mouse_facial_expressions.io.atomic import write_csv
    from mouse_facial_expressions.synth.cohort import modality_truth

    null = main.with_name(main.name + "-null")
    if not (null / "tasks").is_dir():
        shutil.copytree(main, null, ignore=shutil.ignore_patterns("models", "videos"), dirs_exist_ok=True)
        _, phys = modality_truth(spec.preset, seed=spec.seed, **{**spec.synth, "physiology_effect": 0.0})
        write_csv(phys[["animal", "recording", "temperature_c", "weight_g"]], null / "metadata" / "physiology.csv")
    return null


def train(task_dir: Path, name: str, modalities: str, a) -> pd.DataFrame:
    """``mfe train --modalities M`` with the ``small`` preset (``--smoke``: the ``smoke`` preset, one fold)."""
    from mouse_facial_expressions._logs import quiet_third_party
    from mouse_facial_expressions.training import train_cv
    from mouse_facial_expressions.training.presets import preset_params

    quiet_third_party()
    fused = {"modality_dropout": a.modality_dropout, "fusion": a.fusion} if "," in modalities else {}
    p = preset_params("smoke" if a.smoke else "small", image_size=a.image_size, epochs=a.epochs,
                      epoch_size=a.epoch_size, num_frames=a.num_frames, frame_stride=a.frame_stride,
                      workers=a.workers, seed=a.train_seed, modalities=modalities, folds=a.run_folds,
                      run_name=f"{name.replace(' ', '_').replace('(', '').replace(')', '')}-t{a.train_seed}",
                      precision=a.precision, accelerator=a.accelerator, **fused)
    summary = train_cv(task_dir, p, task_dir.parent.parent / "models", track=False, progress=False)
    return pd.read_csv(summary["predictions"])


def scores(pred: pd.DataFrame) -> dict:
    """Animal accuracy and AUROC, video accuracy; and the video accuracy on the recordings after
    the baseline (``later_video_acc``: saline against LPS at rec4, the question the physiology,
    NaN at the baseline recording itself, can answer)."""
    from mouse_facial_expressions.evaluation.aggregate import aggregate_levels
    from mouse_facial_expressions.evaluation.metrics import METRICS

    lv = aggregate_levels(pred)
    later = lv["video"][~lv["video"]["video"].astype(str).str.contains(BASELINE_VIDEOS)]
    return {"animal_acc": METRICS["accuracy"](lv["animal"]["label"], lv["animal"]["p1"], 0.5),
            "animal_auroc": METRICS["auroc"](lv["animal"]["label"], lv["animal"]["p1"], 0.5),
            "video_acc": METRICS["accuracy"](lv["video"]["label"], lv["video"]["p1"], 0.5),
            "later_video_acc": METRICS["accuracy"](later["label"], later["p1"], 0.5)}


def oracle(task_dir: Path) -> dict:
    """:func:`scores` of the face oracle's video predictions (logistic regression on the true AUs, same folds)."""
    from mouse_facial_expressions.data.tasks import load_task
    from mouse_facial_expressions.synth.oracle import oracle_predictions

    pred = oracle_predictions(pd.read_parquet(task_dir.parent.parent / "truth" / "truth.parquet"), load_task(task_dir))
    return scores(pred.assign(start_time=0.0, end_time=0.0))  # one row per video: its own window


def table(results: pd.DataFrame) -> str:
    lines = ["| variant | animal accuracy | animal AUROC | video accuracy | video accuracy after the baseline | cohorts |",
             "|---|---|---|---|---|---|"]
    for name, g in results.groupby("variant", sort=False):
        lines.append(f"| {name} | {_fmt(g['animal_acc'])} | {_fmt(g['animal_auroc'])} | {_fmt(g['video_acc'])} | "
                     f"{_fmt(g['later_video_acc'])} | {len(g)} |")
    return "\n".join(lines)


def verdicts(results: pd.DataFrame) -> list[str]:
    mean = results.groupby("variant")["animal_acc"].mean()
    singles = {v: mean[v] for v in ("face", "behaviour", "physiology") if v in mean}
    out = []
    if singles and "face+behaviour+physiology" in mean:
        best = max(singles, key=singles.get)
        fused = mean["face+behaviour+physiology"]
        out.append(f"fused (all three) {fused:.3f} vs the best single modality ({best}) {singles[best]:.3f}: "
                   f"{'beats it' if fused > singles[best] else 'does NOT beat it'} (target: beats it)")
    null = "face+behaviour+physiology (null physiology)"
    if null in mean and "face+behaviour" in mean:
        d = mean[null] - mean["face+behaviour"]
        out.append(f"uninformative physiology added to face+behaviour: {d:+.3f} animal accuracy "
                   f"({'no loss' if d >= 0 else 'a loss'}; target: no loss)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="synthetic cohort seeds (one cohort each)")
    ap.add_argument("--effect_size", type=float, default=0.3, help="the face's effect (the bench preset's; demo's is 0.5)")
    ap.add_argument("--behaviour_effect", type=float, default=1.0, help="mfe synth --behaviour-effect")
    ap.add_argument("--physiology_effect", type=float, default=0.4,
                    help="mfe synth --physiology-effect (chosen on a tuning cohort, seed 7, so that physiology alone is "
                         "imperfect; after the baseline it is weak: 0.50 of the tuning cohort's later videos right, "
                         "0.67 at 1.0)")
    ap.add_argument("--folds", type=int, default=3, help="outer folds by animal")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT")
    ap.add_argument("--fusion", default="late", choices=("late", "stacked", "mid"))
    ap.add_argument("--modality_dropout", type=float, default=0.3)
    ap.add_argument("--run_folds", type=int, nargs="+", default=None, help="train only these folds (default: all)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the small preset's (4)")
    ap.add_argument("--epoch_size", type=int, default=None, help="default: the small preset's (160)")
    ap.add_argument("--image_size", type=int, default=None, help="default: the small preset's (48)")
    ap.add_argument("--num_frames", type=int, default=None, help="default: the small preset's (4)")
    ap.add_argument("--frame_stride", type=int, default=None, help="default: the small preset's (2)")
    ap.add_argument("--train_seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--precision", default=None, help="default: auto (bf16 on a GPU or a bf16 CPU, else fp32)")
    ap.add_argument("--accelerator", default="auto")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: the smoke cohort and preset, one fold, "
                    "the fused variants only")
    a = ap.parse_args(argv)
    if a.smoke:
        a.seeds, a.run_folds = a.seeds[:1], [0]
        a.variants = a.variants[-1:]  # the fused model on the null-physiology copy: every part of the code
    preset = presets.preset("smoke" if a.smoke else "small")
    for key in ("epochs", "epoch_size", "image_size", "num_frames", "frame_stride"):  # printed below
        setattr(a, key, getattr(a, key) or preset[key])
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in a.seeds:
        main_dir = a.out / f"cohort-{seed}"
        spec = cohort_spec(a, seed)
        task = build_cohort(main_dir, spec)
        null_dir = null_physiology_copy(main_dir, spec) if any(VARIANTS[v][1] == "null" for v in a.variants) else None
        rows.append({"variant": "oracle (true face AUs)", "cohort": seed, **oracle(task)})
        for name in a.variants:
            modalities, which = VARIANTS[name]
            t0 = time.time()
            pred = train(task if which == "main" else null_dir / "tasks" / task.name, name, modalities, a)
            rows.append({"variant": name, "cohort": seed, "seconds": round(time.time() - t0, 1), **scores(pred)})
            print(f"cohort {seed} {name}: {rows[-1]}", flush=True)
        pd.DataFrame(rows).to_csv(a.out / "bench_fusion.csv", index=False)
    results = pd.DataFrame(rows)
    print(f"\n{a.preset} cohorts {a.seeds} (face effect size {a.effect_size}, behaviour effect {a.behaviour_effect}, "
          f"physiology effect {a.physiology_effect}), {a.folds} folds, {a.fusion} fusion, "
          f"{a.epochs} epochs x {a.epoch_size} windows, resnet18 at {a.image_size} px, {a.num_frames} frames")
    print(table(results))
    for line in verdicts(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
