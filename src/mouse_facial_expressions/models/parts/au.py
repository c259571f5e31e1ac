"""Mouse Grimace Scale action-unit heads on the window's own embedding (``mfe train --targets au|au+class``).

The field reports pain in Mouse Grimace Scale (MGS) units: five action units (``ot`` orbital
tightening, ``nb`` nose bulge, ``cb`` cheek bulge, ``ep`` ear position, ``wc`` whisker change),
each scored 0, 1 or 2 by raters; the MGS total is their mean. One linear head per AU on the
window's own embedding (``State.face_z``: a baseline reference or a bag's pooling changes what
the class head reads, not what the face shows) predicts a distribution over the scores {0, 1,
2}, trained with label distribution learning (KL to the raters' distribution, averaged over the
AUs that have a target: :func:`models.losses.masked_ldl_loss`), so the heads learn the raters'
disagreement too. A window's expected score ``sum_k k * p_k`` (0..2) is reported per AU, and
``mgs`` is the mean of the five.

``--targets au`` (no class part): the class logits that the rest of the pipeline reads are
``[log(1 - q), log(q)]`` with ``q = mgs / 2``: ``p1`` is the MGS total on a 0..1 scale, a grimace
score, not a calibrated probability.

Shapes: ``face_z (B, D)`` -> AU logits ``(B, 5, 3)`` -> ``outputs["au"]`` ``(B, 5)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mouse_facial_expressions.io.ratings import AUS
from mouse_facial_expressions.models.losses import masked_ldl_loss
from mouse_facial_expressions.models.parts.base import LossSettings, Part, State, register_part

#: ``mfe train --targets`` values; ``class`` is the class head alone.
TARGETS = ("class", "au", "au+class")
#: Smallest / largest ``q = mgs / 2`` turned into class logits (``--targets au``), so log(q) stays finite.
_Q_EPS = 1e-4

_AU_NAMES = {"ot": "orbital tightening", "nb": "nose bulge", "cb": "cheek bulge", "ep": "ear position", "wc": "whisker change"}
#: The columns this part adds and what they hold (``COLUMNS.md``).
COLUMN_TEXT = {
    **{f"au_{a}": (f"the expected Mouse Grimace Scale score (0 to 2) of {_AU_NAMES.get(a, a)}: the mean of the scores "
                   "0, 1, 2 weighted by the probabilities the model's AU head gives them, averaged over the fold models "
                   "(the heads learned the raters' score distributions, so 1.0 can mean raters split between 0 and 2 "
                   "as well as raters agreeing on 1)") for a in AUS},
    "mgs": "the MGS total, the mean of the five action units' expected scores (0 to 2), on the raters' scale",
}


@register_part
class AUHeads(Part):
    """One head per action unit on ``face_z``; ``outputs["au"]``: expected scores ``(B, 5)``."""

    name = "au"
    stage = "head"
    order = 1  # after the class head: without one (--targets au) it writes the class logits itself
    fields = ("au", "au_mask")
    columns = COLUMN_TEXT
    metrics = ("mgs",)
    onnx_outputs = ("au",)
    legacy_keys = {"au_heads": "heads"}

    def __init__(self, net, **options):
        super().__init__(net, **options)
        dim = int(net.face_dim)
        self.heads = nn.ModuleDict({a: nn.Linear(dim, 3) for a in AUS})  # (B, D) -> (B, 3) per AU
        self.register_buffer("score_values", torch.arange(3, dtype=torch.float32), persistent=False)  # 0, 1, 2

    @classmethod
    def from_params(cls, p) -> dict | None:
        return {} if p.targets in ("au", "au+class") else None

    @classmethod
    def to_params(cls, options: dict, spec: dict) -> dict:
        return {"targets": "au+class" if "class" in spec else "au"}

    @classmethod
    def from_legacy(cls, model_cfg: dict) -> dict | None:
        return {} if model_cfg.pop("au", None) else None

    @classmethod
    def check(cls, options: dict, spec: dict, face: str | None) -> None:
        if face is None:
            raise ValueError("--targets au|au+class: the action units are read from the face; add face to --modalities")
        if face != "advanced":
            raise ValueError(f"--targets au|au+class: the AU heads sit on the face model's window embedding, and the {face} "
                             "model has none (baseline: one feature per frame; resup: two networks); use --model advanced")
        if "class" not in spec and "fusion" in spec:
            raise ValueError("--targets au has no class head, and fusion combines class evidence: use --targets au+class "
                             "with --modalities")

    def au_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, D)`` -> AU logits ``(B, 5, 3)`` (AUs in :data:`io.ratings.AUS` order)."""
        return torch.stack([self.heads[a](z) for a in AUS], dim=1)

    def expected_scores(self, au_logits: torch.Tensor) -> torch.Tensor:
        """AU logits ``(B, 5, 3)`` -> expected scores ``sum_k k * softmax_k`` ``(B, 5)``, each in 0..2."""
        return F.softmax(au_logits.float(), dim=-1) @ self.score_values

    def forward(self, s: State) -> None:
        s.outputs["au_logits"] = logits = self.au_logits(s.face_z)  # (B, 5, 3), for the loss
        s.outputs["au"] = au = self.expected_scores(logits)
        if s.logits is None:  # --targets au: p1 is the MGS total / 2
            q = (au.mean(dim=1) / 2.0).clamp(_Q_EPS, 1.0 - _Q_EPS)
            s.logits = torch.stack([torch.log1p(-q), torch.log(q)], dim=-1)

    def loss(self, s: State, settings: LossSettings) -> torch.Tensor:
        logits = s.outputs["au_logits"]
        if "au" not in s.batch:
            return logits.sum() * 0.0  # keeps every head in the graph (DDP)
        return masked_ldl_loss(logits, s.batch["au"], s.batch["au_mask"])

    @classmethod
    def dataset_fields(cls, options: dict, ctx, role: str, windows) -> dict:
        """``au`` ``(5, 3)`` and ``au_mask`` ``(5,)`` per window: the raters' distribution of the
        rated frame matched to the window (:func:`data.au_targets.match_windows`)."""
        from mouse_facial_expressions.data.au_targets import match_windows
        from mouse_facial_expressions.data.fields import ArrayField

        targets = ctx.au_targets()
        if targets is None:
            raise ValueError(f"{ctx.task_dir}: --targets au|au+class needs Mouse Grimace Scale targets, and this task has "
                             "none: remake it with them (mfe task make --au-ratings ratings/<name>.parquet)")
        au, mask = match_windows(windows, targets, ctx.spec.au.tolerance_s, ctx.spec.au.match)
        return {"au": ArrayField(au), "au_mask": ArrayField(mask)}

    def outputs(self, s: State) -> dict[str, torch.Tensor]:
        return {"au": s.outputs["au"]}

    @staticmethod
    def to_columns(outputs: dict) -> dict:
        from mouse_facial_expressions.data.predictions import au_prediction_columns

        return au_prediction_columns(outputs["au"]) if "au" in outputs else {}
