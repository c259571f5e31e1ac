"""Accuracy of baseline / advanced / resup under a fixed time budget, against the oracle.

Runs ``train_cv`` for each model on a project's task (e.g. a ``mfe synth --preset bench``
cohort taken through prepare -> keypoints import -> extract -> task make), with a wall-clock
budget per model split evenly over the folds (Lightning ``max_time``; training stops there
and the fold is tested with the best checkpoint so far; the default number of epochs is
what fits that budget, so the learning-rate schedule completes). Prints accuracy at video level and
at animal level (one row per animal and label, mean p1 >= 0.5), with the oracle: a logistic
regression on the true action units (``truth/truth.parquet``, mean per video) trained on the
same folds' training + validation animals (``synth/oracle.py``), on this cohort and as a mean
over ``--oracle_seeds`` other cohorts of the same preset (truth tables only, seconds each).

The model settings are the ``bench`` training preset (``training/presets.py``: resnet18 at 64 px,
a 2-layer Transformer); ``--smoke`` builds the shared smallest cohort in PROJECT when it holds no
task (``synth.build.SMOKE``) and trains the ``smoke`` preset for one batch of one fold.

    mfe synth bench_proj --preset bench && cd bench_proj && mfe prepare && mfe keypoints import \\
        && mfe extract && mfe task make && cd ..
    .venv/bin/python bench/bench_accuracy.py bench_proj --budget_min 60
    .venv/bin/python bench/bench_accuracy.py /tmp/smoke_proj --smoke
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

#: Epochs that fit in one minute of one fold at 64 px with resnet18, measured on 2026-11-24 on a
#: 2-core machine (baseline 11-13, advanced 9-12, resup 6-7 per 62-68 s). On 2026-11-26, on a
#: 2-core AMD EPYC without AVX512 (fp32 only) and with every validation window scored (recipe
#: ``mfe2``), an advanced epoch of the ``bench`` cohort took 34 s: about 1.8 per minute. The
#: default ``--epochs`` is this rate times the per-fold budget, so the cosine learning-rate
#: schedule runs to its end inside the budget instead of being cut off at its peak; on a
#: slower machine pass ``--epochs`` (``make bench-accuracy EPOCHS=5 BUDGET=16``).
EPOCHS_PER_FOLD_MINUTE = {"baseline": 11, "advanced": 10, "resup": 6}
MODELS = ["baseline", "advanced", "resup"]


def levels(pred: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Window, video and animal rows (``evaluation.aggregate.aggregate_levels``: video p1 = mean
    window p1, animal p1 = mean video p1 per animal and label). Video-level tables (the
    oracle's) are their own windows."""
    from mouse_facial_expressions.evaluation.aggregate import aggregate_levels

    if "start_time" not in pred:
        pred = pred.assign(start_time=0.0, end_time=0.0)
    return aggregate_levels(pred)


def accuracy(df: pd.DataFrame) -> float:
    """Share of rows called right at p1 >= 0.5 (``evaluation.metrics``)."""
    from mouse_facial_expressions.evaluation.metrics import METRICS

    return float(METRICS["accuracy"](df["label"].astype(int), df["p1"], 0.5))


def oracle_predictions(project: Path, task) -> pd.DataFrame:
    """Video-level p1 of a logistic regression on the mean true action units, same folds."""
    from mouse_facial_expressions.synth.oracle import oracle_predictions as oracle

    return oracle(pd.read_parquet(project / "truth" / "truth.parquet"), task)


