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

(d) backends (``mfe predict --backend``), resnet18 at 112 px: torch fp32, onnxruntime fp32 and
    onnxruntime int8, each with 1 and 2 threads, in one run on the same videos: the model alone
    (frames/s) and ``predict_videos`` end to end (video frames/s and x real time) at the default
    settings (target_fps 10, non-overlapping windows) with ``--workers 0`` and ``2`` (``--smoke``: 0), and with
    every frame kept (target_fps = the video's fps).

(e) ``--static-int8``: the model alone (resnet18 at 112 px, 2 threads, batches 4, 16 and 48) in
    torch fp32, onnxruntime fp32, dynamic int8 (``--quantize int8``) and static int8 (QDQ,
    per-channel weights, activations calibrated on random clips: speed only, not scores), to
    see whether calibrated int8 kernels pay on this CPU where dynamic int8 does not.

Usage: python bench/bench_predict.py [--frames N] [--windows W] [--threads K] [--only-backends] [--static-int8]
       python bench/bench_predict.py --smoke     # (a)-(d) at 32 px, resnet18 only, 30 frames, a 2 s video, 1 thread
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
    model = create_model("advanced", backbone=backbone, pretrained="none", num_frames=10,
                         parts={"face": {}, "class": {}}).eval()  # a trained model: the face and its class head
    hp = {"model_name": "advanced", "model_cfg": {}, "data": {"num_frames": 10, "frame_stride": 2,
                                                              "image_size": image_size, "in_channels": 3}}
    return FoldEnsemble([model], [hp], ["bench"], dtype=dtype)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=600, help="video length in frames (30 fps)")
    ap.add_argument("--windows", type=int, default=8, help="windows scored per configuration (after one warm-up batch)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--only-backends", action="store_true", help="run only (d)")
    ap.add_argument("--videos", type=int, default=2, help="(d): copies of the video scored per predict call")
    ap.add_argument("--seconds", type=float, default=30.0, help="(d): video length in seconds")
    ap.add_argument("--static-int8", action="store_true", help="run only (e)")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: (a)-(d) at 32 px, resnet18, "
                    "30 frames, 2 windows, one 2 s video, 1 thread, no decode processes")
    args = ap.parse_args(argv)
    args.sizes, args.backbones, args.backend_size, args.backend_threads = (112, 224), ("resnet18", "resnet34"), 112, (1, 2)
    args.backend_workers = 2
    if args.smoke:  # no decode processes: their start-up would be most of the run
        args.sizes, args.backbones, args.backend_size, args.backend_threads = (32,), ("resnet18",), 32, (1,)
        args.backend_workers = 0
        args.frames, args.windows, args.batch_size, args.videos, args.seconds = 30, 2, 2, 1, 2.0
    if args.static_int8:
        static_int8()
        return 0
    if args.only_backends:
        backends(args)
        return 0
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
        for size in args.sizes:
            t0 = time.perf_counter()
            c, frames, _ = crop_video(video, kp, settings(size, size), "bench")
            dt = time.perf_counter() - t0
            crops[size] = (c, frames, dt)
            print(f"(b) decode + crop to {size}: {n / dt:8.1f} frames/s ({len(c)} crops; {n / dt / decode_fps:.2f} x decode)")

        dtypes = [("fp32", torch.float32)] + ([("bf16", torch.bfloat16)] if cpu_supports_bf16() else [])
        print(f"(c) scoring, advanced model, {args.windows} windows x 10 frames, batch {args.batch_size}")
        print(f"{'px':>4} {'backbone':>9} {'prec':>5} {'model fr/s':>11} {'/decode':>8} {'predict video fr/s':>19} {'/decode':>8}")
        for size in args.sizes:
            c, frames, crop_s = crops[size]
            s = settings(size, size)
            all_w = windows_for(frames, s)  # default step: the window span
            dense = windows_for(frames, s, window_step=1).iloc[: args.windows]
            for backbone in args.backbones:
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


    backends(args)
    return 0


