"""How good are DeepLabCut keypoints on a synthetic cohort? (prints numbers)

Reads a synthetic project (``mfe synth``) after ``mfe keypoints detect``, ``mfe keypoints
import`` (and, optionally, ``mfe extract``), and compares with ``truth/truth.parquet``:

- keypoint error in pixels (mean, median, 90th percentile) per landmark, on the clean side
  portraits of the truth (``visible & ~occluded``: nose, eye and ear of the facing side are in
  view), for the points it measures: the nose and the facing side's eye and ear;
- detection: the share of those points with likelihood > ``keypoints.pcutoff``, and false
  alarms: the share of far-side eyes and ears (never visible) above it;
- side: the side of the face extract would use (``preprocess.geometry.visible_side`` with
  ``keypoints.pcutoff``) against the truth's side, on the clean portraits (right / wrong /
  none), and how often a side that is given is right on all frames;
- the frame store, when there is one: crops kept and the share whose ``side`` is the truth's.

With ``--dlc-project DIR`` the numbers are split into videos that have labelled frames in
DIR/labeled-data (seen in training) and videos that have none (held out).

The run recorded in the closing note of issue 13 (2 shared CPU cores, DeepLabCut 3.0.2,
cspnext_s trained from scratch), from a venv with the [dlc] extra:

    mfe synth /tmp/dlcproof/cohort --preset tiny --mice 8 --dlc-project /tmp/dlcproof/dlc \\
        --dlc-frames 30 --dlc-videos 10
    cd /tmp/dlcproof/cohort && mfe prepare
    OMP_NUM_THREADS=1 python train.py /tmp/dlcproof/dlc/config.yaml 40 128   # 15 min, see below
    OMP_NUM_THREADS=1 mfe keypoints detect --dlc-config /tmp/dlcproof/dlc/config.yaml --device cpu
    mfe keypoints import && mfe extract
    python bench/dlc_proof.py /tmp/dlcproof/cohort --dlc-project /tmp/dlcproof/dlc

where train.py is (no ImageNet download here, so the backbone starts from scratch; one torch
thread, since two threads on a busy 2-core machine were several times slower):

    import sys
    from mouse_facial_expressions.compat import import_torchvision
    import_torchvision()  # the PyPI torchvision beside the CPU torch: before deeplabcut
    import deeplabcut as dlc
    from deeplabcut.pose_estimation_pytorch.models.model import PoseModel
    build = PoseModel.build
    PoseModel.build = staticmethod(lambda cfg, weight_init=None, pretrained_backbone=False:
                                   build(cfg, weight_init, False))
    config, epochs, crop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    dlc.create_training_dataset(config, net_type="cspnext_s", engine=dlc.Engine.PYTORCH, userfeedback=False)
    dlc.train_network(config, epochs=epochs, save_epochs=epochs, batch_size=8, device="cpu", pytorch_cfg_updates={
        "data.train.crop_sampling.width": crop, "data.train.crop_sampling.height": crop,
        "runner.eval_interval": epochs, "train_settings.display_iters": 1000,
        "runner.scheduler.params.milestones": [int(0.7 * epochs), int(0.9 * epochs)]})

Usage: python bench/dlc_proof.py PROJECT [--dlc-project DIR] [--pcutoff P]
       python bench/dlc_proof.py PROJECT --smoke   # PROJECT: the shared smallest cohort (synth.build.SMOKE),
                                                   # built there when missing; its synthetic DLC files
                                                   # stand in for a trained network's
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.config import load_config
from mouse_facial_expressions.io.keypoints import load_canonical
from mouse_facial_expressions.preprocess.geometry import LEFT, NO_SIDE, RIGHT, visible_side
from mouse_facial_expressions.preprocess.store import load_index

POINTS = ("nose", "eye", "ear")  # measured on the facing side


def joined(project: Path) -> pd.DataFrame:
    """Truth rows joined with the canonical keypoints (suffix ``_kp``), one row per frame."""
    cfg = load_config(project)
    truth = pd.read_parquet(project / "truth" / "truth.parquet")
    parts = []
    for video, rows in truth.groupby("video"):
        path = cfg.path("keypoints") / f"{video}.parquet"
        if not path.is_file():
            print(f"  (no keypoints for {video}: skipped)")
            continue
        kp = load_canonical(path).set_index("frame").add_suffix("_kp")
        parts.append(rows.join(kp, on="frame", how="inner"))
    return pd.concat(parts, ignore_index=True)


def facing(df: pd.DataFrame, point: str, near: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True xy ``(N, 2)``, detected xy ``(N, 2)`` and likelihood ``(N,)`` of a point of the
    facing side (``near``) or of the far side."""
    if point == "nose":
        names = np.full(len(df), "nose")
    else:
        right = df.side.to_numpy() == "right"
        names = np.where(right == near, f"right_{point}", f"left_{point}")

    def pick(suffix: str) -> np.ndarray:  # (N,) the column of each row's landmark
        return np.array([df[f"{n}{suffix}"].iat[i] for i, n in enumerate(names)], dtype=np.float64)

    true = np.stack([pick("_x"), pick("_y")], 1)
    found = np.stack([pick("_x_kp"), pick("_y_kp")], 1)
    return true, found, pick("_likelihood_kp")


