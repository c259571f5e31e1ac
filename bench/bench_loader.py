"""Loader benchmark: clips/s from the memory-mapped frame store vs the same windows from PNGs.

Writes a synthetic frame store (smooth grey face-like crops with noise, in the real store
format, with the PNG copies ``<video>/frameNNNNN.png`` that ``--format png`` writes) to a
temporary folder, then reads the same windows twice, in the same run, with the same
DataLoader settings:

- store: :class:`ClipDataset` (``np.load(mmap_mode="r")`` + fancy indexing);
- png:   PIL ``Image.open(...).convert("L")`` per frame (the original code's path),
         followed by the same resize/normalisation.

Prints clips/s, frames/s and the ratio. Targets (issue 4): ratio >= 3, store >= 200 frames/s
at 112 px.

    python bench/bench_loader.py [--clips 240] [--workers 2] [--size 112] [--image-size 112]
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
from mouse_facial_expressions.data.augment import to_model_input
from mouse_facial_expressions.data.datasets import ClipDataset
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

    def __init__(self, frames_dir: Path, windows: pd.DataFrame, frame_of: dict, image_size: int, channels: int = 3):
        self.frames_dir, self.windows, self.frame_of = frames_dir, windows, frame_of
        self.image_size, self.channels = image_size, channels

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
        return {"clip": to_model_input(frames, self.image_size, self.channels), "label": int(w["label"])}


def timed(ds, workers: int, batch: int) -> float:
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, shuffle=False)
    t0 = time.perf_counter()
    n = 0
    for b in loader:
        n += len(b["clip"])
    return n / (time.perf_counter() - t0)


def main() -> None:
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
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2, help="alternate store/png this many times; best of each")
    args = ap.parse_args()
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
        store_ds = ClipDataset(frames_dir, w, args.image_size, channels=args.channels)
        png_ds = PngClips(frames_dir, w, frame_of, args.image_size, channels=args.channels)
        assert torch.allclose(store_ds[0]["clip"], png_ds[0]["clip"]), "the two paths must read the same pixels"
        t = args.num_frames
        print(f"windows: {len(w)} x {t} frames, stored {args.size} px -> model {args.image_size} px, "
              f"{args.channels} channel(s) float32, batch {args.batch}, best of {args.repeats}")
        for workers in (args.workers, 0):
            best_store = best_png = 0.0
            for _ in range(args.repeats):
                best_store = max(best_store, timed(store_ds, workers, args.batch))
                best_png = max(best_png, timed(png_ds, workers, args.batch))
            print(f"--- DataLoader num_workers={workers}")
            print(f"frame store (memmap): {best_store:8.1f} clips/s  {best_store * t:8.0f} frames/s")
            print(f"PNG files (PIL):      {best_png:8.1f} clips/s  {best_png * t:8.0f} frames/s")
            print(f"ratio store/png:      {best_store / best_png:8.2f}x  (target >= 3x)")
            print(f"store frames/s at {args.image_size} px: {best_store * t:.0f} (target > 200)")


if __name__ == "__main__":
    main()