def backends(args) -> None:
    """(d): torch vs onnxruntime fp32 vs int8, model alone and end to end."""
    import logging
    import shutil

    from mouse_facial_expressions.inference.onnx_backend import OnnxEnsemble, quantize_int8
    from mouse_facial_expressions.inference.export import export_onnx
    from mouse_facial_expressions.inference.predict import predict_videos

    logging.getLogger("mouse_facial_expressions").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = int(args.seconds * FPS)
        kp = synthetic_video(tmp / "v0.mp4", n)
        for k in range(1, args.videos):
            shutil.copy(tmp / "v0.mp4", tmp / f"v{k}.mp4")
        (tmp / "kp").mkdir()
        for k in range(args.videos):
            kp.to_parquet(tmp / "kp" / f"v{k}.parquet")
        videos = sorted(tmp.glob("v*.mp4"))
        size = args.backend_size
        torch_ens = ensemble("resnet18", size, torch.float32)
        fp32 = export_onnx(torch_ens, tmp / "m.onnx")
        int8 = quantize_int8(fp32, tmp / "m-int8.onnx")
        x = torch.randn(args.batch_size, 10, 3, size, size)
        video_s = args.videos * n / FPS
        print(f"(d) backends, resnet18 {size} px advanced, batch {args.batch_size}; {args.videos} videos x {args.seconds:g} s "
              f"({W}x{H}, {FPS:g} fps); rates in one run, same videos")
        print(f"{'backend':>10} {'thr':>3} {'model fr/s':>10} {'/torch':>6} | {'default w0: vid fr/s':>20} {'x real':>6} "
              f"| {f'w{args.backend_workers}: vid fr/s':>12} {'x real':>6} | {'every frame: vid fr/s':>21} {'x real':>6}")
        base = {}
        for threads in args.backend_threads:
            torch.set_num_threads(threads)
            for name in ("torch", "onnx fp32", "onnx int8"):
                ens = torch_ens if name == "torch" else OnnxEnsemble(torch_ens, fp32 if name == "onnx fp32" else int8, threads)
                ens.predict(x)  # warm-up
                t0 = time.perf_counter()
                for _ in range(max(1, args.windows // args.batch_size)):
                    ens.predict(x)
                model_fps = max(1, args.windows // args.batch_size) * args.batch_size * 10 / (time.perf_counter() - t0)
                base.setdefault(threads, model_fps)
                row = [f"{name:>10} {threads:>3} {model_fps:10.1f} {model_fps / base[threads]:6.2f}"]
                for column, (workers, every) in enumerate(((0, False), (args.backend_workers, False), (0, True))):
                    cfg = Config()
                    if every:
                        cfg.extract.target_fps = FPS
                    out = tmp / f"out-{name}-{threads}-{workers}-{every}".replace(" ", "")
                    t0 = time.perf_counter()
                    rep = predict_videos(videos, tmp / "kp", ens, out, cfg=cfg, progress=False, workers=workers,
                                         backend="torch", threads=threads)
                    wall = time.perf_counter() - t0
                    assert rep.ok, rep.summary()
                    row.append(f"{args.videos * n / wall:{(20, 12, 21)[column]}.1f} "
                               f"{video_s / wall:6.1f}")
                print(" | ".join(row))


def static_int8(threads: int = 2, repeats: int = 4) -> None:
    """(e): torch fp32, onnx fp32, dynamic int8 and static (calibrated) int8, model alone."""
    import logging

    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from mouse_facial_expressions.inference.export import export_onnx
    from mouse_facial_expressions.inference.onnx_backend import quantize_int8

    class RandomClips(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.it = iter([{"clip": rng.standard_normal((4, 10, 3, 112, 112)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.it, None)

    torch.set_num_threads(threads)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's per-tensor notes
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ens = ensemble("resnet18", 112, torch.float32)
        files = {"onnx fp32": export_onnx(ens, tmp / "m.onnx")}
        files["onnx int8 dynamic"] = quantize_int8(files["onnx fp32"], tmp / "dyn.onnx")
        quant_pre_process(str(files["onnx fp32"]), str(tmp / "pre.onnx"), skip_symbolic_shape=True)
        quantize_static(str(tmp / "pre.onnx"), str(tmp / "static.onnx"), RandomClips(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        files["onnx int8 static"] = tmp / "static.onnx"
        logging.getLogger().setLevel(level)
        sessions = {}
        for name, f in files.items():
            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
            sessions[name] = ort.InferenceSession(str(f), so, providers=["CPUExecutionProvider"])
        print(f"(e) model alone, resnet18 112 px advanced, {threads} threads, frames/s (ratio to torch fp32)")
        for bs in (4, 16, 48):
            x = torch.randn(bs, 10, 3, 112, 112)
            runs = {"torch fp32": lambda: ens.predict(x)}
            runs.update({k: (lambda s=s: s.run(["p1_members"], {"clip": x.numpy()})) for k, s in sessions.items()})
            rates = {}
            for name, fn in runs.items():
                fn()  # warm-up
                t0 = time.perf_counter()
                for _ in range(repeats):
                    fn()
                rates[name] = repeats * bs * 10 / (time.perf_counter() - t0)
            print(f"batch {bs:>2}: " + ", ".join(f"{k} {v:.1f} ({v / rates['torch fp32']:.2f})" for k, v in rates.items()))


if __name__ == "__main__":
    raise SystemExit(main())