def report(df: pd.DataFrame, pcutoff: float, title: str) -> None:
    clean = df[df.visible & ~df.occluded]
    print(f"\n{title}: {df.video.nunique()} videos, {len(df)} frames, {len(clean)} clean side portraits")
    print(f"  {'point':<6} {'mean px':>8} {'median':>7} {'p90':>6} {'detected':>9} {'far side > pcutoff':>19}")
    for point in POINTS:
        true, found, lik = facing(clean, point)
        err = np.linalg.norm(found - true, axis=1)
        far = f"{np.mean(facing(df, point, near=False)[2] > pcutoff):.1%}" if point != "nose" else "-"
        print(f"  {point:<6} {np.nanmean(err):8.2f} {np.nanmedian(err):7.2f} {np.nanpercentile(err, 90):6.2f} "
              f"{np.mean(lik > pcutoff):9.1%} {far:>19}")
    lik = {s: np.stack([df[f"{n}_likelihood_kp"] for n in ("nose", f"{s}_eye", f"{s}_ear")], 1) for s in ("left", "right")}
    side = visible_side(lik["left"], lik["right"], pcutoff)
    truth_side = np.where(df.side.to_numpy() == "right", RIGHT, LEFT)
    portrait = (df.visible & ~df.occluded).to_numpy()
    given = side != NO_SIDE
    print(f"  side on clean portraits: right {np.mean(side[portrait] == truth_side[portrait]):.1%}, "
          f"wrong {np.mean(given[portrait] & (side[portrait] != truth_side[portrait])):.1%}, "
          f"none {np.mean(~given[portrait]):.1%}; a side given is right in "
          f"{np.mean(side[given] == truth_side[given]):.1%} of {given.sum()} frames")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("project", type=Path)
    ap.add_argument("--dlc-project", type=Path, default=None, help="split by videos with / without labelled frames")
    ap.add_argument("--pcutoff", type=float, default=None, help="default: keypoints.pcutoff of the project")
    ap.add_argument("--smoke", action="store_true", help="build the smoke cohort in PROJECT when it holds none")
    args = ap.parse_args(argv)
    if args.smoke and not (args.project / "mfe.yaml").is_file():
        from mouse_facial_expressions.synth.build import SMOKE, build_cohort

        build_cohort(args.project, SMOKE)
    cfg = load_config(args.project)
    pcutoff = cfg.keypoints.pcutoff if args.pcutoff is None else args.pcutoff
    df = joined(args.project)
    print(f"{args.project}: keypoints vs truth, pcutoff {pcutoff}")
    report(df, pcutoff, "all videos")
    if args.dlc_project is not None:
        labelled = {p.name for p in (args.dlc_project / "labeled-data").iterdir() if p.is_dir()}
        report(df[df.video.isin(labelled)], pcutoff, "videos with labelled frames (seen in training)")
        report(df[~df.video.isin(labelled)], pcutoff, "videos without labelled frames (held out)")
    index = load_index(cfg.path("frames")) if cfg.path("frames").is_dir() else pd.DataFrame()
    if len(index):
        truth = pd.read_parquet(args.project / "truth" / "truth.parquet")
        truth["clean"] = truth.visible & ~truth.occluded
        kept = index.merge(truth[["video", "frame", "side", "clean"]], on=["video", "frame"], suffixes=("", "_truth"))
        print(f"\nframe store: {len(index)} crops kept of {len(truth)} frames; "
              f"side = truth's side in {np.mean(kept.side == kept.side_truth):.1%}; "
              f"clean side portraits in the truth: {kept.clean.mean():.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
