"""ReSup: two advanced networks that down-weight samples they disagree on."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mouse_facial_expressions.models.advanced import AdvancedNet
from mouse_facial_expressions.models.losses import resup_loss, smooth_targets
from mouse_facial_expressions.models.registry import register_model


class ReSupNet(nn.Module):
    """Two independently initialised :class:`AdvancedNet` s.

    Args: as :class:`AdvancedNet` (dropout defaults to 0.5, as in the original), plus
        consistency: weight of ``MSE(p1, p2)`` in the loss (0.1).

    Shapes: ``(B, T, C, H, W) -> (B, 2)`` logits whose softmax is the mean of the two
    nets' probabilities (``log((p1 + p2) / 2)``).
    """

    kind = "resup"

    def __init__(self, consistency: float = 0.1, dropout: float = 0.5, **cfg):
        super().__init__()
        self.net1 = AdvancedNet(dropout=dropout, **cfg)
        self.net2 = AdvancedNet(dropout=dropout, **cfg)
        self.consistency = consistency
        self.config = dict(self.net1.config, consistency=consistency)

    def forward_pair(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both nets' logits, each (B, 2)."""
        return self.net1(clip), self.net2(clip)

    @staticmethod
    def combine(logits1: torch.Tensor, logits2: torch.Tensor) -> torch.Tensor:
        p = (F.softmax(logits1.float(), -1) + F.softmax(logits2.float(), -1)) / 2  # (B, 2)
        return torch.log(p.clamp_min(1e-12))  # (B, 2): softmax(.) == p

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.combine(*self.forward_pair(clip))

    def loss(self, clip, soft, label, *, use_soft_labels=True, label_smoothing=0.2, class_weights=None):
        """``w*LDL1 + w*LDL2 + 0.1*MSE(p1, p2)``, ``w = exp(-|p1-p2|_1)``."""
        l1, l2 = self.forward_pair(clip)
        loss, _ = resup_loss(l1, l2, smooth_targets(soft, label_smoothing), label, use_soft_labels, self.consistency)
        return loss, self.combine(l1, l2)


@register_model("resup")
def resup(**cfg) -> ReSupNet:
    return ReSupNet(**cfg)
