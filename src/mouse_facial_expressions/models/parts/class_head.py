"""The class head: class logits from the window embedding, and the class loss on every piece of evidence.

The head is the face model's own classifier (``advanced``'s MLP ``d_model -> mlp_hidden -> 2``),
moved here so that whatever changes the embedding first (a baseline reference, attention
pooling) is classified by the same head. Face models without an embedding (``baseline``,
``resup``) bring their own logits and loss; then this part only adds the loss of the other
evidence (the tabular modalities of fusion).

The loss is the class criterion (:func:`models.losses.class_loss`: LDL to the soft target, or
cross-entropy) summed over ``State.evidence``: the face's logits, and with late fusion each other
modality's, each on the windows where that modality is present.
"""

from __future__ import annotations

import torch

from mouse_facial_expressions.models.losses import class_loss
from mouse_facial_expressions.models.parts.base import LossSettings, Part, State, register_part


@register_part
class ClassHead(Part):
    """``p1`` from ``z`` (``mfe train --targets class`` or ``au+class``)."""

    name = "class"
    stage = "head"
    fields = ("soft", "label")
    metrics = ("classification",)

    def __init__(self, net, **options):
        super().__init__(net, **options)
        face = net.parts_built.get("face")
        self.head = face.take_head() if face is not None else None

    @classmethod
    def from_params(cls, p) -> dict | None:
        return None if p.targets == "au" else {}

    @classmethod
    def from_legacy(cls, model_cfg: dict) -> dict | None:
        return None if (model_cfg.get("au") or {}).get("targets") == "au" else {}

    def forward(self, s: State) -> None:
        if self.head is not None and s.z is not None:
            s.logits = self.head(s.z)  # (B, 2)
        if s.logits is not None and s.own_loss is None:
            s.evidence["face"] = (s.logits, None)

    def loss(self, s: State, settings: LossSettings) -> torch.Tensor | None:
        total = None
        for logits, rows in s.evidence.values():
            soft, label = s.batch["soft"], s.batch["label"]
            if rows is not None:
                if not bool(rows.any()):
                    continue
                logits, soft, label = logits[rows], soft[rows], label[rows]
            term = class_loss(logits, soft, label, use_soft_labels=settings.use_soft_labels,
                              label_smoothing=settings.label_smoothing, class_weights=settings.class_weights)
            total = term if total is None else total + term
        return total
