"""The scene around the mouse: background, lighting per cohort, feeder bar, blur, noise, stamp.

A cohort's :class:`Look` is its batch effect: background brightness and texture, gain,
offset and gamma of the camera, vignetting, sensor noise, zoom (head size) and the height
at which the mouse walks in the picture (camera offset).

A :class:`Shift` changes every frame of a video on top of its cohort's look (brightness,
contrast, defocus blur): the shifts and confounds of :class:`~mouse_facial_expressions.synth.params.SynthConfig`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from mouse_facial_expressions.synth.motion import motion_kernel
from mouse_facial_expressions.synth.mouse import draw_mouse
from mouse_facial_expressions.synth.stamp import draw_stamp, stamp_box

#: Rows above this stay free of the mouse and the feeder bar (the frame stamp lives there).
Y_TOP = stamp_box()[1] + 10


@dataclass(frozen=True)
class Look:
    """Lighting and camera of one recording cohort (a batch effect)."""

    background: float = 185.0
    texture: float = 10.0
    gain: float = 1.0
    bias: float = 0.0
    gamma: float = 1.0
    vignette: float = 0.22
    noise_sd: float = 1.0  # temporal sensor noise (H.264 pays dearly for more)
    zoom: float = 1.0
    dy: float = 0.0


@dataclass(frozen=True)
class Shift:
    """A change of the pixels of one video on top of its cohort's :class:`Look`.

    After the lighting LUT and vignetting (before the sensor noise and the frame stamp), a
    frame is blurred with a Gaussian of sigma ``blur`` pixels, then its grey level ``g``
    becomes ``128 + contrast * (g - 128) + brightness``, clipped to 0..255 at the end.
    The default changes nothing (and the frames are then computed exactly as without it).
    """

    brightness: float = 0.0
    contrast: float = 1.0
    blur: float = 0.0

    @property
    def identity(self) -> bool:
        return self.brightness == 0.0 and self.contrast == 1.0 and self.blur == 0.0


def apply_shift(img: np.ndarray, shift: Shift | None) -> np.ndarray:
    """``img`` (float32 ``(H, W)``, grey levels) blurred, contrast-scaled and brightened."""
    if shift is None or shift.identity:
        return img
    if shift.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), shift.blur, borderType=cv2.BORDER_REFLECT)
    if shift.contrast != 1.0 or shift.brightness != 0.0:
        img = np.float32(shift.contrast) * (img - np.float32(128.0)) + np.float32(128.0 + shift.brightness)
    return img


def cohort_looks(rng: np.random.Generator, n: int, lighting: float = 1.0) -> list[Look]:
    """Cohort 0 has the reference look; the others differ in lighting, contrast and camera.
    ``lighting`` multiplies every cohort's gain (``SynthConfig.lighting``)."""
    looks = [Look()]
    for _ in range(1, n):
        looks.append(Look(
            background=float(rng.uniform(150, 170)), texture=float(rng.uniform(12, 18)),
            gain=float(rng.uniform(0.78, 0.9)), bias=float(rng.uniform(8, 22)),
            gamma=float(rng.uniform(0.85, 0.95)), vignette=float(rng.uniform(0.3, 0.4)),
            noise_sd=float(rng.uniform(1.2, 1.6)), zoom=float(rng.uniform(1.0, 1.08)),
            dy=float(rng.uniform(-0.15, 0.15)),
        ))
    return [replace(lk, gain=lk.gain * lighting) for lk in looks] if lighting != 1.0 else looks


