"""Training throughput (frames/s) of ``advanced``: bf16 autocast + channels_last vs fp32.

resnet18 backbone + 2-layer Transformer (8 heads, FF 2048), batches of 8 clips x 10 frames
at 112 px, AdamW, the model's own LDL loss: the same step ``mfe train`` runs, without
the data loader. Both settings run in one process, alternating, on the same random data.

    .venv/bin/python bench/bench_train_throughput.py [--steps 6] [--threads 2]
    .venv/bin/python bench/bench_train_throughput.py --smoke    # one step of 2 clips x 2 frames at 32 px
"""

from __future__ import annotations

import argparse
import time

import torch

from mouse_facial_expressions.models import create_model
from mouse_facial_expressions.training import presets
from mouse_facial_expressions.training.module import cpu_supports_bf16


#: The model timed: resnet18 + a 2-layer Transformer (``--smoke``: the smoke preset's, ``training/presets.py``).
ARCHITECTURE = dict(backbone="resnet18", num_layers=2, num_heads=8, ff_dim=2048, d_model=512)


def make(channels_last: bool, frames: int, arch: dict, seed: int = 0):
    torch.manual_seed(seed)
    net = create_model("advanced", **arch, num_frames=frames)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        net.encoder.channels_last = True
    net.train()
    return net, torch.optim.AdamW(net.parameters(), lr=1e-4)


def step(net, opt, clip, soft, label, bf16: bool) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, _ = net.loss(clip, soft, label, use_soft_labels=True, label_smoothing=0.1)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per setting")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--smoke", action="store_true", help="the smallest settings: one step of 2 clips x 2 frames at 32 px")
    a = ap.parse_args(argv)
    if a.smoke:
        a.batch, a.frames, a.size, a.steps, a.warmup = 2, 2, 32, 1, 0
    if a.threads:
        torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    clip = torch.randn(a.batch, a.frames, 3, a.size, a.size, generator=g)  # (B, T, 3, H, W)
    label = torch.randint(0, 2, (a.batch,), generator=g)
    soft = torch.nn.functional.one_hot(label, 2).float()
    settings = {"fp32": (False, False), "bf16+channels_last": (True, True)}
    arch = presets.architecture("smoke") if a.smoke else ARCHITECTURE
    nets = {k: make(cl, a.frames, arch) for k, (_, cl) in settings.items()}
    times = {k: [] for k in settings}
    for k, (bf16, _) in settings.items():
        for _ in range(a.warmup):
            step(*nets[k], clip, soft, label, bf16)
    for _ in range(a.steps):  # alternate so machine load hits both alike
        for k, (bf16, _) in settings.items():
            t0 = time.perf_counter()
            step(*nets[k], clip, soft, label, bf16)
            times[k].append(time.perf_counter() - t0)
    frames = a.batch * a.frames
    print(f"advanced ({arch['backbone']} + {arch['num_layers']}-layer Transformer, d_model {arch['d_model']}), "
          f"{a.batch}x{a.frames} frames at {a.size} px, "
          f"{torch.get_num_threads()} threads, CPU bf16 native: {cpu_supports_bf16()}")
    fps = {}
    for k, ts in times.items():
        med = sorted(ts)[len(ts) // 2]
        fps[k] = frames / med
        print(f"  {k:20s} {fps[k]:7.1f} frames/s  (median step {med * 1000:.0f} ms over {len(ts)} steps)")
    print(f"  ratio bf16+channels_last / fp32: {fps['bf16+channels_last'] / fps['fp32']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
