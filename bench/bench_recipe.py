"""Training recipes side by side at a small budget: learning curves, selected epochs, accuracy.

The setting of issue 10 (the original code against ``mfe`` on the same frames): ``advanced``,
resnet18 from scratch at 64 px, a 4-layer Transformer, 10 frames stride 2, batch 16, AdamW 1e-4,
soft labels with 0.1 smoothing, 3 epochs of 160 clips, fp32, on ``mfe synth --preset demo``
cohorts (5 outer folds by animal). For each cohort, recipe and training seed it prints, per fold:

- the learning curves: train accuracy and test window accuracy after every epoch (the test
  windows are scored at every epoch for this table only; selection never sees them);
- the epoch each selection rule keeps, and the test window / video accuracy of the run;
- what every other selection rule would have kept from the same run (``val_acc``, ``val_loss``,
  ``last``, the validation accuracy averaged over neighbouring epochs, and the weight average
  of the last 2 epochs), so the rules are compared on identical training.

Then the mean over cohorts x seeds x folds, with the spread, and the oracle (logistic
regression on the true action units, same folds) per cohort. Cohorts are built when missing::

    .venv/bin/python bench/bench_recipe.py --cohorts bench_recipe --synth_seeds 11 12 13 \\
        --recipes mfe1 mfe2 --seeds 1 2

Variants: ``--recipes mfe1 mfe1+augment_scope=frame`` changes one setting of a recipe
(any ``TrainParams`` field). ``--json FILE`` keeps every number for docs/RECIPE.md. The setting
is the ``recipe`` training preset (``training/presets.py``); ``--smoke`` runs the first recipe
for 2 epochs on one fold of the shared smallest cohort (``synth.build.SMOKE``, ``smoke`` preset)::

    .venv/bin/python bench/bench_recipe.py --cohorts /tmp/smoke_recipe --smoke
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import accuracy, levels, oracle_predictions  # noqa: E402

from mouse_facial_expressions.training import presets  # noqa: E402


def build(folder: Path, synth_seed: int, smoke: bool) -> Path:
    """``mfe synth --preset demo --synth-seed S`` -> prepare -> keypoints -> extract -> task1 (5 folds);
    the task folder (``synth.build.build_cohort``; ``smoke``: the shared smallest cohort)."""
    from mouse_facial_expressions.synth.build import SMOKE, CohortSpec, build_cohort

    spec = SMOKE if smoke else CohortSpec(preset="demo", seed=synth_seed, task_preset="task1", workers=2)
    return build_cohort(folder / f"{spec.preset}-seed{synth_seed}", spec)


def parse_variant(text: str) -> tuple[str, dict]:
    """``mfe1+augment_scope=frame+pos_init_std=1`` -> ("mfe1", {...}), typed by ``TrainParams``' fields."""
    import dataclasses

    from mouse_facial_expressions.training.params import TrainParams

    kinds = {f.name: str(f.type) for f in dataclasses.fields(TrainParams)}
    recipe, *changes = text.split("+")
    out = {}
    for c in changes:
        key, _, value = c.partition("=")
        if key not in kinds:
            raise SystemExit(f"{text}: {key!r} is not a training parameter")
        if value.lower() in ("none", "null") and not kinds[key].startswith("str"):
            out[key] = None  # "None" for a number field; a str field keeps the text ("train_augmentation=none")
        elif kinds[key].startswith("float"):
            out[key] = float(value)
        elif kinds[key].startswith("int"):
            out[key] = int(value)
        elif kinds[key].startswith("bool"):
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = value
    return recipe, out


def make_curves(fold: int, test_dl, keep_weights: int = 2):
    """A Lightning callback that scores the test windows after every epoch (diagnostic) and
    keeps the weights of the last ``keep_weights`` epochs (for the weight average)."""
    import lightning.pytorch as pl

    from mouse_facial_expressions.training.cv import predict_windows

    class Curves(pl.Callback):
        def __init__(self):
            self.test_dl = test_dl
            self.test: dict[int, pd.DataFrame] = {}
            self.weights: dict[int, dict] = {}

        def on_validation_epoch_end(self, trainer, module):
            e = int(trainer.current_epoch)
            self.test[e] = predict_windows(module.model, test_dl, fold, "32-true", channels=module.in_channels)
            self.weights[e] = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}
            for old in [k for k in self.weights if k <= e - keep_weights]:
                del self.weights[old]

    return Curves()


