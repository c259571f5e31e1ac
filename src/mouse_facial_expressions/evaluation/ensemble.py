"""A trained run's fold models as one scorer: load, check, average ``p1`` over folds.

A run folder (``models/runs/<run>/``, written by ``training.cv.train_cv``) holds one model
per outer fold. Each fold's *selected* checkpoint is the one training recorded in
``fold{k}/fold.json`` (``best_checkpoint``: best validation accuracy, or ``last.ckpt`` when
the fold had no validation animals); ``summary.json`` is read when a ``fold.json`` is
missing, and ``fold{k}/last.ckpt`` is the last resort. A recorded path that no longer exists
(the project moved) is looked up by file name under the run's ``models/`` folder.

:class:`FoldEnsemble` scores normalised clips ``(B, T, C, H, W)`` with every member and
returns the per-fold probabilities; the ensemble's ``p1`` is their mean.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mouse_facial_expressions.training.module import load_model_from_checkpoint

log = logging.getLogger(__name__)

#: Data settings every member of an ensemble must share.
SHARED_DATA_KEYS = ("num_frames", "frame_stride", "image_size", "in_channels")


def _fold_dirs(run_dir: Path) -> list[Path]:
    dirs = [p for p in run_dir.glob("fold*") if p.is_dir() and p.name[4:].isdigit()]
    return sorted(dirs, key=lambda p: int(p.name[4:]))


def _locate(recorded: str | None, run_dir: Path, fold_dir: Path) -> Path | None:
    """The recorded checkpoint, or a file of the same name near the run (project moved)."""
    if not recorded:
        return None
    p = Path(recorded)
    if p.is_file():
        return p
    models = run_dir.parent.parent  # <models>/runs/<run>
    for cand in (fold_dir / p.name, models / p.parent.name / p.name, run_dir / p.name):
        if cand.is_file():
            return cand
    return None


def fold_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(fold, checkpoint)`` of every fold of a run, the checkpoint training selected.

    Raises:
        FileNotFoundError: ``run_dir`` is not a run folder, or a fold has no checkpoint.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    summary = {}
    if (run_dir / "summary.json").is_file():
        summary = {int(r["fold"]): r for r in json.loads((run_dir / "summary.json").read_text()).get("folds", [])
                   if "fold" in r}
    out = []
    for fd in _fold_dirs(run_dir):
        k = int(fd.name[4:])
        rec = json.loads((fd / "fold.json").read_text()) if (fd / "fold.json").is_file() else summary.get(k, {})
        ckpt = _locate(rec.get("best_checkpoint"), run_dir, fd)
        if ckpt is None:
            if rec.get("best_checkpoint"):
                log.warning("%s: recorded checkpoint %s is missing; using last.ckpt", fd, rec["best_checkpoint"])
            ckpt = fd / "last.ckpt"
            if not ckpt.is_file():
                raise FileNotFoundError(f"{fd}: no checkpoint (fold.json names none that exists, and no last.ckpt)")
        out.append((k, ckpt))
    if not out:
        raise FileNotFoundError(f"{run_dir}: not a run folder (no fold*/ folders with checkpoints)")
    return out


def load_run_models(run_dir: str | Path) -> list[tuple[torch.nn.Module, dict]]:
    """Every fold's selected model of a run, in fold order, as ``(model, hparams)`` (eval mode)."""
    return [load_model_from_checkpoint(ckpt) for _, ckpt in fold_checkpoints(run_dir)]


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
        for m in self.models:
            m.eval()

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

    @torch.no_grad()
    def predict(self, clips: torch.Tensor) -> np.ndarray:
        """Per-member ``p1`` of a batch.

        Args:
            clips: ``(B, T, C, H, W)`` float32 normalised clips (as the loader gives them).

        Returns:
            ``(B, K)`` float64 probabilities of class 1, one column per member.
        """
        use_bf16 = self.dtype == torch.bfloat16
        device = self.device
        clips = clips.to(device, non_blocking=True)
        cols = []
        for m in self.models:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = m(clips)
            cols.append(torch.softmax(logits.float(), dim=-1)[:, 1].double().cpu().numpy())
        return np.stack(cols, axis=1) if cols else np.zeros((len(clips), 0))

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
        m, hp = load_model_from_checkpoint(p)
        return FoldEnsemble([m], [hp], [p.stem], source=p)
    if p.is_dir():
        pairs = fold_checkpoints(p)
        loaded = [load_model_from_checkpoint(c) for _, c in pairs]
        return FoldEnsemble([m for m, _ in loaded], [h for _, h in loaded], [f"fold{k}" for k, _ in pairs], source=p)
    raise FileNotFoundError(f"{p}: not a checkpoint (.ckpt) or a run folder (models/runs/<run>)")
