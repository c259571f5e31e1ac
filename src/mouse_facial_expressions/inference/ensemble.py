"""A trained run's fold models as one scorer: load, check, average ``p1`` over folds.

A run folder holds one model per outer fold; each fold's selected checkpoint is found by
:func:`training.runs.fold_checkpoints`. The members' ``data["task_dir"]`` (the task they were
trained on) is the run's own task folder: in a copied or moved project, the copy's
(:func:`training.runs.run_task_dir`, :func:`training.runs.checkpoint_task_dir`).

:class:`FoldEnsemble` scores normalised clips ``(B, T, C, H, W)`` with every member and
returns the per-fold probabilities; the ensemble's ``p1`` is their mean. A run with Mouse
Grimace Scale action-unit heads (``mfe train --targets au|au+class``, ``models/au.py``) also
gives each window's expected AU scores (:meth:`FoldEnsemble.predict_au`: the mean over members
of each AU's expected score, 0..2, in ``io.ratings.AUS`` order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mouse_facial_expressions.models.registry import load_trained_model
from mouse_facial_expressions.training.runs import checkpoint_task_dir, fold_checkpoints, run_task_dir


#: Data settings every member of an ensemble must share.
SHARED_DATA_KEYS = ("num_frames", "frame_stride", "image_size", "in_channels")


def load_run_models(run_dir: str | Path) -> list[tuple[torch.nn.Module, dict]]:
    """Every fold's selected model of a run, in fold order, as ``(model, hparams)`` (eval mode)."""
    return [load_trained_model(ckpt) for _, ckpt in fold_checkpoints(run_dir)]


