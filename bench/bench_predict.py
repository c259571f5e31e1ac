"""Benchmark `mfe predict` on this CPU: model inference vs decode-only speed (prints numbers).

In one run, on one synthetic 640x480 video with a moving face and keypoints on every frame:
  (a) decode only: a sequential grey decode of every frame (``io.video.iter_frames``);
  (b) decode + align + crop (``evaluation.predict.crop_video``: the extraction code path) at
      crop side 112 and 224, every frame kept (target_fps = the video's fps);
  (c) scoring (``evaluation.predict.score_windows``: ``to_model_input`` + the model) of
      windows of the ``advanced`` model (num_frames 10, frame_stride 2, the seed's Transformer:
      d_model 512, 4 layers) at 112 and 224 px, resnet18 and resnet34 backbones, fp32 and,
      where the CPU supports it natively, bf16 autocast. Untrained weights: speed only.

Printed per configuration: model frames/s (frames through the CNN per second), the ratio to
decode-only frames/s, and the end-to-end rate of `mfe predict` at the default window step
(non-overlapping windows: one window of 10 frames per 19 kept frames) in video frames/s,
with decode + crop + scoring counted.

Usage: python bench/bench_predict.py [--frames N] [--windows W] [--threads K]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import torch

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.inference.ensemble import FoldEnsemble
from mouse_facial_expressions.inference.predict import score_windows, windows_for
from mouse_facial_expressions.io.video import iter_frames
from mouse_facial_expressions.preprocess.extract import crop_video
from mouse_facial_expressions.models import create_model
from mouse_facial_expressions.training.module import cpu_supports_bf16
from synthetic_video import FPS, H, W, synthetic_video  # noqa: E402  (bench/ is on the path when run as a script)



def settings(out_size: int, image_size: int) -> dict:
    ex = Config().extract
    return dict(out_size=out_size, crop_size=2 * out_size, policy="temporal", target_fps=FPS, every_k=1,
                n_sharpest=10**9, min_sharpness=0.0, min_likelihood=0.0, max_gap_s=0.5, pcutoff=0.6,
                max_count_mismatch=ex.max_count_mismatch, window_max_gap_s=0.5, short_runs="resample",
                num_frames=10, frame_stride=2, image_size=image_size, channels=3)


def ensemble(backbone: str, image_size: int, dtype: torch.dtype) -> FoldEnsemble:
    torch.manual_seed(0)
    model = create_model("advanced", backbone=backbone, pretrained="none", num_frames=10).eval()
    hp = {"model_name": "advanced", "model_cfg": {}, "data": {"num_frames": 10, "frame_stride": 2,
                                                              "image_size": image_size, "in_channels": 3}}
    return FoldEnsemble([model], [hp], ["bench"], dtype=dtype)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=600, help="video length in frames (30 fps)")
    ap.add_argument("--windows", type=int, default=8, help="windows scored per configuration (after one warm-up batch)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.mp4"
        kp = synthetic_video(video, args.frames)

        t0 = time.perf_counter()
        n = sum(1 for _ in iter_frames(video))
        decode_fps = n / (time.perf_counter() - t0)
        print(f"threads {args.threads}, bf16 native: {cpu_supports_bf16()}, video {W}x{H} {n} frames")
        print(f"(a) decode only: {decode_fps:8.1f} frames/s")

        crops = {}
        for size in (112, 224):
            t0 = time.perf_counter()
            c, frames, _ = crop_video(video, kp, settings(size, size), "bench")
            dt = time.perf_counter() - t0
            crops[size] = (c, frames, dt)
            print(f"(b) decode + crop to {size}: {n / dt:8.1f} frames/s ({len(c)} crops; {n / dt / decode_fps:.2f} x decode)")

        dtypes = [("fp32", torch.float32)] + ([("bf16", torch.bfloat16)] if cpu_supports_bf16() else [])
        print(f"(c) scoring, advanced model, {args.windows} windows x 10 frames, batch {args.batch_size}")
        print(f"{'px':>4} {'backbone':>9} {'prec':>5} {'model fr/s':>11} {'/decode':>8} {'predict video fr/s':>19} {'/decode':>8}")
        for size in (112, 224):
            c, frames, crop_s = crops[size]
            s = settings(size, size)
            all_w = windows_for(frames, s)  # default step: the window span
            dense = windows_for(frames, s, window_step=1).iloc[: args.windows]
            for backbone in ("resnet18", "resnet34"):
                for name, dtype in dtypes:
                    ens = ensemble(backbone, size, dtype)
                    score_windows(c, dense.iloc[: args.batch_size], ens, args.batch_size)  # warm-up
                    t0 = time.perf_counter()
                    score_windows(c, dense, ens, args.batch_size)
                    per_window = (time.perf_counter() - t0) / len(dense)
                    model_fps = 10 / per_window
                    # end to end at the default step: decode + crop once, then every window of the video
                    total = crop_s + per_window * len(all_w)
                    video_fps = n / total
                    print(f"{size:>4} {backbone:>9} {name:>5} {model_fps:11.1f} {model_fps / decode_fps:8.3f} "
                          f"{video_fps:19.1f} {video_fps / decode_fps:8.3f}")


if __name__ == "__main__":
    main()
