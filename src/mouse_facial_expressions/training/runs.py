"""Reading a training run folder back: which checkpoint each fold selected, and its task.

A run folder (``models/runs/<run>/``, written by ``training.cv.train_cv``) holds one model
per outer fold. Each fold's *selected* checkpoint is the one training recorded in
``fold{k}/fold.json`` (``best_checkpoint``); ``summary.json`` is read when a ``fold.json`` is
missing, and ``fold{k}/last.ckpt`` is the last resort.

Paths in a run's records are relative to the run folder (:func:`record_path`:
``../../checkpoints_advanced/<run>/advanced-fold0-....ckpt``, ``fold0/last.ckpt``), so a
copied or moved project reads its own files. Runs written before that hold absolute paths;
:func:`resolve_recorded` re-roots such a path that lies outside the run's project (the same
tail under this run's folders), so a copy never reads the original's weights while it has
its own files.

Run names name one folder under ``runs/`` and ``checkpoints*/``: :func:`check_run_name`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def check_run_name(name: str) -> str:
    """A run name is one folder name (``runs/<name>``, ``checkpoints*/<name>``): no path
    separator, no ``..``, no leading ``.``, not empty (the rule of task versions).

    Raises:
        ValueError: naming the run name.
    """
    v = str(name)
    if not v or "/" in v or "\\" in v or ".." in v or v.strip() != v or v.startswith(".") or "\0" in v:
        raise ValueError(f"run name {v!r} cannot name a run folder (models/runs/<run name>): use letters, digits, "
                         "'.', '-' or '_', without '/', '\\' or '..' and not starting with '.'")
    return v


def _norm(p: str | Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(p)))


def _under(p: Path, root: Path) -> bool:
    return p == root or root in p.parents


def record_path(path: str | Path, base: str | Path, within: str | Path | None = None) -> str:
    """How a run records ``path``: relative to ``base`` (POSIX separators, ``..`` allowed), or
    absolute when ``within`` is given and ``path`` lies outside it (a file of another project)
    or when no relative path exists (another drive)."""
    p, b = _norm(path), _norm(base)
    if within is not None:
        root = _norm(within)
        if not (_under(p, root) or _under(Path(os.path.realpath(p)), Path(os.path.realpath(root)))):
            return str(p)
    try:
        return Path(os.path.relpath(p, b)).as_posix()
    except ValueError:  # Windows: another drive
        return str(p)


def resolve_recorded(recorded: str | Path, base: str | Path, roots: list[str | Path] | tuple = ()) -> Path:
    """A path a run recorded, as a path here.

    Relative (runs written now): joined to ``base``. Absolute (older runs) and under one of
    ``roots`` (this run's project): as it is. Absolute and elsewhere (the project was copied or
    moved): its longest tail that exists under a root (roots in order), so the run's own file
    wins over the original's; none: the recorded path, with a warning when it exists (files
    of another project).
    """
    p = Path(recorded)
    if not p.is_absolute():
        return _norm(Path(base) / p)
    p = _norm(p)
    roots = [_norm(r) for r in roots]
    if not roots or any(_under(p, r) for r in roots):
        return p
    parts = p.parts[1:]  # without the anchor ("/" or "C:\\")
    for i in range(len(parts)):  # longest tail first
        for root in roots:
            cand = root.joinpath(*parts[i:])
            if cand.exists():
                log.debug("%s lies outside %s: using %s", p, roots[0], cand)
                return cand
    if p.exists():
        log.warning("%s: recorded by a run in %s, lies outside it, and the run has no copy of it: using it as it is",
                    p, roots[0])
    return p


def run_roots(run_dir: str | Path, project: bool = True) -> list[Path]:
    """Where a run's recorded files live: the run folder, its models folder (when the run sits
    in ``<models>/runs/``) and, with ``project``, that folder's parent when it holds ``mfe.yaml``
    (the project in the default layout)."""
    from mouse_facial_expressions.config import CONFIG_NAME

    run_dir = _norm(run_dir)
    if run_dir.parent.name != "runs":
        return [run_dir]
    models = run_dir.parent.parent
    return [run_dir, models] + ([models.parent] if project and (models.parent / CONFIG_NAME).is_file() else [])


def _fold_dirs(run_dir: Path) -> list[Path]:
    dirs = [p for p in run_dir.glob("fold*") if p.is_dir() and p.name[4:].isdigit()]
    return sorted(dirs, key=lambda p: int(p.name[4:]))


def _locate(recorded: str | None, run_dir: Path, fold_dir: Path) -> Path | None:
    """The recorded checkpoint (:func:`resolve_recorded`), or a file of the same name near the run."""
    if not recorded:
        return None
    p = resolve_recorded(recorded, run_dir, run_roots(run_dir, project=False))  # checkpoints live under <models>
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
    run_dir = _norm(run_dir)
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


def run_task_dir(run_dir: str | Path) -> Path | None:
    """The task folder a run was trained on: ``params.json``'s ``task_dir``, relative to the run
    folder (older runs: absolute, re-rooted into the run's project when it lies elsewhere); None
    when ``params.json`` is missing or names none."""
    run_dir = _norm(run_dir)
    f = run_dir / "params.json"
    if not f.is_file():
        return None
    try:
        recorded = json.loads(f.read_text()).get("task_dir")
    except (json.JSONDecodeError, AttributeError):
        return None
    if not recorded:
        return None
    if not Path(recorded).is_absolute():
        return resolve_recorded(recorded, run_dir)
    return resolve_recorded(recorded, run_dir, run_roots(run_dir))


def checkpoint_task_dir(recorded: str | Path | None, ckpt: str | Path) -> Path | None:
    """A checkpoint's ``data.task_dir`` (absolute, where the task was at training time), re-rooted
    into the checkpoint's project (``<project>/<models>/checkpoints*/<run>/<file>.ckpt``) when the
    project was copied or moved."""
    if not recorded or not Path(recorded).is_absolute():  # relative: as given to train_cv (where it ran)
        return Path(recorded) if recorded else None
    from mouse_facial_expressions.config import CONFIG_NAME

    ckpt = _norm(ckpt)
    project = ckpt.parents[3] if len(ckpt.parents) > 3 and ckpt.parents[1].name.startswith("checkpoints") else None
    roots = [project] if project is not None and (project / CONFIG_NAME).is_file() else []
    return resolve_recorded(recorded, ckpt.parent, roots)
