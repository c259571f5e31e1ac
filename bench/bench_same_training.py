"""Does the working tree train exactly as the pinned commit did? The same tiny task, trained twice.

The model code is being redesigned (wrapper classes -> parts); a redesign that only moves code
must not change what is learned. This bench trains the same configurations with the pinned
commit's package (``git archive`` of :data:`PINNED_COMMIT`, run with ``PYTHONPATH``) and with the
working tree's (or ``--against SRC``, e.g. a second ``git archive`` of the same commit, to check
that training is deterministic at all), each through the command line (``python -m
mouse_facial_expressions train ...``) in a subprocess, and prints per configuration whether the
fold's per-epoch history (``fold.json``: train/val loss and accuracy, ``--weak em``'s E-step
statistics) and the test predictions (``predictions.csv``: ``p1``, and the AU columns when there
are any) are identical, with the largest absolute difference. It never asserts: a difference is
reported, not failed on.

The task, made once with the pinned package and copied for each side (so neither side resumes
or overwrites the other's runs)::

    mfe synth DIR --preset tiny --synth-seed 3 --mice 8 --raters 3    (8 mice: validation animals in each fold)
    mfe prepare; mfe keypoints import; mfe behaviour import; mfe extract
    mfe ratings import ratings/synthetic_raters.csv
    mfe task make --preset task1 --au-ratings ratings/synthetic_raters.parquet

Training is made deterministic for the comparison: fp32, no loader workers, one CPU thread,
the same seed, a tiny model (resnet18 at 32 px, one 32-wide Transformer layer, 4-frame
windows), one fold, one epoch of a few batches (:data:`TINY`; ``weak-em`` two, so that its
E-step runs). ``--smoke``: the plain configuration only, on the tiny preset's 4 mice (no
validation animals), in about a minute.

    .venv/bin/python bench/bench_same_training.py [--smoke] [--configs plain au+class ...] [--keep DIR] [--against SRC]
    .venv/bin/python bench/bench_same_training.py --speed 4   # training and scoring frames/s of both, 4 alternated pairs
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
#: The commit whose training the working tree must reproduce.
PINNED_COMMIT = "d1e10e8bdc4b51b5ae170548b924f9665b7334de"

#: Configuration -> its ``mfe train`` flags (beside :data:`TINY`).
CONFIGS: dict[str, list[str]] = {
    "plain": [],
    "baseline": ["--model", "baseline"],
    "au+class": ["--targets", "au+class"],
    "face,behaviour": ["--modalities", "face,behaviour"],
    "weak-em": ["--weak", "em", "--epochs", "2"],  # the first E-step is at epoch 1 (the last --epochs wins)
    "relative": ["--baseline-recording", "1"],
}

#: ``mfe train`` flags every configuration shares: tiny, untracked, deterministic.
TINY = ["--epochs", "1", "--backbone", "resnet18", "--image-size", "32", "--num-layers", "1", "--num-heads", "2",
        "--d-model", "32", "--ff-dim", "32", "--num-frames", "4", "--frame-stride", "1",  # short windows: more test windows
        "--train-batch-size", "4", "--test-batch-size", "8", "--epoch-size", "16",
        "--folds", "0", "--no-tracking", "--loader-workers", "0", "--precision", "32", "--device", "cpu",
        "--train-seed", "0"]
#: Smoke: fewer windows per epoch.
SMOKE = ["--epoch-size", "8"]


def pinned_src(dest: Path) -> Path:
    """The pinned commit's ``src`` folder, extracted by ``git archive`` (no change to the repository)."""
    tar = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", PINNED_COMMIT, "src"], capture_output=True)
    if tar.returncode != 0:
        raise SystemExit(f"git archive {PINNED_COMMIT[:7]} failed (a shallow clone?): {tar.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(dest, filter="data")
    return dest / "src"


def mfe(src: Path, args: list[str], cwd: Path, log: Path) -> float:
    """``mfe ARGS`` with the package under ``src`` (one CPU thread); seconds taken. Output goes to ``log``."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.time()
    with open(log, "a") as f:
        f.write(f"\n$ PYTHONPATH={src} mfe {' '.join(args)}\n")
        f.flush()
        code = subprocess.run([sys.executable, "-m", "mouse_facial_expressions", *args], cwd=cwd, env=env, stdout=f,
                              stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RuntimeError(f"mfe {' '.join(args)} (PYTHONPATH={src}) failed with exit code {code}: see {log}")
    return time.time() - t0


def check_package(src: Path) -> None:
    """Fail unless ``PYTHONPATH=src`` imports the package from ``src`` (not an installed copy)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    found = subprocess.run([sys.executable, "-c", "import mouse_facial_expressions as m; print(m.__file__)"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"PYTHONPATH={src} imports {found}, not the package under {src}")


def make_project(src: Path, project: Path, smoke: bool, log: Path) -> None:
    """The cohort and its task (module docstring), made with the package under ``src``."""
    mice = [] if smoke else ["--mice", "8"]
    mfe(src, ["synth", str(project), "--preset", "tiny", "--synth-seed", "3", "--raters", "3", *mice], project.parent, log)
    for step in (["prepare"], ["keypoints", "import"], ["behaviour", "import"], ["extract"],
                 ["ratings", "import", "ratings/synthetic_raters.csv"],
                 ["task", "make", "--preset", "task1", "--au-ratings", "ratings/synthetic_raters.parquet"]):
        mfe(src, step, project, log)


def train(src: Path, project: Path, config: str, smoke: bool, log: Path) -> tuple[Path, float]:
    """Train ``config`` in ``project`` with the package under ``src``; (run folder, seconds)."""
    seconds = mfe(src, ["train", *TINY, *(SMOKE if smoke else []), *CONFIGS[config], "--run-name", run_name(config)],
                  project, log)
    return project / "models" / "runs" / run_name(config), seconds


def run_name(config: str) -> str:
    return "same-" + config.replace(",", "-").replace("+", "-")


def history(run: Path) -> pd.DataFrame:
    """Fold 0's per-epoch history (``fold.json``): one row per epoch; train/val loss and accuracy,
    and ``--weak em``'s E-step statistics (``weak_*``)."""
    hist = json.loads((run / "fold0" / "fold.json").read_text())["history"]
    return pd.DataFrame.from_dict(hist, orient="index").sort_index()


def max_diff(a: pd.DataFrame, b: pd.DataFrame, columns) -> float | None:
    """Largest |a - b| over ``columns`` (None: nothing to compare; inf: shapes or NaN positions differ)."""
    cols = [c for c in columns if c in a.columns or c in b.columns]
    if not cols:
        return None
    if a.shape[0] != b.shape[0] or any(c not in a.columns or c not in b.columns for c in cols):
        return float("inf")
    x, y = a[cols].to_numpy(float), b[cols].to_numpy(float)
    if not np.array_equal(np.isnan(x), np.isnan(y)):
        return float("inf")
    both = ~np.isnan(x)
    return float(np.max(np.abs(x[both] - y[both]), initial=0.0))


def compare(old: Path, new: Path) -> dict:
    """History and prediction differences of two runs of the same configuration."""
    h_old, h_new = history(old), history(new)
    fields = sorted(set(h_old.columns) | set(h_new.columns))
    p_old, p_new = pd.read_csv(old / "predictions.csv"), pd.read_csv(new / "predictions.csv")
    key = ["video", "start_time"]
    same_rows = len(p_old) == len(p_new) and p_old[key].equals(p_new[key])
    au_cols = [c for c in p_old.columns if c.startswith("au_") or c == "mgs"]
    return {
        "epochs": len(h_old),
        "history": max_diff(h_old, h_new, fields) if list(h_old.index) == list(h_new.index) else float("inf"),
        "history_fields": fields,
        "windows": len(p_old),
        "p1": max_diff(p_old, p_new, ["p1"]) if same_rows else float("inf"),
        "au": (max_diff(p_old, p_new, au_cols) if same_rows else float("inf")) if au_cols else None,
    }


def verdict(d: float | None) -> str:
    if d is None:
        return "-"
    return "identical" if d == 0 else f"DIFFERS (max |d| {d:.3g})"


#: Timed in each package (``--speed``): training steps and scoring of the advanced model, as both versions
#: expose them (``ClipClassifier._step``, ``FoldEnsemble.predict``); prints frames/s of each.
SPEED_SCRIPT = """
import time, warnings, torch
from mouse_facial_expressions.training.module import ClipClassifier
from mouse_facial_expressions.inference.ensemble import FoldEnsemble
warnings.simplefilter("ignore"); torch.set_num_threads(2); torch.manual_seed(0)
S, T, B = {size}, 10, 8
cfg = dict(backbone="resnet18", pretrained="none", in_channels=3, num_frames=T, d_model=512, num_layers=4, num_heads=8,
           ff_dim=2048, pos_init_std=0.02, head_activation="gelu", head_dropout=None)
m = ClipClassifier("advanced", cfg, data={{"in_channels": 3}})
opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
batch = {{"clip": torch.randn(B, T, 3, S, S), "soft": torch.tensor([[1., 0.], [0., 1.]] * (B // 2)), "label": torch.tensor([0, 1] * (B // 2))}}
def step():
    loss = m._step(dict(batch), "train"); opt.zero_grad(); loss.backward(); opt.step()
step(); t = time.perf_counter()
for _ in range({steps}): step()
train = {steps} * B * T / (time.perf_counter() - t)
m.eval(); hp = {{"model_name": "advanced", "model_cfg": cfg, "data": {{"num_frames": T, "in_channels": 3, "image_size": S}}}}
ens = FoldEnsemble([m.model], [hp], ["x"]); x = torch.randn(32, T, 3, S, S); ens.predict(x); t = time.perf_counter()
for _ in range({batches}): ens.predict(x)
print(train, {batches} * 32 * T / (time.perf_counter() - t))
"""


def speed(old_src: Path, new_src: Path, pairs: int, smoke: bool) -> None:
    """Training and scoring frames/s of each package, alternated ``pairs`` times; the ratios new/old."""
    code = SPEED_SCRIPT.format(size=32 if smoke else 112, steps=1 if smoke else 6, batches=1 if smoke else 4)
    ratios = []
    for _ in range(pairs):
        rates = {}
        for side, src in (("old", old_src), ("new", new_src)):
            out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(src)},
                                 capture_output=True, text=True, check=True).stdout.split()
            rates[side] = [float(v) for v in out[-2:]]
        ratios.append([n / o for n, o in zip(rates["new"], rates["old"])])
        print(f"speed: old train {rates['old'][0]:.1f}, score {rates['old'][1]:.1f} frames/s; new train "
              f"{rates['new'][0]:.1f}, score {rates['new'][1]:.1f} frames/s", flush=True)
    r = np.asarray(ratios)
    print(f"speed new/old over {pairs} pairs: training median {np.median(r[:, 0]):.2f} ({r[:, 0].min():.2f} to "
          f"{r[:, 0].max():.2f}), scoring median {np.median(r[:, 1]):.2f} ({r[:, 1].min():.2f} to {r[:, 1].max():.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="the plain configuration only, smallest settings (~1 min)")
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), metavar="NAME",
                    help=f"configurations to train (default: all: {', '.join(CONFIGS)})")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="work in this folder and keep it (projects, runs, mfe.log)")
    ap.add_argument("--against", type=Path, default=REPO / "src", metavar="SRC",
                    help="the package folder to compare with the pinned commit (default: the working tree's src)")
    ap.add_argument("--speed", type=int, default=0, metavar="PAIRS",
                    help="instead of training: time training steps and scoring in both packages, alternated PAIRS times "
                         "(advanced resnet18 at 112 px, fp32, 2 threads)")
    a = ap.parse_args()
    configs = ["plain"] if a.smoke else (a.configs or list(CONFIGS))
    work = a.keep.resolve() if a.keep else Path(tempfile.mkdtemp(prefix="bench_same_training-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "mfe.log"
    try:
        for stale in ("pinned", "data", "old", "new"):  # a kept folder from an earlier call: start over
            shutil.rmtree(work / stale, ignore_errors=True)
        old_src, new_src = pinned_src(work / "pinned"), a.against.resolve()
        check_package(old_src)
        check_package(new_src)
        print(f"pinned {PINNED_COMMIT[:7]} ({old_src}) against {new_src}; log: {log}", flush=True)
        if a.speed:
            speed(old_src, new_src, a.speed, a.smoke)
            return
        t0 = time.time()
        (work / "data").mkdir()
        make_project(old_src, work / "data" / "project", a.smoke, log)
        print(f"task made with the pinned package in {time.time() - t0:.0f} s", flush=True)
        for side in ("old", "new"):
            shutil.copytree(work / "data" / "project", work / side / "project")
        rows = []
        for config in configs:
            old_run, s_old = train(old_src, work / "old" / "project", config, a.smoke, log)
            new_run, s_new = train(new_src, work / "new" / "project", config, a.smoke, log)
            d = compare(old_run, new_run)
            rows.append((config, d))
            print(f"{config:15s} old {s_old:5.1f} s, new {s_new:5.1f} s | history ({d['epochs']} epoch(s): "
                  f"{', '.join(d['history_fields'])}): {verdict(d['history'])} | p1 of {d['windows']} test windows: "
                  f"{verdict(d['p1'])} | AU scores: {verdict(d['au'])}", flush=True)
        same = [c for c, d in rows if all(v in (0, None) for v in (d["history"], d["p1"], d["au"]))]
        print(f"\n{len(same)} of {len(rows)} configurations trained identically"
              + (f"; differing: {', '.join(c for c, _ in rows if c not in same)}" if len(same) < len(rows) else ""))
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
