"""The face input: a registered face model (backbone and temporal encoder) on the window's clip.

``advanced`` gives a window embedding ``z`` ``(B, D)`` (its class head moves to the class part);
``baseline`` (one feature per frame) and ``resup`` (two networks) have no embedding to share and
give class logits directly, trained with their own loss. A bag of windows ``(B, K, T, C, H, W)``
(attention pooling) is embedded window by window into ``zs`` ``(B, K, D)``.
"""

from __future__ import annotations

import torch

from mouse_facial_expressions.models.parts.base import LossSettings, Part, State, register_part


def has_embedding(model) -> bool:
    """True for face models with a window embedding (``embed``) and a width (``config["d_model"]``)."""
    return hasattr(model, "embed") and "d_model" in getattr(model, "config", {})


@register_part
class Face(Part):
    """The face model; ``net.face_name`` / ``net.face_cfg`` say which (``models.registry``)."""

    name = "face"
    stage = "input"
    fields = ("clip",)

    def __init__(self, net, **options):
        super().__init__(net, **options)
        from mouse_facial_expressions.models.registry import create_model

        self.net = create_model(net.face_name, **net.face_cfg)
        self.embeds = has_embedding(self.net)
        self.width = int(self.net.config["d_model"]) if self.embeds else None  # of z, for the parts that read it

    @classmethod
    def from_params(cls, p) -> dict | None:
        return {} if "face" in p.modality_list else None

    @classmethod
    def from_legacy(cls, model_cfg: dict) -> dict | None:
        fusion = model_cfg.get("fusion")
        return {} if not fusion or "face" in fusion["modalities"] else None

    def take_head(self):
        """The face model's class head (``advanced``), removed from it: the class part owns it."""
        head = getattr(self.net, "head", None) if self.embeds else None
        if head is not None:
            self.net.head = None
        return head

    def forward(self, s: State) -> None:
        clip = s.batch["clip"]
        bag = clip.shape[1] if clip.dim() == 6 else None
        x = clip.flatten(0, 1) if bag else clip
        if not self.embeds:  # baseline, resup: class logits (and, training, the loss) from the model itself
            if s.settings is not None and hasattr(self.net, "loss"):
                st = s.settings
                s.own_loss, s.logits = self.net.loss(x, s.batch["soft"], s.batch["label"], use_soft_labels=st.use_soft_labels,
                                                     label_smoothing=st.label_smoothing, class_weights=st.class_weights)
            else:
                s.logits = self.net(x)
            return
        z = self.net.embed(x)  # (B[*K], D)
        if bag:
            s.zs = z.view(clip.shape[0], bag, -1)
            z = s.zs[:, 0]  # the bag's own window (its targets are the item's)
        s.z = s.face_z = z

    def loss(self, s: State, settings: LossSettings) -> torch.Tensor | None:
        """A face model without an embedding is trained with its own loss on its own logits."""
        return s.own_loss
