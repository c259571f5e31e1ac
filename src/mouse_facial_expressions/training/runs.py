"""Reading a training run folder back: which checkpoint each fold selected.

A run folder (``models/runs/<run>/``, written by ``training.cv.train_cv``) holds one model
per outer fold. Each fold's *selected* checkpoint is the one training recorded in
``fold{k}/fold.json`` (``best_checkpoint``); ``summary.json`` is read when a ``fold.json`` is
missing, and ``fold{k}/last.ckpt`` is the last resort. A recorded path that no longer exists
(the project moved) is looked up by file name under the run's ``models/`` folder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


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


