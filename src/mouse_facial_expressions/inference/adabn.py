"""AdaBN: a model's BatchNorm statistics recomputed on a new cohort's crops, without labels.

BatchNorm layers normalise each channel with running statistics (mean, variance) collected on
the training crops. A new cohort's recording conditions (light, camera, contrast) shift those
activations, and a shift early in the backbone moves every score: the ranking can survive
while the operating point does not. AdaBN (Li et al. 2016, "Revisiting batch normalization
for practical domain adaptation") replaces the running statistics by the new cohort's: the
statistics are reset and recomputed as a cumulative average (``momentum=None``) over forward
passes of the new cohort's clips, with only the BatchNorm layers in training mode (dropout
and everything else stay in eval mode) and no gradients. No weight changes and no label is
used; what it assumes is that the new cohort's crops, taken together, differ from the
training crops in their channel statistics only (and that the cohort is not, say, all sick
animals whose face differences the statistics would then absorb: a mix like the training
cohort's is safest).

``mfe evaluate RUN --task X --recalibrate adabn`` feeds it the windows that zero-shot scoring
forms (``inference.zeroshot.task_clips``) and scores the task again with the adapted copies.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch

from mouse_facial_expressions.inference.ensemble import FoldEnsemble

_BN = torch.nn.modules.batchnorm._BatchNorm


def bn_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The BatchNorm layers of a model that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]


@torch.no_grad()
def adapt_models(models: list[torch.nn.Module], batches: Iterable[torch.Tensor]) -> tuple[list[torch.nn.Module], dict]:
    """Copies of ``models`` with BatchNorm statistics recomputed on ``batches``.

    Args:
        models: the models (left unchanged).
        batches: input batches (for the clip models ``(B, T, C, H, W)`` float32 normalised
            clips, as scoring feeds them); iterated once, every batch goes through every model.
            Batches of one clip are fine for 2-D BatchNorm (it averages over frames and pixels).

    Returns:
        ``(adapted models in eval mode, info)``; ``info``: ``n_batches``, ``n_clips`` and
        ``bn_layers`` (per model). Only ``running_mean``, ``running_var`` and
        ``num_batches_tracked`` differ from the originals.

    Raises:
        ValueError: ``batches`` was empty.
    """
    adapted = [copy.deepcopy(m) for m in models]
    layers = [bn_layers(m) for m in adapted]
    saved = [[bn.momentum for bn in bns] for bns in layers]
    for m, bns in zip(adapted, layers):
        m.eval()  # dropout off, everything in inference mode ...
        for bn in bns:  # ... but BatchNorm, which collects statistics
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over all batches
            bn.train()
    n_batches = n_clips = 0
    for clips in batches:
        for m in adapted:
            param = next(m.parameters(), None)
            x = clips.to(param.device if param is not None else clips.device, torch.float32)
            m.embed(x) if getattr(m, "relative", False) else m(x)  # a relative model's BatchNorm layers are all in embed
        n_batches += 1
        n_clips += int(len(clips))
    for m, bns, moms in zip(adapted, layers, saved):
        for bn, mom in zip(bns, moms):
            bn.momentum = mom
        m.eval()
    if n_batches == 0:
        raise ValueError("adabn: no clips to recompute the BatchNorm statistics from")
    return adapted, {"n_batches": n_batches, "n_clips": n_clips, "bn_layers": [len(b) for b in layers]}


def adapt_ensemble(ens: FoldEnsemble, batches: Iterable[torch.Tensor]) -> tuple[FoldEnsemble, dict]:
    """A :class:`FoldEnsemble` of adapted copies of ``ens``'s members (:func:`adapt_models`);
    ``ens`` is left as it was."""
    models, info = adapt_models(ens.models, batches)
    adapted = FoldEnsemble(models, ens.hparams, list(ens.names), source=ens.source, dtype=ens.dtype)
    if not any(info["bn_layers"]):
        info["note"] = "the model has no BatchNorm layers: adabn changes nothing"
    return adapted, info
