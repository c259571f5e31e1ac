"""Real-pixel check of orbital tightening: eyes closed by a known amount, trained on one recording, scored on another.

The head-fixed facemap images (``labeled-data/cam1_G7c1_1`` and ``cam1_G7c1_2``, 30 hand-labelled
frames each) are warped with ``synth.eye_warp.close_eye`` so that the eye closes by a known Mouse
Grimace Scale orbital-tightening level (0 open ... 2 closed by 80 % of the lid gap): real fur,
lighting and camera noise, with a known answer.

1. Contact sheet (``--sheet``): 4 frames (2 per recording) x levels 0, 0.5, 1, 1.5, 2, warped at full
   resolution and cropped around the eye (2.2 eye widths; one contrast stretch per row, from its open
   eye), for a reader to judge whether the warp looks like a squint.
2. Check: the train recording's frames, each warped at ``--levels`` random levels in [0, 2], train
   ``--head au`` (default) the project's orbital-tightening head: ``models/parts/au.py`` on the
   ``advanced`` model (resnet18 from scratch, 1 input channel, a clip of one frame, d_model 128,
   1 Transformer layer; ``--targets au``), trained with the loss ``mfe train --targets au`` uses
   (``masked_ldl_loss``: KL to the level's distribution over the scores {0, 1, 2}, split between
   its two neighbours as ``data.au_targets.score_distribution`` splits a mean rating, only the
   ``ot`` AU masked in), read out as the head's expected score; or ``--head regressor``, a plain
   level regressor (``build_backbone("resnet18", pretrained="none", in_channels=1)`` + a linear
   head, MSE). AdamW from scratch, CPU, fp32, on square eye crops (centred on the midpoint of the eye corners, side
   2.5 eye widths, ``--size`` px, grey; each draw with a random shift, scale, rotation, brightness,
   contrast, gamma and noise). The other recording's frames, warped at levels 0, 0.5, 1, 1.5, 2 and 3
   random ones, are scored without augmentation: Pearson r and RMSE (0-2 scale) between predicted and
   applied level, the mean prediction per level, and the training time. Target: r >= 0.9.

For speed the eye region is cut out, downsampled to twice the model's input resolution (the eye is then
~50 px wide) and warped there; train and test crops go through the same path. A pixel baseline (linear
fit of the level on the fraction of dark pixels in the crop's centre, fitted on the train pool) shows
how much of the answer a trivial image cue gives. (A baseline from the moved lid points would be exact
by construction, a check of the labels only, so none is printed: tests/test_eye_warp.py checks the gap.)

    .venv/bin/python bench/bench_eye_warp.py [--seed 1 2 3] [--head au|regressor] [--steps 80] [--size 64] [--levels 40]
        [--sheet docs/img/eye_warp_sheet.png] [--sheet_only] [--data DIR] [--threads 2]
    .venv/bin/python bench/bench_eye_warp.py --smoke      # 2 steps of 4 crops at 32 px, the committed frames

The AU model's architecture is the ``small`` training preset's (``training/presets.py``).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import cv2
import numpy as np

from mouse_facial_expressions.synth.eye_warp import close_eye, facemap_eyes

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "facemap_headfixed" / "labeled-data"
#: The same recordings' frames committed for the tests (``--smoke``).
DATA_COMMITTED = Path(__file__).resolve().parents[1] / "tests" / "data" / "facemap_headfixed" / "labeled-data"
TRAIN, TEST = "cam1_G7c1_1", "cam1_G7c1_2"
SHEET_LEVELS = (0.0, 0.5, 1.0, 1.5, 2.0)
TEST_LEVELS = (0.0, 0.5, 1.0, 1.5, 2.0)
#: Crop side in eye widths (corner to corner), and the cut-out region around it (room for the augmentation).
CROP_WIDTHS, REGION_WIDTHS = 2.5, 3.8
#: Augmentation: rotation (deg), scale, shift (fraction of the crop side), gain, gamma, offset, noise sd.
ROT, SCALE, SHIFT, GAIN, GAMMA, OFFSET, NOISE = 10.0, 0.1, 0.06, (0.7, 1.4), (0.75, 1.33), 8.0, 4.0


def load(folder: Path) -> list[tuple[str, np.ndarray, dict]]:
    """(name, grey uint8 image, eye points) of every labelled frame of one recording."""
    out = []
    for path, eye in facemap_eyes(folder):
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise FileNotFoundError(f"{path}: cannot read image")
        out.append((f"{folder.name}/{path.name}", img, eye))
    return out


def _geometry(eye: dict) -> tuple[np.ndarray, float]:
    """Centre (midpoint of the corners: it does not move with the level) and eye width, px."""
    f, b = np.array(eye["front"]), np.array(eye["back"])
    return (f + b) / 2, float(np.hypot(*(b - f)))


def eye_region(img: np.ndarray, eye: dict, size: int) -> tuple[np.ndarray, dict]:
    """Square cut-out around the eye at twice the model's resolution: (region, eye points in it)."""
    centre, width = _geometry(eye)
    side = REGION_WIDTHS * width
    out_side = int(round(2 * size * REGION_WIDTHS / CROP_WIDTHS))
    x0, y0 = int(math.floor(centre[0] - side / 2)), int(math.floor(centre[1] - side / 2))
    n = int(math.ceil(side)) + 1
    pad = max(0, -x0, -y0, x0 + n - img.shape[1], y0 + n - img.shape[0])
    src = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT_101) if pad else img
    cut = src[y0 + pad: y0 + pad + n, x0 + pad: x0 + pad + n]
    k = out_side / n
    region = cv2.resize(cut, (out_side, out_side), interpolation=cv2.INTER_AREA)
    pts = {key: ((x - x0) * k, (y - y0) * k) for key, (x, y) in eye.items()}
    return region, pts


