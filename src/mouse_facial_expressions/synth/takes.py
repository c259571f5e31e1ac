"""One camera take of a synthetic cohort, simulated but not yet written: who, when, what moves.

The animals (:func:`make_animals`), the plan of camera videos with their metadata
(:func:`_video_plan`), each take's motion, latent intensity, action units, feeder bar and pixel
shift (:func:`_simulate`) and its rendered frames (:func:`video_frames`). Apart from
:mod:`~mouse_facial_expressions.synth.cohort`, which writes the project, because the truth
tables (:mod:`~mouse_facial_expressions.synth.truth`) are computed from the same simulation
without rendering or writing anything.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from mouse_facial_expressions.synth.motion import ou, simulate_track
from mouse_facial_expressions.synth.mouse import AU_NAMES, SHADE
from mouse_facial_expressions.synth.params import CONTROL_TREATMENTS, DOSE, RECORDING_HOURS, SynthConfig
from mouse_facial_expressions.synth.render import Y_TOP, Shift, render_frames

CAMERA = "sidecam"
#: Relative weight of the latent intensity in each action unit.
AU_WEIGHTS = np.array([1.0, 0.9, 0.8, 0.8, 0.85])


def mss(seconds: int) -> str:
    """``75 -> "1:15"`` (the metadata's trim format)."""
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def make_animals(cfg: SynthConfig) -> pd.DataFrame:
    """One row per animal: treatment, cohort, intensity offset, AU biases, label flip."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
    n, nt = cfg.mice, len(cfg.treatments)
    idx = np.arange(n)
    df = pd.DataFrame({
        "animal": [f"m{i + 1}" for i in idx],
        "treatment": [cfg.treatments[i % nt] for i in idx],
        "cohort": [int((i // nt) % cfg.cohorts) for i in idx],
        "sex": ["mf"[(i // (nt * cfg.cohorts)) % 2] for i in idx],
        "offset": rng.normal(0.0, cfg.animal_sd, n),
    })
    df["fur"] = np.clip(np.round(rng.normal(0.0, 5.0, n)), -10, 10)  # coat shade: who is who
    bias = rng.normal(0.0, 0.04, (n, len(AU_NAMES)))
    for k, name in enumerate(AU_NAMES):
        df[f"bias_{name}"] = bias[:, k]
    flipped = np.zeros(n, bool)
    flipped[rng.permutation(n)[: int(round(cfg.label_noise * n))]] = True
    df["label_flipped"] = flipped
    return df


def _video_plan(cfg: SynthConfig, animals: pd.DataFrame) -> list[dict]:
    """Every camera video (good takes and the one discarded take) with its metadata row."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 2]))
    plan = []
    n_raw = int(round(cfg.seconds * cfg.fps))
    within = {c: 0 for c in range(cfg.cohorts)}
    used: set[datetime] = set()
    for i, a in animals.iterrows():
        c = int(a.cohort)
        day0 = date(2024, 3, 4) + timedelta(days=70 * c)
        inject = datetime(day0.year, day0.month, day0.day, 10, 0) + timedelta(minutes=7 * within[c])
        within[c] += 1
        for r in cfg.recordings:
            t0 = inject + timedelta(hours=RECORDING_HOURS.get(r, r), seconds=int(rng.integers(0, 60)))
            max_trim = max(1, int(0.1 * cfg.seconds))
            start_s = 0 if rng.random() < 0.15 else int(rng.integers(1, max_trim + 1))
            end_s = -1 if rng.random() < 0.3 else int(cfg.seconds) - int(rng.integers(1, max_trim + 1))
            takes = [(t0, start_s, end_s, 0)]
            if i == 0 and r == cfg.recordings[0]:  # an aborted first take, marked discard
                takes.insert(0, (t0 - timedelta(minutes=12), 0, -1, 1))
            for when, s0, s1, discard in takes:
                while when in used:  # one camera file per second
                    when += timedelta(seconds=1)
                used.add(when)
                plan.append({
                    "animal": a.animal, "recording": int(r), "cohort": c, "treatment": a.treatment,
                    "when": when, "inject": inject, "start_s": s0, "end_s": s1, "discard": discard,
                    "serial": f"{22181510 + 7 * c}", "n_raw": n_raw,
                    "start_f": int(round(s0 * cfg.fps)),
                    "stop_f": n_raw if s1 < 0 else int(round(s1 * cfg.fps)),
                })
    return plan


def raw_name(v: dict) -> str:
    return f"{CAMERA}__{v['serial']}__{v['when']:%Y%m%d_%H%M%S}.mp4"


#: Bout on-durations (``bout_fraction``): ``BOUT_MIN_S`` + Exp(mean ``BOUT_EXP_S``) seconds.
BOUT_MIN_S, BOUT_EXP_S = 2.0, 6.0


def bouts(cfg: SynthConfig, v: dict, a, n: int) -> np.ndarray | None:
    """Per raw frame ``(n,)`` bool: is the treatment's effect on (``cfg.bout_fraction``)?

    None when ``bout_fraction`` is None (the effect is on all the time, as before the option).
    False everywhere for controls and before the injection (recording < 2). Otherwise
    alternating on/off durations: on = ``BOUT_MIN_S`` + Exp(``BOUT_EXP_S``) s (8 s mean), off =
    Exp with mean ``8 * (1 - F) / F`` s, so bouts cover a fraction F of the time on average;
    the first state is on with probability F (the stationary start); a video that would have
    no bout gets one at a random time. Drawn from their own stream ``[seed, 20, animal,
    recording, discard]``: the other random numbers of the cohort do not move.
    """
    if cfg.bout_fraction is None:
        return None
    on = np.zeros(n, bool)
    if is_control(a.treatment) or v["recording"] < 2:
        return on
    if cfg.bout_fraction >= 1:
        return ~on
    rng = np.random.default_rng([cfg.seed, 20, int(v["animal"][1:]), int(v["recording"]), int(v["discard"])])
    f, mean_on = float(cfg.bout_fraction), BOUT_MIN_S + BOUT_EXP_S
    mean_off = mean_on * (1 - f) / f
    t, state = 0.0, bool(rng.random() < f)
    seconds = n / cfg.fps
    while t < seconds:
        d = BOUT_MIN_S + rng.exponential(BOUT_EXP_S) if state else rng.exponential(mean_off)
        if state:
            on[int(round(t * cfg.fps)): int(round((t + d) * cfg.fps))] = True
        t, state = t + d, not state
    if not on.any():  # a labelled-sick video shows its sickness at least once
        d = BOUT_MIN_S + rng.exponential(BOUT_EXP_S)
        t0 = rng.uniform(0, max(seconds - d, 0.0))
        on[int(round(t0 * cfg.fps)): int(round((t0 + d) * cfg.fps))] = True
    return on


def _intensity(cfg, a, v, rng, n, bout: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Latent intensity ``(n,)`` and action units ``(n, 5)`` of one video (``bout``: :func:`bouts`;
    given, the treatment's effect is added only on its frames)."""
    dose = DOSE.get(str(a.treatment).lower(), 1.0)
    late = v["recording"] >= 2
    effect = cfg.effect_size * dose * late * (1.0 if bout is None else bout.astype(float))
    level = cfg.base_intensity + effect + a.offset + rng.normal(0, 0.03)
    dt = 1.0 / cfg.fps
    intensity = np.clip(level + ou(rng, n, dt, cfg.noise_sd, cfg.noise_tau), 0, 1)
    bias = np.array([a[f"bias_{k}"] for k in AU_NAMES])
    au_noise = np.stack([ou(rng, n, dt, 0.05, 1.0) for _ in AU_NAMES], 1)
    aus = np.clip(intensity[:, None] * AU_WEIGHTS + bias + au_noise, 0, 1)
    return intensity, aus


def _feeder(rng: np.random.Generator, cfg: SynthConfig, width: int, height: int, L: float,
            p: float | None = None):
    """A feeder post ``(x0, x1, y1)`` in some videos (probability ``p``, default ``cfg.p_occluder``), else None."""
    if rng.random() >= (cfg.p_occluder if p is None else p):
        return None
    xc, w = rng.uniform(0.2 * width, 0.8 * width), 0.3 * L
    return (xc - w / 2, xc + w / 2, rng.uniform(0.45 * height, 0.75 * height))


def is_control(treatment) -> bool:
    """A control animal's treatment (``CONTROL_TREATMENTS``, any case)."""
    return str(treatment).lower() in CONTROL_TREATMENTS


def video_shift(cfg: SynthConfig, v: dict, a: pd.Series) -> Shift:
    """The pixel :class:`~mouse_facial_expressions.synth.render.Shift` of one video: the cohort
    shifts plus its confounds (``control_brightness`` for a control, its recording's ``rec_cue``)."""
    extra = (cfg.control_brightness if is_control(a.treatment) else 0.0) + cfg.cue(v["recording"])
    return Shift(brightness=cfg.brightness + extra, contrast=cfg.contrast, blur=cfg.blur)


def _simulate(cfg: SynthConfig, v: dict, a: pd.Series, look) -> dict:
    """One camera take's motion, action units and feeder bar (everything but the pixels)."""
    width, height = cfg.size
    r_track, r_au, r_render, r_kp = (np.random.default_rng(s) for s in np.random.SeedSequence(
        [cfg.seed, 10, int(v["animal"][1:]), v["recording"], v["discard"]]).spawn(4))
    L = cfg.head_len * look.zoom
    if cfg.zoom != 1.0:
        L *= cfg.zoom
    rates = (cfg.p_rear, cfg.p_look_away, cfg.p_blur)
    handled = bool(cfg.control_handling != 0.0 and is_control(a.treatment))
    if handled:  # controls handled differently: more (or fewer) nuisance episodes
        rates = tuple(p * (1.0 + cfg.control_handling) for p in rates)
    track = simulate_track(r_track, v["n_raw"], cfg.fps, width, height, L, *rates, y_top=Y_TOP, dy=look.dy * L)
    bout = bouts(cfg, v, a, v["n_raw"])  # None unless bout_fraction is set
    intensity, aus = _intensity(cfg, a, v, r_au, v["n_raw"], bout)
    p_bar = None if cfg.occluder_treated is None or is_control(a.treatment) else cfg.occluder_treated
    bar = _feeder(r_track, cfg, width, height, L, p_bar)
    return dict(track=track, intensity=intensity, aus=aus, bar=bar, L=L, r_render=r_render, r_kp=r_kp,
                shift=video_shift(cfg, v, a), handled=handled, bout=bout)


def video_frames(cfg: SynthConfig, v: dict, a: pd.Series, look, sim: dict):
    """The uint8 ``(H, W)`` frames of one camera take (``sim``: :func:`_simulate`), before encoding."""
    width, height = cfg.size
    coat = {k: SHADE[k] + a.fur for k in ("fur", "body", "far_ear", "ear", "lid")}
    shift = None if sim["shift"].identity else sim["shift"]
    return render_frames(sim["track"], sim["aus"], sim["L"], width, height, look, sim["bar"], sim["r_render"],
                         coat, shift=shift)
