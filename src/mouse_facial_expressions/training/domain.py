"""The training videos' domain summary that each fold's checkpoint carries (``data["domain"]``).

:func:`fold_domain` pools the frame store's per-video summaries (``preprocess.domain``,
recorded by ``mfe extract``) of the videos of a fold's TRAINING animals; ``mfe predict`` and
``mfe evaluate --task`` compare new crops with it (``inference.domain``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from mouse_facial_expressions.data.task_files import TaskFiles
from mouse_facial_expressions.preprocess.domain import pool_summaries, store_summaries

log = logging.getLogger(__name__)


def task_frames_dir(task_dir: Path) -> Path | None:
    """The frame store a task was made from (``task.yaml`` ``frames_dir``, else ``../../frames``)."""
    from mouse_facial_expressions.data.tasks import load_spec
    from mouse_facial_expressions.data.tasks import task_frames_dir as frames_of

    fdir = frames_of(task_dir, load_spec(task_dir / TaskFiles.SPEC))
    if fdir is None or not fdir.is_dir():
        moved = task_dir.resolve().parent.parent / "frames"
        fdir = moved if moved.is_dir() else None
    return fdir


def fold_domain(task_dir: str | Path, animals) -> dict | None:
    """:func:`preprocess.domain.pool_summaries` of the task's videos of ``animals``, with
    ``synthetic``; None (and a log line) when the task or its frame store cannot tell."""
    task_dir = Path(task_dir)
    try:
        fdir = task_frames_dir(task_dir)
        frames = pd.read_parquet(task_dir / TaskFiles.FRAMES, columns=["video", "animal"])
        if fdir is None:
            raise FileNotFoundError(f"{task_dir}: its frame store is missing")
        wanted = {str(a) for a in animals}
        videos = sorted(frames.loc[frames["animal"].astype(str).isin(wanted), "video"].astype(str).unique())
        if not videos:
            raise ValueError(f"{task_dir}: no videos of the animals {sorted(wanted)}")
        return pool_summaries(list(store_summaries(fdir, videos).values()))
    except Exception as err:  # a task from a flat table, a fake store: train without the record
        log.info("no domain summary in the checkpoint: %s", err)
        return None
