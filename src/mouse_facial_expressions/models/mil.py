"""Attention-MIL pooling: learn video labels from bags of window embeddings (``mfe train --weak attention``).

The comparison baseline for ``--weak em`` (training/weak.py). Labels belong to videos; a
positive video holds some positive windows. Instead of re-estimating window targets, the
model is trained on *bags*: ``K`` windows of one video (``training.weak.BagDataset``), each
embedded by the face model, pooled with gated attention (Ilse, Tomczak & Welling 2018,
"Attention-based deep multiple instance learning")::

    a_k = softmax_k( w^T (tanh(V z_k) * sigmoid(U z_k)) )      z_k: window k's embedding (D,)
    z   = sum_k a_k z_k                                        the bag's embedding (D,)
    logits = head(z)                                           the face model's own classifier

and the bag's logits are trained against the video's label (LDL on its soft label, as plain
training). The attention learns which windows carry the video's label; the classifier sees
pooled embeddings.

Scoring one window (evaluation, ``mfe predict``, ONNX): a bag of one window, whose attention
weight is 1, so ``forward(clip) = head(embed(clip))``: the wrapped model's own forward, and
every reader of ``p1`` works unchanged. :meth:`AttentionMIL.attention` gives the weights of a
bag for inspection.

Shapes: ``clip (B, T, C, H, W)`` -> logits ``(B, 2)``; a bag batch ``(B, K, T, C, H, W)`` ->
logits ``(B, 2)`` and attention ``(B, K)`` (:meth:`bag_logits`).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from mouse_facial_expressions.models.losses import cross_entropy, ldl_loss, smooth_targets


class AttentionMIL(nn.Module):
    """A face model with gated-attention pooling over bags of windows.

    Args:
        face: a registered face model with ``embed(clip) -> (B, D)``, ``config["d_model"] = D``
            and a class head ``head`` (``advanced``; not baseline-relative).
        hidden: width of the attention's hidden layer.

    ``config`` is the face model's plus ``mil={"hidden": ...}``, so ``create_model(name, **config)``
    rebuilds the wrapped model.
    """

    kind = "mil"

    def __init__(self, face: nn.Module, hidden: int = 128):
        super().__init__()
        name = getattr(face, "kind", type(face).__name__)
        if not hasattr(face, "embed") or getattr(face, "head", None) is None or "d_model" not in getattr(face, "config", {}):
            raise ValueError(f"--weak attention pools window embeddings, and the {name} model has none (baseline: one "
                             "feature per frame; resup: two networks); use --model advanced, or --weak em, which works "
                             "with any model")
        if getattr(face, "relative", False):
            raise ValueError("--weak attention cannot be combined with baseline-relative scoring (--baseline-recording)")
        self.face = face
        dim = int(face.config["d_model"])
        self.attn_v = nn.Linear(dim, hidden)  # tanh branch
        self.attn_u = nn.Linear(dim, hidden)  # sigmoid gate
        self.attn_w = nn.Linear(hidden, 1)
        self.config = dict(face.config, mil={"hidden": int(hidden)})

    def embed(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W) -> (B, D)``: the face model's window embedding."""
        return self.face.embed(clip)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """One window, a bag of one: logits ``(B, 2)`` = the face model's ``head(embed(clip))``."""
        return self.face.head(self.face.embed(clip))

    def attention(self, z: torch.Tensor) -> torch.Tensor:
        """Bag embeddings ``(B, K, D)`` -> attention weights ``(B, K)`` (each row sums to 1)."""
        scores = self.attn_w(torch.tanh(self.attn_v(z)) * torch.sigmoid(self.attn_u(z))).squeeze(-1)  # (B, K)
        return torch.softmax(scores.float(), dim=1).to(z.dtype)

    def bag_logits(self, bags: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, K, T, C, H, W)`` bags -> (logits ``(B, 2)``, attention ``(B, K)``)."""
        b, k = bags.shape[:2]
        z = self.face.embed(bags.reshape(b * k, *bags.shape[2:])).reshape(b, k, -1)  # (B, K, D)
        a = self.attention(z)  # (B, K)
        pooled = (a.unsqueeze(-1) * z).sum(dim=1)  # (B, D)
        return self.face.head(pooled), a

    def loss(self, clip, soft, label, *, use_soft_labels=True, label_smoothing=0.1, class_weights=None):
        """Bags ``(B, K, T, C, H, W)`` (training) or single windows ``(B, T, C, H, W)`` (validation:
        bags of one) against their video's label: LDL or, with ``use_soft_labels=False``, cross-entropy.

        Returns:
            ``(loss, logits (B, 2))``.
        """
        logits = self.bag_logits(clip)[0] if clip.dim() == 6 else self(clip)
        if use_soft_labels:
            return ldl_loss(logits, smooth_targets(soft, label_smoothing)), logits
        return cross_entropy(logits, label, class_weights, label_smoothing), logits


def mil_model(face_fn, cfg: dict, mil: dict) -> AttentionMIL:
    """``create_model``'s ``mil={...}``: the face model ``face_fn(**cfg)`` inside :class:`AttentionMIL`."""
    unknown = set(mil) - {"hidden"}
    if unknown:
        raise TypeError(f"unknown attention-MIL setting(s) {sorted(unknown)} (known: hidden)")
    return AttentionMIL(face_fn(**cfg), **mil)
