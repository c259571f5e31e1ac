"""The advanced model: per-frame CNN -> positional embedding -> Transformer -> mean -> MLP."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mouse_facial_expressions.models.backbones import build_backbone, encode_frames
from mouse_facial_expressions.models.losses import cross_entropy, ldl_loss, smooth_targets
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
        relative: baseline-relative scoring (``mfe train --baseline-recording K``): the classifier
            sees a window's embedding minus a reference embedding of the same animal's baseline
            windows (see below), never the window's embedding alone.

    Baseline-relative design. The embedding of a window is the Transformer's normalised mean
    over time (``embed``, ``(B, D)``). With ``relative=True`` the head classifies
    ``embed(window) - ref``, where ``ref`` is the embedding of one of the same animal's baseline
    windows during training (a fresh draw each time, from the animal's own split) and the mean
    embedding of all of them when scoring. Why a difference rather than attention to the
    baseline, or a concatenation: what a new cohort changes (lighting, contrast, camera, the
    animal's own face) shifts a window and its baseline alike, and a difference cancels any
    shift shared by the two to first order, while a concatenation or cross-attention lets the
    head read the absolute embedding again and learn the recording conditions back. The
    difference also keeps the head's size and costs one extra backbone pass per training
    window; the mean reference at scoring is the expectation of the training references, so
    the head sees the same quantity with less noise (scoring against each baseline window and
    averaging the probabilities gave the same calls on the demo cohort).

    Only forward pairs (a later window against a baseline window) are trained on. Reversed
    pairs (``embed(baseline) - embed(later)``, labelled 0) were tried: on the clean demo cohort
    they raised in-cohort animal accuracy (0.583/0.750 -> 0.750/0.750 over two training seeds),
    but with a recording-time cue (every recording 4 brighter by 60 grey levels) the model then
    called all 6 control animals' recording 4 sick, against none without them. Reversed pairs
    let the head separate pairs by the direction of any shift between recordings, the cue's
    included; forward pairs force it to tell a control's shifted recording from a treated one.

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
        relative: bool = False,
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
        if relative:  # only when set: checkpoints of absolute models keep their exact config
            self.config["relative"] = True
        self.relative = bool(relative)
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

    def forward(self, clip: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, 2)``. A relative model needs ``ref``: reference clips ``(B, T, C, H, W)``
        (one baseline window per row) or reference embeddings ``(B, D)``."""
        if not self.relative:
            return self.head(self.embed(clip))  # (B, 2)
        if ref is None:
            raise ValueError("this is a baseline-relative model (trained with --baseline-recording): it scores a "
                             "window against the same animal's baseline windows, so it needs them (ref)")
        if ref.dim() == 5:  # reference clips: one pass for both, so BatchNorm's batch statistics
            z, zr = self.embed(torch.cat([clip, ref])).split(len(clip))  # (training) are the same for each
        else:
            z, zr = self.embed(clip), ref
        return self.head(z - zr.to(z.dtype))  # (B, 2)

    def loss(self, clip, soft, label, *, use_soft_labels=True, label_smoothing=0.1, class_weights=None, ref=None):
        """LDL (KL to the soft target) or, with ``use_soft_labels=False``, cross-entropy."""
        logits = self(clip, ref) if self.relative else self(clip)
        if use_soft_labels:
            return ldl_loss(logits, smooth_targets(soft, label_smoothing)), logits
        return cross_entropy(logits, label, class_weights, label_smoothing), logits


def mean_by_animal(animals, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """animal -> the mean of its rows of ``z`` ``(W, D)`` (``animals``: one name per row): a
    relative model's reference embedding of each animal, from its baseline windows."""
    animals = np.asarray(animals).astype(str)
    return {a: z[torch.from_numpy(np.flatnonzero(animals == a)).to(z.device)].mean(0) for a in np.unique(animals)}


@register_model("advanced")
def advanced(**cfg) -> AdvancedNet:
    return AdvancedNet(**cfg)
