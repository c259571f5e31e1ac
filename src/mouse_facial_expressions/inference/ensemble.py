"""A trained run's fold models as one scorer: load, check, average ``p1`` over folds.

A run folder holds one model per outer fold; each fold's selected checkpoint is found by
:func:`training.runs.fold_checkpoints`. The members' ``data["task_dir"]`` (the task they were
trained on) is the run's own task folder: in a copied or moved project, the copy's
(:func:`training.runs.run_task_dir`, :func:`training.runs.checkpoint_task_dir`).

:class:`FoldEnsemble` scores batches (``clip`` normalised ``(B, T, C, H, W)``, plus the fields the
model's parts read) with every member through :mod:`models.scoring`, the same code training's
test pass uses: the per-fold probabilities, whose mean is the ensemble's ``p1``, and the members'
mean of every other output the parts give (e.g. ``au``: the expected action-unit scores, 0..2, of
a run with Mouse Grimace Scale heads).
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
        kinds = {tuple(m.parts) for m in self.models}
        if len(kinds) > 1:
            raise ValueError(f"{self.source}: the fold models are made of different parts: {sorted(kinds)}")
        for m in self.models:
            m.eval()

    @property
    def parts(self) -> tuple[str, ...]:
        """The members' parts (``models.parts``), e.g. ``("face", "class", "au")``."""
        return tuple(self.models[0].parts)

    @property
    def has_au(self) -> bool:
        """True when the members give action-unit scores (``mfe train --targets au|au+class``)."""
        return "au" in self.output_names

    @property
    def output_names(self) -> tuple[str, ...]:
        """The per-window outputs beyond ``p1`` the members' parts give (e.g. ``("au",)``)."""
        return tuple(o for part in self.models[0].parts.values() for o in part.onnx_outputs)

    @property
    def column_text(self) -> dict[str, str]:
        """The parts' output columns and their descriptions (``COLUMNS.md``)."""
        return self.models[0].column_text

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
        return "relative" in self.parts

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

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities the members were trained on (``("face",)`` for a plain run)."""
        return self.models[0].modalities

    @property
    def aux_columns(self) -> dict[str, list[str]]:
        """A fused run's feature columns per non-face modality, in the order ``aux`` holds them."""
        fusion = self.models[0].parts["fusion"] if "fusion" in self.models[0].parts else None
        return dict(fusion.aux_columns) if fusion is not None else {}

    def use(self, modalities) -> None:
        """Score with these of a fused run's modalities only (``models.parts.fusion.Fusion.use``)."""
        for m in self.models:
            m.parts["fusion"].use(modalities)

    def set_context(self, batches) -> None:
        """Let the members' parts read context windows before scoring (a baseline-relative run: each
        animal's baseline windows); ``batches``: re-iterable batches with ``clip`` and ``animal``."""
        from mouse_facial_expressions.models.scoring import set_context

        set_context(self.models, batches, self.channels, self.dtype)

    @torch.no_grad()
    def score(self, batch: dict) -> tuple[np.ndarray, dict]:
        """``(p1 (B, K) float64, {output: (B, ...)})`` of a batch (``models.scoring.score_batch``)."""
        from mouse_facial_expressions.models.scoring import score_batch

        return score_batch(self.models, batch, self.dtype)

    @torch.no_grad()
    def predict(self, clips: torch.Tensor, aux: torch.Tensor | None = None, animals=None) -> np.ndarray:
        """Per-member ``p1`` ``(B, K)`` float64 of normalised clips ``(B, T, C, H, W)``; ``aux``: a fused
        run's raw features ``(B, F)`` (NaN: absent); ``animals``: a baseline-relative run's (after :meth:`set_context`)."""
        return self.predict_au(clips, aux, animals)[0]

    @torch.no_grad()
    def predict_au(self, clips: torch.Tensor, aux: torch.Tensor | None = None, animals=None) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-member ``p1`` ``(B, K)`` and the expected action-unit scores ``(B, 5)`` (0..2 each,
        ``io.ratings.AUS`` order, the mean over members; None for a run without AU heads) in one pass."""
        batch = {"clip": clips}
        if aux is not None:
            batch["aux"] = aux
        if animals is not None:
            batch["animal"] = list(animals)
        p1, outs = self.score(batch)
        return p1, outs.get("au")

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