def oracle_summary(project: Path, task, n_seeds: int) -> str:
    """The oracle on this cohort, and its mean over ``n_seeds`` other synthetic cohorts of the
    same preset (truth tables only, same task spec): one cohort's 34 videos move the oracle
    by 3 points a video, so the model is compared with the mean."""
    import json

    from mouse_facial_expressions.synth.oracle import oracle_over_seeds

    here = levels(oracle_predictions(project, task))
    line = f"oracle (true AUs) on this cohort: video {accuracy(here['video']):.3f}, animal {accuracy(here['animal']):.3f}"
    info = json.loads((project / "truth" / "synth.json").read_text())
    cfg = info["config"]
    if n_seeds <= 0:
        return line
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items() if k != "seed"}  # the same cohort design
    accs = oracle_over_seeds(info["preset"], range(n_seeds), task.spec, **overrides)
    return (f"{line}\noracle over {n_seeds} synthetic seeds (mfe synth --preset {info['preset']} --synth-seed 0..{n_seeds - 1}): "
            f"video {accs.mean():.3f} (sd {accs.std(ddof=1):.3f}, min {accs.min():.3f}, max {accs.max():.3f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("project", type=Path, help="project folder with mfe.yaml and a task folder")
    ap.add_argument("--dataset_version", default=None, help="task-<version> (default: the project's)")
    ap.add_argument("--budget_min", type=float, default=60.0, help="wall-clock minutes per model, split over the folds")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--backbone", default=None, help="default: the bench preset's (resnet18)")
    ap.add_argument("--image_size", type=int, default=None, help="default: the bench preset's (64)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs per fold (default: what fits the budget, see EPOCHS_PER_FOLD_MINUTE)")
    ap.add_argument("--num_layers", type=int, default=None, help="default: the bench preset's (2)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--epoch_size", type=int, default=None)
    ap.add_argument("--learning_rate", type=float, default=None, help="for every model (default: the seed's: 1e-4 advanced/resup, 1e-2 baseline)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="training seeds, one cross-validated run per seed (default: the model's seed default)")
    ap.add_argument("--tag", default="", help="suffix of the run names (models/bench/runs/bench-<model><tag>)")
    ap.add_argument("--oracle_seeds", type=int, default=30, help="synthetic cohorts (truth only) the oracle is averaged over")
    ap.add_argument("--csv", type=Path, default=None, help="also write the result table (one row per model and seed, and the oracle) here")
    ap.add_argument("--accelerator", default="auto", help="auto | cpu | gpu (Lightning)")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: smoke cohort and preset, one fold")
    a = ap.parse_args(argv)
    preset, folds = "bench", None
    if a.smoke:
        from mouse_facial_expressions.synth.build import SMOKE, build_cohort

        if not (a.project / "mfe.yaml").is_file():
            build_cohort(a.project, SMOKE)
        preset, folds = "smoke", [0]
        a.models = ["advanced"] if a.models == MODELS else a.models
        a.oracle_seeds, a.epochs, a.workers = 2, 1, 0

    from mouse_facial_expressions._logs import quiet_third_party
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.data.tasks import load_task

    quiet_third_party()  # no Lightning banners between the epoch lines
    from mouse_facial_expressions.training import train_cv
    from mouse_facial_expressions.training.presets import preset_params

    cfg = load_config(a.project)
    task_dir = cfg.path("tasks") / f"task-{a.dataset_version or cfg.project.dataset_version}"
    task = load_task(task_dir)
    n_folds = len(task.folds)
    per_fold = a.budget_min * 60 / n_folds
    max_time = f"00:{int(per_fold // 3600):02d}:{int(per_fold % 3600 // 60):02d}:{int(per_fold % 60):02d}"
    from mouse_facial_expressions.training.params import SEED_DEFAULTS

    rows = []  # (model, seed, video acc, animal acc, training s, epochs)
    for model in a.models:
        extra = {}  # seed defaults: 1e-4 AdamW (advanced, resup; 1e-3 collapsed to the majority class), 1e-2 SGD (baseline)
        if a.learning_rate:
            extra["learning_rate"] = a.learning_rate
        epochs = a.epochs or max(1, round(EPOCHS_PER_FOLD_MINUTE.get(model, 10) * per_fold / 60))
        for seed in a.seeds or [SEED_DEFAULTS[model]["seed"]]:
            # The seed's default seed keeps the plain run name, so earlier runs resume (finished folds are skipped).
            name = f"bench-{model}{a.tag}" + ("" if seed == SEED_DEFAULTS[model]["seed"] else f"-seed{seed}")
            p = preset_params(preset, model, backbone=a.backbone, image_size=a.image_size, epochs=epochs,
                              num_layers=a.num_layers, max_time=max_time, workers=a.workers, epoch_size=a.epoch_size,
                              run_name=name, seed=seed, dataset_version=task_dir.name.removeprefix("task-"),
                              accelerator=a.accelerator, folds=folds, **extra)
            summary = train_cv(task_dir, p, cfg.path("models") / "bench", track=False)
            lv = levels(pd.read_csv(summary["predictions"]))
            seconds = sum(float(f.get("seconds") or 0) for f in summary["folds"])
            rows.append((model, seed, accuracy(lv["video"]), accuracy(lv["animal"]), seconds, epochs))
    lv = levels(oracle_predictions(Path(a.project), task))
    rows.append(("oracle (true AUs)", None, accuracy(lv["video"]), accuracy(lv["animal"]), float("nan"), None))
    oracle_text = oracle_summary(Path(a.project), task, a.oracle_seeds)
    print(f"\ntask {task_dir} ({n_folds} folds), budget {a.budget_min:g} min per model and seed ({max_time} per fold), "
          f"{p.backbone} at {p.image_size} px ({preset} preset)")
    print(f"{'model':20s} {'seed':>6s} {'video acc':>10s} {'animal acc':>11s} {'train s':>8s} {'epochs':>7s}   "
          f"(n = {len(lv['video'])} videos, {len(lv['animal'])} animal rows)")
    for model, seed, v, an, sec, ep in rows:
        print(f"{model:20s} {seed if seed is not None else '':>6} {v:10.3f} {an:11.3f} {sec:8.0f} {ep if ep else '':>7}")
    table = pd.DataFrame(rows, columns=["model", "seed", "video", "animal", "seconds", "epochs"])
    if a.csv:
        from mouse_facial_expressions.io.atomic import atomic_path

        with atomic_path(a.csv) as tmp:
            table.to_csv(tmp, index=False)
    if table.groupby("model")["seed"].count().max() > 1:
        print("mean over seeds (min-max)")
        for model, g in table.groupby("model", sort=False):
            print(f"{model:20s} {len(g):>4d} x {g['video'].mean():10.3f} ({g['video'].min():.3f}-{g['video'].max():.3f})"
                  f" {g['animal'].mean():8.3f}")
    print(oracle_text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
