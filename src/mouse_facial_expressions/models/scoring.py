"""Scoring clips with trained models: the one place training's test pass and ``inference/`` share.

A batch is a dict (``clip`` and whatever fields the model's parts read: ``aux``, ``animal``, ...).
:func:`score_batch` runs every member model over it and returns each member's ``p1`` and the
members' mean of every other output the parts give (``au``, ...); :func:`score_loader` does it
for a loader and returns the prediction table, with the parts' columns. Before scoring, parts
that score against context windows (a baseline-relative model: each animal's baseline windows)
read them in :func:`set_context`.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mouse_facial_expressions.data.datasets import prepare_batch
from mouse_facial_expressions.data.predictions import PREDICTION_COLUMNS

def _autocast(device: torch.device, dtype: torch.dtype):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)


@torch.no_grad()
def set_context(models, loader: Iterable[dict] | None, channels: int = 3, dtype: torch.dtype = torch.float32) -> None:
    """Let every part of every member read the context windows (``loader``; None: none)."""
    if loader is None:
        return
    for net in models:
        device = next(net.parameters()).device
        for part in net.parts.values():
            with _autocast(device, dtype):
                part.score_context(net, (prepare_batch(b, device, channels) for b in loader))


@torch.no_grad()
def score_batch(models, batch: dict, dtype: torch.dtype = torch.float32) -> tuple[np.ndarray, dict]:
    """``(p1 (B, K) float64, {output: (B, ...) float64, the mean over members})`` of a prepared batch."""
    p1, outs = [], {}
    for net in models:
        device = next(net.parameters()).device
        b = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        with _autocast(device, dtype):
            s = net.run(b)
            extra = net.outputs(s)
        p1.append(torch.softmax(s.logits.float(), dim=-1)[:, 1].double().cpu().numpy())
        for name, value in extra.items():
            outs.setdefault(name, []).append(value.double().cpu().numpy())
    return np.stack(p1, axis=1), {k: np.mean(v, axis=0) for k, v in outs.items()}


def score_loader(models, loader, *, channels: int = 3, dtype: torch.dtype = torch.float32, fold: int = 0,
                 context=None, desc: str | None = None) -> pd.DataFrame:
    """Every window of ``loader`` scored: :data:`PREDICTION_COLUMNS` (``p1``: the members' mean) plus
    the parts' columns (e.g. ``au_ot`` ... ``mgs``). ``context``: the loader of context windows."""
    models = list(models)
    for net in models:
        net.eval()
    set_context(models, context, channels, dtype)
    device = next(models[0].parameters()).device
    tables = []
    for batch in tqdm(loader, desc=desc, leave=False, disable=None if desc else True):
        p1, outs = score_batch(models, prepare_batch(batch, device, channels), dtype)
        meta = pd.DataFrame({
            "video": list(batch["video"]), "animal": list(batch["animal"]),
            "start_time": np.asarray(batch["start_time"], dtype=np.float64),
            "end_time": np.asarray(batch["end_time"], dtype=np.float64), "label": np.asarray(batch["label"]),
            "p1": p1.mean(axis=1),
        })
        tables.append(meta.assign(**models[0].columns(outs)))
    if not tables:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    pred = pd.concat(tables, ignore_index=True).assign(fold=fold)
    return pred[PREDICTION_COLUMNS + [c for c in pred.columns if c not in PREDICTION_COLUMNS]]
