"""The advanced model against the oracle over several synthetic cohorts (issue 10's target).

``bench_accuracy.py`` measures one cohort, whose 34 videos move video accuracy by 3 points a
video, so one cohort cannot say whether a model is within 3 points of the oracle. This script
builds ``--synth_seeds`` cohorts of the same preset (``synth.build.build_cohort``: ``mfe synth
ROOT/<preset>-<S> --preset <preset> --synth-seed S`` -> prepare -> keypoints import -> extract ->
task make; a cohort whose task's provenance is fresh is reused), runs ``bench_accuracy.py`` on each
(``--jobs`` cohorts at a time, each in its own process; its output goes to ``<preset>-<S>.log``)
and prints, per cohort, the oracle (a logistic regression on the true action units, same folds) next to the model's video accuracy per training seed, then both means over the
cohorts with their spread, paired (model minus oracle on the same cohort) and against the oracle
averaged over ``--oracle_seeds`` further cohorts (truth tables only).

    .venv/bin/python bench/bench_accuracy_cohorts.py bench_cohorts --synth_seeds 2 3 4 5 \\
        --epochs 20 --seeds 1 --jobs 4 --workers 3      # one GPU: about 10 min
    .venv/bin/python bench/bench_accuracy_cohorts.py /tmp/smoke_cohorts --smoke   # seconds: one smoke cohort
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_accuracy  # noqa: E402


def cohort(a: argparse.Namespace, seed: int) -> pd.DataFrame:
    """Build (or reuse) one cohort and run ``bench_accuracy.main`` on it, its output in the cohort's log."""
    from mouse_facial_expressions.synth.build import SMOKE, CohortSpec, build_cohort

    spec = SMOKE if a.smoke else CohortSpec(preset=a.preset, seed=seed, workers=a.workers)
    project = a.root / f"{a.preset}-{seed}"
    log, csv = a.root / f"{a.preset}-{seed}.log", a.root / f"{a.preset}-{seed}.csv"
    t0 = time.perf_counter()
    build_cohort(project, spec)
    built = time.perf_counter() - t0
    argv = [str(project), "--models", "advanced", "--epochs", str(a.epochs), "--budget_min", str(a.budget_min),
            "--workers", str(a.workers), "--oracle_seeds", "0", "--csv", str(csv), "--accelerator", a.accelerator,
            "--seeds", *map(str, a.seeds), *(["--smoke"] if a.smoke else [])]
    with log.open("a") as out, contextlib.redirect_stdout(out):
        bench_accuracy.main(argv)
    print(f"cohort {seed}: built in {built:.0f} s, trained and tested in {time.perf_counter() - t0 - built:.0f} s", flush=True)
    return pd.read_csv(csv).assign(cohort=seed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="folder of the cohorts (<preset>-<seed>/, with a .log and a .csv each)")
    ap.add_argument("--preset", default="bench")
    ap.add_argument("--synth_seeds", type=int, nargs="+", default=[2, 3, 4, 5], help="cohorts (not the seed 1 cohort of make bench-accuracy)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], help="training seeds per cohort")
    ap.add_argument("--epochs", type=int, default=20, help="epochs per fold (bench_accuracy's default budget is 20)")
    ap.add_argument("--budget_min", type=float, default=600.0, help="wall-clock cap per model and seed (a safety net; --epochs decides)")
    ap.add_argument("--jobs", type=int, default=1, help="cohorts built and trained side by side")
    ap.add_argument("--workers", type=int, default=1, help="extract and data-loader workers per cohort")
    ap.add_argument("--accelerator", default="auto")
    ap.add_argument("--oracle_seeds", type=int, default=30, help="further cohorts (truth only) the oracle is averaged over")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: one smoke cohort (synth.build.SMOKE), "
                    "bench_accuracy --smoke on it")
    a = ap.parse_args(argv)
    if a.smoke:
        from mouse_facial_expressions.synth.build import SMOKE

        a.preset, a.synth_seeds, a.seeds, a.epochs, a.jobs, a.workers, a.oracle_seeds = SMOKE.preset, [SMOKE.seed], [1], 1, 1, 0, 2
    a.root.mkdir(parents=True, exist_ok=True)
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as pool:
            parts = list(pool.map(cohort, [a] * len(a.synth_seeds), a.synth_seeds))
    else:
        parts = [cohort(a, s) for s in a.synth_seeds]
    table = pd.concat(parts, ignore_index=True)
    table.to_csv(a.root / "summary.csv", index=False)
    oracle = table[table["model"].str.startswith("oracle")].set_index("cohort")["video"]
    model = table[table["model"] == "advanced"]
    print(f"\n{a.preset} cohorts {a.synth_seeds}, advanced, {a.epochs} epochs per fold, training seeds {a.seeds}")
    print(f"{'cohort':>7s} {'oracle video':>13s} {'advanced video (per seed)':>28s} {'paired gap':>11s}")
    for c, g in model.groupby("cohort"):
        accs = " ".join(f"{v:.3f}" for v in g["video"])
        print(f"{c:7d} {oracle[c]:13.3f} {accs:>28s} {g['video'].mean() - oracle[c]:+11.3f}")
    per_cohort = model.groupby("cohort")["video"].mean()
    gap = per_cohort - oracle.loc[per_cohort.index]
    print(f"mean over {len(per_cohort)} cohorts: advanced {per_cohort.mean():.3f} (sd {per_cohort.std(ddof=1):.3f}), "
          f"oracle {oracle.mean():.3f} (sd {oracle.std(ddof=1):.3f}), paired gap {gap.mean():+.3f} (sd {gap.std(ddof=1):.3f})")
    if a.oracle_seeds > 0:
        import json

        from mouse_facial_expressions.config import load_config
        from mouse_facial_expressions.data.tasks import load_task
        from mouse_facial_expressions.synth.oracle import oracle_over_seeds

        project = a.root / f"{a.preset}-{a.synth_seeds[0]}"
        cfg = load_config(project)
        task = load_task(cfg.path("tasks") / f"task-{cfg.project.dataset_version}")
        info = json.loads((project / "truth" / "synth.json").read_text())
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in info["config"].items() if k != "seed"}
        accs = oracle_over_seeds(info["preset"], range(a.oracle_seeds), task.spec, **overrides)
        print(f"oracle over {a.oracle_seeds} synthetic seeds (0..{a.oracle_seeds - 1}, truth only): video {accs.mean():.3f} "
              f"(sd {accs.std(ddof=1):.3f}); advanced minus it: {per_cohort.mean() - accs.mean():+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