def window_video_acc(preds: pd.DataFrame) -> tuple[float, float]:
    return accuracy(preds), accuracy(levels(preds)["video"])


def averaged_model(module, weights: list[dict]):
    """A copy of the model with the mean of ``weights`` (BatchNorm buffers averaged too)."""
    import torch

    model = copy.deepcopy(module.model)
    mean = {}
    for k in weights[0]:
        stack = torch.stack([w[k].float() for w in weights])
        mean[k] = stack.mean(0).to(weights[0][k].dtype) if weights[0][k].is_floating_point() else weights[-1][k]
    model.load_state_dict(mean)
    return model.eval()


def smoothed_pick(history: dict) -> int:
    """Epoch with the best validation accuracy averaged with its neighbours (ties: lower loss)."""
    epochs = sorted(history)
    acc = np.array([history[e]["val_acc"] for e in epochs])
    loss = np.array([history[e]["val_loss"] for e in epochs])
    sm = np.array([acc[max(0, i - 1): i + 2].mean() for i in range(len(acc))])
    return epochs[int(np.lexsort((loss, -sm))[0])]


def run_one(task_dir: Path, variant: str, seed: int, a, out_root: Path) -> list[dict]:
    import torch

    from mouse_facial_expressions.training import train_cv
    from mouse_facial_expressions.training.cv import predict_windows
    from mouse_facial_expressions.training.module import ClipClassifier
    from mouse_facial_expressions.training.presets import preset_params

    recipe, changes = parse_variant(variant)
    p = preset_params("smoke" if a.smoke else "recipe", image_size=a.image_size, epochs=a.epochs,
                      epoch_size=a.epoch_size, workers=a.workers, seed=seed, recipe=recipe,
                      run_name=f"recipe-{variant.replace('=', '_').replace('+', '__')}-seed{seed}", **changes)
    curves: dict[int, object] = {}
    modules: dict[int, object] = {}

    def fold_callbacks(fold, test_dl):
        curves[fold] = make_curves(fold, test_dl)
        return [curves[fold]]

    orig_fit_end = ClipClassifier.on_fit_end

    def keep_module(self):  # the trained module of each fold, for the weight average
        modules[int(self.hparams.data["fold"])] = self
        return orig_fit_end(self)

    ClipClassifier.on_fit_end = keep_module
    models_dir = out_root / task_dir.parent.parent.name
    shutil.rmtree(models_dir / "runs" / p.run_name, ignore_errors=True)  # always train afresh: the curves need every epoch
    try:
        t0 = time.time()
        summary = train_cv(task_dir, p, models_dir, folds=a.folds, track=False,
                           progress=False, fold_callbacks=fold_callbacks)
    finally:
        ClipClassifier.on_fit_end = orig_fit_end
    rows = []
    for rec in summary["folds"]:
        fold = int(rec["fold"])
        hist = {int(e): h for e, h in rec["history"].items()}
        cb = curves[fold]
        test = {e: window_video_acc(cb.test[e]) for e in sorted(cb.test)}
        last = max(hist)
        picks = {
            "val_acc": max(hist, key=lambda e: hist[e]["val_acc"] - 1e-4 * hist[e]["val_loss"]),
            "val_loss": min(hist, key=lambda e: hist[e]["val_loss"]),
            "last": last,
            "smoothed_acc": smoothed_pick(hist),
        }
        alt = {f"sel_{k}": test[e][0] for k, e in picks.items()}
        alt.update({f"selvid_{k}": test[e][1] for k, e in picks.items()})
        ks = sorted(cb.weights)
        if len(ks) >= 2 and fold in modules:
            model = averaged_model(modules[fold], [cb.weights[k] for k in ks])
            # The averaged BatchNorm statistics are an approximation; scored like the others.
            with torch.no_grad():
                avg = predict_windows(model, cb.test_dl, fold, "32-true", channels=modules[fold].in_channels)
            alt["sel_avg_last2"], alt["selvid_avg_last2"] = window_video_acc(avg)
        rows.append(dict(
            cohort=task_dir.parent.parent.name, variant=variant, seed=seed, fold=fold, selected_epoch=rec["best_epoch"],
            select=rec.get("select"), test_window_acc=rec["test_acc"],
            test_video_acc=window_video_acc(pd.read_csv(Path(summary["run_dir"]) / f"fold{fold}" / "predictions_test.csv"))[1],
            train_acc=[round(hist[e].get("train_acc", float("nan")), 3) for e in sorted(hist)],
            val_acc=[round(hist[e]["val_acc"], 3) for e in sorted(hist)],
            val_loss=[round(hist[e]["val_loss"], 3) for e in sorted(hist)],
            test_curve=[round(test[e][0], 3) for e in sorted(test)],
            n_val_windows=rec.get("n_val_windows"), n_test_windows=rec["n_test_windows"], seconds=rec["seconds"], **alt,
        ))
    print(f"  {variant} seed {seed}: {time.time() - t0:.0f} s", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", type=Path, default=Path("bench_recipe"), help="folder of the synthetic cohorts (built when missing)")
    ap.add_argument("--synth_seeds", type=int, nargs="+", default=[11, 12, 13], help="`mfe synth --synth-seed` of each cohort (not tuned on)")
    ap.add_argument("--recipes", nargs="+", default=["mfe1", "mfe2"], help="recipes or variants such as mfe1+augment_scope=frame")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], help="training seeds")
    ap.add_argument("--folds", type=int, nargs="+", default=None, help="outer folds (default: all 5)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the recipe preset's (3)")
    ap.add_argument("--epoch_size", type=int, default=None, help="training clips per epoch (default: the recipe preset's, 160)")
    ap.add_argument("--image_size", type=int, default=None, help="default: the recipe preset's (64)")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write every row here")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: the smoke cohort and preset, "
                    "2 epochs (the weight average needs two), one fold, the first recipe")
    a = ap.parse_args(argv)
    if a.smoke:
        a.synth_seeds, a.recipes, a.seeds, a.folds, a.epochs = [0], a.recipes[:1], a.seeds[:1], [0], 2
    preset = presets.preset("smoke" if a.smoke else "recipe")
    for key in ("epochs", "epoch_size", "image_size"):  # printed below
        setattr(a, key, getattr(a, key) or preset[key])

    from mouse_facial_expressions._logs import quiet_third_party
    from mouse_facial_expressions.data.tasks import load_task

    quiet_third_party()  # no Lightning banners between the result lines
    a.cohorts.mkdir(parents=True, exist_ok=True)
    tasks = [build(a.cohorts, s, a.smoke) for s in a.synth_seeds]
    out_root = a.cohorts / "_models"
    rows = []
    for task_dir in tasks:
        for variant in a.recipes:
            for seed in a.seeds:
                rows += run_one(task_dir, variant, seed, a, out_root)
                if a.json:
                    a.json.write_text(json.dumps(rows, indent=1))
    df = pd.DataFrame(rows)
    print(f"\nadvanced, resnet18 from scratch at {a.image_size} px, 4 layers, 10 frames stride 2, batch 16, AdamW 1e-4, "
          f"{a.epochs} epochs x {a.epoch_size} clips, fp32; cohorts: mfe synth --preset demo --synth-seed {a.synth_seeds}")
    print("\nper fold: train acc by epoch | test window acc by epoch (diagnostic) | selected epoch -> test window / video acc")
    for r in rows:
        print(f"{r['cohort']:14s} {r['variant']:34s} s{r['seed']:<3d} f{r['fold']}  train {r['train_acc']}  "
              f"test {r['test_curve']}  val {r['val_acc']}  -> epoch {r['selected_epoch']}: "
              f"{r['test_window_acc']:.3f} / {r['test_video_acc']:.3f}")
    print("\nmean over cohorts x seeds x folds (min fold, sd over the per-seed means)")
    sel_cols = [c for c in df.columns if c.startswith("sel_")]
    for variant, g in df.groupby("variant", sort=False):
        per_run = g.groupby(["cohort", "seed"])["test_window_acc"].mean()
        print(f"{variant:36s} window {g['test_window_acc'].mean():.3f} (min fold {g['test_window_acc'].min():.3f}, "
              f"sd {per_run.std(ddof=1) if len(per_run) > 1 else 0:.3f})  video {g['test_video_acc'].mean():.3f}  "
              f"epochs kept {np.bincount(g['selected_epoch'], minlength=a.epochs).tolist()}")
        print(" " * 38 + "other rules on the same runs: " + ", ".join(
            f"{c[4:]} {g[c].mean():.3f}/{g['selvid_' + c[4:]].mean():.3f}" for c in sel_cols if c in g))
    print("\noracle (logistic regression on the true action units, same folds), video accuracy:")
    for task_dir in tasks:
        lv = levels(oracle_predictions(task_dir.parent.parent, load_task(task_dir)))
        print(f"  {task_dir.parent.parent.name}: {accuracy(lv['video']):.3f} ({len(lv['video'])} videos)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