def crop(region: np.ndarray, pts: dict, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``size`` x ``size`` float32 crop around the eye (2.5 eye widths); random geometry/photometry if ``rng``."""
    centre, width = _geometry(pts)
    side = CROP_WIDTHS * width
    angle, scale, shift = 0.0, 1.0, np.zeros(2)
    if rng is not None:
        angle, scale = rng.uniform(-ROT, ROT), rng.uniform(1 - SCALE, 1 + SCALE)
        shift = rng.uniform(-SHIFT, SHIFT, 2) * side
    big = 2 * size  # sample at 2x, then area-downsample (no aliasing)
    m = cv2.getRotationMatrix2D((float(centre[0] + shift[0]), float(centre[1] + shift[1])), angle, big / (side * scale))
    m[:, 2] += big / 2 - (centre + shift)
    out = cv2.warpAffine(region, m, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    if rng is not None:
        out = 255.0 * (np.clip(out, 0, 255) / 255.0) ** rng.uniform(*GAMMA)
        out = out * rng.uniform(*GAIN) + rng.uniform(-OFFSET, OFFSET)
        out = out + rng.normal(0, rng.uniform(0, NOISE), out.shape).astype(np.float32)
        out = np.clip(out, 0, 255)
    return out


def standardise(x: np.ndarray) -> np.ndarray:
    """Per-crop zero mean, unit sd: ``(N, S, S) -> (N, 1, S, S)`` float32."""
    x = x.astype(np.float32)
    mu, sd = x.mean(axis=(1, 2), keepdims=True), x.std(axis=(1, 2), keepdims=True)
    return ((x - mu) / np.maximum(sd, 1.0))[:, None]


def warped_pool(frames: list, levels_per_frame: int | list, size: int, rng: np.random.Generator):
    """Every frame's eye region warped at its levels: list of (region, moved points, level, frame index)."""
    pool = []
    for i, (_, img, eye) in enumerate(frames):
        region, pts = eye_region(img, eye, size)
        if isinstance(levels_per_frame, int):  # stratified uniform on [0, 2]
            levels = 2.0 * (np.arange(levels_per_frame) + rng.random(levels_per_frame)) / levels_per_frame
        else:
            levels = levels_per_frame
        for level in levels:
            warped, moved = close_eye(region, pts, float(level))
            pool.append((warped, moved, float(level), i))
    return pool


def dark_fraction(crops: np.ndarray) -> np.ndarray:
    """Fraction of the central half of each crop darker than half the crop's median (the open eye is black)."""
    s = crops.shape[-1]
    c = crops[:, s // 4: 3 * s // 4, s // 4: 3 * s // 4]
    thr = 0.5 * np.median(crops.reshape(len(crops), -1), axis=1)[:, None, None]
    return (c < thr).mean(axis=(1, 2))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def _model(head: str):
    """``au``: the project's AU heads on the advanced model (one-frame clips, 1 channel);
    ``regressor``: resnet18 + one linear output."""
    import torch.nn as nn

    if head == "au":
        from mouse_facial_expressions.models import create_model
        from mouse_facial_expressions.training.presets import architecture

        return create_model("advanced", **architecture("small"), pretrained="none", in_channels=1, num_frames=1,
                            dropout=0.1, au={"targets": "au"})
    from mouse_facial_expressions.models.backbones import build_backbone

    encoder = build_backbone("resnet18", pretrained="none", in_channels=1)
    return nn.Sequential(encoder, nn.Linear(encoder.out_dim, 1))


def _loss(model, x, level, head: str):
    """``x (B, 1, S, S)``, ``level (B,)`` in 0..2 -> the training loss."""
    import torch
    import torch.nn as nn

    if head != "au":
        return nn.functional.mse_loss(model(x).squeeze(1), level)
    from mouse_facial_expressions.data.au_targets import score_distribution
    from mouse_facial_expressions.models.losses import masked_ldl_loss

    logits = model.run({"clip": x[:, None]}).outputs["au_logits"]  # (B, 5, 3): clips of one frame (B, 1, 1, S, S)
    target = torch.zeros_like(logits)
    target[:, 0] = torch.from_numpy(score_distribution(level.numpy())).float()  # ot: the applied level
    mask = torch.zeros(logits.shape[:2])
    mask[:, 0] = 1.0  # only orbital tightening has a target
    return masked_ldl_loss(logits, target, mask)


def _predict(model, x, head: str):
    """The predicted level ``(B,)``: the ``ot`` head's expected score, or the regressor's output."""
    if head != "au":
        return model(x).squeeze(1)
    return model.run({"clip": x[:, None]}).outputs["au"][:, 0]


def train_and_score(train: list, test: list, a, seed: int) -> dict:
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    pool = warped_pool(train, a.levels, a.size, rng)
    t_pool = time.perf_counter() - t0

    test_rng = np.random.default_rng(10_000)  # the test set is the same for every seed
    test_pool = []
    for i, frame in enumerate(test):
        levels = list(TEST_LEVELS) + list(test_rng.uniform(0, 2, a.test_random))
        test_pool += [(w, m, lv, i) for w, m, lv, _ in warped_pool([frame], levels, a.size, test_rng)]
    x_test = np.stack([crop(w, m, a.size) for w, m, _, _ in test_pool])
    y_test = np.array([lv for _, _, lv, _ in test_pool])

    model = _model(a.head)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    warm = max(1, a.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(k, a.steps) / a.steps)))
    model.train()
    t0 = time.perf_counter()
    losses = []
    for step in range(a.steps):
        idx = rng.integers(len(pool), size=a.batch)
        xb = standardise(np.stack([crop(pool[j][0], pool[j][1], a.size, rng) for j in idx]))
        yb = torch.tensor([pool[j][2] for j in idx], dtype=torch.float32)
        loss = _loss(model, torch.from_numpy(xb), yb, a.head)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if a.verbose and (step + 1) % max(1, a.steps // 10) == 0:
            print(f"  step {step + 1}/{a.steps}: loss {np.mean(losses[-max(1, a.steps // 10):]):.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    t_train = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        xt = torch.from_numpy(standardise(x_test))
        pred = torch.cat([_predict(model, xt[k: k + 128], a.head) for k in range(0, len(xt), 128)]).numpy().astype(float)

    # pixel baseline: dark fraction of the un-augmented train crops, linear fit
    x_fit = np.stack([crop(w, m, a.size) for w, m, _, _ in pool])
    y_fit = np.array([lv for _, _, lv, _ in pool])
    coef = np.polyfit(dark_fraction(x_fit), y_fit, 1)
    base = np.polyval(coef, dark_fraction(x_test))

    per_level = {lv: (float(pred[y_test == lv].mean()), float(pred[y_test == lv].std())) for lv in TEST_LEVELS}
    return {"seed": seed, "r": pearson(pred, y_test), "rmse": float(np.sqrt(np.mean((pred - y_test) ** 2))),
            "per_level": per_level, "train_s": t_train, "pool_s": t_pool, "n_pool": len(pool), "n_test": len(y_test),
            "final_loss": float(np.mean(losses[-max(1, a.steps // 10):])),
            "base_r": pearson(base, y_test), "base_rmse": float(np.sqrt(np.mean((base - y_test) ** 2)))}


def contact_sheet(frames: list, path: Path, tile: int = 176) -> Path:
    """Frames x levels, warped at full resolution, cropped around the eye (2.2 eye widths), labelled."""
    rows = []
    for name, img, eye in frames:
        centre, width = _geometry(eye)
        side = int(round(2.2 * width))
        x0 = int(np.clip(round(centre[0] - side / 2), 0, img.shape[1] - side))  # kept inside the image
        y0 = int(np.clip(round(centre[1] - side / 2), 0, img.shape[0] - side))
        tiles = []
        for level in SHEET_LEVELS:
            warped, _ = close_eye(img, eye, level)
            t = cv2.resize(warped[y0: y0 + side, x0: x0 + side], (tile, tile), interpolation=cv2.INTER_AREA)
            tiles.append(t)
        row = np.hstack(tiles).astype(np.float32)
        lo, hi = np.percentile(tiles[0], [1, 99.5])  # one display stretch per row, from the open eye
        row = np.clip((row - lo) / max(hi - lo, 1.0) * 255, 0, 255).astype(np.uint8)
        _label(row, name, (4, tile - 10), 0.4)
        rows.append(row)
    head = np.full((22, rows[0].shape[1]), 255, np.uint8)
    for j, level in enumerate(SHEET_LEVELS):
        cv2.putText(head, f"level {level:g}", (j * tile + tile // 2 - 30, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1,
                    cv2.LINE_AA)
    sheet = np.vstack([head] + rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def _label(img: np.ndarray, text: str, org: tuple[int, int], scale: float) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 0, 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1, cv2.LINE_AA)


def _fmt(values: list[float], digits: int = 3) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f} ({v.min():.{digits}f}-{v.max():.{digits}f})" if len(v) > 1 else f"{v[0]:.{digits}f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="facemap labeled-data folder")
    ap.add_argument("--train", default=TRAIN, help="recording to train on")
    ap.add_argument("--test", default=TEST, help="recording to score")
    ap.add_argument("--seed", type=int, nargs="+", default=[1], help="training seed(s): levels, augmentation, init")
    ap.add_argument("--head", choices=("au", "regressor"), default="au",
                    help="au: the project's orbital-tightening head (models/parts/au.py) on the advanced model, LDL loss; "
                         "regressor: resnet18 + a linear output, MSE")
    ap.add_argument("--steps", type=int, default=80,
                    help="optimizer steps (80: 390-430 s per seed on 2 CPU cores shared with other jobs)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=64, help="crop side, px")
    ap.add_argument("--levels", type=int, default=40, help="random warp levels per training frame")
    ap.add_argument("--test_random", type=int, default=3, help="random levels per test frame (besides 0-2 by 0.5)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight_decay", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sheet", type=Path, default=Path("docs/img/eye_warp_sheet.png"), help="contact sheet PNG")
    ap.add_argument("--sheet_only", action="store_true", help="write the contact sheet and stop")
    ap.add_argument("--no_sheet", action="store_true", help="do not write the contact sheet")
    ap.add_argument("--verbose", action="store_true", help="print the loss during training")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: 2 steps of 4 crops at 32 px, 2 levels "
                    "per frame, no sheet, the frames committed for the tests")
    a = ap.parse_args(argv)
    if a.smoke:
        a.data = DATA_COMMITTED if a.data == DATA else a.data
        a.steps, a.batch, a.size, a.levels, a.test_random, a.no_sheet = 2, 4, 32, 2, 0, True
    train, test = load(a.data / a.train), load(a.data / a.test)
    print(f"frames: {a.train} {len(train)} (train), {a.test} {len(test)} (test)")
    if not a.no_sheet:
        picks = [train[0], train[len(train) // 2], test[0], test[len(test) // 2]]
        p = contact_sheet(picks, a.sheet)
        print(f"contact sheet: {p} ({p.stat().st_size / 1024:.0f} KB)")
    if a.sheet_only:
        return 0
    results = []
    for seed in a.seed:
        res = train_and_score(train, test, a, seed)
        results.append(res)
        levels = "  ".join(f"{lv:g}: {m:.2f}+-{s:.2f}" for lv, (m, s) in res["per_level"].items())
        print(f"seed {seed}: r = {res['r']:.3f}  RMSE = {res['rmse']:.3f}  | mean prediction per level  {levels}  | "
              f"train {res['train_s']:.0f} s ({a.steps} steps x {a.batch}, pool of {res['n_pool']} warps "
              f"built in {res['pool_s']:.0f} s; final train loss {res['final_loss']:.3f})  | "
              f"pixel baseline r = {res['base_r']:.3f} RMSE = {res['base_rmse']:.3f}", flush=True)
    print(f"\n{a.train} -> {a.test}, {results[0]['n_test']} test crops, seeds {a.seed}, {a.steps} steps, "
          f"size {a.size}, head {a.head}")
    print(f"Pearson r   {_fmt([r['r'] for r in results])}   (target >= 0.9: "
          f"{'met' if min(r['r'] for r in results) >= 0.9 else 'NOT met'} by every seed)")
    print(f"RMSE        {_fmt([r['rmse'] for r in results])}   (level, 0-2 scale)")
    for lv in TEST_LEVELS:
        print(f"level {lv:g}:   mean prediction {_fmt([r['per_level'][lv][0] for r in results], 2)}")
    print(f"train time  {_fmt([r['train_s'] for r in results], 0)} s")
    print(f"pixel baseline (dark fraction, linear): r {_fmt([r['base_r'] for r in results])}, "
          f"RMSE {_fmt([r['base_rmse'] for r in results])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
