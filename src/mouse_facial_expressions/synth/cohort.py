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
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.io.atomic import atomic_path
from mouse_facial_expressions.io.video import VideoWriter
from mouse_facial_expressions.project import commented_yaml, init_project
from mouse_facial_expressions.synth.params import SynthConfig, make_config
from mouse_facial_expressions.synth.physiology import MEASURED
from mouse_facial_expressions.synth.render import cohort_looks
# Re-exported: the parts of a cohort live in sibling modules (simulation, DLC output, truth
# tables, summary); these names stay importable from here, where callers found them first.
from mouse_facial_expressions.synth.describe import MARKER, NEUTRAL, summary  # noqa: F401
from mouse_facial_expressions.synth.dlc_output import SCORER, dlc_table, write_pose_files  # noqa: F401
from mouse_facial_expressions.synth.takes import (AU_WEIGHTS, BOUT_EXP_S, BOUT_MIN_S, CAMERA, _simulate,  # noqa: F401
                                                  _video_plan, bouts, is_control, make_animals, mss, raw_name,
                                                  video_frames, video_shift)
from mouse_facial_expressions.synth.truth import (_body_part, _physiology, _truth_part, modality_truth,  # noqa: F401
                                                  truth_table, video_name)

#: Body keypoints of the open-field track (relative to the project).
BODY_DIR = Path("keypoints") / "body"


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