@dataclass
class FoldEnsemble:
    """Models that score the same clips; ``p1`` is the mean of their probabilities.

    Attributes:
        models: members in eval mode.
        hparams: their checkpoint hyperparameters (``model_name``, ``model_cfg``, ``data``).
        names: member names (``fold0``, ... or the checkpoint stem).
        source: the run folder or checkpoint they came from.
    """

    models: list[torch.nn.Module]
    hparams: list[dict]
    names: list[str]
    source: Path | None = None
    dtype: torch.dtype = torch.float32
    data: dict = field(init=False)

    def __post_init__(self):
        if not self.models:
            raise ValueError("an ensemble needs at least one model")
        datas = [dict(h.get("data") or {}) for h in self.hparams]
        for key in SHARED_DATA_KEYS:
            values = {d.get(key) for d in datas}
            if len(values) > 1:
                raise ValueError(f"{self.source}: the fold models disagree on {key}: {sorted(map(str, values))}")
        self.data = datas[0]
        kinds = {getattr(m, "kind", None) == "au" for m in self.models}
        if len(kinds) > 1:
            raise ValueError(f"{self.source}: some fold models have action-unit heads (--targets au) and some do not")
        for m in self.models:
            m.eval()

    @property
    def has_au(self) -> bool:
        """True when the members have MGS action-unit heads (``mfe train --targets au|au+class``)."""
        return getattr(self.models[0], "kind", None) == "au"

    @property
    def num_frames(self) -> int:
        return int(self.data.get("num_frames") or self.hparams[0]["model_cfg"].get("num_frames", 10))

    @property
    def frame_stride(self) -> int:
        return int(self.data.get("frame_stride") or 1)

    @property
    def image_size(self) -> int:
        return int(self.data.get("image_size") or 112)

    @property
    def channels(self) -> int:
        return int(self.data.get("in_channels") or 3)

    def __len__(self) -> int:
        return len(self.models)

    @property
    def device(self) -> torch.device:
        return next(self.models[0].parameters()).device

    def to(self, device: str | torch.device) -> FoldEnsemble:
        """Move every member to ``device`` (``"auto"``: CUDA when available, else CPU)."""
        if str(device) == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        for m in self.models:
            m.to(device)
        return self

    @property
    def relative(self) -> bool:
        """True for a baseline-relative run (``mfe train --baseline-recording``)."""
        return any(getattr(m, "relative", False) for m in self.models)

    @property
    def baseline_recording(self) -> int | None:
        """The recording a baseline-relative run scores against (None: absolute scores)."""
        k = self.data.get("baseline_recording")
        return int(k) if k is not None else None

    def require_absolute(self, what: str) -> None:
        """Refuse a baseline-relative run where no baseline windows are at hand."""
        if self.relative:
            raise ValueError(
                f"{self.source}: this run scores windows relative to each animal's baseline recording "
                f"(trained with --baseline-recording); {what} has no baseline windows to score against. "
                "Score a cohort with its baselines through its task: `mfe evaluate RUN --task TASK_FOLDER`")

    def require_face_only(self, what: str) -> None:
        """Refuse a fused run (``mfe train --modalities``) where only face clips are at hand."""
        if self.modalities != ("face",):
            raise ValueError(f"{self.source}: this run was trained on {', '.join(self.modalities)}; {what} scores face "
                             "clips only. Score its videos with `mfe predict ... --body ... --physiology ...` (or "
                             "--modalities face), or train a face-only run for this")

    @torch.no_grad()
    def embed(self, clips: torch.Tensor) -> list[torch.Tensor]:
        """Per-member window embeddings ``(B, D)`` float32 (baseline-relative scoring)."""
        use_bf16 = self.dtype == torch.bfloat16
        clips = clips.to(self.device, non_blocking=True)
        out = []
        for m in self.models:
            with torch.autocast(clips.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                out.append(m.embed(clips).float())
        return out

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities the members were trained on (``("face",)`` for a plain run)."""
        fusion = (self.hparams[0].get("model_cfg") or {}).get("fusion")
        return tuple(fusion["modalities"]) if fusion else ("face",)

    @property
    def aux_columns(self) -> dict[str, list[str]]:
        """A fused run's feature columns per non-face modality, in the order ``aux`` holds them."""
        fusion = (self.hparams[0].get("model_cfg") or {}).get("fusion") or {}
        return dict(fusion.get("aux_columns") or {})

    def use(self, modalities) -> None:
        """Score with these of a fused run's modalities only (:meth:`models.fusion.FusionNet.use`)."""
        for m in self.models:
            m.use(modalities)

    @torch.no_grad()
    def predict(self, clips: torch.Tensor, refs: list[torch.Tensor] | None = None, aux: torch.Tensor | None = None) -> np.ndarray:
        """Per-member ``p1`` of a batch.

        Args:
            clips: ``(B, T, C, H, W)`` float32 normalised clips (as the loader gives them).
            refs: baseline-relative runs only: per member, the ``(B, D)`` reference embedding
                of each row's animal (the mean of :meth:`embed` over its baseline windows).
            aux: fused runs only: ``(B, F)`` raw features of the other modalities (NaN: absent).

        Returns:
            ``(B, K)`` float64 probabilities of class 1, one column per member.
        """
        if self.relative and refs is None:
            self.require_absolute("this call")
        use_bf16 = self.dtype == torch.bfloat16
        device = self.device
        clips = clips.to(device, non_blocking=True)
        cols = []
        for k, m in enumerate(self.models):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                if getattr(m, "relative", False):
                    logits = m(clips, refs[k].to(device))
                elif aux is not None:  # a fused run: the windows' behaviour / physiology features
                    logits = m(clips, aux=aux.to(device))
                else:
                    logits = m(clips)
            cols.append(torch.softmax(logits.float(), dim=-1)[:, 1].double().cpu().numpy())
        return np.stack(cols, axis=1) if cols else np.zeros((len(clips), 0))

    @torch.no_grad()
    def predict_au(self, clips: torch.Tensor, aux: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-member ``p1`` ``(B, K)`` and the expected action-unit scores ``(B, 5)`` (0..2 each,
        ``io.ratings.AUS`` order, the mean over members) in one pass; ``None`` for the AU scores
        of a run without AU heads (then this is :meth:`predict`)."""
        if not self.has_au:
            return (self.predict(clips, aux=aux) if aux is not None else self.predict(clips)), None
        use_bf16 = self.dtype == torch.bfloat16
        clips = clips.to(self.device, non_blocking=True)
        cols, aus = [], []
        for m in self.models:
            with torch.autocast(clips.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits, au = m.scores(clips)  # (B, 2), (B, 5)
            cols.append(torch.softmax(logits.float(), dim=-1)[:, 1].double().cpu().numpy())
            aus.append(au.double().cpu().numpy())
        return np.stack(cols, axis=1), np.mean(aus, axis=0)

    def p1(self, clips: torch.Tensor) -> np.ndarray:
        """Ensemble ``p1`` ``(B,)``: the mean over members."""
        return self.predict(clips).mean(axis=1)


def load_ensemble(model: str | Path) -> FoldEnsemble:
    """A run folder (every fold's selected checkpoint) or one ``.ckpt`` file as an ensemble.

    Raises:
        FileNotFoundError: neither a checkpoint file nor a run folder.
    """
    p = Path(model)
    if p.is_file():
        m, hp = load_trained_model(p)
        ens = FoldEnsemble([m], [hp], [p.stem], source=p)
        _own_task(ens, checkpoint_task_dir(ens.data.get("task_dir"), p))
        return ens
    if p.is_dir():
        pairs = fold_checkpoints(p)
        loaded = [load_trained_model(c) for _, c in pairs]
        ens = FoldEnsemble([m for m, _ in loaded], [h for _, h in loaded], [f"fold{k}" for k, _ in pairs], source=p)
        _own_task(ens, run_task_dir(p) or checkpoint_task_dir(ens.data.get("task_dir"), pairs[0][1]))
        return ens
    raise FileNotFoundError(f"{p}: not a checkpoint (.ckpt) or a run folder (models/runs/<run>)")


def _own_task(ens: FoldEnsemble, task_dir: Path | None) -> None:
    """Point the members' ``data["task_dir"]`` at ``task_dir`` (the run's own task folder) when it exists."""
    if task_dir is None or not task_dir.is_dir() or not ens.data.get("task_dir"):
        return
    for d in [ens.data] + [h.get("data") for h in ens.hparams if isinstance(h.get("data"), dict)]:
        d["task_dir"] = str(task_dir)
