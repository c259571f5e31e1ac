"""The advanced model: per-frame CNN -> positional embedding -> Transformer -> mean -> MLP."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mouse_facial_expressions.models.backbones import build_backbone, encode_frames
from mouse_facial_expressions.models.losses import class_loss
from mouse_facial_expressions.models.registry import register_model


_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class PositionalEmbedding(nn.Module):
    """Learnable positional embedding that fits any number of frames.

    The table has ``num_frames`` rows (the training window). For a clip of another length
    the table is linearly interpolated along time, so position i of T always means the
    same relative place in the window (the original stopped at 20 frames).

    Shapes: ``(B, T, D) -> (B, T, D)``.
    """

    def __init__(self, num_frames: int, dim: int, init_std: float = 0.02):
        super().__init__()
        self.table = nn.Parameter(torch.randn(1, num_frames, dim) * init_std)  # (1, N, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        pos = self.table
        if t != pos.shape[1]:
            if pos.shape[1] == 1:
                pos = pos.expand(-1, t, -1)
            else:
                pos = F.interpolate(pos.transpose(1, 2), size=t, mode="linear", align_corners=True).transpose(1, 2)
        return x + pos.to(x.dtype)  # (B, T, D)


class AdvancedNet(nn.Module):
    """LDL + temporal Transformer model.

    Args:
        backbone: torchvision backbone (default resnet34, as in the seed).
        pretrained: 'none', 'imagenet' or a state-dict path.
        in_channels: 3 (grey repeated) or 1.
        num_frames: length of the positional table (any clip length works).
        d_model: Transformer width; a linear projection maps the backbone feature to it when
            they differ (resnet50: 2048, mobilenet_v2: 1280).
        num_layers, num_heads, ff_dim, dropout: Transformer encoder settings (GELU).
        mlp_hidden: hidden size of the classifier MLP ``d_model -> mlp_hidden -> 2``.
        num_classes: 2.
        pos_init_std: standard deviation of the positional table's initialisation (0.02, the
            usual Transformer choice; the original drew it from N(0, 1)).
        head_activation: ``gelu`` or ``relu`` (the original) between the MLP's layers.
        head_dropout: dropout before the MLP's last layer (None: ``dropout``; the original: 0.3).

    A model of parts (``models.parts``) reads ``embed`` and moves ``head`` to its class part, so
    a baseline reference (``parts.relative``) or attention pooling changes what the head reads.

    The defaults are the first ``mfe`` recipe's, so checkpoints saved before these settings
    existed load unchanged; ``mfe train`` passes its recipe's values (``training/params.py``).

    Shapes: ``(B, T, C, H, W) -> (B, num_classes)`` logits.
    """

    kind = "advanced"

    def __init__(
        self,
        backbone: str = "resnet34",
        pretrained: str = "none",
        in_channels: int = 3,
        num_frames: int = 10,
        d_model: int = 512,
        num_layers: int = 4,
        num_heads: int = 8,
        ff_dim: int = 2048,
        dropout: float = 0.2,
        mlp_hidden: int = 256,
        num_classes: int = 2,
        pos_init_std: float = 0.02,
        head_activation: str = "gelu",
        head_dropout: float | None = None,
    ):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} must be divisible by num_heads {num_heads}")
        self.config = dict(
            backbone=backbone, pretrained=pretrained, in_channels=in_channels, num_frames=num_frames,
            d_model=d_model, num_layers=num_layers, num_heads=num_heads, ff_dim=ff_dim,
            dropout=dropout, mlp_hidden=mlp_hidden, num_classes=num_classes, pos_init_std=pos_init_std,
            head_activation=head_activation, head_dropout=head_dropout,
        )
        if head_activation not in _ACTIVATIONS:
            raise ValueError(f"head_activation must be one of {', '.join(_ACTIVATIONS)}, got {head_activation!r}")
        self.encoder = build_backbone(backbone, pretrained, in_channels)
        self.proj = nn.Identity() if self.encoder.out_dim == d_model else nn.Linear(self.encoder.out_dim, d_model)
        self.pos = PositionalEmbedding(num_frames, d_model, pos_init_std)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, ff_dim, dropout, activation="gelu", batch_first=True)
        self.temporal = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Sequential(
            nn.Linear(d_model, mlp_hidden), _ACTIVATIONS[head_activation](),
            nn.Dropout(dropout if head_dropout is None else head_dropout), nn.Linear(mlp_hidden, num_classes),
        )

    def embed(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W) -> (B, D)``: the window's embedding (normalised mean over time)."""
        z = self.proj(encode_frames(self.encoder, clip))  # (B, T, D)
        z = self.temporal(self.pos(z))  # (B, T, D)
        return self.norm(z.mean(dim=1))  # (B, D): mean over time

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 2)``."""
        return self.head(self.embed(clip))  # (B, 2)

    def loss(self, clip, soft, label, *, use_soft_labels=True, label_smoothing=0.1, class_weights=None):
        """LDL (KL to the soft target) or, with ``use_soft_labels=False``, cross-entropy."""
        logits = self(clip)
        return class_loss(logits, soft, label, use_soft_labels=use_soft_labels, label_smoothing=label_smoothing,
                          class_weights=class_weights), logits


@register_model("advanced")
def advanced(**cfg) -> AdvancedNet:
    return AdvancedNet(**cfg)
