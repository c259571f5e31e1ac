"""What a fused model fits after checkpoint selection: how much to trust each tabular modality, and stacking.

``--fusion late`` adds the modalities' log-odds. A behaviour or physiology head is trained
alone on a handful of animals (physiology is one value per video: twelve training videos in a
fold of the demo cohort), so even a modality that carries nothing gets a head that has learned
its training animals' noise, and adding its confident log-odds moves the fused score
(docs/FUSION.md measured a loss of one animal per cohort). The remedy here is to measure, on the
training animals alone, how well a head of that modality carries to animals it has not seen:

1. for each training animal, a fresh head of the modality (the same network, learning rate,
   feature noise, loss, balanced sampler and budget as in ``mfe train``) is trained on the other
   training animals and scores the held-out animal's windows (leave-one-animal-out);
2. the modality's weight ``s`` in ``[0, 1]`` is the one that makes ``sigmoid(s * log-odds)`` of
   those out-of-animal scores most likely (class-balanced log-likelihood, a grid of 101 values).

A modality whose heads do not carry to new animals gets a weight near 0 and adds next to nothing;
one that carries but is over-confident is shrunk; ``s`` never exceeds 1. The fused model's
head (trained on all training animals) is scaled by ``s`` (the fusion part's ``scale``). The face is not
cross-fitted (one face model costs minutes; a tabular head, milliseconds) and keeps weight 1.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from mouse_facial_expressions.models.parts.base import LossSettings

log = logging.getLogger(__name__)

#: The weights tried for a modality (``s``), from "ignore it" to "as trained".
SCALE_GRID = np.linspace(0.0, 1.0, 101)


def fit_scale(odds, labels) -> float:
    """The weight ``s`` in :data:`SCALE_GRID` maximising the class-balanced log-likelihood of
    ``labels`` (0/1) under ``sigmoid(s * odds)``; ties go to the smaller weight."""
    odds = np.asarray(odds, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise ValueError("a modality's weight needs out-of-animal scores of both classes")
    w = np.where(y == 1, 0.5 / (y == 1).sum(), 0.5 / (y == 0).sum())
    sign = np.where(y == 1, 1.0, -1.0)
    # -log sigmoid(sign * s * odds) = softplus(-sign * s * odds), for every s at once
    nll = (w * np.logaddexp(0.0, -sign * SCALE_GRID[:, None] * odds[None, :])).sum(1)
    return round(float(SCALE_GRID[int(np.argmin(np.round(nll, 12)))]), 2)  # the grid's steps, without float noise


def tabular_net(modality: str, columns: list[str], hidden: int = 32):
    """A face-less late-fused model of one tabular modality (the class head and the fusion part)."""
    from mouse_facial_expressions.models.parts import PartsNet

    return PartsNet("advanced", {}, {"class": {}, "fusion": dict(modalities=[modality], aux_columns={modality: list(columns)},
                                                                 fusion="late", hidden=hidden, modality_dropout=0.0)})


def train_tabular(net, aux: np.ndarray, windows, *, epochs: int, epoch_size: int, batch_size: int, lr: float,
                  weight_decay: float, use_soft_labels: bool, label_smoothing: float, seed: int):
    """Train a face-less fused model (:func:`tabular_net`) on ``aux``
    (raw features, one row per row of ``windows``), as ``mfe train`` would: AdamW at ``lr``,
    cosine schedule over ``epochs``, ``epoch_size`` windows per epoch from the balanced sampler
    (class, then video, then window), in batches of ``batch_size``. Returns ``net`` (eval mode)."""
    from mouse_facial_expressions.data.datasets import BalancedWindowSampler

    torch.manual_seed(seed)
    x = torch.as_tensor(np.asarray(aux, dtype=np.float32))
    soft_p = torch.as_tensor(windows["soft"].to_numpy(np.float32))
    soft = torch.stack([1 - soft_p, soft_p], dim=1)
    label = torch.as_tensor(windows["label"].to_numpy(np.int64))
    sampler = BalancedWindowSampler(windows.reset_index(drop=True), epoch_size, seed=seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs), eta_min=lr * 0.01)
    net.train()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        idx = torch.as_tensor(sampler.indices())
        for b in idx.split(batch_size):
            batch = {"clip": torch.zeros(len(b), 1), "soft": soft[b], "label": label[b], "aux": x[b]}
            loss, _ = net.loss(batch, LossSettings(use_soft_labels=use_soft_labels, label_smoothing=label_smoothing))
            if loss is None:
                continue
            if not loss.requires_grad:
                continue  # no window of this batch has the modality (e.g. all at the baseline recording)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return net.eval()


def cross_fit_scales(model, aux: np.ndarray, windows, *, epochs: int, epoch_size: int, batch_size: int,
                     weight_decay: float, use_soft_labels: bool, label_smoothing: float, seed: int) -> dict:
    """Each tabular modality's weight (module docstring), from the training windows ``windows``
    and their raw features ``aux`` (columns in ``model.aux_columns`` order).

    Returns ``{modality: {"scale": s, "auroc": out-of-animal window AUROC, "animals": n}}``; a
    modality whose out-of-animal scores cannot be judged (fewer than 3 training animals, one
    class only) keeps weight 1, with a warning.
    """
    from sklearn.metrics import roc_auc_score

    from mouse_facial_expressions.models.parts.fusion import TABULAR_LR

    animals = windows["animal"].astype(str).to_numpy()
    labels = windows["label"].to_numpy(np.int64)
    uniq = np.unique(animals)
    out, start = {}, 0
    for m, cols in model.aux_columns.items():
        sl = slice(start, start + len(cols))
        start += len(cols)
        odds = np.full(len(windows), np.nan)
        for k, held in enumerate(uniq if len(uniq) >= 3 else ()):  # fewer: nothing to judge (below)
            train = animals != held
            if len(np.unique(labels[train])) < 2:
                continue  # nothing to learn without the held-out animal: its windows stay unscored
            net = tabular_net(m, cols, hidden=model.encoders[m][0].out_features)
            net.parts["fusion"].set_feature_stats(model.aux_mean[sl].cpu(), model.aux_std[sl].cpu())
            train_tabular(net, aux[train, sl], windows[train], epochs=epochs, epoch_size=epoch_size,
                          batch_size=batch_size, lr=TABULAR_LR, weight_decay=weight_decay,
                          use_soft_labels=use_soft_labels, label_smoothing=label_smoothing, seed=seed + 1000 * k)
            held_rows = np.flatnonzero(~train)
            x = torch.as_tensor(np.asarray(aux[held_rows, sl], dtype=np.float32))
            with torch.no_grad():
                s = net.run({"clip": torch.zeros(len(held_rows), 1), "aux": x})
            odds[held_rows] = s.outputs["modality_odds"][:, 0].numpy()
        scored = np.isfinite(odds) & np.isfinite(aux[:, sl]).all(axis=1)
        if len(np.unique(labels[scored])) < 2:  # fewer than 3 training animals, or one class scored
            log.warning("%s: %d training animal(s), too few to judge how its scores carry to new animals: "
                        "it keeps weight 1 in the fused score", m, len(uniq))
            out[m] = {"scale": 1.0, "auroc": None, "animals": int(len(uniq))}
            continue
        out[m] = {"scale": fit_scale(odds[scored], labels[scored]),
                  "auroc": round(float(roc_auc_score(labels[scored], odds[scored])), 4), "animals": int(len(uniq))}
    return out

@torch.no_grad()
def fit_stack_on(net, fusion, loader, fold: int, channels: int = 3) -> dict | None:
    """Fit ``stacked`` fusion's modality weights on ``loader`` (the fold's validation windows);
    returns ``{modality: weight, "bias": b, "n_windows": N}``, or None (with a warning) when the
    validation windows lack a class, and the model keeps the sum of the modalities' log-odds (``late``)."""
    from mouse_facial_expressions.data.datasets import prepare_batch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net.to(device).eval()
    odds, labels = [], []
    for batch in loader:
        s = net.run(prepare_batch(batch, device, channels))
        odds.append(s.outputs["modality_odds"].float().cpu())
        labels.append(np.asarray(batch["label"]))
    y = np.concatenate(labels) if labels else np.zeros(0, dtype=int)
    if len(np.unique(y)) < 2:
        log.warning("fold %d: the validation windows hold %s: the modalities are averaged, not stacked", fold,
                    "no window" if not len(y) else "one class only")
        return None
    fusion.fit_stack(torch.cat(odds).numpy(), y)
    w = fusion.stack.cpu().tolist()
    return {**{m: round(v, 4) for m, v in zip(fusion.modalities, w[:-1])}, "bias": round(w[-1], 4), "n_windows": int(len(y))}


def fit_scales_on(net, fusion, data: dict, p, fold: int) -> dict:
    """Set late fusion's tabular modality weights by leave-one-animal-out cross-fitting on the
    training windows (:func:`cross_fit_scales`, with the run's own budget); logs
    and returns them (``{modality: {"scale", "auroc", "animals"}}``)."""
    train = data["train"]
    weights = cross_fit_scales(fusion, train.field_values("aux"), train.windows, epochs=p.epochs,
                               epoch_size=len(data["train_sampler"]), batch_size=p.train_batch_size,
                               weight_decay=p.weight_decay, use_soft_labels=p.use_soft_labels,
                               label_smoothing=p.label_smoothing, seed=p.seed)
    fusion.set_scales({m: w["scale"] for m, w in weights.items()})
    log.info("fold %d: weights of the tabular modalities in the fused score (leave-one-animal-out on the training "
             "animals): %s", fold, ", ".join(f"{m} {w['scale']:.2f} (out-of-animal AUROC "
                                              f"{'n/a' if w['auroc'] is None else format(w['auroc'], '.2f')})" for m, w in weights.items()))
    return weights
