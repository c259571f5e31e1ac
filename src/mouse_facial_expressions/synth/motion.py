"""Where the mouse is and what it does, frame by frame (pure numpy, seeded).

:func:`simulate_track` gives a freely moving mouse: it walks the way its snout points,
turns round at the walls and sometimes in the open (the facing side flips, with a few
frames of foreshortened head in between), looks away from the camera, rears, and makes
quick head movements that blur the frame. :func:`ou` is the smooth noise behind the
action-unit intensities.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Head foreshortening below which the face is no clean side portrait (looking away/turning).
PORTRAIT_YAW = 0.6


def ou(rng: np.random.Generator, n: int, dt: float, sd: float, tau: float) -> np.ndarray:
    """Ornstein-Uhlenbeck noise: ``n`` samples ``dt`` apart, stationary SD ``sd``, time constant ``tau``."""
    a = np.exp(-dt / tau)
    eps = rng.normal(0.0, sd * np.sqrt(1 - a * a), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd)
    for t in range(1, n):
        out[t] = a * out[t - 1] + eps[t]
    return out


def events(rng: np.random.Generator, n: int, fps: float, rate: float, dur: tuple[float, float],
           gap_frames: int = 0) -> list[tuple[int, int]]:
    """Non-overlapping ``(start, stop)`` frame ranges of a Poisson process of episodes.

    Args:
        rate: episodes per second. dur: episode length range in seconds.
    """
    out: list[tuple[int, int]] = []
    t = rng.exponential(1.0 / rate) if rate > 0 else np.inf
    while t * fps < n:
        a = int(t * fps)
        b = min(n, a + max(2, int(rng.uniform(*dur) * fps)))
        out.append((a, b))
        t = b / fps + gap_frames / fps + rng.exponential(1.0 / rate)
    return out


def _bump(n: int) -> np.ndarray:
    """0 -> 1 -> 0 smooth profile over ``n`` frames."""
    return np.sin(np.linspace(0, np.pi, n)) ** 2 if n > 1 else np.ones(n)


def simulate_track(rng: np.random.Generator, n: int, fps: float, width: int, height: int, L: float,
                   p_rear: float = 0.05, p_look_away: float = 0.06, p_blur: float = 0.12,
                   y_top: float = 22.0, dy: float = 0.0) -> dict[str, np.ndarray]:
    """Per-frame pose of one video.

    Args:
        n: frames. L: head length in pixels. y_top: the head never rises above this row
            (the frame stamp sits above it). dy: camera offset of the walking height.

    Returns:
        Arrays of length ``n``: ``x, y`` (head centre), ``s`` (+1 right side faces the
        camera, -1 left), ``yaw`` (1 side view .. 0.2 facing away), ``body_yaw`` (the body
        foreshortens only while turning round), ``pitch``, ``body_pitch``
        (rad), ``rearing``, ``look_away``, ``turning`` (bool), ``blur_len`` (px),
        ``blur_angle`` (rad), ``tail_phase``.
    """
    dt = 1.0 / fps
    x_lo, x_hi = 1.0 * L, width - 1.0 * L
    y_lo = y_top + 0.95 * L
    y_hi = height - 0.65 * L
    y_mid = float(np.clip(y_lo + 0.6 * (y_hi - y_lo) + dy, y_lo, y_hi))

    rear = np.zeros(n)
    rearing = np.zeros(n, bool)
    for a, b in events(rng, n, fps, p_rear, (0.8, 1.6), gap_frames=int(fps)):
        rear[a:b] = np.maximum(rear[a:b], _bump(b - a) ** 0.5)
        rearing[a:b] |= _bump(b - a) > 0.3
    look = np.zeros(n)
    for a, b in events(rng, n, fps, p_look_away, (0.5, 1.4)):
        look[a:b] = np.maximum(look[a:b], _bump(b - a) * rng.uniform(0.55, 0.8))

    x, y = np.empty(n), np.empty(n)
    s = np.empty(n, np.int8)
    turn = np.zeros(n)
    speed = ou(rng, n, dt, 0.35, 1.0) + 0.45  # head lengths per second
    wobble = ou(rng, n, dt, 0.08 * (y_hi - y_lo), 1.5)
    x[0] = rng.uniform(x_lo + L, x_hi - L)
    s[0] = rng.choice([-1, 1])
    turn_len = max(3, int(0.5 * fps))
    t_turn = -turn_len  # start frame of the last turn
    p_turn = 0.08 * dt  # random turns in the open
    for t in range(1, n):
        s[t] = s[t - 1]
        busy = t - t_turn < turn_len
        ahead = x[t - 1] + s[t] * 1.2 * L
        if not busy and (ahead < x_lo or ahead > x_hi or rng.random() < p_turn):
            t_turn, busy = t, True
        if busy:
            k = t - t_turn
            turn[t] = _bump(turn_len)[k]
            if k == turn_len // 2:
                s[t] = -s[t - 1]
            v = 0.0
        else:
            v = max(0.0, speed[t]) * (1 - rear[t])
        x[t] = np.clip(x[t - 1] + s[t] * v * L * dt, x_lo, x_hi)
    y[:] = np.clip(y_mid + wobble - 0.1 * L * rear, y_lo, y_hi)

    yaw = np.clip(1.0 - np.maximum(0.8 * turn, look), 0.2, 1.0)
    pitch = ou(rng, n, dt, 0.12, 0.8) + 0.55 * rear
    body_pitch = ou(rng, n, dt, 0.04, 2.0) + 0.95 * rear

    blur_len = np.zeros(n)
    blur_angle = np.zeros(n)
    for a, b in events(rng, n, fps, p_blur, (0.15, 0.45)):
        blur_len[a:b] = rng.uniform(4.0, 9.0) * (0.5 + 0.5 * _bump(b - a))
        blur_angle[a:b] = rng.uniform(0, np.pi)
    return {
        "x": x, "y": y, "s": s, "yaw": yaw, "body_yaw": np.clip(1.0 - 0.9 * turn, 0.1, 1.0),
        "pitch": pitch, "body_pitch": body_pitch,
        "rearing": rearing, "look_away": (look > 1 - PORTRAIT_YAW) & (turn == 0),
        "turning": turn > 0, "blur_len": blur_len, "blur_angle": blur_angle,
        "tail_phase": np.cumsum(rng.normal(0.3, 0.1, n)),
    }


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised line kernel for motion blur of ``length`` pixels at ``angle`` radians."""
    k = int(np.ceil(length)) | 1
    ker = np.zeros((k, k), np.float32)
    c = k // 2
    dx, dy = np.cos(angle) * (length - 1) / 2, np.sin(angle) * (length - 1) / 2
    cv2.line(ker, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    return ker / ker.sum()
