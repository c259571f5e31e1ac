"""A fused run's other modalities when ``mfe predict`` scores new videos.

A run trained with ``mfe train --modalities face,behaviour,physiology`` needs, besides the face
videos and their keypoints:

- ``behaviour``: body keypoints of the same videos (``--body FILE|DIR``: DeepLabCut or SLEAP files
  matched to videos by name, mapped with the project's ``behaviour.bodyparts``); each window's
  features are computed at its times, as training computed them (:mod:`preprocess.behaviour`);
- ``physiology``: a ``physiology.csv`` (``--physiology``: ``animal, recording, <measure>...``);
  a video's animal and recording come from its name, ``<animal>_rec<k>_...`` (the names
  ``mfe prepare`` writes), and its values are the change from the animal's baseline recording.

:func:`resolve_inputs` checks before anything is decoded that every modality scored with has
its input, and says what to pass, or how to score without it (``--modalities``). The fused
model scores any subset of its modalities (each head was trained to score alone, or with
modality dropout for ``mid`` fusion); the modalities used are logged and written to
``COLUMNS.md``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.data.modalities import parse_modalities

log = logging.getLogger(__name__)

#: ``<animal>_rec<k>`` at the start of a processed video's name.
VIDEO_NAME = re.compile(r"^(?P<animal>.+?)_rec(?P<recording>\d+)(?:_|$)")

_INPUT_FLAGS = {"behaviour": "--body FILE|DIR (body keypoints of the same videos: DeepLabCut or SLEAP files, mapped "
                             "with the project's behaviour.bodyparts)",
                "physiology": "--physiology CSV (animal, recording, one column per measure; videos named "
                              "<animal>_rec<k>_...)"}


@dataclass
class ModalityInputs:
    """What a fused run scores new videos with."""

    use: tuple[str, ...]  # the modalities scored with
    trained: tuple[str, ...]  # the run's
    columns: dict[str, list[str]]  # the run's feature columns per non-face modality
    cfg: object
    body: dict[str, Path] | None = None  # video name -> body pose file
    physiology: pd.DataFrame | None = None

    def line(self) -> str:
        left = [m for m in self.trained if m not in self.use]
        return (f"scoring with {', '.join(self.use)}" + (f" (the run's {', '.join(left)} left out: --modalities)" if left else "")
                + f" of the run's modalities {', '.join(self.trained)}")


def video_identity(video: str) -> tuple[str, int] | None:
    """``(animal, recording)`` from a processed video name, or None."""
    m = VIDEO_NAME.match(video)
    return (m["animal"], int(m["recording"])) if m else None


def resolve_inputs(ens, videos: list[Path], cfg, modalities=None, body=None, physiology=None) -> ModalityInputs | None:
    """The inputs of a fused run (None for a face-only run), checked before any decoding.

    Raises:
        ValueError: a modality to score with lacks its input (the message names the flag, and
            the ``--modalities`` that scores without it), a modality the run does not have, or
            videos whose names give no animal and recording for physiology.
    """
    from mouse_facial_expressions.config import Config

    trained = tuple(ens.modalities)
    if trained == ("face",):
        extra = [m for m in (parse_modalities(modalities) if modalities else ()) if m != "face"]
        if extra or body is not None or physiology is not None:
            raise ValueError(f"{ens.source}: this run scores the face only; --modalities/--body/--physiology are for "
                             "runs trained with mfe train --modalities")
        return None
    use = parse_modalities(modalities) if modalities else trained
    unknown = [m for m in use if m not in trained]
    if unknown:
        raise ValueError(f"{ens.source}: this run was trained on {', '.join(trained)}, not {', '.join(unknown)}")
    given = {"behaviour": body, "physiology": physiology}
    missing = [m for m in use if m in given and given[m] is None]
    if missing:
        rest = [m for m in use if m not in missing]
        hint = f"; or score without them: --modalities {','.join(rest)}" if rest else ""
        raise ValueError(f"{ens.source}: this run was trained on {', '.join(trained)}; "
                         + "; ".join(f"{m} needs {_INPUT_FLAGS[m]}" for m in missing) + hint)
    cfg = cfg or Config()
    inputs = ModalityInputs(use=use, trained=trained, columns=ens.aux_columns, cfg=cfg)
    if "behaviour" in use:
        from mouse_facial_expressions.io.keypoints import find_pose_files

        inputs.body = find_pose_files([Path(body)])
        if not inputs.body:
            raise ValueError(f"--body {body}: no DeepLabCut or SLEAP file found")
    if "physiology" in use:
        from mouse_facial_expressions.io.physiology import read_physiology

        inputs.physiology = read_physiology(physiology, encoding=cfg.metadata.encoding)
        unnamed = [v.name for v in videos if video_identity(v.stem) is None]
        if unnamed:
            raise ValueError(f"physiology is joined by animal and recording, read from video names <animal>_rec<k>_...; "
                             f"these do not say: {', '.join(unnamed[:10])}{' ...' if len(unnamed) > 10 else ''} (rename "
                             "them, or score without physiology: --modalities)")
    return inputs


def _behaviour(inputs: ModalityInputs, video: str, windows: pd.DataFrame, fps: float) -> np.ndarray:
    from mouse_facial_expressions.io.keypoints import read_pose, to_canonical
    from mouse_facial_expressions.preprocess.behaviour import frame_features, window_aggregate

    src = inputs.body.get(video)
    if src is None:
        raise FileNotFoundError(f"no body keypoint file for video {video!r} among --body's files")
    cfg = inputs.cfg
    table = to_canonical(read_pose(src, cfg.behaviour.individual), cfg.behaviour.bodyparts, extras=False)
    values = window_aggregate(frame_features(table, fps, cfg), fps, windows["start_time"].to_numpy(np.float64),
                              windows["end_time"].to_numpy(np.float64))
    return np.stack([values[c] for c in inputs.columns["behaviour"]], axis=1)


def _physiology(inputs: ModalityInputs, video: str, n: int) -> np.ndarray:
    from mouse_facial_expressions.io.physiology import physiology_features

    animal, recording = video_identity(video)
    feats = physiology_features(inputs.physiology, pd.DataFrame({"animal": [animal], "recording": [recording]}),
                                inputs.cfg.behaviour.physiology_baseline_recording)
    lacking = [c for c in inputs.columns["physiology"] if c not in feats.columns]
    if lacking:
        raise ValueError(f"--physiology: the run was trained on {', '.join(inputs.columns['physiology'])}; the file "
                         f"lacks {', '.join(c.removeprefix('phys_') for c in lacking)}")
    return np.repeat(feats[inputs.columns["physiology"]].to_numpy(np.float64), n, axis=0)


def window_features(inputs: ModalityInputs, video: str, windows: pd.DataFrame, fps: float) -> np.ndarray:
    """``(W, F)`` features of one video's windows in the run's column order; NaN for a modality
    not scored with (the model ignores it)."""
    parts = []
    for m, cols in inputs.columns.items():
        if m not in inputs.use:
            parts.append(np.full((len(windows), len(cols)), np.nan))
        elif m == "behaviour":
            parts.append(_behaviour(inputs, video, windows, fps))
        else:
            parts.append(_physiology(inputs, video, len(windows)))
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(windows), 0))
