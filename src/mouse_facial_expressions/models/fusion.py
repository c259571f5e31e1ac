"""Multimodal fusion: the face models plus behaviour and physiology features (``--modalities``).

A :class:`FusionNet` scores a window from any subset of three modalities:

- ``face``: a registered face model (``advanced``, ``baseline``, ``resup``) on the window's clip;
- ``behaviour``: the window's body-keypoint features (``preprocess.behaviour.BEHAVIOUR_FEATURES``);
- ``physiology``: the animal's measures at that recording, as change from its baseline
  (``io.physiology``), the same for every window of a video.

Each tabular modality has a small MLP encoder (``Linear-GELU-Linear``, ``hidden`` units). Its
inputs are standardised inside the model with the training windows' mean and SD (buffers saved
with the checkpoint), so a checkpoint scores raw features.

Fusion:

- ``mid``: the modality embeddings (the face model's ``embed``, which only ``advanced`` has; the
  MLPs' outputs) are concatenated, each multiplied by its presence (0 or 1), together with the
  presence flags, and one head classifies them;
- ``late``: one head per modality gives logits (for the face, the face model's own), each
  trained on its own loss only, with no modality dropout: each learns to score alone, as a model
  of that modality would (a fused loss would teach a weak head to correct the strong one's
  training errors, i.e. to memorise the training animals). The fused log-odds are the sum of
  the present modalities' log-odds: the combination of independent evidence (naive Bayes), which
  gives a confident modality more say than an unsure one. Each tabular modality's log-odds are
  first multiplied by its weight in ``[0, 1]`` (``scale``: 1 until :meth:`set_scales`; ``mfe
  train`` sets it by leave-one-animal-out cross-fitting on the training animals,
  :mod:`training.tabular`), so that a modality whose heads do not carry to new animals adds
  next to nothing;
- ``stacked``: trained as ``late``; then a logistic regression on the modalities' log-odds, fit
  on the fold's *validation* animals (:meth:`FusionNet.fit_stack`, called by ``mfe train`` after
  checkpoint selection), weighs them (until then: as ``late``). Few validation animals make
  these weights noisy: docs/FUSION.md measures both.

A modality is present for a window when every one of its features is finite (NaN marks what
was not measured), and when it is active (:meth:`FusionNet.use`: ``mfe predict --modalities``
or the leave-one-modality-out evaluation switch one off). In training, ``modality_dropout``
switches each present modality off per window with that probability (keeping at least one), so
the fused model learns to score with any subset: what lets it score a cohort without
physiology, and what makes leave-one-modality-out a fair measure of a modality's contribution.

Shapes: ``clip (B, T, C, H, W)``, ``aux (B, F)`` raw features in ``aux_columns`` order -> ``(B, 2)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from mouse_facial_expressions.data.modalities import MODALITIES
from mouse_facial_expressions.models.losses import cross_entropy, ldl_loss, smooth_targets
FUSIONS = ("late", "stacked", "mid")

#: Learning rates (at least; the face model keeps ``--learning_rate``): the tabular encoders and
#: their late-fusion heads learn at ``TABULAR_LR``, the mid-fusion head at ``HEAD_LR``. The face's
#: 1e-4, right for a network learning pixels from scratch, leaves small MLPs barely trained after
#: a few epochs (physiology alone: animal accuracy 0.50 at 1e-3 against 1.00 at 1e-2 on a tuning
#: cohort, docs/FUSION.md), while a mid-fusion head at 1e-2 over-fits the face embedding.
TABULAR_LR = 1e-2
HEAD_LR = 1e-3

#: SD of the Gaussian noise added to the standardised features in training. Physiology is one
#: value per video, so a network can learn each training video's label from its exact value
#: (training accuracy 0.99 after one epoch on a tuning cohort) and be confidently wrong on new
#: animals; noise of half a standard deviation leaves only the trend to learn.
FEATURE_NOISE = 0.5


class FusionNet(nn.Module):
    """A face model (or none) and MLP encoders of tabular modalities, fused ``late``, ``stacked`` or ``mid``.

    Args:
        face: the face model (``None`` when ``face`` is not a modality).
        modalities: the modalities, in :data:`MODALITIES` order.
        aux_columns: modality -> its feature columns (the tabular modalities only).
        fusion: ``late`` | ``stacked`` | ``mid``.
        hidden: width of the MLP encoders and of the mid-fusion head.
        modality_dropout: training-time probability of switching a present modality off per window
            (``mid`` only: the other fusions train each modality's head on its own).

    Buffers saved with the weights: ``aux_mean``, ``aux_std`` (the features' standardisation, 0 and
    1 until :meth:`set_feature_stats` sets the training windows'), ``scale`` (each tabular
    modality's weight in the late sum, :meth:`set_scales`), ``stack`` and ``stack_fitted``
    (:meth:`fit_stack`).
    """

    def __init__(self, face: nn.Module | None, modalities, aux_columns: dict[str, list[str]], fusion: str = "late",
                 hidden: int = 32, modality_dropout: float = 0.3, num_classes: int = 2):
        super().__init__()
        modalities = tuple(modalities)
        bad = [m for m in modalities if m not in MODALITIES]
        if bad or not modalities:
            raise ValueError(f"modalities must be a non-empty subset of {', '.join(MODALITIES)}, got {list(modalities)}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        if ("face" in modalities) != (face is not None):
            raise ValueError("a face model is needed exactly when 'face' is a modality")
        tabular = [m for m in modalities if m != "face"]
        lacking = [m for m in tabular if not aux_columns.get(m)]
        if lacking:
            raise ValueError(f"modalities {lacking} have no feature columns")
        if fusion == "mid" and face is not None and not hasattr(face, "embed"):
            raise ValueError(f"mid fusion needs the face model's embedding; {type(face).__name__} has none: use --fusion late")
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        self.modalities, self.fusion, self.modality_dropout = modalities, fusion, float(modality_dropout)
        self.feature_noise = FEATURE_NOISE
        self.aux_columns = {m: list(aux_columns[m]) for m in tabular}
        self.face = face
        n_feat = sum(len(c) for c in self.aux_columns.values())
        self.register_buffer("aux_mean", torch.zeros(n_feat))
        self.register_buffer("aux_std", torch.ones(n_feat))
        self.encoders = nn.ModuleDict({m: nn.Sequential(nn.Linear(len(c), hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
                                       for m, c in self.aux_columns.items()})
        self.active = set(modalities)
        if fusion == "mid":
            face_dim = face.config.get("d_model", 0) if face is not None else 0
            width = face_dim + hidden * len(tabular) + len(modalities)
            self.head = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, num_classes))
        else:
            self.heads = nn.ModuleDict({m: nn.Linear(hidden, num_classes) for m in tabular})
        # late: each tabular modality's weight (set_scales; checkpoints from before it: 1)
        self.register_buffer("scale", torch.ones(len(tabular)))
        # stacked: weight per modality and bias on the log-odds (fit_stack); not fit yet = the late sum
        self.register_buffer("stack", torch.zeros(len(modalities) + 1))
        self.register_buffer("stack_fitted", torch.zeros(()))
        self.config = dict(modalities=list(modalities), aux_columns=self.aux_columns, fusion=fusion, hidden=hidden,
                           modality_dropout=self.modality_dropout)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimiser parameter groups: the face model at ``lr``, the encoders and late heads at
        ``max(lr, TABULAR_LR)``, the mid-fusion head at ``max(lr, HEAD_LR)``."""
        groups = [{"params": list(self.face.parameters()), "lr": lr}] if self.face is not None else []
        tab = list(self.encoders.parameters()) + (list(self.heads.parameters()) if self.fusion != "mid" else [])
        groups.append({"params": tab, "lr": max(lr, TABULAR_LR)})
        if self.fusion == "mid":
            groups.append({"params": list(self.head.parameters()), "lr": max(lr, HEAD_LR)})
        return groups

    # --- features ---------------------------------------------------------------------------
    def set_feature_stats(self, mean, std) -> None:
        """Standardisation of the raw features (from the training windows; an SD of 0 becomes 1)."""
        mean = torch.as_tensor(mean, dtype=torch.float32).nan_to_num(0.0)
        std = torch.as_tensor(std, dtype=torch.float32).nan_to_num(1.0)
        self.aux_mean.copy_(mean)
        self.aux_std.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def set_scales(self, scales: dict[str, float]) -> None:
        """Each tabular modality's weight in ``[0, 1]`` in the late sum (a modality not named keeps its own)."""
        unknown = set(scales) - set(self.aux_columns)
        if unknown:
            raise ValueError(f"no tabular modality {sorted(unknown)} in this model ({', '.join(self.aux_columns) or 'none'})")
        for i, m in enumerate(self.aux_columns):
            if m in scales:
                v = float(scales[m])
                if not 0.0 <= v <= 1.0:
                    raise ValueError(f"{m}: a modality's weight must be in [0, 1], got {v}")
                self.scale[i] = v

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.setdefault(prefix + "scale", torch.ones_like(self.scale))  # fused checkpoints from before the weights
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def use(self, modalities=None) -> None:
        """Score with these modalities only (``None``: all of the model's)."""
        chosen = set(self.modalities if modalities is None else modalities)
        unknown = chosen - set(self.modalities)
        if unknown or not chosen:
            raise ValueError(f"this model was trained on {', '.join(self.modalities)}; cannot use {sorted(unknown) or 'none'}")
        self.active = chosen

    def _tabular(self, aux: torch.Tensor | None, batch: int, device) -> tuple[dict, dict]:
        """Per tabular modality: standardised features (NaN -> 0) and presence ``(B,)``."""
        feats, present = {}, {}
        start = 0
        for m, cols in self.aux_columns.items():
            n = len(cols)
            if aux is None:
                x = torch.full((batch, n), float("nan"), device=device)
            else:
                x = aux[:, start:start + n].float()
                x = (x - self.aux_mean[start:start + n]) / self.aux_std[start:start + n]
            start += n
            ok = torch.isfinite(x).all(dim=1)
            present[m] = ok.float() * float(m in self.active)
            x = torch.where(torch.isfinite(x), x, torch.zeros_like(x))
            if self.training and self.feature_noise > 0:  # no exact value to memorise (see FEATURE_NOISE)
                x = x + self.feature_noise * torch.randn_like(x)
            feats[m] = x
        return feats, present

    def _dropout(self, present: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training: switch each present modality off with ``modality_dropout``, keeping one per window."""
        if not self.training or self.modality_dropout <= 0 or len(present) < 2 or self.fusion != "mid":
            return present  # late, stacked: every head trains on every window that has its modality
        names = list(present)
        p = torch.stack([present[m] for m in names], dim=1)  # (B, M)
        keep = (torch.rand_like(p) >= self.modality_dropout).float() * p
        empty = keep.sum(1) == 0  # nothing left: keep one present modality at random
        if empty.any():
            pick = torch.multinomial(p[empty] + 1e-6, 1).squeeze(1)
            keep[empty] = nn.functional.one_hot(pick, len(names)).float() * p[empty]
        return {m: keep[:, i] for i, m in enumerate(names)}

    # --- forward ----------------------------------------------------------------------------
    def _parts(self, clip: torch.Tensor, aux: torch.Tensor | None):
        batch, device = clip.shape[0], clip.device
        feats, present = self._tabular(aux, batch, device)
        face_out = None
        if self.face is not None:
            present = {"face": torch.full((batch,), float("face" in self.active), device=device), **present}
            if "face" in self.active:
                face_out = self.face.embed(clip) if self.fusion == "mid" else self.face(clip)
        present = self._dropout(present)
        return feats, present, face_out

    def forward(self, clip: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
        return self._logits(clip, aux)[0]

    def _logits(self, clip, aux) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Fused logits ``(B, 2)``, and (late fusion) each modality's logits and presence."""
        feats, present, face_out = self._parts(clip, aux)
        batch = clip.shape[0]
        if self.fusion == "mid":
            parts = []
            if self.face is not None:
                d = self.face.config.get("d_model")
                z = face_out if face_out is not None else torch.zeros(batch, d, device=clip.device)
                parts.append(z.float() * present["face"][:, None])
            for m in self.aux_columns:
                parts.append(self.encoders[m](feats[m]) * present[m][:, None])
            parts.append(torch.stack([present[m] for m in present], dim=1))
            return self.head(torch.cat(parts, dim=1)), {}, present
        logits = {}
        if self.face is not None:
            logits["face"] = face_out.float() if face_out is not None else torch.zeros(batch, 2, device=clip.device)
        for i, m in enumerate(self.aux_columns):
            logits[m] = self.heads[m](self.encoders[m](feats[m])) * self.scale[i]  # 1 while training
        w = torch.stack([present[m] for m in logits], dim=1)  # (B, M)
        stacked = torch.stack([logits[m] for m in logits], dim=1)  # (B, M, 2)
        if self.fusion == "stacked" and bool(self.stack_fitted):
            odds = (stacked[..., 1] - stacked[..., 0]) * w  # (B, M) log-odds; an absent modality adds nothing
            z = odds @ self.stack[:-1] + self.stack[-1]
            return torch.stack([torch.zeros_like(z), z], dim=1), logits, present
        odds = (stacked[..., 1] - stacked[..., 0]) * w  # (B, M)
        z = odds.sum(1)  # late: the modalities' log-odds added (independent evidence for the same class)
        return torch.stack([torch.zeros_like(z), z], dim=1), logits, present

    @torch.no_grad()
    def modality_odds(self, clip: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, M)``: each modality's log-odds of class 1 (0 where it is absent), modalities in order."""
        if self.fusion == "mid":
            raise ValueError("mid fusion has no per-modality scores")
        _, logits, present = self._logits(clip, aux)
        return torch.stack([(logits[m][:, 1] - logits[m][:, 0]) * present[m] for m in logits], dim=1)

    def fit_stack(self, odds, labels, c: float = 1.0) -> None:
        """Fit the stacking weights: a logistic regression (L2, ``C=c``) of ``labels`` on the
        modalities' log-odds ``(N, M)`` of windows the modality heads were not trained on."""
        from sklearn.linear_model import LogisticRegression

        odds, labels = np.asarray(odds, dtype=np.float64), np.asarray(labels, dtype=np.int64)
        if len(np.unique(labels)) < 2:
            raise ValueError("stacking needs both classes among the validation windows")
        lr = LogisticRegression(C=c).fit(odds, labels)
        self.stack.copy_(torch.as_tensor(np.r_[lr.coef_[0], lr.intercept_], dtype=torch.float32))
        self.stack_fitted.fill_(1.0)

    def loss(self, clip, soft, label, *, aux=None, use_soft_labels=True, label_smoothing=0.1, class_weights=None):
        """The face models' loss (LDL to the soft target, or cross-entropy) on the fused logits;
        ``late`` and ``stacked`` train each present modality's head on its own loss only."""
        def one(logits, rows=None):
            s, y = (soft, label) if rows is None else (soft[rows], label[rows])
            if use_soft_labels:
                return ldl_loss(logits, smooth_targets(s, label_smoothing))
            return cross_entropy(logits, y, class_weights, label_smoothing)

        fused, logits, present = self._logits(clip, aux)
        if self.fusion == "mid":
            return one(fused), fused
        # late / stacked: each head's own loss only, so each modality learns to score alone (a fused
        # loss teaches a weak head to correct the strong one's training errors, i.e. to memorise the
        # training animals)
        total = fused.new_zeros(())
        for m, lg in logits.items():
            rows = present[m] > 0
            if rows.any():
                total = total + one(lg[rows], rows)
        return total, fused


def fused_model(build_face, face_cfg: dict, fusion_cfg: dict) -> FusionNet:
    """:class:`FusionNet` for ``create_model(name, fusion=fusion_cfg, **face_cfg)``: the face
    model is ``build_face(**face_cfg)`` when ``face`` is a modality. Its ``config`` is
    ``face_cfg`` plus ``fusion``, so ``create_model(name, **net.config)`` rebuilds it."""
    face = build_face(**face_cfg) if "face" in fusion_cfg["modalities"] else None
    net = FusionNet(face, fusion_cfg["modalities"], fusion_cfg.get("aux_columns") or {}, fusion_cfg.get("fusion", "late"),
                    int(fusion_cfg.get("hidden", 32)), float(fusion_cfg.get("modality_dropout", 0.3)))
    net.config = {**face_cfg, "fusion": net.config}
    return net
