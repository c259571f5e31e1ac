"""Mouse Grimace Scale action-unit heads against simulated raters and the synthetic truth (issue 15).

Each cohort (``mfe synth --preset P --synth-seed S --raters K --rating-every E``: K simulated raters,
each with their own bias and noise on the true AU intensities, score one frame per video every E
seconds; ``synth/raters.py``) goes through prepare -> keypoints import -> extract -> ``mfe ratings
import ratings/synthetic_raters.csv`` -> ``task make --preset task1_table --au-ratings
ratings/synthetic_raters.parquet`` (k folds by animal). ``task1_table`` and not ``task1``: it
labels every synthetic video (rec1 = 0, saline rec4 = 0, high rec4 = 1), so every rated video is
used; ``task1`` leaves the saline rec4 videos out, and with them the ratings of controls after
the injection.

Per cohort, k-fold by animal, a small advanced face model (resnet18 from scratch) is trained per
``--targets`` variant (``mfe train --model advanced --targets au+class``, optionally ``au``), and
its held-out predictions (every test window: ``au_ot .. au_wc``, ``mgs``) are scored by
``evaluation.mgs_models.run_mgs``, the code behind ``mfe evaluate``'s MGS table:

- against the **mean rater**: each rated frame takes the test window whose centre is nearest
  (within the task's tolerance); quadratic-weighted kappa and Pearson r, per AU and for the
  MGS total (mean of the five AUs);
- against the **synthetic truth**: each test window's true intensity (``2 * au_*``, 0..2, mean
  over its frames); Pearson r and RMSE;
- the **raters' own agreement** on the same rated frames (mean pairwise kappa and r): the ceiling.

95% bootstrap CIs resample animals (``evaluation.mgs.bootstrap``); they are in ``bench_mgs.csv``
(``*_low``, ``*_high``) and printed per cohort for the total. Beside the model, two rows that need
no training: the **mean rater** itself against the truth on the rated frames (the best a model
that learns these labels perfectly can do: the raters' shared bias and the rounding stay in it),
and **one rater** (mean over the raters). Those two are scored on every rated frame of the animals
the model is tested on (against the truth of that frame), the model on its test windows (against
each window's mean truth) and on the rated frames that met a test window (against the raters).

Printed per variant and target, mean over cohorts (min-max), and verdicts for issue 15's targets
(on the mean over cohorts): r >= 0.90 of the MGS total with the truth; agreement with the mean
rater (kappa) at or above the mean inter-rater agreement; RMSE <= 0.2 on the 0-2 scale.

    .venv/bin/python bench/bench_mgs.py OUT [--preset demo] [--seeds 1 2 3] [--targets au+class au] [--epochs 4]

The model is the ``small`` training preset (``training/presets.py``) at 64 px (``--image_size``).
``--smoke``: the shared smallest cohort (``synth.build.SMOKE``: 2 raters), one fold of the
``smoke`` preset, the first ``--targets``, 20 bootstrap resamples.

    .venv/bin/python bench/bench_mgs.py /tmp/smoke_mgs --smoke

Resumable: a finished cohort is not rebuilt (``synth.build.build_cohort``: the cohort is made
again when the synth settings change, its ratings and task when ``--raters/--rating_every/
--folds/--tolerance`` do), and finished folds of a run are skipped (the run name carries a hash
of the training settings).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from bench_weak import _fmt  # mean (min-max) over cohorts, as bench_weak prints it

from mouse_facial_expressions.synth.build import build_cohort
from mouse_facial_expressions.training import presets

TASK_PRESET = "task1_table"
TASK_VERSION = "mgs"
RATINGS = "ratings/synthetic_raters.parquet"
#: Issue 15's targets.
R_TARGET, RMSE_TARGET = 0.90, 0.2
#: Columns of bench_mgs.csv besides variant, cohort, target.
STATS = ["kappa", "kappa_low", "kappa_high", "r", "r_low", "r_high", "rmse", "ceiling_kappa", "ceiling_kappa_low",
         "ceiling_kappa_high", "ceiling_r", "ceiling_r_low", "ceiling_r_high", "truth_r", "truth_r_low", "truth_r_high",
         "truth_rmse", "truth_rmse_low", "truth_rmse_high", "n_items", "truth_n", "loro_kappa", "loro_ceiling_kappa",
         "loro_r", "loro_ceiling_r"]
ORACLE, ONE_RATER = "oracle: mean rater", "one rater (mean over raters)"


def cohort_spec(a, seed: int):
    """synth -> K simulated raters (their sheet imported) -> ... -> task1_table with AU targets."""
    from mouse_facial_expressions.synth.build import SMOKE, CohortSpec

    if a.smoke:
        return SMOKE
    synth = {k: v for k, v in (("mice", a.mice), ("effect_size", a.effect_size)) if v is not None}
    return CohortSpec(preset=a.preset, seed=seed, synth=synth, task_preset=TASK_PRESET,
                      task={"n_folds": a.folds, "version": TASK_VERSION}, raters=a.raters,
                      rating_every=a.rating_every, au_tolerance=a.tolerance, workers=max(a.workers, 1))


def train(task_dir: Path, project: Path, targets: str, a) -> tuple[dict, float]:
    """``mfe train --model advanced --targets T`` at the bench's budget; the summary and the folds' training seconds."""
    from mouse_facial_expressions._logs import quiet_third_party
    from mouse_facial_expressions.training import train_cv
    from mouse_facial_expressions.training.presets import preset_params

    quiet_third_party()
    p = preset_params("smoke" if a.smoke else "small", image_size=a.image_size, epochs=a.epochs,
                      epoch_size=a.epoch_size, num_frames=a.num_frames, frame_stride=a.frame_stride, workers=a.workers,
                      seed=a.train_seed, targets=targets, folds=a.run_folds, precision=a.precision,
                      accelerator=a.accelerator)
    # The hash of the learning settings in the name: another budget is another run, not a resumed one.
    p.run_name = f"mgs-{targets.replace('+', '_')}-{p.default_run_name().rsplit('-', 1)[1]}"
    summary = train_cv(task_dir, p, project / "models", track=False, progress=False)
    return summary, float(sum(f.get("seconds") or 0.0 for f in summary["folds"]))  # resumed folds keep their time


def model_rows(summary: dict, n_boot: int) -> pd.DataFrame:
    """Per target (ot .. wc, total): the run's MGS table (``run_mgs``: kappa, r and RMSE against the
    mean rater, r and RMSE with CIs against the truth) and the inter-rater ceiling with CIs on the
    same rated frames."""
    from mouse_facial_expressions.data.au_targets import load_au_ratings, load_au_targets
    from mouse_facial_expressions.data.tasks import load_spec
    from mouse_facial_expressions.evaluation.mgs import inter_rater
    from mouse_facial_expressions.evaluation.mgs_models import nearest_windows, run_mgs

    pred = pd.read_csv(summary["predictions"])
    mgs = run_mgs(summary["run_dir"], pred, n_boot=n_boot)
    if mgs is None:
        raise RuntimeError(f"{summary['run_dir']}: the predictions have no AU columns")
    rows = pd.DataFrame(mgs["rows"]).set_index("target")
    task_dir = Path(summary["task_dir"])
    ratings, targets = load_au_ratings(task_dir), load_au_targets(task_dir)
    # The ceiling on the rated frames that met a test window (those run_mgs compared), with CIs.
    pick = nearest_windows(targets, pred, load_spec(task_dir / "task.yaml").au.tolerance_s)
    matched = ratings[ratings["item"].astype(str).isin(set(targets.loc[pick >= 0, "item"].astype(str)))]
    ceiling = inter_rater(matched, n_boot=n_boot)
    for t in rows.index:
        for k in ("kappa", "r"):
            rows.loc[t, [f"ceiling_{k}", f"ceiling_{k}_low", f"ceiling_{k}_high"]] = ceiling.loc[t, [k, f"{k}_low", f"{k}_high"]].to_numpy()
    rows["truth_n"] = rows["truth_n_windows"]
    return rows.reset_index()


def rater_rows(task_dir: Path, n_boot: int, folds: list[int] | None = None) -> list[dict]:
    """The mean rater and each single rater against the truth of the rated frames of the test
    animals of ``folds`` (default: all) (r, RMSE; the mean rater with CIs over animals): what the
    labels themselves reach."""
    from mouse_facial_expressions.data.au_targets import load_au_ratings
    from mouse_facial_expressions.data.tasks import load_task
    from mouse_facial_expressions.evaluation.mgs import TARGETS, mean_rater, pearson_r, rmse, score_matrix, vs_truth
    from mouse_facial_expressions.io.ratings import AUS, TRUTH_COLUMNS

    ratings = load_au_ratings(task_dir)
    if folds is not None:  # the animals the model is scored on
        task = load_task(task_dir)
        animals = {str(m) for f in folds for m in task.animals(f, "test")}
        ratings = ratings[ratings["animal"].astype(str).isin(animals)]
    truth = pd.read_parquet(task_dir.parent.parent / "truth" / "truth.parquet")
    items = ratings.drop_duplicates("item").set_index("item")[["video", "frame", "animal"]]
    items["frame"] = items["frame"].astype(int)
    true = items.reset_index().merge(truth[["video", "frame", *TRUTH_COLUMNS.values()]], on=["video", "frame"], how="left")
    true = true.set_index("item")
    for au in AUS:
        true[au] = 2.0 * true[TRUTH_COLUMNS[au]]  # 0..1 -> the MGS 0..2 scale, as synth/raters.py rates
    true["total"] = true[list(AUS)].mean(axis=1)
    mean = mean_rater(ratings)
    out = []
    for t in TARGETS:
        m = mean.reindex(true.index)[t].to_numpy(float)
        cis = vs_truth(m, true[t].to_numpy(float), true["animal"].astype(str).to_numpy(), n_boot=n_boot)
        row = {"variant": ORACLE, "target": t, "n_items": int(np.isfinite(m).sum()), "truth_n": int(np.isfinite(m).sum())}
        for k in ("r", "rmse"):
            row.update({f"truth_{k}": cis[k].value, f"truth_{k}_low": cis[k].low, f"truth_{k}_high": cis[k].high})
        out.append(row)
        each = score_matrix(ratings, t).reindex(true.index)
        out.append({"variant": ONE_RATER, "target": t, "n_items": int(len(each)), "truth_n": int(len(each)),
                    "truth_r": float(np.nanmean([pearson_r(each[c], true[t]) for c in each.columns])),
                    "truth_rmse": float(np.nanmean([rmse(each[c], true[t]) for c in each.columns]))})
    return out


def table(results: pd.DataFrame) -> str:
    lines = ["| variant | target | kappa vs mean rater | r vs mean rater | inter-rater kappa (ceiling) | "
             "inter-rater r | r vs truth | RMSE vs truth | cohorts |",
             "|---|---|---|---|---|---|---|---|---|"]
    from mouse_facial_expressions.evaluation.mgs import TARGETS

    variants = [v for v in results["variant"].unique() if v not in (ORACLE, ONE_RATER)] + [ORACLE, ONE_RATER]
    groups = results.groupby(["variant", "target"])
    for variant, target in ((v, t) for v in variants for t in TARGETS):
        if (variant, target) not in groups.groups:
            continue
        g = groups.get_group((variant, target))
        lines.append(f"| {variant} | {target} | {_fmt(g.get('kappa', []))} | {_fmt(g.get('r', []))} | "
                     f"{_fmt(g.get('ceiling_kappa', []))} | {_fmt(g.get('ceiling_r', []))} | {_fmt(g['truth_r'])} | "
                     f"{_fmt(g['truth_rmse'])} | {g['cohort'].nunique()} |")
    return "\n".join(lines)


def _ci(row, k: str) -> str:
    v, lo, hi = row.get(k), row.get(f"{k}_low"), row.get(f"{k}_high")
    if v is None or not np.isfinite(v):
        return "-"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None and np.isfinite(lo) else f"{v:.3f}"


def ci_table(results: pd.DataFrame) -> str:
    """The MGS total per cohort with its 95% bootstrap CIs over animals."""
    lines = ["| cohort | variant | kappa vs mean rater | inter-rater kappa | r vs truth | RMSE vs truth |",
             "|---|---|---|---|---|---|"]
    tot = results[results["target"] == "total"]
    order = tot["variant"].isin([ORACLE, ONE_RATER]).astype(int) + (tot["variant"] == ONE_RATER)  # the model first
    for _, row in tot.assign(_o=order).sort_values(["cohort", "_o"], kind="stable").iterrows():
        row = row.to_dict()
        lines.append(f"| {row['cohort']} | {row['variant']} | {_ci(row, 'kappa')} | {_ci(row, 'ceiling_kappa')} | "
                     f"{_ci(row, 'truth_r')} | {_ci(row, 'truth_rmse')} |")
    return "\n".join(lines)


def verdicts(results: pd.DataFrame) -> list[str]:
    """Issue 15's three targets per trained variant, on the mean over cohorts."""
    out = []
    for variant, g in results[~results["variant"].isin([ORACLE, ONE_RATER])].groupby("variant", sort=False):
        mean = g.groupby("target", sort=False)[["kappa", "ceiling_kappa", "r", "ceiling_r", "truth_r", "truth_rmse"]].mean()
        tot = mean.loc["total"]
        aus = mean.drop(index="total")
        met = lambda ok: "met" if ok else "NOT met"  # noqa: E731
        out.append(f"{variant}: MGS total r with the truth {_fmt(g.loc[g['target'] == 'total', 'truth_r'])}: "
                   f"{met(tot['truth_r'] >= R_TARGET)} (target >= {R_TARGET:.2f})")
        out.append(f"{variant}: agreement with the mean rater, MGS total kappa {tot['kappa']:.3f} vs the raters' own "
                   f"{tot['ceiling_kappa']:.3f} (r {tot['r']:.3f} vs {tot['ceiling_r']:.3f}): "
                   f"{met(tot['kappa'] >= tot['ceiling_kappa'])} (target: at or above); AUs at or above: "
                   f"{int((aus['kappa'] >= aus['ceiling_kappa']).sum())} of {len(aus)}")
        if "loro_kappa" in g and g["loro_kappa"].notna().any():
            loro = g.groupby("target", sort=False)[["loro_kappa", "loro_ceiling_kappa"]].mean().loc["total"]
            out.append(f"{variant}: the fair comparison (leave one rater out: the model and each rater against the mean "
                       f"of the other raters), MGS total kappa {loro['loro_kappa']:.3f} vs the left-out raters' "
                       f"{loro['loro_ceiling_kappa']:.3f}: {met(loro['loro_kappa'] >= loro['loro_ceiling_kappa'])}")
        out.append(f"{variant}: MGS total RMSE with the truth {_fmt(g.loc[g['target'] == 'total', 'truth_rmse'])}: "
                   f"{met(tot['truth_rmse'] <= RMSE_TARGET)} (target <= {RMSE_TARGET}); AUs within it: "
                   f"{int((aus['truth_rmse'] <= RMSE_TARGET).sum())} of {len(aus)}")
    orc = results[(results["variant"] == ORACLE) & (results["target"] == "total")]
    if len(orc):
        out.append(f"(the mean rater itself against the truth, MGS total: r {_fmt(orc['truth_r'])}, "
                   f"RMSE {_fmt(orc['truth_rmse'])})")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--preset", default="demo", help="mfe synth --preset")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="synthetic cohort seeds (one cohort each)")
    ap.add_argument("--mice", type=int, default=None, help="mfe synth --mice (default: the preset's)")
    ap.add_argument("--effect_size", type=float, default=None, help="mfe synth --effect-size (default: the preset's)")
    ap.add_argument("--raters", type=int, default=3, help="mfe synth --raters")
    ap.add_argument("--rating_every", type=float, default=1.0,
                    help="mfe synth --rating-every: a rated frame per video every S seconds (1 s with the 0.5 s "
                         "tolerance gives every window an AU target)")
    ap.add_argument("--tolerance", type=float, default=0.5, help="mfe task make --au-tolerance")
    ap.add_argument("--folds", type=int, default=3, help="outer folds by animal")
    ap.add_argument("--run_folds", type=int, nargs="+", default=None, help="train only these folds (default: all)")
    ap.add_argument("--targets", nargs="+", default=["au+class"], choices=("au+class", "au"),
                    help="mfe train --targets, one variant each")
    ap.add_argument("--epochs", type=int, default=None, help="default: the small preset's (4)")
    ap.add_argument("--epoch_size", type=int, default=None, help="default: the small preset's (160)")
    ap.add_argument("--image_size", type=int, default=64, help="64, not the small preset's 48")
    ap.add_argument("--num_frames", type=int, default=None, help="default: the small preset's (4)")
    ap.add_argument("--frame_stride", type=int, default=None, help="default: the small preset's (2)")
    ap.add_argument("--train_seed", type=int, default=1)
    ap.add_argument("--n_boot", type=int, default=1000, help="bootstrap resamples of the animals")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--precision", default=None, help="default: auto (bf16 on a GPU or a bf16 CPU, else fp32)")
    ap.add_argument("--accelerator", default="auto")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: the smoke cohort and preset, one fold, "
                    "one variant, 20 bootstrap resamples")
    a = ap.parse_args(argv)
    if a.smoke:
        a.seeds, a.run_folds, a.targets, a.n_boot, a.image_size = a.seeds[:1], [0], a.targets[:1], 20, None
    preset = presets.preset("smoke" if a.smoke else "small")
    for key in ("epochs", "epoch_size", "image_size", "num_frames", "frame_stride"):  # printed below
        setattr(a, key, getattr(a, key) or preset[key])
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in a.seeds:
        project = a.out / f"cohort-{seed}"
        spec = cohort_spec(a, seed)
        task_dir = build_cohort(project, spec)
        rows += [{"cohort": seed, **r} for r in rater_rows(task_dir, a.n_boot, a.run_folds)]
        for targets in a.targets:
            summary, seconds = train(task_dir, project, targets, a)
            got = model_rows(summary, a.n_boot).assign(variant=f"advanced --targets {targets}", cohort=seed,
                                                       seconds=round(seconds, 1), run=summary["run_name"])
            rows += got.to_dict("records")
            tot = got.set_index("target").loc["total"]
            print(f"cohort {seed} --targets {targets} ({seconds:.0f} s): MGS total kappa {tot['kappa']:.3f} "
                  f"(raters {tot['ceiling_kappa']:.3f}), r with the truth {tot['truth_r']:.3f}, RMSE {tot['truth_rmse']:.3f}",
                  flush=True)
        results = pd.DataFrame(rows)
        results[["variant", "cohort", "target", *[c for c in STATS + ["seconds", "run"] if c in results]]].to_csv(
            a.out / "bench_mgs.csv", index=False)
    results = pd.DataFrame(rows)
    print(f"\n{spec.preset} cohorts {a.seeds} ({spec.raters} raters, a rated frame every {spec.rating_every:g} s, "
          f"{spec.task_preset}, tolerance {spec.au_tolerance:g} s), {spec.task['n_folds']} folds{f' (run: {a.run_folds})' if a.run_folds else ''}, "
          f"{a.epochs} epochs x {a.epoch_size} windows, resnet18 at {a.image_size} px, {a.num_frames} frames; "
          "mean over cohorts (min-max); held-out animals")
    print(table(results))
    print("\nMGS total per cohort, 95% bootstrap CIs over animals:")
    print(ci_table(results))
    print()
    for line in verdicts(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