def background(rng: np.random.Generator, width: int, height: int, look: Look) -> np.ndarray:
    """Bright box wall and floor with a soft low-frequency texture, uint8 ``(H, W)``."""
    small = rng.normal(0, 1, (max(2, height // 24), max(2, width // 24))).astype(np.float32)
    tex = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 1.2)
    img = look.background + look.texture * tex + 3.0 * fine
    floor = int(height * rng.uniform(0.86, 0.93))
    img[floor:] -= 18.0  # the floor edge of the box
    return np.clip(img, 0, 255).astype(np.uint8)


def _vignette(width: int, height: int, strength: float) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
    return (1.0 - strength * 0.5 * r2).astype(np.float32)


def lighting_lut(look: Look) -> np.ndarray:
    """uint8 lookup table for the cohort's gamma, gain and offset."""
    v = np.arange(256, dtype=np.float64) / 255.0
    out = 255.0 * v ** look.gamma * look.gain + look.bias
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def draw_occluder(img: np.ndarray, bar: tuple[float, float, float] | None) -> None:
    """A dark feeder post hanging from ``Y_TOP`` down to ``bar = (x0, x1, y1)``."""
    if bar is None:
        return
    x0, x1, y1 = (int(round(v)) for v in bar)
    img[Y_TOP:y1, x0:x1] = 38
    cv2.ellipse(img, ((x0 + x1) // 2, y1), ((x1 - x0) // 2, max(2, (x1 - x0) // 3)), 0, 0, 180, 38, -1)


def occluded_mask(points: np.ndarray, bar: tuple[float, float, float] | None, margin: float = 2.0) -> np.ndarray:
    """Which ``(..., 2)`` points the feeder bar covers."""
    if bar is None:
        return np.zeros(points.shape[:-1], bool)
    x0, x1, y1 = bar
    px, py = points[..., 0], points[..., 1]
    return (px > x0 - margin) & (px < x1 + margin) & (py > Y_TOP - margin) & (py < y1 + margin)


def render_frames(track: dict[str, np.ndarray], aus: np.ndarray, L: float, width: int, height: int,
                  look: Look, bar, rng: np.random.Generator, shade: dict | None = None,
                  shift: Shift | None = None) -> Iterator[np.ndarray]:
    """Yield the stamped uint8 ``(H, W)`` frames of one raw video.

    Args:
        track: output of :func:`~mouse_facial_expressions.synth.motion.simulate_track`.
        aus: ``(T, 5)`` action-unit intensities. L: head length in pixels.
        bar: feeder bar ``(x0, x1, y1)`` or None. shade: grey levels overriding ``mouse.SHADE``.
        shift: brightness, contrast and blur of the video (:class:`Shift`; None = none). It
            draws no random numbers, so the scene and the noise stay those of the same seed.
    """
    bg = background(rng, width, height, look)
    vig = _vignette(width, height, look.vignette)
    lut = lighting_lut(look)
    noise = [rng.normal(0, look.noise_sd, (height, width)).astype(np.float32) for _ in range(5)]
    order = rng.integers(0, len(noise), len(aus))
    pad = int(4 * L)  # fur texture that moves with the mouse (anchored at the head centre)
    fur = cv2.GaussianBlur(rng.normal(0, 1, (height + 2 * pad, width + 2 * pad)).astype(np.float32), (0, 0), 0.8)
    fur = np.round(fur * (5.0 / fur.std())).astype(np.int16)
    for t in range(len(aus)):
        img = bg.copy()
        draw_mouse(img, track["x"][t], track["y"][t], int(track["s"][t]), track["yaw"][t],
                   track["pitch"][t], track["body_pitch"][t], L, aus[t], shade, track["tail_phase"][t], track["body_yaw"][t])
        ox = int(np.clip(pad - round(track["x"][t]) + width // 2, 0, 2 * pad))
        oy = int(np.clip(pad - round(track["y"][t]) + height // 2, 0, 2 * pad))
        on_mouse = img != bg
        tex = fur[oy:oy + height, ox:ox + width]
        img = np.where(on_mouse, np.clip(img + tex, 0, 255), img).astype(np.uint8)
        if track["blur_len"][t] >= 2:  # a quick movement: the mouse smears, the scene does not
            x0, x1 = (int(np.clip(track["x"][t] + d * L, 0, width)) for d in (-3.6, 3.6))
            y0, y1 = (int(np.clip(track["y"][t] + d * L, 0, height)) for d in (-1.6, 2.4))
            img[y0:y1, x0:x1] = cv2.filter2D(img[y0:y1, x0:x1], -1, motion_kernel(
                track["blur_len"][t], track["blur_angle"][t]), borderType=cv2.BORDER_REFLECT)
        draw_occluder(img, bar)
        img = cv2.LUT(img, lut).astype(np.float32) * vig
        img = apply_shift(img, shift) + noise[order[t]]
        frame = np.clip(img, 0, 255).astype(np.uint8)
        yield draw_stamp(frame, t)
