"""Attention pooling over a bag of windows of one video (``mfe train --weak attention``).

Labels belong to videos; a positive video holds some positive windows. The model is trained on
*bags*: ``K`` windows of one training video (:class:`data.bags.BagDataset`), each embedded
by the face model, pooled with gated attention (Ilse, Tomczak & Welling 2018, "Attention-based
deep multiple instance learning")::

    a_k = softmax_k( w^T (tanh(V z_k) * sigmoid(U z_k)) )      z_k: window k's embedding (D,)
    z   = sum_k a_k z_k                                        the bag's embedding (D,)

and the class head classifies ``z`` against the video's label. Scoring one window (evaluation,
``mfe predict``, ONNX) is a bag of one, whose attention weight is 1: ``z`` is the window's own
embedding, so every reader of ``p1`` works unchanged.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from mouse_facial_expressions.models.parts.base import Part, State, register_part


@register_part
class AttentionPool(Part):
    """Gated attention over ``State.zs`` ``(B, K, D)`` -> ``State.z`` ``(B, D)``."""

    name = "attention"
    stage = "pooling"
    legacy_keys = {"attn_v": "attn_v", "attn_u": "attn_u", "attn_w": "attn_w"}

    def __init__(self, net, hidden: int = 128, bag: int | None = None, **options):
        super().__init__(net, hidden=int(hidden), **({"bag": int(bag)} if bag else {}), **options)
        dim = int(net.face_dim)
        self.attn_v = nn.Linear(dim, hidden)  # tanh branch
        self.attn_u = nn.Linear(dim, hidden)  # sigmoid gate
        self.attn_w = nn.Linear(hidden, 1)

    @classmethod
    def from_params(cls, p) -> dict | None:
        return {"hidden": 128, **({"bag": p.weak_bag} if p.weak_bag else {})} if p.weak == "attention" else None

    @classmethod
    def to_params(cls, options: dict, spec: dict) -> dict:
        return {"weak": "attention", "weak_bag": options.get("bag")}

    @classmethod
    def from_legacy(cls, model_cfg: dict) -> dict | None:
        return model_cfg.pop("mil", None) or None

    @classmethod
    def check(cls, options: dict, spec: dict, face: str | None) -> None:
        if face != "advanced":
            raise ValueError(f"--weak attention pools window embeddings, which the {face or 'face-less'} model does not "
                             "have; use --model advanced with the face (or --weak em, which works with any model)")
        if "relative" in spec:
            raise ValueError("--weak attention with --baseline-recording is not built: a bag would need a reference per "
                             "window; use --weak em, which works with baseline-relative models")

    def attention(self, z: torch.Tensor) -> torch.Tensor:
        """Bag embeddings ``(B, K, D)`` -> attention weights ``(B, K)`` (each row sums to 1)."""
        scores = self.attn_w(torch.tanh(self.attn_v(z)) * torch.sigmoid(self.attn_u(z))).squeeze(-1)  # (B, K)
        return torch.softmax(scores.float(), dim=1).to(z.dtype)

    def forward(self, s: State) -> None:
        if s.zs is None:
            return  # single windows: a bag of one, weight 1
        a = self.attention(s.zs)
        s.z = (a.unsqueeze(-1) * s.zs).sum(dim=1)  # (B, D)
        s.outputs["attention"] = a

    @classmethod
    def train_loader(cls, options: dict, dataset, sampler, batch_size: int, seed: int):
        """Bags of ``bag`` windows of one video, the same number of clips per epoch as plain training."""
        from mouse_facial_expressions.data.bags import DEFAULT_BAG, BagDataset, BagSampler

        bag = int(options.get("bag") or DEFAULT_BAG)
        if sampler is None:  # a plain shuffle, cut to 1 / bag of its length like any other sampler
            sampler = torch.utils.data.RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
            sampler.balances_classes = False  # the class weights still apply
        return BagDataset(dataset, bag, seed), BagSampler(sampler, bag), max(2, batch_size // bag)
