"""Mouse Grimace Scale action-unit heads on a face model's window embedding (``mfe train --targets``).

The field reports pain in Mouse Grimace Scale (MGS) units: five action units (``ot`` orbital
tightening, ``nb`` nose bulge, ``cb`` cheek bulge, ``ep`` ear position, ``wc`` whisker change),
each scored 0, 1 or 2 by raters; the MGS total is their mean. :class:`AUHeads` wraps a face
model that has a window embedding (``embed(clip) -> (B, D)``: ``advanced``) and puts one linear
head per AU on it, each predicting a distribution over the scores {0, 1, 2}. Trained with label
distribution learning (KL to the raters' distribution, :func:`models.losses.masked_ldl_loss`,
averaged over the AUs that have a target), the heads learn the raters' disagreement too; a
window's *expected* score ``sum_k k * p_k`` (0..2) is what is reported per AU, and ``mgs`` is the
mean of the five.

Targets (``mfe train --targets``):

- ``au+class``: the AU heads and the face model's own class head on the same embedding; the
  loss is the class loss (LDL or cross-entropy, as the face model's own) plus the AU loss.
- ``au``: the AU heads alone (the face model's class head is removed). The class logits that
  the rest of the pipeline reads (``p1``) are then ``[log(1 - q), log(q)]`` with ``q = mgs / 2``:
  ``p1`` is the MGS total on a 0..1 scale, a grimace score, not a calibrated probability.

Why a wrapper and not a head inside each model: any face model with an embedding gets AU heads
without changes to it, and ``--targets class`` models keep their exact architecture and
checkpoints. ``baseline`` (a 1-feature DeepSet) and ``resup`` (two networks) have no window
embedding to share, and are refused with a clear error.

Shapes: ``clip (B, T, C, H, W)`` -> class logits ``(B, 2)`` (:meth:`forward`), AU logits
``(B, 5, 3)`` (:meth:`au_logits`), expected AU scores ``(B, 5)`` (:meth:`scores`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mouse_facial_expressions.io.ratings import AUS
from mouse_facial_expressions.models.losses import cross_entropy, ldl_loss, masked_ldl_loss, smooth_targets

#: ``mfe train --targets`` values; ``class`` is a plain face model (no wrapper).
TARGETS = ("class", "au", "au+class")
#: Smallest / largest ``q = mgs / 2`` turned into class logits (``--targets au``), so log(q) stays finite.
_Q_EPS = 1e-4


class AUHeads(nn.Module):
    """A face model with one MGS action-unit head per AU on its window embedding.

    Args:
        face: a registered face model with ``embed(clip) -> (B, D)``, ``config["d_model"] = D``
            and a class head ``head`` on the embedding (``advanced``; not baseline-relative).
        targets: ``au+class`` (AU heads and the class head) or ``au`` (AU heads only).

    ``config`` is the face model's plus ``au={"targets": ...}``, so ``create_model(name, **config)``
    rebuilds the wrapped model (``models.registry.create_model``).
    """

    kind = "au"

    def __init__(self, face: nn.Module, targets: str = "au+class"):
        super().__init__()
        if targets not in ("au", "au+class"):
            raise ValueError(f"AU heads: targets must be au or au+class, got {targets!r}")
        name = getattr(face, "kind", type(face).__name__)
        if not hasattr(face, "embed") or not hasattr(face, "head") or "d_model" not in getattr(face, "config", {}):
            raise ValueError(f"--targets {targets}: the AU heads sit on the face model's window embedding, and the "
                             f"{name} model has none (baseline: one feature per frame; resup: two networks); "
                             "use --model advanced")
        if getattr(face, "relative", False):
            raise ValueError(f"--targets {targets} cannot be combined with baseline-relative scoring (--baseline-recording)")
        self.face = face
        self.targets = targets
        dim = int(face.config["d_model"])
        self.au_heads = nn.ModuleDict({a: nn.Linear(dim, 3) for a in AUS})  # (B, D) -> (B, 3) per AU
        if targets == "au":
            self.face.head = None  # no class head: p1 comes from the MGS total (module docstring)
        self.register_buffer("score_values", torch.arange(3, dtype=torch.float32), persistent=False)  # (3,): 0, 1, 2
        self.config = dict(face.config, au={"targets": targets})

    @property
    def has_class_head(self) -> bool:
        return self.targets == "au+class"

    def embed(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W) -> (B, D)``: the face model's window embedding."""
        return self.face.embed(clip)

    def au_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, D)`` -> AU logits ``(B, 5, 3)`` (AUs in :data:`io.ratings.AUS` order)."""
        return torch.stack([self.au_heads[a](z) for a in AUS], dim=1)  # (B, 5, 3)

    def expected_scores(self, au_logits: torch.Tensor) -> torch.Tensor:
        """AU logits ``(B, 5, 3)`` -> expected scores ``sum_k k * softmax_k`` ``(B, 5)``, each in 0..2."""
        return F.softmax(au_logits.float(), dim=-1) @ self.score_values  # (B, 5)

    def _class_logits(self, z: torch.Tensor, au_logits: torch.Tensor) -> torch.Tensor:
        if self.has_class_head:
            return self.face.head(z)  # (B, 2): the face model's own classifier
        q = (self.expected_scores(au_logits).mean(dim=1) / 2.0).clamp(_Q_EPS, 1.0 - _Q_EPS)  # (B,): MGS / 2
        return torch.stack([torch.log1p(-q), torch.log(q)], dim=-1)  # (B, 2): softmax = [1 - q, q]

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, 2)`` (``--targets au``: those of ``p1 = mgs / 2``)."""
        z = self.face.embed(clip)  # (B, D)
        return self._class_logits(z, self.au_logits(z))

    def scores(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass: class logits ``(B, 2)`` and expected AU scores ``(B, 5)`` (0..2 each)."""
        z = self.face.embed(clip)  # (B, D)
        au = self.au_logits(z)  # (B, 5, 3)
        return self._class_logits(z, au), self.expected_scores(au)

    def loss(self, clip, soft, label, *, use_soft_labels=True, label_smoothing=0.1, class_weights=None,
             au=None, au_mask=None):
        """Class loss (``au+class``: as the face model's own, LDL or cross-entropy) plus the AU loss:
        KL to the raters' distribution, averaged over the AUs with a target (``au_mask``).

        Args:
            au: ``(B, 5, 3)`` target distributions; au_mask: ``(B, 5)``. None: no AU target in
                the batch (the AU loss is 0).

        Returns:
            ``(loss, class logits (B, 2))``.
        """
        z = self.face.embed(clip)  # (B, D)
        au_l = self.au_logits(z)  # (B, 5, 3)
        if au is None:
            au_loss = au_l.sum() * 0.0  # keeps every head in the graph (DDP)
        else:
            au_loss = masked_ldl_loss(au_l, au, au_mask)
        logits = self._class_logits(z, au_l)
        if not self.has_class_head:
            return au_loss, logits
        if use_soft_labels:
            cls = ldl_loss(logits, smooth_targets(soft, label_smoothing))
        else:
            cls = cross_entropy(logits, label, class_weights, label_smoothing)
        return cls + au_loss, logits


def au_model(face_fn, cfg: dict, au: dict) -> AUHeads:
    """``create_model``'s ``au={...}``: the face model ``face_fn(**cfg)`` inside :class:`AUHeads`."""
    unknown = set(au) - {"targets"}
    if unknown:
        raise TypeError(f"unknown AU head setting(s) {sorted(unknown)} (known: targets)")
    return AUHeads(face_fn(**cfg), **au)
