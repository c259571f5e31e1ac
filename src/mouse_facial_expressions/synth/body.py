"""Body keypoints of a synthetic mouse in an open field: the behaviour modality of ``mfe synth``.

These are simulated keypoint tracks, not rendered pixels: an overhead camera over a square
``ARENA`` x ``ARENA`` px open field (its own pixel frame, unrelated to the side-view face video
of the same take), tracked as DeepLabCut would track it (``BODYPARTS``). One track per raw
frame of a take; ``mfe synth`` keeps the trimmed video's frames.

:func:`simulate_body` moves the body centre with an Ornstein-Uhlenbeck velocity (smooth
random walk) that reflects off the walls, gated by smooth walk/pause alternation; the heading
follows the velocity; the nose and ears sit ahead of the centre (turned by a head angle that
wanders), the tail base behind it. Rearing bouts stop the animal and foreshorten the front of
the body in the image plane. :func:`observe` adds DLC-like likelihoods (mostly high, short
low-likelihood dropouts with wild positions) and ~1 px noise.

The latent per-frame condition ``intensity`` of the face simulation (0..1), times
``behaviour_effect`` (0 = behaviour carries no information), lowers the speed
(``SPEED_DROP``), the rearing rate (``REAR_DROP``), the nose-to-tail-base length (hunching,
``HUNCH``) and the head movement (``HEAD_DROP``). Per-animal activity (log-normal, SD
``ANIMAL_SD``), per-take activity (``TAKE_SD``) and per-animal body size (``SIZE_SD``) make
some animals less active or shorter whatever their condition, so behaviour alone is imperfect.
"""

from __future__ import annotations

import numpy as np

from mouse_facial_expressions.synth.motion import _bump, events, ou

#: DLC bodyparts of the body files (``keypoints/body/``).
BODYPARTS = ("nose", "left_ear", "right_ear", "body_centre", "tail_base")
#: Scorer of the body DLC files (``<video>`` + ``BODY_SCORER`` + ``.h5``).
BODY_SCORER = "DLC_resnet50_mfeSynthBodyJan1shuffle1_100000"
#: Side of the square open field (px, overhead camera) and nose-to-tail-base length (px).
ARENA, BODY_LEN = 480, 90.0
#: Per-component SD of the centre's velocity (px/s), its time constant (s); walls' margin (px).
SPEED_SD, SPEED_TAU, MARGIN = 80.0, 1.0, 30.0
#: Rearing bouts per second of an active healthy animal; head-angle SD (rad).
REAR_RATE, HEAD_SD = 0.12, 0.35
#: Effects of ``behaviour_effect x intensity`` (relative drops per unit).
SPEED_DROP, REAR_DROP, HUNCH, HEAD_DROP = 0.9, 1.2, 0.2, 0.5
#: Log-normal SD of the activity of an animal and of one take; SD of an animal's body size.
ANIMAL_SD, TAKE_SD, SIZE_SD = 0.25, 0.12, 0.07
#: Dropouts (low likelihood, wild position) per second per bodypart, and the pixel noise SD.
DROPOUT_RATE, PIXEL_SD = 0.05, 0.5
#: First entries of the random streams ``[seed, tag, ...]`` (the face, trims and raters use 1-20).
BODY_TAG, ANIMAL_TAG = 30, 31


def animal_traits(seed: int, animal: int) -> tuple[float, float]:
    """Activity (log-normal, median 1) and body size (relative, SD ``SIZE_SD``) of animal number
    ``animal`` (stream ``[seed, 31, animal]``)."""
    rng = np.random.default_rng([seed, ANIMAL_TAG, animal])
    return float(np.exp(rng.normal(0.0, ANIMAL_SD))), float(1.0 + rng.normal(0.0, SIZE_SD))


def _direction(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle), np.sin(angle)], -1)


