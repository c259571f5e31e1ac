"""Clip-consistent augmentation and normalisation of grey face crops.

What the model receives: each stored crop is one grey channel (uint8). It is resized to
``image_size``, optionally augmented, scaled to [0, 1] and normalised; with ``channels == 3``
the grey channel is repeated to 3 channels (so ImageNet-shaped backbones take it) and
normalised per channel with :data:`NORM_MEAN` / :data:`NORM_STD` (the ImageNet statistics,
which a pretrained backbone expects); with ``channels == 1`` it is normalised with
:data:`GREY_MEAN` / :data:`GREY_STD` (their means).

Augmentation follows TrivialAugmentWide: ONE operation drawn uniformly from a policy with ONE
magnitude drawn uniformly from its range. Two choices (:func:`augment_clip`):

- ``scope``: ``"clip"`` applies the same operation and magnitude to every frame of a clip
  (the ops run on the whole ``(T, 1, H, W)`` tensor at once), so temporal changes in the clip
  are the animal's; ``"frame"`` draws a new operation for every frame, as the original
  (torchvision's ``TrivialAugmentWide`` inside a per-image transform) did.
- ``policy``: ``"mild"`` (:data:`POLICY`: rotation +-30 deg, shear 0.3, translation 12.5%)
  or ``"wide"`` (:data:`WIDE_POLICY`: torchvision's TrivialAugmentWide ranges, rotation +-135 deg,
  shear 0.99, translation 32 px at 224 px).

Colour/saturation ops are no-ops on grey and are left out; there is no horizontal flip (every
crop is mirrored to face the same way). ``docs/RECIPE.md`` has the measured effect of each.
"""

from __future__ import annotations

import math

import torch

from mouse_facial_expressions.compat import import_torchvision

import_torchvision()
from torchvision.transforms.v2 import functional as F  # noqa: E402

#: Per-channel mean/std applied after scaling to [0, 1] (channels == 3: grey repeated to 3).
NORM_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
NORM_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: The same for a single grey channel (channels == 1).
GREY_MEAN: float = sum(NORM_MEAN) / 3
GREY_STD: float = sum(NORM_STD) / 3

#: Operation name -> (min magnitude, max magnitude) of the TrivialAugmentWide-like policy.
POLICY: dict[str, tuple[float, float]] = {
    "identity": (0.0, 0.0),
    "brightness": (-0.6, 0.6),  # factor 1 + m
    "contrast": (-0.6, 0.6),
    "sharpness": (-0.9, 0.9),
    "posterize": (4.0, 8.0),  # bits kept
    "solarize": (192.0, 255.0),  # threshold
    "autocontrast": (0.0, 0.0),
    "equalize": (0.0, 0.0),
    "rotate": (-30.0, 30.0),  # degrees
    "shear_x": (-0.3, 0.3),  # tan of the shear angle
    "shear_y": (-0.3, 0.3),
    "translate_x": (-0.125, 0.125),  # fraction of the width
    "translate_y": (-0.125, 0.125),
}
#: torchvision's TrivialAugmentWide ranges (num_bins 31), on grey crops (``Color`` is a no-op).
WIDE_POLICY: dict[str, tuple[float, float]] = {
    **POLICY,
    "brightness": (-0.99, 0.99),
    "contrast": (-0.99, 0.99),
    "sharpness": (-0.99, 0.99),
    "posterize": (2.0, 8.0),
    "solarize": (0.0, 255.0),
    "rotate": (-135.0, 135.0),
    "shear_x": (-0.99, 0.99),
    "shear_y": (-0.99, 0.99),
    "translate_x": (-32 / 224, 32 / 224),
    "translate_y": (-32 / 224, 32 / 224),
}
POLICIES: dict[str, dict[str, tuple[float, float]]] = {"mild": POLICY, "wide": WIDE_POLICY}
SCOPES = ("clip", "frame")


def draw_params(generator: torch.Generator | None = None, policy: str = "mild") -> tuple[str, float]:
    """One (operation, magnitude) drawn from ``policy`` (``mild`` | ``wide``)."""
    table = POLICIES[policy]
    ops = list(table)
    op = ops[int(torch.randint(len(ops), (1,), generator=generator))]
    lo, hi = table[op]
    mag = lo + (hi - lo) * float(torch.rand(1, generator=generator))
    return op, mag


