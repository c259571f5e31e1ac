"""Loader benchmark: clips/s from the memory-mapped frame store vs the same windows from PNGs.

Writes a synthetic frame store (smooth grey face-like crops with noise, in the real store
format, with the PNG copies ``<video>/frameNNNNN.png`` that ``--format png`` writes) to a
temporary folder, then reads the same windows twice, in the same run, with the same
DataLoader settings:

- store: :class:`ClipDataset` (``np.load(mmap_mode="r")`` + fancy indexing);
- png:   PIL ``Image.open(...).convert("L")`` per frame (the original code's path),
         followed by the same resize/normalisation.

Each path runs in two item formats: ``float32`` (workers normalise and send
``(T, 3, S, S)`` float32 clips) and ``uint8`` (workers send ``(T, 1, S, S)`` uint8 clips and
the main process normalises each batch with ``normalize_clips``, as ``mfe train`` does; the
normalisation is inside the timed loop). The headline ratio compares the store's uint8 path
(what training uses) with the faster of the two PNG variants.

Prints clips/s, frames/s and the ratios. Targets (issue 4): ratio >= 3 with 2 workers,
store >= 200 frames/s at 112 px.

    python bench/bench_loader.py [--clips 240] [--workers 2] [--size 112] [--image-size 112]
    python bench/bench_loader.py --smoke      # 8 clips of one 40-crop video at 32 px, no workers, once
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mouse_facial_expressions.data._store import write_fake_video
from mouse_facial_expressions.data.augment import normalize_clips, prepare_clip
from mouse_facial_expressions.data.datasets import ClipDataset, collate_clips
from mouse_facial_expressions.data.sequences import make_windows


def fake_crops(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, size, size)`` uint8: a blurred blob that drifts, plus sensor noise (PNG-realistic)."""
    import cv2

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((n, size, size), np.uint8)
    base = cv2.GaussianBlur(rng.random((size, size), dtype=np.float32), (0, 0), size / 16)
    for i in range(n):
        cx, cy = 0.5 + 0.1 * np.sin(i / 20), 0.5 + 0.1 * np.cos(i / 27)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05)
        img = 60 + 120 * blob + 300 * (base - base.mean()) + rng.normal(0, 4, (size, size))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


class PngClips(torch.utils.data.Dataset):
    """The same windows read from ``<video>/frameNNNNN.png`` with PIL."""

    def __init__(self, frames_dir: Path, windows: pd.DataFrame, frame_of: dict, image_size: int, channels: int = 3,
                 clip_dtype: str = "float32"):
        self.frames_dir, self.windows, self.frame_of = frames_dir, windows, frame_of
        self.image_size, self.channels, self.clip_dtype = image_size, channels, clip_dtype

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        w = self.windows.iloc[i]
        imgs = []
        for r in w["rows"]:
            path = self.frames_dir / w["video"] / f"frame{self.frame_of[w['video']][r]:05d}.png"
            with Image.open(path) as im:
                imgs.append(np.asarray(im.convert("L")))
        frames = torch.from_numpy(np.stack(imgs))  # (T, S, S) uint8
        clip = prepare_clip(frames, self.image_size)
        if self.clip_dtype == "float32":
            clip = normalize_clips(clip, self.channels)
        return {"clip": clip, "label": int(w["label"])}


def loader(ds, workers: int, batch: int) -> torch.utils.data.DataLoader:
    """As ``mfe train`` builds it (persistent workers, ``collate_clips``), warmed up by one
    full pass, so the timings are the steady state of an epoch, not worker start-up."""
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, shuffle=False,
                                     persistent_workers=workers > 0, collate_fn=collate_clips)
    for _ in dl:
        pass
    return dl