def simulate_body(rng: np.random.Generator, intensity: np.ndarray, fps: float, effect: float = 1.0,
                  activity: float = 1.0, size: float = 1.0) -> dict:
    """True body pose of one take, one row per frame of ``intensity``.

    Args:
        intensity: latent condition per frame (0..1). effect: ``behaviour_effect`` (0: the
            intensity changes nothing). activity: the animal's (and take's) activity factor.
            size: the animal's body length relative to ``BODY_LEN``.

    Returns:
        ``points`` (``{bodypart: (n, 2)}`` px), ``speed`` (px/s of the body centre),
        ``rearing`` (bool), ``elongation`` (nose-to-tail-base distance in the image, px),
        ``head`` (head angle to the body axis, rad), ``sick`` (``effect x intensity``).
        The same ``rng`` state draws the same numbers whatever ``intensity`` and ``effect``.
    """
    n, dt = len(intensity), 1.0 / fps
    sick = effect * np.clip(np.asarray(intensity, float), 0.0, 1.0)
    drive = activity * np.clip(1.0 - SPEED_DROP * sick, 0.05, None)
    gate = 1.0 / (1.0 + np.exp(-3.0 * (ou(rng, n, dt, 1.0, 2.0) + 0.6)))  # walk (1) / pause (0)
    # rearing: a bout starts at frame t with probability rate(t) dt (at least 1 s apart)
    rate = REAR_RATE * activity * np.clip(1.0 - REAR_DROP * sick, 0.0, None)
    start, length = rng.random(n), rng.uniform(0.8, 2.0, n)
    rear, rearing = np.zeros(n), np.zeros(n, bool)
    t = 0
    while t < n:
        if start[t] < rate[t] * dt:
            k = max(2, int(length[t] * fps))
            stop = min(n, t + k)
            rear[t:stop] = _bump(k)[: stop - t] ** 0.5
            rearing[t:stop] = _bump(k)[: stop - t] > 0.3
            t = stop + int(fps)
        else:
            t += 1
    # centre: OU velocity, reflected at the walls; the heading follows the motion
    a = np.exp(-dt / SPEED_TAU)
    kicks = rng.normal(0.0, SPEED_SD * np.sqrt(1 - a * a), (n, 2))
    vel = rng.normal(0.0, SPEED_SD, 2)
    centre = np.empty((n, 2))
    centre[0] = rng.uniform(MARGIN + BODY_LEN, ARENA - MARGIN - BODY_LEN, 2)
    heading = np.empty(n)
    heading[0] = rng.uniform(-np.pi, np.pi)
    lo, hi = MARGIN, ARENA - MARGIN
    for t in range(1, n):
        vel = a * vel + kicks[t]
        p = centre[t - 1] + vel * drive[t] * gate[t] * (1.0 - rear[t]) * dt
        for k in range(2):
            if not lo <= p[k] <= hi:
                p[k] = 2 * (lo if p[k] < lo else hi) - p[k]
                vel[k] = -vel[k]
        step = p - centre[t - 1]
        centre[t] = p
        turn = np.angle(np.exp(1j * (np.arctan2(step[1], step[0]) - heading[t - 1])))
        heading[t] = heading[t - 1] + 0.5 * turn * min(1.0, np.hypot(*step) / (30.0 * dt))
    speed = np.hypot(*np.diff(centre, axis=0, prepend=centre[:1]).T) * fps
    speed[0] = speed[1] if n > 1 else 0.0
    # pose: hunching shortens the body, rearing foreshortens its front, the head wanders
    length = size * BODY_LEN * np.clip(1.0 - HUNCH * sick, 0.4, None) * (1.0 + ou(rng, n, dt, 0.03, 1.0))
    head = ou(rng, n, dt, HEAD_SD, 0.4) * activity * np.clip(1.0 - HEAD_DROP * sick, 0.1, None)
    front = 0.55 * length * (1.0 - 0.6 * rear)
    axis, head_dir = _direction(heading), _direction(heading + head)
    side = _direction(heading + head + np.pi / 2)
    ears = centre + 0.6 * front[:, None] * head_dir
    points = {
        "nose": centre + front[:, None] * head_dir,
        "left_ear": ears - 0.1 * size * BODY_LEN * side,
        "right_ear": ears + 0.1 * size * BODY_LEN * side,
        "body_centre": centre,
        "tail_base": centre - 0.45 * length[:, None] * axis,
    }
    elongation = np.hypot(*(points["nose"] - points["tail_base"]).T)
    return dict(points=points, speed=speed, rearing=rearing, elongation=elongation, head=head, sick=sick)


def observe(rng: np.random.Generator, points: dict, fps: float) -> dict:
    """DLC output ``{bodypart: (x, y, likelihood)}`` of true ``points``: likelihood 0.9-0.999 and
    ``PIXEL_SD`` px noise, except during dropouts (``DROPOUT_RATE`` per s, 0.1-0.6 s each):
    likelihood 0.01-0.4 and the point 15 px off."""
    obs = {}
    for name in BODYPARTS:
        xy = points[name]
        n = len(xy)
        low = np.zeros(n, bool)
        for a, b in events(rng, n, fps, DROPOUT_RATE, (0.1, 0.6)):
            low[a:b] = True
        lik = np.where(low, rng.uniform(0.01, 0.4, n), rng.uniform(0.9, 0.999, n))
        noisy = xy + rng.normal(0.0, 1.0, (n, 2)) * np.where(low, 15.0, PIXEL_SD)[:, None]
        obs[name] = (noisy[:, 0], noisy[:, 1], lik)
    return obs


def take_body(seed: int, animal: str, recording: int, discard: int, intensity: np.ndarray, fps: float,
              effect: float) -> tuple[dict, dict]:
    """DLC observations (:func:`observe`) and truth (:func:`simulate_body`, plus ``activity, size``) of
    one camera take, from its own stream ``[seed, 30, animal, recording, discard]``: no other
    random number of the cohort moves."""
    number = int(animal[1:])
    r_take, r_body, r_obs = (np.random.default_rng(s) for s in np.random.SeedSequence(
        [seed, BODY_TAG, number, int(recording), int(discard)]).spawn(3))
    activity, size = animal_traits(seed, number)
    activity *= float(np.exp(r_take.normal(0.0, TAKE_SD)))
    body = simulate_body(r_body, intensity, fps, effect, activity, size)
    body.update(activity=activity, size=size)
    return observe(r_obs, body["points"], fps), body
