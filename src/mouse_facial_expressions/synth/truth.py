"""The truth tables of a synthetic cohort, per kept take: face truth, body truth, physiology.

:func:`_truth_part` and :func:`_body_part` give one take's rows of ``truth/truth.parquet`` and
``truth/body.parquet`` (and write its DLC files when given a folder); :func:`truth_table` and
:func:`modality_truth` give a whole cohort's tables without rendering or writing anything. The
columns are described in :mod:`~mouse_facial_expressions.synth.cohort`. Apart from the writer
because oracle accuracies need these tables for many seeds, in seconds, with no video.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.synth.body import BODY_SCORER, BODYPARTS, take_body
from mouse_facial_expressions.synth.dlc_output import _keypoints, dlc_table, write_pose_files
from mouse_facial_expressions.synth.motion import PORTRAIT_YAW
from mouse_facial_expressions.synth.mouse import AU_NAMES, landmarks
from mouse_facial_expressions.synth.params import SynthConfig, make_config
from mouse_facial_expressions.synth.physiology import physiology_table
from mouse_facial_expressions.synth.render import cohort_looks
from mouse_facial_expressions.synth.takes import _simulate, _video_plan, is_control, make_animals, raw_name


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
