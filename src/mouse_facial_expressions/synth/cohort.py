"""A whole synthetic project: animals, conditions, camera videos, metadata, DLC output, truth.

:func:`generate_cohort` writes what a lab has (raw camera videos, ``raw_videos.csv``,
``treatments.csv``, DeepLabCut output of every trimmed video, open-field body keypoints and
physiology) plus the ground truth (``truth/truth.parquet``, ``truth/body.parquet``,
``truth/physiology.csv``, ``truth/animals.csv``, ``truth/synth.json``).

Trim convention: a row with ``start = "M:SS"`` and ``end = "M:SS"`` keeps raw frames
``round(start_s * fps) <= raw < round(end_s * fps)`` (``end = -1``: to the last frame), and
frame ``i`` of the trimmed video is raw frame ``round(start_s * fps) + i``. Every raw frame
carries its raw index as a stamp (:mod:`~mouse_facial_expressions.synth.stamp`).

``truth/truth.parquet`` has one row per frame of each trimmed video:
``video, raw_video, animal, recording, treatment, cohort, frame`` (trimmed index),
``raw_frame, time`` (s, trimmed), ``side`` ('left'|'right': the side of the head that faces
the camera; 'left' = snout points to the image left), ``visible`` (a clean side portrait in
view: not looking away or turning, nose, eye and ear of the facing side inside the frame),
``blurred`` (motion blur >= 3 px), ``occluded`` (the feeder bar covers the facing side's nose,
eye or ear), ``rearing``, ``looking_away`` (head turned: ``yaw < 0.6``), ``yaw`` (1 = pure
side view), ``au_orbital, au_ear, au_nose, au_cheek, au_whisker`` (0..1), ``intensity``
(latent condition intensity), ``label_true`` (1 = treated and recording >= 2), ``label``
(``label_true`` with whole animals flipped by ``label_noise``) and the true landmark
positions ``<landmark>_x, <landmark>_y`` in raw (= trimmed) video pixels. With
``bout_fraction`` set there is also ``bout`` (True where the treatment's effect is on: see
:func:`bouts`; False for controls and baseline recordings).

Then the shifts and confounds of the video (``SynthConfig``; constant within a video, neutral
values when the options are at their defaults): ``shift_brightness`` (grey levels added to
every pixel of the video: ``brightness`` + ``control_brightness`` for a control + its
recording's ``rec_cue``), ``shift_contrast``, ``shift_zoom``, ``shift_blur`` (Gaussian sigma,
px), ``control_bright`` (the ``control_brightness`` part of ``shift_brightness``), ``cue``
(the ``rec_cue`` part), ``occluder`` (the feeder bar is in view somewhere in the video; whether
it covers the face is ``occluded``) and ``handled`` (a control whose nuisance event rates
``control_handling`` changed).

DLC contract: the facing side's nose, eye and ear all have a likelihood above 0.9 exactly
where ``visible & ~occluded``; hidden points (the far-side eye and ear always) get below 0.3.

Behaviour and physiology (simulated, not rendered; each from its own random stream, so the
videos and the files above do not change with them):

- ``keypoints/body/<video>`` + ``BODY_SCORER`` + ``.h5|.csv``: DeepLabCut single-animal
  tables of an overhead open-field track (:mod:`~mouse_facial_expressions.synth.body`: its own
  480x480 px frame), bodyparts ``nose, left_ear, right_ear, body_centre, tail_base``, one row
  per frame of the trimmed video (as the face DLC files). The frame's latent ``intensity``
  times ``behaviour_effect`` lowers speed, rearing, body length and head movement.
- ``truth/body.parquet``: per frame ``video, animal, recording, frame, intensity``,
  ``activity`` (the take's activity factor), ``size`` (the animal's relative body length),
  ``speed_true`` (px/s of the body centre), ``rearing_true``, ``elongation_true`` (nose to
  tail base, px), ``head_true`` (head angle to the body axis, rad) and the true
  ``<bodypart>_x, <bodypart>_y``.
- ``metadata/physiology.csv``: ``animal, recording, temperature_c, weight_g``, one row per
  trimmed video (:mod:`~mouse_facial_expressions.synth.physiology`: the video's mean intensity
  above ``base_intensity`` times ``physiology_effect`` and the animal's gain lowers both);
  ``truth/physiology.csv`` adds ``gain, excess, temperature_true, weight_true,
  temperature_normal, weight_normal``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from mouse_facial_expressions.config import CANONICAL_LANDMARKS, Config
from mouse_facial_expressions.io.atomic import atomic_path
from mouse_facial_expressions.io.dlc import write_dlc
from mouse_facial_expressions.io.video import VideoWriter
from mouse_facial_expressions.project import commented_yaml, init_project
from mouse_facial_expressions.synth.body import BODY_SCORER, BODYPARTS, take_body
from mouse_facial_expressions.synth.motion import PORTRAIT_YAW, ou, simulate_track
from mouse_facial_expressions.synth.mouse import AU_NAMES, SHADE, landmarks
from mouse_facial_expressions.synth.params import (CONTROL_TREATMENTS, DOSE, RECORDING_HOURS,
                                                   SynthConfig, make_config)
from mouse_facial_expressions.synth.physiology import MEASURED, physiology_table
from mouse_facial_expressions.synth.render import Y_TOP, Shift, cohort_looks, occluded_mask, render_frames

SCORER = "DLC_resnet50_mfeSynthJan1shuffle1_100000"
CAMERA = "sidecam"
#: Relative weight of the latent intensity in each action unit.
AU_WEIGHTS = np.array([1.0, 0.9, 0.8, 0.8, 0.85])
MARKER = "synth.json"
#: Body keypoints of the open-field track (relative to the project).
BODY_DIR = Path("keypoints") / "body"


def mss(seconds: int) -> str:
    """``75 -> "1:15"`` (the metadata's trim format)."""
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def _atomic(path: Path, write) -> None:
    """``write(tmp)`` then rename onto ``path`` (:func:`io.atomic.atomic_path`)."""
    with atomic_path(path) as tmp:
        write(tmp)


def _prepare_folder(out: Path) -> None:
    """Refuse to overwrite a folder that is not a previous synthetic cohort."""
    if out.exists() and any(out.iterdir()):
        if not (out / "truth" / MARKER).is_file():
            raise FileExistsError(f"{out}: exists and is not empty (and is no synthetic cohort); "
                                  "choose a new folder")
        shutil.rmtree(out)


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


def _in_frame(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    return (xy[..., 0] > 2) & (xy[..., 0] < width - 3) & (xy[..., 1] > 2) & (xy[..., 1] < height - 3)


#: Least head foreshortening at which DLC still finds each facing-side point.
_MIN_YAW = {"nose": 0.5, "eye": PORTRAIT_YAW, "ear": 0.3}


def _keypoints(track, lm, bar, rng, width, height):
    """Observed DLC keypoints ``{name: (x, y, likelihood)}`` and the truth flags.

    A point is seen (likelihood 0.92-0.999, ~0.7 px jitter, 1.5 px when blurred) when it
    is on the facing side, inside the frame, not under the feeder bar and the head is not
    turned too far; otherwise it is hidden (likelihood 0.005-0.25, 3 px jitter).
    """
    n = len(track["x"])
    right = track["s"] > 0
    yaw = track["yaw"]
    blurred = track["blur_len"] >= 3
    near = np.stack([lm["nose"], np.where(right[:, None], lm["right_eye"], lm["left_eye"]),
                     np.where(right[:, None], lm["right_ear"], lm["left_ear"])], 1)  # (n, 3, 2)
    visible = (yaw >= PORTRAIT_YAW) & _in_frame(near, width, height).all(1)
    occluded = occluded_mask(near, bar).any(1)
    obs = {}
    for name in CANONICAL_LANDMARKS:
        xy = lm[name]
        part = name.split("_")[-1]
        facing = np.ones(n, bool) if part == "nose" else (right == name.startswith("right"))
        seen = facing & (yaw >= _MIN_YAW[part]) & _in_frame(xy, width, height) & ~occluded_mask(xy, bar)
        sd = np.where(seen, np.where(blurred, 1.5, 0.7), 3.0)
        lik = np.where(seen, rng.uniform(0.92, 0.999, n), rng.uniform(0.005, 0.25, n))
        obs[name] = (xy[:, 0] + rng.normal(0, 1, n) * sd, xy[:, 1] + rng.normal(0, 1, n) * sd, lik)
    return obs, visible, occluded, blurred


def dlc_table(obs: dict, scorer: str = SCORER, bodyparts=CANONICAL_LANDMARKS) -> pd.DataFrame:
    """DeepLabCut's single-animal layout: columns (scorer, bodyparts, coords), rows = frames."""
    cols = pd.MultiIndex.from_product([[scorer], list(bodyparts), ["x", "y", "likelihood"]],
                                      names=["scorer", "bodyparts", "coords"])
    data = np.stack([np.asarray(obs[b][k], dtype=np.float64) for b in bodyparts for k in range(3)], 1)
    return pd.DataFrame(data, columns=cols)


def write_pose_files(df: pd.DataFrame, folder: Path, video: str, scorer: str = SCORER) -> Path:
    """Write ``<video><scorer>.h5`` and ``.csv`` as DLC's analysis does (:func:`io.dlc.write_dlc`)."""
    stem = folder / f"{video}{scorer}"
    write_dlc(stem.with_suffix(".h5"), df)
    write_dlc(stem.with_suffix(".csv"), df)
    return stem.with_suffix(".h5")


def _feeder(rng: np.random.Generator, cfg: SynthConfig, width: int, height: int, L: float,
            p: float | None = None):
    """A feeder post ``(x0, x1, y1)`` in some videos (probability ``p``, default ``cfg.p_occluder``), else None."""
    if rng.random() >= (cfg.p_occluder if p is None else p):
        return None
    xc, w = rng.uniform(0.2 * width, 0.8 * width), 0.3 * L
    return (xc - w / 2, xc + w / 2, rng.uniform(0.45 * height, 0.75 * height))


def _metadata(plan: list[dict], animals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``raw_videos.csv`` and ``treatments.csv`` in the original schema (+ ``cohort``)."""
    rows = [{
        "animal": v["animal"], "recording": v["recording"], "camera": CAMERA,
        "year": v["when"].year, "month": v["when"].month, "day": v["when"].day,
        "hour": v["when"].hour, "minutes": v["when"].minute, "seconds": v["when"].second,
        "start": mss(v["start_s"]) if v["start_s"] > 0 else "0",
        "end": mss(v["end_s"]) if v["end_s"] >= 0 else "-1", "discard": v["discard"],
    } for v in plan]
    raw = pd.DataFrame(rows)
    inject = {v["animal"]: v["inject"] for v in plan}
    discarded = {v["animal"] for v in plan if v["discard"]}
    treat = pd.DataFrame({
        "mouse": animals.animal,
        "date_of_birth": [f"{inject[m].date() - timedelta(weeks=10 + i % 3):%Y-%m-%d}"
                          for i, m in enumerate(animals.animal)],
        "treatment": animals.treatment,
        "injection_time": [f"{inject[m]:%Y-%m-%d %H:%M}" for m in animals.animal],
        "notes": ["first take aborted" if m in discarded else "" for m in animals.animal],
        "cohort": animals.cohort,
        "sex": animals.sex,
    })
    return raw, treat


def _write_project_config(out: Path, cfg: SynthConfig, preset: str):
    pcfg = init_project(out, force=True)
    pcfg.project.name = f"synth-{preset}"
    pcfg.extract.crop_size = cfg.crop_size
    pcfg.extract.target_fps = cfg.fps / 2
    pcfg.keypoints.pcutoff = 0.6
    _atomic(out / "mfe.yaml", lambda p: p.write_text(commented_yaml(pcfg)))
    return pcfg


def is_control(treatment) -> bool:
    """A control animal's treatment (``CONTROL_TREATMENTS``, any case)."""
    return str(treatment).lower() in CONTROL_TREATMENTS


def video_shift(cfg: SynthConfig, v: dict, a: pd.Series) -> Shift:
    """The pixel :class:`~mouse_facial_expressions.synth.render.Shift` of one video: the cohort
    shifts plus its confounds (``control_brightness`` for a control, its recording's ``rec_cue``)."""
    extra = (cfg.control_brightness if is_control(a.treatment) else 0.0) + cfg.cue(v["recording"])
    return Shift(brightness=cfg.brightness + extra, contrast=cfg.contrast, blur=cfg.blur)


def generate_cohort(out: str | Path, preset: str = "tiny", **overrides) -> Path:
    """Write a complete synthetic project with known ground truth into ``out``.

    Args:
        out: project folder (created; a previous synthetic cohort there is replaced).
        preset: ``tiny``, ``demo`` or ``bench`` (see ``PRESETS``).
        **overrides: any :class:`SynthConfig` field, e.g. ``mice=6``,
            ``treatments=["saline", "high"]``, ``recordings=[1, 4]``, ``seconds``, ``fps``,
            ``size=(W, H)``, ``effect_size``, ``label_noise``, ``cohorts``, ``seed``, and the
            shifts and confounds ``brightness``, ``contrast``, ``zoom``, ``blur``,
            ``control_brightness``, ``rec_cue`` (e.g. ``{4: 30}``), ``occluder_treated``,
            ``control_handling``, and how informative the other modalities are,
            ``behaviour_effect`` and ``physiology_effect`` (0 = not at all, 1 = default).

    Returns:
        ``out`` as a Path.

    Raises:
        FileExistsError: ``out`` is a non-empty folder that is no synthetic cohort.
        ValueError: unknown preset or option, or invalid values.
    """
    cfg = make_config(preset, **overrides)
    known = Config().video.recording_labels
    missing = [r for r in cfg.recordings if r not in known]
    if missing:  # checked before anything is written
        raise ValueError(f"recordings {missing} have no label in video.recording_labels (known: {sorted(known)})")
    out = Path(out)
    _prepare_folder(out)
    pcfg = _write_project_config(out, cfg, preset)
    marker = out / "truth" / MARKER  # first: a crashed run can be replaced by the next one
    _atomic(marker, lambda p: p.write_text(json.dumps({"preset": preset, "complete": False})))
    animals = make_animals(cfg)
    looks = cohort_looks(np.random.default_rng(np.random.SeedSequence([cfg.seed, 3])), cfg.cohorts, cfg.lighting)
    plan = _video_plan(cfg, animals)
    by_name = animals.set_index("animal")
    truth, body = [], []
    for v in tqdm(plan, desc="synth videos", unit="video", disable=None):
        parts = _make_video(cfg, pcfg, v, by_name.loc[v["animal"]], looks[v["cohort"]])
        if parts is not None:
            truth.append(parts[0])
            body.append(parts[1])

    raw, treat = _metadata(plan, animals)
    meta = pcfg.path("metadata")
    _atomic(meta / "raw_videos.csv", lambda p: raw.to_csv(p, index=False))
    _atomic(meta / "treatments.csv", lambda p: treat.to_csv(p, index=False))
    table = pd.concat(truth, ignore_index=True)
    _atomic(out / "truth" / "truth.parquet", lambda p: table.to_parquet(p, index=False))
    body_table = pd.concat(body, ignore_index=True)
    _atomic(out / "truth" / "body.parquet", lambda p: body_table.to_parquet(p, index=False))
    physiology = _physiology(cfg, body_table)
    _atomic(meta / "physiology.csv", lambda p: physiology[MEASURED].to_csv(p, index=False))
    _atomic(out / "truth" / "physiology.csv", lambda p: physiology.to_csv(p, index=False))
    _atomic(out / "truth" / "animals.csv", lambda p: animals.to_csv(p, index=False))
    info = {"preset": preset, "complete": True, "config": cfg.to_dict(), "scorer": SCORER,
            "crop_size": cfg.crop_size, "looks": [asdict(lk) for lk in looks]}
    _atomic(marker, lambda p: p.write_text(json.dumps(info, indent=2)))
    return out


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


def _make_video(cfg: SynthConfig, pcfg, v: dict, a: pd.Series, look) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Render one camera video; for a kept take also write its face and body DLC files and
    return its truth and body truth."""
    width, height = cfg.size
    sim = _simulate(cfg, v, a, look)
    with VideoWriter(pcfg.path("raw_videos") / raw_name(v), cfg.fps, width, height, gray=True, crf=cfg.crf) as w:
        for frame in video_frames(cfg, v, a, look, sim):
            w.write(frame)
    if v["discard"]:
        return None
    labels = pcfg.video.recording_labels
    return (_truth_part(cfg, labels, v, a, sim, pcfg.path("dlc")),
            _body_part(cfg, labels, v, sim["intensity"], pcfg.root / BODY_DIR))


def video_name(v: dict, recording_labels: dict) -> str:
    """The trimmed (processed) video's name ``<animal>_rec<k>_<label>``."""
    return f"{v['animal']}_rec{v['recording']}_{recording_labels[v['recording']]}"


def _truth_part(cfg: SynthConfig, recording_labels: dict, v: dict, a: pd.Series, sim: dict,
                dlc_folder: Path | None) -> pd.DataFrame:
    """The truth rows of one kept take (and its DLC files in ``dlc_folder``, when given)."""
    width, height = cfg.size
    track, aus = sim["track"], sim["aus"]
    lm = landmarks(track["x"], track["y"], track["s"].astype(float), track["yaw"], track["pitch"], sim["L"])
    obs, visible, occluded, blurred = _keypoints(track, lm, sim["bar"], sim["r_kp"], width, height)
    sl = slice(v["start_f"], v["stop_f"])
    video = video_name(v, recording_labels)
    if dlc_folder is not None:
        write_pose_files(dlc_table({k: tuple(arr[sl] for arr in xyl) for k, xyl in obs.items()}), dlc_folder, video)
    raw_idx = np.arange(v["n_raw"])[sl]
    treated = not is_control(a.treatment)
    label_true = int(treated and v["recording"] >= 2)
    part = pd.DataFrame({
        "video": video, "raw_video": raw_name(v), "animal": v["animal"], "recording": v["recording"],
        "treatment": a.treatment, "cohort": v["cohort"], "frame": np.arange(len(raw_idx)),
        "raw_frame": raw_idx, "time": np.arange(len(raw_idx)) / cfg.fps,
        "side": np.where(track["s"][sl] > 0, "right", "left"), "visible": visible[sl],
        "blurred": blurred[sl], "occluded": occluded[sl], "rearing": track["rearing"][sl],
        "looking_away": track["yaw"][sl] < PORTRAIT_YAW, "yaw": track["yaw"][sl],
        **{f"au_{k}": aus[sl, j] for j, k in enumerate(AU_NAMES)},
        "intensity": sim["intensity"][sl], "label": label_true ^ int(a.label_flipped), "label_true": label_true,
    })
    for name, xy in lm.items():
        part[f"{name}_x"], part[f"{name}_y"] = xy[sl, 0], xy[sl, 1]
    shift = sim["shift"]  # the video's shifts and confounds (constant within the video)
    part["shift_brightness"] = float(shift.brightness)
    part["shift_contrast"] = float(shift.contrast)
    part["shift_zoom"] = float(cfg.zoom)
    part["shift_blur"] = float(shift.blur)
    part["control_bright"] = float(cfg.control_brightness if not treated else 0.0)
    part["cue"] = cfg.cue(v["recording"])
    part["occluder"] = sim["bar"] is not None
    part["handled"] = bool(sim["handled"])
    if sim.get("bout") is not None:  # bout_fraction set (left out, the table keeps its old columns)
        part["bout"] = sim["bout"][sl]
    return part


def _body_part(cfg: SynthConfig, recording_labels: dict, v: dict, intensity: np.ndarray,
               folder: Path | None) -> pd.DataFrame:
    """The body truth rows of one kept take (and its body DLC files in ``folder``, when given)."""
    obs, body = take_body(cfg.seed, v["animal"], v["recording"], v["discard"], intensity, cfg.fps,
                          cfg.behaviour_effect)
    sl = slice(v["start_f"], v["stop_f"])
    video = video_name(v, recording_labels)
    if folder is not None:
        table = dlc_table({k: tuple(arr[sl] for arr in xyl) for k, xyl in obs.items()}, BODY_SCORER, BODYPARTS)
        write_pose_files(table, folder, video, BODY_SCORER)
    part = pd.DataFrame({
        "video": video, "animal": v["animal"], "recording": v["recording"],
        "frame": np.arange(sl.stop - sl.start), "intensity": intensity[sl], "activity": body["activity"],
        "size": body["size"], "speed_true": body["speed"][sl], "rearing_true": body["rearing"][sl],
        "elongation_true": body["elongation"][sl], "head_true": body["head"][sl],
    })
    for name, xy in body["points"].items():
        part[f"{name}_x"], part[f"{name}_y"] = xy[sl, 0], xy[sl, 1]
    return part


def _physiology(cfg: SynthConfig, body: pd.DataFrame) -> pd.DataFrame:
    """:func:`~mouse_facial_expressions.synth.physiology.physiology_table` of every trimmed video."""
    takes = body.groupby(["animal", "recording"], sort=False).intensity.mean().reset_index()
    return physiology_table(cfg, takes)


def _kept_takes(cfg: SynthConfig):
    """``(v, a, sim)`` of every kept camera take (:func:`_simulate`; nothing rendered)."""
    animals = make_animals(cfg)
    looks = cohort_looks(np.random.default_rng(np.random.SeedSequence([cfg.seed, 3])), cfg.cohorts, cfg.lighting)
    by_name = animals.set_index("animal")
    for v in _video_plan(cfg, animals):
        if not v["discard"]:
            a = by_name.loc[v["animal"]]
            yield v, a, _simulate(cfg, v, a, looks[v["cohort"]])


def truth_table(preset: str = "tiny", **overrides) -> pd.DataFrame:
    """``truth/truth.parquet`` of the cohort ``generate_cohort(out, preset, **overrides)`` would
    write, without rendering or writing anything: a second per video instead of minutes per
    cohort, so oracle accuracies can be averaged over many synthetic seeds."""
    cfg = make_config(preset, **overrides)
    labels = Config().video.recording_labels
    return pd.concat([_truth_part(cfg, labels, v, a, sim, None) for v, a, sim in _kept_takes(cfg)],
                     ignore_index=True)


def modality_truth(preset: str = "tiny", **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``truth/body.parquet`` and ``truth/physiology.csv`` (its first four columns are
    ``metadata/physiology.csv``) of the cohort ``generate_cohort(out, preset, **overrides)``
    would write, without rendering or writing anything."""
    cfg = make_config(preset, **overrides)
    labels = Config().video.recording_labels
    body = pd.concat([_body_part(cfg, labels, v, sim["intensity"], None) for v, _, sim in _kept_takes(cfg)],
                     ignore_index=True)
    return body, _physiology(cfg, body)


def summary(project: str | Path) -> str:
    """A few lines on what a synthetic project holds and where."""
    project = Path(project)
    raw = pd.read_csv(project / "metadata" / "raw_videos.csv")
    truth = pd.read_parquet(project / "truth" / "truth.parquet")
    per_video = truth.groupby("video").label_true.first()
    good = truth.visible & ~truth.occluded
    return "\n".join([
        f"synthetic cohort in {project}",
        f"  raw videos        {len(raw)} ({int(raw.discard.sum())} discarded) in videos/raw/",
        f"  trimmed videos    {len(per_video)} ({int(per_video.sum())} with label 1), "
        f"{len(truth)} frames, {good.mean():.0%} clean side portraits",
        f"  animals           {truth.animal.nunique()} in {truth.cohort.nunique()} cohort(s), "
        f"treatments {', '.join(sorted(truth.treatment.unique()))}",
        "  metadata          metadata/raw_videos.csv, metadata/treatments.csv",
        "  DLC keypoints     keypoints/dlc/<video>" + SCORER + ".h5|.csv",
        *_modality_lines(project),
        "  ground truth      truth/truth.parquet, truth/animals.csv, truth/synth.json",
        *_shift_lines(project),
    ])


def _modality_lines(project: Path) -> list[str]:
    """``summary``'s lines on the body keypoints and physiology, with how informative each is."""
    if not (project / "metadata" / "physiology.csv").is_file():
        return []  # a cohort from before the other modalities
    config = json.loads((project / "truth" / MARKER).read_text()).get("config", {})
    return [
        "  body keypoints    keypoints/body/<video>" + BODY_SCORER + ".h5|.csv "
        f"(open field; behaviour_effect={config.get('behaviour_effect', 1.0):g})",
        "  physiology        metadata/physiology.csv (temperature_c, weight_g; "
        f"physiology_effect={config.get('physiology_effect', 1.0):g})",
        "  their truth       truth/body.parquet, truth/physiology.csv (0 effect = no information)",
    ]


#: Shift and confound settings with the value that changes nothing.
NEUTRAL = {"brightness": 0.0, "contrast": 1.0, "zoom": 1.0, "blur": 0.0, "control_brightness": 0.0,
           "rec_cue": [], "occluder_treated": None, "control_handling": 0.0}


def _shift_lines(project: Path) -> list[str]:
    """``summary``'s line on the shifts and confounds that are set (none: no line)."""
    try:
        config = json.loads((project / "truth" / MARKER).read_text()).get("config", {})
    except (OSError, ValueError):
        return []
    parts = []
    for key, neutral in NEUTRAL.items():
        value = config.get(key, neutral)
        if value != neutral:
            text = ",".join(f"{r}:{g:+g}" for r, g in value) if key == "rec_cue" else f"{value:g}"
            parts.append(f"{key}={text}")
    return [f"  shifts/confounds  {', '.join(parts)} (truth columns shift_*, control_bright, cue, "
            "occluder, handled)"] if parts else []
