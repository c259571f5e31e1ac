"""Fusion of the face with behaviour and physiology features (``mfe train --modalities``).

A window is scored from any subset of three modalities:

- ``face``: the face part's class logits (``late``, ``stacked``) or embedding (``mid``);
- ``behaviour``: the window's body-keypoint features (``preprocess.behaviour.BEHAVIOUR_FEATURES``);
- ``physiology``: the animal's measures at that recording, as change from its baseline
  (``io.physiology``), the same for every window of a video.

Each tabular modality has a small MLP encoder (``Linear-GELU-Linear-GELU``, ``hidden`` units).
Its inputs are standardised inside the model with the training windows' mean and SD (buffers
saved with the checkpoint), so a checkpoint scores raw features (dataset field ``aux``).

- ``mid``: the modality embeddings (the face's ``z``; the MLPs' outputs) are concatenated, each
  multiplied by its presence (0 or 1), with the presence flags, and one head classifies them;
  in training each present modality is switched off per window with ``modality_dropout``.
- ``late``: one head per tabular modality gives logits, each trained on its own loss only (the
  class part's loss over ``State.evidence``), with no modality dropout: each learns to score alone
  (a fused loss would teach a weak head to correct the strong one's training errors, i.e. to
  memorise the training animals). The fused log-odds are the sum of the present modalities'
  log-odds (independent evidence), each tabular modality's first multiplied by its weight in
  ``[0, 1]`` (``scale``, set by leave-one-animal-out cross-fitting on the training animals,
  :mod:`training.tabular`), so a modality whose heads do not carry to new animals adds next to nothing.
- ``stacked``: trained as ``late``; then a logistic regression on the modalities' log-odds, fit on
  the fold's validation animals after checkpoint selection, weighs them (until then: as ``late``).

A modality is present for a window when every one of its features is finite (NaN marks what was
not measured), and when it is active (:meth:`Fusion.use`: ``mfe predict --modalities`` or the
leave-one-modality-out evaluation switch one off).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn as nn

from mouse_facial_expressions.data.modalities import MODALITIES
from mouse_facial_expressions.models.parts.base import Part, State, register_part

log = logging.getLogger(__name__)

FUSIONS = ("late", "stacked", "mid")
#: Learning rates (at least): the tabular encoders and their late heads learn at ``TABULAR_LR``, the
#: mid-fusion head at ``HEAD_LR``. The face's 1e-4 leaves small MLPs barely trained after a few epochs
#: (physiology alone: animal accuracy 0.50 at 1e-3 against 1.00 at 1e-2 on a tuning cohort), while a
#: mid-fusion head at 1e-2 over-fits the face embedding.
TABULAR_LR = 1e-2
HEAD_LR = 1e-3
#: SD of the Gaussian noise added to the standardised features in training: physiology is one value
#: per video, so a network can learn each training video's label from its exact value.
FEATURE_NOISE = 0.5


@register_part
class Fusion(Part):
    """The tabular modalities' encoders and heads, and how they combine with the face.

    Options: ``modalities`` (in :data:`MODALITIES` order), ``aux_columns`` (modality -> feature
    columns, the tabular ones), ``fusion`` (late | stacked | mid), ``hidden``, ``modality_dropout``.
    """

    name = "fusion"
    stage = "fusion"
    fields = ("aux",)
    metrics = ("modalities",)
    onnx_inputs = ("aux",)
    legacy_keys = {k: k for k in ("aux_mean", "aux_std", "encoders", "heads", "head", "scale", "stack", "stack_fitted")}

    def __init__(self, net, modalities=(), aux_columns=None, fusion: str = "late", hidden: int = 32,
                 modality_dropout: float = 0.3, **options):
        modalities, aux_columns = tuple(modalities), dict(aux_columns or {})
        super().__init__(net, modalities=list(modalities), aux_columns=aux_columns, fusion=fusion, hidden=int(hidden),
                         modality_dropout=float(modality_dropout), **options)
        bad = [m for m in modalities if m not in MODALITIES]
        if bad or not modalities:
            raise ValueError(f"modalities must be a non-empty subset of {', '.join(MODALITIES)}, got {list(modalities)}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        tabular = [m for m in modalities if m != "face"]
        lacking = [m for m in tabular if not aux_columns.get(m)]
        if lacking:
            raise ValueError(f"modalities {lacking} have no feature columns")
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        self.modalities, self.fusion, self.modality_dropout = modalities, fusion, float(modality_dropout)
        self.feature_noise = FEATURE_NOISE
        self.aux_columns = {m: list(aux_columns[m]) for m in tabular}
        self.has_face = "face" in modalities
        n_feat = sum(len(c) for c in self.aux_columns.values())
        self.register_buffer("aux_mean", torch.zeros(n_feat))
        self.register_buffer("aux_std", torch.ones(n_feat))
        self.encoders = nn.ModuleDict({m: nn.Sequential(nn.Linear(len(c), hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
                                       for m, c in self.aux_columns.items()})
        self.active = set(modalities)
        if fusion == "mid":
            face_dim = int(net.face_dim or 0) if self.has_face else 0
            width = face_dim + hidden * len(tabular) + len(modalities)
            self.head = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, 2))
        else:
            self.heads = nn.ModuleDict({m: nn.Linear(hidden, 2) for m in tabular})
        self.register_buffer("scale", torch.ones(len(tabular)))  # late: each tabular modality's weight
        self.register_buffer("stack", torch.zeros(len(modalities) + 1))  # stacked: weights and bias on the log-odds
        self.register_buffer("stack_fitted", torch.zeros(()))

    # --- spec ---------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, p) -> dict | None:
        if p.modalities is None:
            return None
        return dict(modalities=list(p.modality_list), fusion=p.fusion or "late", hidden=32,
                    modality_dropout=0.3 if p.modality_dropout is None else float(p.modality_dropout))

    @classmethod
    def to_params(cls, options: dict, spec: dict) -> dict:
        return {"modalities": ",".join(options["modalities"]), "fusion": options.get("fusion", "late"),
                "modality_dropout": options.get("modality_dropout")}

    @classmethod
    def from_legacy(cls, model_cfg: dict) -> dict | None:
        return model_cfg.pop("fusion", None) or None

    @classmethod
    def check(cls, options: dict, spec: dict, face: str | None) -> None:
        if options.get("fusion") == "mid" and face not in (None, "advanced"):
            raise ValueError(f"mid fusion needs the face model's embedding; {face} has none: use --fusion late")

    @classmethod
    def configure(cls, options: dict, data: dict) -> dict:
        return {**options, "aux_columns": data["aux_columns"]}

    def prepare(self, data: dict) -> None:
        self.set_feature_stats(*data["aux_stats"])  # the training windows' (saved with the weights)

    def param_groups(self, lr: float) -> list[dict]:
        tab = list(self.encoders.parameters()) + (list(self.heads.parameters()) if self.fusion != "mid" else [])
        groups = [{"params": tab, "lr": max(lr, TABULAR_LR)}]
        if self.fusion == "mid":
            groups.append({"params": list(self.head.parameters()), "lr": max(lr, HEAD_LR)})
        return groups

    # --- features -----------------------------------------------------------------------------
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

    def _tabular(self, aux: torch.Tensor | None, ones: torch.Tensor) -> tuple[dict, dict]:
        """Per tabular modality: standardised features (NaN -> 0) and presence ``(B,)``.
        ``ones``: ``(B, 1)`` ones (shapes follow the batch, also in an exported graph)."""
        feats, present, start = {}, {}, 0
        for m, cols in self.aux_columns.items():
            n = len(cols)
            if aux is None:
                x = ones.expand(-1, n) * float("nan")
            else:
                x = aux[:, start:start + n].float()
                x = (x - self.aux_mean[start:start + n]) / self.aux_std[start:start + n]
            start += n
            ok = torch.isfinite(x).all(dim=1)
            present[m] = ok.float() * float(m in self.active)
            x = torch.where(torch.isfinite(x), x, torch.zeros_like(x))
            if self.training and self.feature_noise > 0:  # no exact value to memorise (FEATURE_NOISE)
                x = x + self.feature_noise * torch.randn_like(x)
            feats[m] = x
        return feats, present

    def _dropout(self, present: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training, mid fusion: switch each present modality off with ``modality_dropout``, keeping one per window."""
        if not self.training or self.modality_dropout <= 0 or len(present) < 2 or self.fusion != "mid":
            return present  # late, stacked: every head trains on every window that has its modality
        names = list(present)
        p = torch.stack([present[m] for m in names], dim=1)  # (B, M)
        keep = (torch.rand_like(p) >= self.modality_dropout).float() * p
        empty = keep.sum(1) == 0
        if empty.any():
            pick = torch.multinomial(p[empty] + 1e-6, 1).squeeze(1)
            keep[empty] = nn.functional.one_hot(pick, len(names)).float() * p[empty]
        return {m: keep[:, i] for i, m in enumerate(names)}

    # --- forward ------------------------------------------------------------------------------
    def before(self, s: State) -> None:
        """The tabular features and their presence, before the face runs (training draws their noise
        first, as models trained before the parts did: the same seed trains the same model)."""
        clip = s.batch["clip"]
        ones = torch.ones_like(clip.reshape(clip.shape[0], -1)[:, :1], dtype=torch.float32)  # (B, 1)
        aux = s.batch.get("aux")
        s.outputs["fusion_inputs"] = (ones, *self._tabular(None if aux is None else aux.to(clip.device), ones))

    def forward(self, s: State) -> None:
        ones, feats, present = s.outputs.pop("fusion_inputs")
        if self.has_face:
            present = {"face": ones[:, 0] * float("face" in self.active), **present}
        present = self._dropout(present)
        if self.fusion == "mid":
            parts = []
            if self.has_face:
                parts.append(s.z.float() * present["face"][:, None])
            parts += [self.encoders[m](feats[m]) * present[m][:, None] for m in self.aux_columns]
            parts.append(torch.stack([present[m] for m in present], dim=1))
            s.logits = self.head(torch.cat(parts, dim=1))
            s.evidence = {"fused": (s.logits, None)}
            return
        logits = {"face": s.logits.float()} if self.has_face else {}
        for i, m in enumerate(self.aux_columns):
            logits[m] = self.heads[m](self.encoders[m](feats[m])) * self.scale[i]  # scale 1 while training
            s.evidence[m] = (logits[m], present[m] > 0)
        w = torch.stack([present[m] for m in logits], dim=1)  # (B, M)
        odds = torch.stack([lg[:, 1] - lg[:, 0] for lg in logits.values()], dim=1) * w  # absent: adds nothing
        s.outputs["modality_odds"] = odds
        z = odds @ self.stack[:-1] + self.stack[-1] if self.fusion == "stacked" and bool(self.stack_fitted) else odds.sum(1)
        s.logits = torch.stack([torch.zeros_like(z), z], dim=1)

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

    # --- after selection, scoring -------------------------------------------------------------
    def after_selection(self, net, data: dict, loaders: dict, p, fold: int) -> dict:
        """``stacked``: weights fit on the validation windows; ``late``: the tabular modalities'
        weights by leave-one-animal-out cross-fitting on the training windows."""
        from mouse_facial_expressions.models.parts.fusion_fit import fit_scales_on, fit_stack_on

        rec = {"modalities": list(self.modalities), "fusion": self.fusion, "stack": None, "modality_weights": None}
        if self.fusion == "stacked":
            rec["stack"] = fit_stack_on(net, self, loaders["val"], fold, p.in_channels)
        if self.fusion == "late" and len(self.modalities) > 1:
            rec["modality_weights"] = fit_scales_on(net, self, data, p, fold)
        return rec

    def extra_predictions(self, net, score) -> dict:
        """Each modality alone (``only_<m>``) and each left out (``without_<m>``), next to all of
        them (``all``): ``predictions_modalities.csv``, what the evaluation's modality table reads."""
        import pandas as pd

        mods = list(self.modalities)
        variants = {"all": mods}
        if len(mods) > 1:
            variants.update({f"only_{m}": [m] for m in mods})
            if len(mods) > 2:
                variants.update({f"without_{m}": [o for o in mods if o != m] for m in mods})
        tables = []
        try:
            for name, use in variants.items():
                self.use(use)
                tables.append(score().assign(variant=name))
        finally:
            self.use(None)
        return {"predictions_modalities.csv": pd.concat(tables, ignore_index=True)}

    # --- dataset ------------------------------------------------------------------------------
    @classmethod
    def dataset_fields(cls, options: dict, ctx, role: str, windows) -> dict:
        """``aux``: the window's raw features of the tabular modalities (NaN: not measured)."""
        from mouse_facial_expressions.data.fields import ArrayField
        from mouse_facial_expressions.data.modalities import feature_stats, modality_features

        recordings = ctx.recordings() if "physiology" in options["modalities"] else None
        feats, ctx.out["aux_columns"] = modality_features(ctx.project_config(), windows, options["modalities"], recordings)
        if role == "train":
            ctx.out["aux_stats"] = feature_stats(feats)
        return {"aux": ArrayField(feats.to_numpy(np.float32))}

    @classmethod
    def score_fields(cls, options: dict, ctx, windows) -> dict:
        """``aux`` of another task's windows, in the trained model's column order (a modality the
        task's project lacks is NaN: not measured, and the model scores without it)."""
        from mouse_facial_expressions.data.fields import ArrayField
        from mouse_facial_expressions.data.modalities import modality_features

        recordings = ctx.recordings() if "physiology" in options["modalities"] else None
        feats, _ = modality_features(ctx.project_config(), windows, options["modalities"], recordings)
        columns = [c for cols in options["aux_columns"].values() for c in cols]
        return {"aux": ArrayField(feats.reindex(columns=columns).to_numpy(np.float32))}
