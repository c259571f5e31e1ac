"""Per-window features of the non-face modalities (``mfe train --modalities``).

``behaviour``: :func:`preprocess.behaviour.features_for_windows` on the project's
``behaviour/<video>.parquet`` tables (``mfe behaviour import``), at each window's times.
``physiology``: ``metadata/physiology.csv`` (:mod:`io.physiology`) joined to each window by
animal and recording, as change from the animal's baseline recording
(``behaviour.physiology_baseline_recording``).

Features are raw here; the fused model standardises them with the training windows' statistics
(:class:`~mouse_facial_expressions.models.parts.fusion.Fusion`). NaN marks a feature not measured
(a window without body keypoints): the model treats the modality as absent for that window.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: The modalities a model can use, in this order.
MODALITIES = ("face", "behaviour", "physiology")


def parse_modalities(text) -> tuple[str, ...]:
    """``"face,behaviour"`` (or a sequence) -> the modalities in :data:`MODALITIES` order.

    Raises:
        ValueError: an unknown name, a repeat or an empty list.
    """
    names = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if str(t).strip()]
    unknown = [n for n in names if n not in MODALITIES]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"--modalities takes a comma-separated subset of {', '.join(MODALITIES)} "
                         f"(each once), got {text!r}")
    return tuple(m for m in MODALITIES if m in names)


def video_recordings(frames: pd.DataFrame) -> pd.Series:
    """video -> recording, from a task's (or a frame store's) frame table."""
    if "recording" not in frames.columns:
        raise ValueError("physiology needs each video's recording, and this frame table has no 'recording' column")
    return frames.groupby("video")["recording"].first()


def modality_features(cfg, windows: pd.DataFrame, modalities, recordings: pd.Series | None = None
                      ) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Raw features of ``windows`` (``video, animal, start_time, end_time``) for the tabular modalities.

    Args:
        cfg: the project's config (paths, ``behaviour`` settings).
        windows: the window table.
        modalities: the model's modalities (``face`` needs no features here).
        recordings: video -> recording (:func:`video_recordings`); needed for physiology.

    Returns:
        (features with the index of ``windows``, modality -> its columns in order).

    Raises:
        ValueError: behaviour asked for and no window has body features (no ``mfe behaviour import``).
        PhysiologyError: physiology asked for and ``metadata/physiology.csv`` lacks a row of a
            window's animal and recording (the error names them), or the file is malformed.
    """
    from mouse_facial_expressions.io.physiology import load_physiology, physiology_features
    from mouse_facial_expressions.preprocess.behaviour import BEHAVIOUR_FEATURES, features_for_windows

    parts, columns = [], {}
    if "behaviour" in modalities:
        beh = features_for_windows(cfg, windows)
        if len(beh) and beh.isna().all().all():  # a model would train on a modality it never sees
            raise ValueError(f"behaviour: none of the {len(beh)} windows has body features (their videos have no table "
                             f"in {cfg.path('behaviour')}, or too few body keypoints above behaviour.pcutoff): run "
                             "`mfe behaviour import` on the body keypoint files, or leave behaviour out of --modalities")
        parts.append(beh)
        columns["behaviour"] = list(BEHAVIOUR_FEATURES)
    if "physiology" in modalities:
        if recordings is None:
            raise ValueError("physiology features need each video's recording")
        items = pd.DataFrame({"animal": windows["animal"].astype(str).to_numpy(),
                              "recording": windows["video"].map(recordings).to_numpy()}, index=windows.index)
        if items["recording"].isna().any():
            raise ValueError(f"no recording known for video(s) {sorted(set(windows['video'][items['recording'].isna()]))[:5]}")
        items["recording"] = items["recording"].astype(int)
        base = cfg.behaviour.physiology_baseline_recording
        phys = physiology_features(load_physiology(cfg), items, base)
        if set(modalities) <= {"physiology"} and (items["recording"] == base).any():
            log.warning("physiology is the only modality and %d window(s) are at the baseline recording %s, where it "
                        "measures nothing (change from itself): they score 0.5; add face or behaviour to score them",
                        int((items["recording"] == base).sum()), base)
        parts.append(phys)
        columns["physiology"] = list(phys.columns)
    if not parts:
        return pd.DataFrame(index=windows.index), columns
    return pd.concat(parts, axis=1).astype(np.float64), columns


def feature_stats(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of each column over its finite values (a column with none, or constant: 0 / 1)."""
    x = features.to_numpy(np.float64)
    x = np.where(np.isfinite(x), x, np.nan)
    n = np.isfinite(x).sum(axis=0)
    filled = np.where(np.isnan(x), 0.0, x)
    mean = np.divide(filled.sum(axis=0), n, out=np.zeros(x.shape[1]), where=n > 0)
    var = np.divide((np.where(np.isnan(x), 0.0, x - mean) ** 2).sum(axis=0), n, out=np.zeros(x.shape[1]), where=n > 0)
    std = np.sqrt(var)
    return mean, np.where(std > 0, std, 1.0)
