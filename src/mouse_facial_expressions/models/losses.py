"""Losses: label distribution learning (KL), weighted cross-entropy, ReSup.

Targets. A data item carries ``soft`` (a distribution over the 2 classes, from the task's
soft-label source) and the hard ``label``. :func:`smooth_targets` applies the seed's
smoothing ``[1-s, s]`` only to one-hot rows, so graded distributions from the task (dose,
raters, or smoothing already done by ``mfe task make``) are used unchanged and never
smoothed twice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def smooth_targets(soft: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """One-hot rows of ``soft`` (B, 2) become ``[1-s, s]`` / ``[s, 1-s]``; others stay."""
    if label_smoothing <= 0:
        return soft
    onehot = (soft == 0) | (soft == 1)
    hard_rows = onehot.all(dim=-1, keepdim=True)  # (B, 1)
    smoothed = soft * (1 - 2 * label_smoothing) + label_smoothing  # 2 classes: [1-s, s]
    return torch.where(hard_rows, smoothed, soft)


def ldl_loss(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """KL(target || softmax(logits)), summed over classes.

    Args:
        logits: (B, K) unnormalised scores.
        target: (B, K) distributions (rows sum to 1; zeros allowed).
        reduction: 'mean' over the batch or 'none' for per-sample (B,).
    Returns:
        Scalar (or (B,)); exactly 0 where softmax(logits) == target.
    """
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, K)
    target = target.float()
    kl = (torch.xlogy(target, target) - target * logp).sum(dim=-1)  # (B,), 0*log0 = 0
    return kl.mean() if reduction == "mean" else kl


def masked_ldl_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """LDL over several heads, averaged over the (sample, head) pairs that have a target.

    Args:
        logits: (B, H, K) unnormalised scores (H heads, e.g. the 5 MGS action units, K = 3 scores).
        target: (B, H, K) distributions; rows without a target may hold anything finite.
        mask: (B, H), 1 where the pair has a target, 0 where not.
    Returns:
        Scalar: the mean KL(target || softmax(logits)) over the masked pairs; 0 (with a gradient
        path) when no pair has a target, so a batch without any rated window adds nothing.
    """
    b, h, k = logits.shape
    kl = ldl_loss(logits.reshape(b * h, k), target.reshape(b * h, k), "none").reshape(b, h)  # (B, H)
    mask = mask.to(kl.dtype)
    return (kl * mask).sum() / mask.sum().clamp_min(1.0)


def cross_entropy(
    logits: torch.Tensor,
    label: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy with optional class weights and label smoothing (the baseline's loss)."""
    w = None if class_weights is None else class_weights.to(logits.device, torch.float32)
    return F.cross_entropy(logits.float(), label.long(), weight=w, label_smoothing=label_smoothing, reduction=reduction)


def resup_weight(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """Per-sample agreement weight ``exp(-|p1 - p2|_1)``: 1 when the nets agree. (B, K) -> (B,)."""
    return torch.exp(-(p1 - p2).abs().sum(dim=-1))


def resup_loss(
    logits1: torch.Tensor,
    logits2: torch.Tensor,
    target: torch.Tensor,
    label: torch.Tensor,
    use_soft_labels: bool = True,
    consistency: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ReSup: ``mean(w * L1 + w * L2) + consistency * MSE(p1, p2)``.

    ``L`` is the per-sample LDL loss (or cross-entropy when ``use_soft_labels`` is false) and
    ``w = exp(-|p1-p2|_1)``, detached: it down-weights samples the nets disagree on (likely
    noisy labels) without rewarding agreement through the weight itself; the MSE term does that.

    Returns:
        (loss scalar, w (B,)).
    """
    p1 = F.softmax(logits1.float(), dim=-1)  # (B, K)
    p2 = F.softmax(logits2.float(), dim=-1)
    w = resup_weight(p1, p2).detach()  # (B,)
    if use_soft_labels:
        l1, l2 = ldl_loss(logits1, target, "none"), ldl_loss(logits2, target, "none")
    else:
        l1, l2 = cross_entropy(logits1, label, reduction="none"), cross_entropy(logits2, label, reduction="none")
    loss = (w * l1 + w * l2).mean() + consistency * F.mse_loss(p1, p2)
    return loss, w


def class_loss(logits: torch.Tensor, soft: torch.Tensor, label: torch.Tensor, *, use_soft_labels: bool = True,
               label_smoothing: float = 0.1, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The class criterion of every head: LDL to the (smoothed) soft target, or, with
    ``use_soft_labels=False``, cross-entropy with class weights and label smoothing."""
    if use_soft_labels:
        return ldl_loss(logits, smooth_targets(soft, label_smoothing))
    return cross_entropy(logits, label, class_weights, label_smoothing)
