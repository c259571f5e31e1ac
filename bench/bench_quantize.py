"""What the onnx backend and int8 quantization change in the scores of a trained model (prints numbers).

Scores the processed videos of a cohort the model was NOT trained on (e.g. another ``--seed`` of
``mfe synth --preset demo`` taken through prepare, keypoints import and extract) with
``mfe predict --backend torch``, ``--backend onnx`` and ``--backend onnx --quantize int8``, in one
run, and prints per pair: the largest and mean absolute window ``p1`` difference, the number of
videos whose call (mean ``p1`` >= 0.5) changes, and each backend's wall time (model + decode,
one after the other on the same videos).

    .venv/bin/python bench/bench_quantize.py RUN_DIR COHORT_PROJECT [--videos N] [--threads K]
    .venv/bin/python bench/bench_quantize.py RUN_DIR COHORT_PROJECT --smoke    # one video, one thread
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd

from mouse_facial_expressions.config import load_config
from mouse_facial_expressions.inference.predict import predict_videos

CONFIGS = {"torch": {"backend": "torch"}, "onnx fp32": {"backend": "onnx"},
           "onnx int8": {"backend": "onnx", "quantize": "int8"}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a trained run folder (models/runs/<run>)")
    ap.add_argument("project", type=Path, help="a held-out cohort's project folder (processed videos + canonical keypoints)")
    ap.add_argument("--videos", type=int, default=0, help="score only the first N videos (0: all)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: one video, one thread")
    args = ap.parse_args(argv)
    if args.smoke:
        args.videos, args.threads = 1, 1
    logging.getLogger("mouse_facial_expressions").setLevel(logging.ERROR)
    cfg = load_config(args.project)
    videos = sorted(cfg.path("processed_videos").glob("*.mp4"))
    videos = videos[: args.videos] if args.videos else videos
    scores, calls, wall = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in CONFIGS.items():
            predict_videos(videos[:1], cfg.path("keypoints"), args.run, Path(tmp) / "warm", cfg=cfg, progress=False,
                           threads=args.threads, **kw)  # export (cached in the run) and warm-up
            out = Path(tmp) / name.replace(" ", "-")
            t0 = time.perf_counter()
            rep = predict_videos(videos, cfg.path("keypoints"), args.run, out, cfg=cfg, progress=False,
                                 threads=args.threads, **kw)
            wall[name] = time.perf_counter() - t0
            assert rep.ok, rep.summary()
            scores[name] = pd.concat([pd.read_csv(out / f"{v.stem}_scores.csv") for v in videos], ignore_index=True)
            calls[name] = scores[name].groupby("video")["p1"].mean() >= 0.5
    n_win = len(scores["torch"])
    print(f"{len(videos)} videos of {args.project} ({n_win} windows), run {args.run.name}")
    for a, b in (("torch", "onnx fp32"), ("onnx fp32", "onnx int8"), ("torch", "onnx int8")):
        d = (scores[a]["p1"] - scores[b]["p1"]).abs()
        changed = int((calls[a] != calls[b]).sum())
        print(f"{a:>9} vs {b:<9}: window |dp1| max {d.max():.2e}, mean {d.mean():.2e}; video calls changed {changed} "
              f"of {len(calls[a])}")
    print("wall (decode + model, s): " + ", ".join(f"{k} {v:.1f}" for k, v in wall.items())
          + f"; onnx fp32 / torch speed {wall['torch'] / wall['onnx fp32']:.2f}x, "
            f"int8 / fp32 {wall['onnx fp32'] / wall['onnx int8']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
