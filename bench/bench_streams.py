"""Many videos at once: decode-only, model-only and end-to-end `mfe predict --decode-workers N` rates.

In one run, on M copies of a synthetic 30 fps video (640x480, a moving face, keypoints on
every frame), with the model `mfe predict` would use (the `advanced` model, resnet18 at
``--image_size``, untrained weights: speed only), frames kept at ``--target_fps``:

  (a) decode only (``io.video.iter_frames``), in 1 process and in N processes at once;
  (b) the model alone, on clips already in memory (video frames/s it can take at the kept rate);
  (c) end to end: ``inference.predict.predict_videos`` with ``workers=0`` and ``workers=N``;
  (d) the ratios (c)/(a, N processes) and (c, N)/(c, 0), and the 30 fps streams held in real time.

Prints the machine it ran on. Usage:
    .venv/bin/python bench/bench_streams.py [--copies M] [--workers N] [--frames F] [--device auto]
    .venv/bin/python bench/bench_streams.py --smoke    # one 3 s video at 32 px, no decode processes
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_video import synthetic_video  # noqa: E402  (torch-free: decode workers re-import this file)

from mouse_facial_expressions.config import Config  # noqa: E402
from mouse_facial_expressions.io.video import iter_frames  # noqa: E402


def _decode(path: str) -> int:
    return sum(1 for _ in iter_frames(path))


def decode_rate(paths: list[Path], procs: int) -> float:
    """Video frames decoded per second with ``procs`` processes over ``paths``."""
    if procs <= 1:
        t0 = time.perf_counter()
        n = sum(_decode(str(p)) for p in paths)
        return n / (time.perf_counter() - t0)
    with ProcessPoolExecutor(procs, mp_context=get_context("spawn")) as pool:
        list(pool.map(_started, range(procs)))  # processes started and imported before the clock
        t0 = time.perf_counter()
        n = sum(pool.map(_decode, [str(p) for p in paths]))
        return n / (time.perf_counter() - t0)


def _started(_: int) -> int:
    import av  # noqa: F401  (what _decode needs, loaded before timing)

    return os.getpid()


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=4, help="videos (copies of one synthetic video)")
    ap.add_argument("--workers", type=int, default=2, help="decode processes (N)")
    ap.add_argument("--frames", type=int, default=900, help="frames per video (30 fps)")
    ap.add_argument("--image_size", type=int, default=112)
    ap.add_argument("--target_fps", type=float, default=7.5, help="kept frames per second of video")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: one 3 s video at 32 px, no decode processes, "
                    "2 windows timed in (b)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.copies, args.workers, args.frames, args.image_size = 1, 0, 90, 32

    import torch
    from bench_predict import ensemble

    from mouse_facial_expressions.inference.decode import Job, decoded_videos
    from mouse_facial_expressions.inference.predict import predict_videos, resolve_device
    from mouse_facial_expressions.inference.streams import WindowScorer

    dev, dtype, line = resolve_device(args.device)
    print(f"machine: {machine()}\n{line}")
    tmp = Path(tempfile.mkdtemp(prefix="mfe-bench-streams-"))
    try:
        kp = synthetic_video(tmp / "v0.mp4", args.frames)
        kpdir = tmp / "kp"
        kpdir.mkdir()
        videos = tmp / "videos"
        videos.mkdir()
        for i in range(args.copies):
            shutil.copy(tmp / "v0.mp4", videos / f"cam{i}.mp4")
            kp.to_parquet(kpdir / f"cam{i}.parquet")
        paths = sorted(videos.glob("*.mp4"))
        n_frames = args.frames * args.copies
        print(f"{args.copies} videos x {args.frames} frames (30 fps, 640x480), kept at {args.target_fps:g} fps, "
              f"resnet18 advanced at {args.image_size} px")

        dec1 = decode_rate(paths, 1)
        decN = decode_rate(paths, args.workers)
        print(f"(a) decode only: 1 process {dec1:8.0f} frames/s; {args.workers} processes {decN:8.0f} frames/s")

        cfg = Config()
        cfg.extract.target_fps = args.target_fps
        cfg.extract.out_size, cfg.extract.crop_size = args.image_size, 2 * args.image_size
        cfg.extract.min_sharpness = 0.0
        ens = ensemble("resnet18", args.image_size, dtype).to(dev)
        ens.dtype = dtype
        from mouse_facial_expressions.inference.predict import model_settings

        s = model_settings(ens, cfg)
        (dec,) = list(decoded_videos([Job(paths[0], kpdir / "cam0.parquet")], s, cfg, 0))
        from mouse_facial_expressions.inference.predict import windows_for

        win = windows_for(dec.frames, s)
        scorer = WindowScorer(ens, 16 if dev.type == "cpu" else 256)
        scorer.add("warm", dec.crops, win.iloc[:16])
        scorer.run(final=True)
        t0 = time.perf_counter()
        timed = 2 if args.smoke else 64 if dev.type == "cpu" else 4096  # windows timed: a GPU needs many batches
        reps = max(1, timed // max(1, len(win)))
        for r in range(reps):
            scorer.add(r, dec.crops, win)
            scorer.run(final=True)
        dt = time.perf_counter() - t0
        model_frames = scorer.frames_scored - min(16, len(win)) * s["num_frames"]
        model_fps = model_frames / dt  # frames through the CNN per second
        kept_per_video_frame = len(dec.frames) / args.frames
        windows_per_kept = len(win) * s["num_frames"] / max(1, len(dec.frames))
        model_video_fps = model_fps / max(1e-9, kept_per_video_frame * windows_per_kept)
        print(f"(b) model only: {model_fps:8.0f} frames/s through the CNN = {model_video_fps:8.0f} video frames/s "
              f"at the kept rate ({len(dec.frames)} of {args.frames} frames kept, {len(win)} windows)")

        e2e = {}
        for w in dict.fromkeys((0, args.workers)):
            out = tmp / f"out{w}"
            rep = predict_videos(paths, kpdir, ens, out, cfg=cfg, progress=False, workers=w, device=str(dev),
                                 precision="bf16" if dtype == torch.bfloat16 else "32")
            assert rep.ok, rep.summary()
            e2e[w] = n_frames / rep.wall_s
            print(f"(c) end to end, --workers {w}: {e2e[w]:8.0f} video frames/s ({rep.wall_s:.1f} s for {n_frames} frames)")
        N = args.workers
        print(f"(d) end to end / decode-only with {N} processes: {e2e[N] / decN:.2f}; --workers {N} / --workers 0: "
              f"{e2e[N] / e2e[0]:.2f}x; 30 fps streams in real time: {e2e[N] / 30:.1f} (--workers {N}), "
              f"{e2e[0] / 30:.1f} (--workers 0)")
        bound = "decode" if decN < model_video_fps else "the model"
        print(f"    the slower stage here is {bound}: decode {decN:.0f} vs model {model_video_fps:.0f} video frames/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
