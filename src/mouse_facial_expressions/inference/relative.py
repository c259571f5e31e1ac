"""Scoring with a baseline-relative run (``mfe train --baseline-recording K``) on a cohort.

Each animal's reference is, per fold model, the mean embedding of its windows from recording
``K`` (its own baseline); every other window is scored on ``embed(window) - reference``. The
cohort needs its baseline recordings, not its labels. Baseline windows are not scored: against
their own mean they would be "no change" by construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mouse_facial_expressions.data.datasets import baseline_frames
from mouse_facial_expressions.inference.ensemble import FoldEnsemble
from mouse_facial_expressions.inference.predict import clip_batches
from mouse_facial_expressions.models.advanced import mean_by_animal


def split_baseline(windows: pd.DataFrame, recording_of: dict[str, int], recording: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(baseline windows, the others) of a window table, by each window's video's recording."""
    rec = pd.DataFrame({"recording": windows["video"].astype(str).map(recording_of)})
    is_base = baseline_frames(rec, recording)
    return windows[is_base].reset_index(drop=True), windows[~is_base].reset_index(drop=True)


def animal_references(baseline: pd.DataFrame, ens: FoldEnsemble, crops_of, batch_size: int = 16) -> dict[str, list[torch.Tensor]]:
    """animal -> per fold model, the mean ``(D,)`` embedding of the animal's baseline windows."""
    per_member: list[list[torch.Tensor]] = [[] for _ in range(len(ens))]
    for _, clips in clip_batches(baseline, ens, batch_size, crops_of=crops_of):
        for k, z in enumerate(ens.embed(clips)):  # per member (B, D)
            per_member[k].append(z)
    means = [mean_by_animal(baseline["animal"], torch.cat(zs)) for zs in per_member if zs]
    return {a: [m[a] for m in means] for a in (means[0] if means else {})}


def score_relative(windows: pd.DataFrame, refs: dict[str, list[torch.Tensor]], ens: FoldEnsemble, crops_of,
                   batch_size: int = 16) -> np.ndarray:
    """Per-member ``p1`` ``(W, K)`` of ``windows`` against their animals' references."""
    animals = windows["animal"].astype(str).to_numpy()
    lacking = sorted(set(animals) - set(refs))
    if lacking:
        raise ValueError(f"animal(s) {', '.join(lacking)} have no baseline window (recording {ens.baseline_recording}) to "
                         "score against: a baseline-relative run needs each animal's baseline recording in the task")
    out = np.empty((len(windows), len(ens)))
    for a, clips in clip_batches(windows, ens, batch_size, crops_of=crops_of):
        rows = animals[a:a + len(clips)]
        member_refs = [torch.stack([refs[r][k] for r in rows]) for k in range(len(ens))]
        out[a:a + len(clips)] = ens.predict(clips, member_refs)
    return out