def apply_op(clip: torch.Tensor, op: str, mag: float) -> torch.Tensor:
    """Apply one operation with the same parameters to every frame.

    Args:
        clip: ``(T, 1, H, W)`` uint8.

    Returns:
        ``(T, 1, H, W)`` uint8.
    """
    h, w = clip.shape[-2:]
    if op == "identity":
        return clip
    if op == "brightness":
        return F.adjust_brightness(clip, 1.0 + mag)
    if op == "contrast":
        return F.adjust_contrast(clip, 1.0 + mag)
    if op == "sharpness":
        return F.adjust_sharpness(clip, 1.0 + mag)
    if op == "posterize":
        return F.posterize(clip, int(round(mag)))
    if op == "solarize":
        return F.solarize(clip, mag)
    if op == "autocontrast":
        return F.autocontrast(clip)
    if op == "equalize":
        return F.equalize(clip)
    affine = dict(angle=0.0, translate=[0, 0], scale=1.0, shear=[0.0, 0.0])
    if op == "rotate":
        affine["angle"] = mag
    elif op == "shear_x":
        affine["shear"] = [math.degrees(math.atan(mag)), 0.0]
    elif op == "shear_y":
        affine["shear"] = [0.0, math.degrees(math.atan(mag))]
    elif op == "translate_x":
        affine["translate"] = [int(round(mag * w)), 0]
    elif op == "translate_y":
        affine["translate"] = [0, int(round(mag * h))]
    else:
        raise ValueError(f"unknown augmentation op {op!r}")
    return F.affine(clip, **affine, interpolation=F.InterpolationMode.BILINEAR, fill=0)


def augment_clip(
    clip: torch.Tensor, generator: torch.Generator | None = None, policy: str = "mild", scope: str = "clip",
) -> torch.Tensor:
    """TrivialAugmentWide-like augmentation of a ``(T, 1, H, W)`` uint8 clip.

    ``scope="clip"``: one (op, magnitude) for every frame; ``"frame"``: one per frame.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown augmentation policy {policy!r} (choose from {', '.join(POLICIES)})")
    if scope not in SCOPES:
        raise ValueError(f"unknown augmentation scope {scope!r} (choose from {', '.join(SCOPES)})")
    if scope == "clip":
        return apply_op(clip, *draw_params(generator, policy))
    return torch.stack([apply_op(f[None], *draw_params(generator, policy))[0] for f in clip])  # (T, 1, H, W)


def to_model_input(
    frames: torch.Tensor,
    image_size: int,
    channels: int = 3,
    augment: bool = False,
    generator: torch.Generator | None = None,
    policy: str = "mild",
    scope: str = "clip",
) -> torch.Tensor:
    """Stored crops -> normalised model input.

    Args:
        frames: ``(T, H, W)`` or ``(T, 1, H, W)`` uint8 grey crops.
        image_size: output side in pixels.
        channels: 3 (grey repeated) or 1.
        augment: apply :func:`augment_clip` with ``policy`` and ``scope``.

    Returns:
        ``(T, channels, image_size, image_size)`` float32.
    """
    return normalize_clips(prepare_clip(frames, image_size, augment, generator, policy, scope), channels)


def prepare_clip(
    frames: torch.Tensor, image_size: int, augment: bool = False, generator: torch.Generator | None = None,
    policy: str = "mild", scope: str = "clip",
) -> torch.Tensor:
    """Stored crops -> resized (and optionally augmented) uint8 clip, not yet normalised.

    Args:
        frames: ``(T, H, W)`` or ``(T, 1, H, W)`` uint8 grey crops.

    Returns:
        ``(T, 1, image_size, image_size)`` uint8.
    """
    x = frames if frames.dim() == 4 else frames.unsqueeze(1)  # (T, 1, H, W) uint8
    if x.shape[-1] != image_size or x.shape[-2] != image_size:
        x = F.resize(x, [image_size, image_size], antialias=True)
    if augment:
        x = augment_clip(x, generator, policy, scope)
    return x


def normalize_clips(x: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """uint8 grey clips -> normalised float32 model input; float input is returned as is.

    This is the second half of :func:`to_model_input`. Loaders built with
    ``clip_dtype="uint8"`` stop before it, so DataLoader workers send 1-byte, 1-channel clips
    (12x less than float32 x 3 channels) and the training step normalises the batch after
    it reaches the device.

    Args:
        x: ``(..., 1, H, W)`` uint8 (e.g. ``(T, 1, H, W)`` or ``(B, T, 1, H, W)``).
        channels: 3 (grey repeated, ImageNet statistics) or 1 (grey statistics).

    Returns:
        ``(..., channels, H, W)`` float32: ``x / 255`` normalised per channel.
    """
    if x.dtype != torch.uint8:
        return x
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if x.shape[-3] != 1:
        raise ValueError(f"uint8 clips must have 1 grey channel, got shape {tuple(x.shape)}")
    means, stds = ((GREY_MEAN,), (GREY_STD,)) if channels == 1 else (NORM_MEAN, NORM_STD)
    # One fused pass per output channel (no float temporaries): out_c = x * scale_c + shift_c.
    out = torch.empty((*x.shape[:-3], channels, *x.shape[-2:]), dtype=torch.float32, device=x.device)
    for c in range(channels):
        torch.mul(x[..., 0, :, :], 1.0 / (255.0 * stds[c]), out=out[..., c, :, :])
        out[..., c, :, :].add_(-means[c] / stds[c])
    return out
