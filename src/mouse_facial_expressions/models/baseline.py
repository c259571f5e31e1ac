"""The original DeepSet baseline: per-frame CNN -> 1 feature -> mean over the set -> linear."""

from __future__ import annotations

import torch
import torch.nn as nn

from mouse_facial_expressions.models.backbones import build_backbone, encode_frames
from mouse_facial_expressions.models.losses import class_loss
from mouse_facial_expressions.models.registry import register_model


class DeepSet(nn.Module):
    """Permutation-invariant set model (the original task-1 baseline).

    Args:
        backbone: torchvision backbone name (the original: resnet34).
        pretrained: 'none', 'imagenet' or a state-dict path.
        in_channels: 3 (grey repeated) or 1.
        features: per-frame feature size before the mean (the original: 1).
        num_classes: 2.

    Shapes: ``(B, T, C, H, W) -> (B, num_classes)`` logits.
    """

    kind = "baseline"

    def __init__(self, backbone: str = "resnet34", pretrained: str = "none", in_channels: int = 3, features: int = 1, num_classes: int = 2):
        super().__init__()
        self.config = dict(backbone=backbone, pretrained=pretrained, in_channels=in_channels, features=features, num_classes=num_classes)
        self.encoder = build_backbone(backbone, pretrained, in_channels)
        self.proj = nn.Linear(self.encoder.out_dim, features)
        self.fc = nn.Linear(features, num_classes)  # mostly a bias after the 1-d mean, as in the original

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        z = self.proj(encode_frames(self.encoder, clip))  # (B, T, F)
        return self.fc(z.mean(dim=1))  # (B, 2)

    def loss(self, clip, soft, label, *, use_soft_labels=False, label_smoothing=0.1, class_weights=None):
        """Cross-entropy with class weights and label smoothing (the original's), or LDL to ``soft``
        when ``use_soft_labels`` (the seed's baseline default is off; ``--weak em`` turns it on)."""
        logits = self(clip)
        return class_loss(logits, soft, label, use_soft_labels=use_soft_labels, label_smoothing=label_smoothing,
                          class_weights=class_weights), logits


@register_model("baseline")
def baseline(**cfg) -> DeepSet:
    return DeepSet(**cfg)