def timed(dl, channels: int, normalise: bool) -> float:
    """Clips/s of one pass; with ``normalise``, uint8 batches are normalised in this process
    (as ``ClipClassifier.on_after_batch_transfer`` does on a CPU)."""
    t0 = time.perf_counter()
    n = 0
    for b in dl:
        clip = normalize_clips(b["clip"], channels) if normalise else b["clip"]  # no-op for float32 items
        n += len(clip)
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--frames", type=int, default=600, help="crops per video")
    ap.add_argument("--size", type=int, default=112, help="stored crop side (px)")
    ap.add_argument("--image-size", type=int, default=112, help="model input side (px)")
    ap.add_argument("--clips", type=int, default=480, help="windows read per path")
    ap.add_argument("--channels", type=int, default=3, choices=(1, 3), help="3 = grey repeated (the default contract)")
    ap.add_argument("--num-frames", type=int, default=10)
    ap.add_argument("--frame-stride", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16, help="advanced's default train_batch_size")
    ap.add_argument("--repeats", type=int, default=2, help="alternate store/png this many times; best of each")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: 8 clips of one 40-crop video at 32 px, "
                    "no workers, once")
    args = ap.parse_args(argv)
    if args.smoke:
        args.videos, args.frames, args.size, args.image_size, args.clips, args.workers, args.repeats = 1, 40, 32, 32, 8, 0, 1
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        frames_dir = Path(tmp) / "frames"
        parts = []
        for v in range(args.videos):
            crops = fake_crops(args.frames, args.size, rng)
            times = np.arange(args.frames) / 10.0
            idx = write_fake_video(frames_dir, f"m{v}_rec1", crops, times, fps=30.0)
            from mouse_facial_expressions.preprocess.store import write_video_frames

            write_video_frames(frames_dir, f"m{v}_rec1", crops, idx, meta={"fps": 30.0}, png=True)
            parts.append(idx)
        index = pd.concat(parts, ignore_index=True).assign(animal=lambda d: d["video"].str[:2], label=0, soft=0.1)
        w = make_windows(index, args.num_frames, args.frame_stride, 0.5)
        w = w.iloc[np.sort(rng.choice(len(w), size=min(args.clips, len(w)), replace=False))].reset_index(drop=True)
        frame_of = {v: g.set_index("row")["frame"].to_dict() for v, g in index.groupby("video")}
        c = args.channels
        ds = {
            ("store", "uint8"): ClipDataset(frames_dir, w, args.image_size, channels=c, clip_dtype="uint8"),
            ("store", "float32"): ClipDataset(frames_dir, w, args.image_size, channels=c),
            ("png", "uint8"): PngClips(frames_dir, w, frame_of, args.image_size, c, "uint8"),
            ("png", "float32"): PngClips(frames_dir, w, frame_of, args.image_size, c),
        }
        ref = ds[("png", "float32")][0]["clip"]
        for d in ds.values():  # every path must deliver the same model input
            assert torch.equal(normalize_clips(d[0]["clip"].unsqueeze(0), c)[0], ref), "paths read different pixels"
        t = args.num_frames
        print(f"windows: {len(w)} x {t} frames, stored {args.size} px -> model {args.image_size} px, "
              f"{c} channel(s), batch {args.batch}, best of {args.repeats}, torch threads 1")
        for workers in dict.fromkeys((args.workers, 0)):
            loaders = {key: loader(d, workers, args.batch) for key, d in ds.items()}
            best = {(key, norm): 0.0 for key in ds for norm in (False, True)}
            for _ in range(args.repeats):  # interleaved, so machine noise hits every path alike
                for key, dl in loaders.items():
                    for norm in (False, True):
                        best[key, norm] = max(best[key, norm], timed(dl, c, norm))
            del loaders
            print(f"--- DataLoader num_workers={workers}: clips/s as delivered | after normalising in the main process")
            for (src, dtype) in ds:
                name = "frame store (memmap)" if src == "store" else "PNG files (PIL)"
                v, vn = best[(src, dtype), False], best[(src, dtype), True]
                print(f"{name:21s} {dtype:7s} items: {v:8.1f} | {vn:8.1f} clips/s   ({vn * t:6.0f} frames/s normalised)")
            for norm, what in ((False, "as delivered"), (True, "normalised")):
                png = max(best[("png", "uint8"), norm], best[("png", "float32"), norm])
                print(f"ratio store uint8 / best PNG, {what:12s}: {best[('store', 'uint8'), norm] / png:6.2f}x  (target >= 3x)")
            print(f"ratio store float32 / PNG float32:          {best[('store', 'float32'), True] / best[('png', 'float32'), True]:6.2f}x")
            print(f"store frames/s at {args.image_size} px, normalised: {best[('store', 'uint8'), True] * t:.0f} (target > 200)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
