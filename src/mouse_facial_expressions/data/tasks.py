"""Tasks: label rules + exclusions + animal-grouped folds + window settings, as a folder.

``make_task`` writes ``tasks/task-<version>/`` (see docs/ARCHITECTURE.md):
``task.yaml`` (the resolved :class:`TaskSpec`), ``frames.parquet`` (labelled frame rows),
``folds.json`` and ``README.md``; with an AU target (``spec.au``) also ``au_targets.parquet`` and
``au_ratings.parquet`` (``data/au_targets.py``). ``load_task`` reads it back and re-runs the leakage check.

Crops that ``mfe extract`` flagged (keypoints that cannot give a face) are left out, and so is
every video with too few crops left for one window (``data/frame_quality.py``); each such video
is logged and named in the README's notes with its counts and the reason.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mouse_facial_expressions.data import folds as F
from mouse_facial_expressions.data.flat_table import DuplicateRowsError
from mouse_facial_expressions.data.frame_quality import leave_out_unusable
from mouse_facial_expressions.data.rules import RuleError, apply_rules
from mouse_facial_expressions.data.soft_labels import soft_p1
from mouse_facial_expressions.data.task_files import TaskFiles
from mouse_facial_expressions.data.task_spec import (  # re-exported: PRESETS, preset
    PRESETS,
    TaskError,
    TaskSpec,
    check_version,
    load_spec,
    preset,
)

log = logging.getLogger(__name__)


@dataclass
class Task:
    """A task folder read back: spec, labelled frame rows, folds."""

    path: Path
    spec: TaskSpec
    frames: pd.DataFrame
    folds: list[dict]

    def animals(self, fold: int, role: str) -> list[str]:
        """Animals with ``role`` (train/val/test) in outer fold ``fold``."""
        return list(self.folds[fold][role])


def load_task(task_dir: str | Path) -> Task:
    """Read a task folder and re-run the leakage check on its folds."""
    task_dir = Path(task_dir)
    if not (task_dir / TaskFiles.SPEC).is_file():
        raise FileNotFoundError(f"{task_dir}: not a task folder (no {TaskFiles.SPEC}; run `mfe task make`)")
    spec = load_spec(task_dir / TaskFiles.SPEC)
    frames = pd.read_parquet(task_dir / TaskFiles.FRAMES)
    folds = F.read_folds(task_dir / TaskFiles.FOLDS, animals=frames["animal"].astype(str).unique())
    return Task(path=task_dir, spec=spec, frames=frames, folds=folds)


def task_frames_dir(task_dir: str | Path, spec: TaskSpec | None = None) -> Path | None:
    """The frame store a task's windows read (``task.yaml`` ``frames_dir``); None for a task made
    from a flat table.

    Tasks record it relative to the task folder, so a copied project reads its own crops; when
    that does not resolve (the task folder alone was moved), the store where the task was made.
    Older tasks recorded an absolute path: when it lies outside the task's own project, the same
    folder inside this project wins when it exists.
    """
    task_dir = Path(task_dir)
    spec = spec if spec is not None else load_spec(task_dir / TaskFiles.SPEC)
    if not spec.frames_dir:
        return None
    p = Path(spec.frames_dir)
    if not p.is_absolute():
        here = Path(os.path.normpath(task_dir.resolve() / p))
        made = Path(spec.frames_dir_made) if spec.frames_dir_made else None
        return made if not here.is_dir() and made is not None and made.is_dir() else here  # the task alone moved
    for project in task_dir.resolve().parents:  # the nearest folder holding mfe.yaml is the project
        if (project / "mfe.yaml").is_file():
            if project in p.parents:
                return p
            for i in range(1, len(p.parts)):  # the longest tail of the old path that exists here
                local = project.joinpath(*p.parts[i:])
                if local.is_dir():
                    return local
            break
    return p


def check_duplicate_videos(videos: pd.DataFrame, *, dedupe: bool = False, where: str = "the video table") -> pd.DataFrame:
    """One metadata row per video, or an error naming the repeated videos and their counts.

    With ``dedupe`` the first row per video is kept (preferring ``discard != 1``)."""
    counts = videos.groupby("video").size()
    dup = counts[counts > 1]
    if dup.empty:
        return videos
    names = ", ".join(f"{v} ({n} rows)" for v, n in dup.items())
    if not dedupe:
        raise DuplicateRowsError(f"{where}: duplicate metadata rows for videos {names}; fix the metadata or use dedupe")
    log.warning("%s: keeping one metadata row for %s", where, names)
    pref = videos["discard"].fillna(0).eq(1).astype(int) if "discard" in videos.columns else 0
    return videos.assign(_p=pref).sort_values("_p", kind="stable").drop_duplicates("video").drop(columns="_p").sort_index()


def label_frames(index: pd.DataFrame, videos: pd.DataFrame, spec: TaskSpec, *, dedupe: bool = False) -> tuple[pd.DataFrame, dict]:
    """Join the frame index with video metadata, apply exclusions, rules and soft labels.

    Returns:
        ``(frames, info)``: labelled rows (``label`` int, ``soft`` = P(class 1)) and a dict for
        the README (exclusions found / absent, videos without metadata).
    """
    videos = check_duplicate_videos(videos, dedupe=dedupe)
    if "animal" not in videos.columns:
        raise TaskError(f"the video table has no 'animal' column (columns: {', '.join(videos.columns)})")
    meta = videos.drop(columns=[c for c in videos.columns if c in index.columns and c != "video"])
    no_meta = sorted(set(index["video"]) - set(videos["video"]))
    if no_meta:
        log.warning("videos in the frame store without metadata (left out): %s", ", ".join(no_meta))
    table = index.merge(meta, on="video", how="inner")
    table["animal"] = table["animal"].astype(str)
    present_a = sorted(set(spec.exclude_animals) & set(table["animal"]))
    present_v = sorted(set(spec.exclude_videos) & set(table["video"]))
    table = table[~table["animal"].isin(spec.exclude_animals) & ~table["video"].isin(spec.exclude_videos)]
    table = table.reset_index(drop=True)
    labels = apply_rules(table, spec.rules, where="the frame table (frame store joined with metadata)")
    table = table[labels.notna()].copy()
    table["label"] = labels[labels.notna()].astype(np.int64).to_numpy()
    for c in (0, 1):
        if not (table["label"] == c).any():
            raise TaskError(f"class {c} is empty: no row gets label {c} from rules {spec.rules}")
    table["soft"] = soft_p1(table, spec.soft_labels, where="the frame table")
    info = {
        "excluded_animals": present_a,
        "absent_exclusions": sorted(set(spec.exclude_animals) - set(present_a)) + sorted(set(spec.exclude_videos) - set(present_v)),
        "excluded_videos": present_v,
        "videos_without_metadata": no_meta,
    }
    return table.sort_values(["video", "time"], kind="stable").reset_index(drop=True), info


def make_task(
    cfg,
    spec: TaskSpec,
    out: str | Path | None = None,
    *,
    videos: pd.DataFrame | None = None,
    index: pd.DataFrame | None = None,
    frames_dir: str | Path | None = None,
    dedupe: bool = False,
    notes: list[str] | None = None,
) -> Path:
    """Write a task folder and return its path.

    Args:
        cfg: project :class:`~mouse_facial_expressions.config.Config`.
        spec: the task.
        out: folder to write (default ``<paths.tasks>/task-<version>``).
        videos: video table (default ``io.metadata.load_video_table(cfg)``).
        index: frame index (default: the frame store at ``frames_dir`` / ``paths.frames``).
        frames_dir: frame store the windows read from.
        dedupe: keep one metadata row per video instead of raising on duplicates.
        notes: extra lines for the README (e.g. a duplicate report).
    """
    version = check_version(spec.version or str(cfg.project.dataset_version))
    store = index is None or frames_dir is not None  # windows read this frame store
    frames_dir = Path(frames_dir) if frames_dir is not None else cfg.path("frames")
    if videos is None:
        from mouse_facial_expressions.io.metadata import load_video_table

        videos = load_video_table(cfg)
    if index is None:
        from mouse_facial_expressions.data._store import load_index

        index = load_index(frames_dir)
    out = Path(out) if out is not None else cfg.path("tasks") / f"task-{version}"
    # the frame store relative to the task folder, so a copied or moved project reads its own store
    rel = os.path.relpath(Path(frames_dir).resolve(), out.resolve()) if store else None
    spec = spec.model_copy(update={"version": version, "frames_dir": Path(rel).as_posix() if rel else None,
                                   "frames_dir_made": str(Path(frames_dir).resolve()) if store else None})
    frames, info = label_frames(index, videos, spec, dedupe=dedupe)
    if store and frames_dir == cfg.path("frames"):
        _refuse_stale_store(cfg, sorted(frames["video"].unique()))
    frames, quality = leave_out_unusable(frames, spec, index, videos, frames_dir if store else None)
    for c in (0, 1):
        if not (frames["label"] == c).any():
            raise TaskError(f"class {c} is empty once flagged crops and videos too short for a window are left out:\n  "
                            + "\n  ".join(quality))
    notes = [*(notes or []), *quality]
    if info["absent_exclusions"]:
        log.warning("exclusions that match no animal or video of the data (check the ids): %s",
                    ", ".join(map(str, info["absent_exclusions"])))
    labels = F.animal_labels(frames)
    folds = F.make_folds(labels, spec.n_folds, spec.val_fraction, spec.seed)
    F.check_folds(folds, labels.index)
    au = None
    if spec.au is not None:  # Mouse Grimace Scale targets beside the class labels (data/au_targets.py)
        from mouse_facial_expressions.data.au_targets import task_au_targets

        from mouse_facial_expressions.preprocess.prepare import raw_sources

        au = task_au_targets(spec, cfg.root, frames, set(index["video"].astype(str)) | set(videos["video"].astype(str)),
                             raw_sources(cfg.path("processed_videos")))
        notes = [*(notes or []), *au.notes]
    from mouse_facial_expressions.data.task_readme import task_readme
    from mouse_facial_expressions.io.atomic import atomic_path

    # The whole folder is written beside the old one and swapped in when complete.
    with atomic_path(out) as tmp:
        tmp.mkdir()
        dumped = spec.model_dump(mode="json")
        if dumped.get("au") is None:
            dumped.pop("au", None)  # tasks without AU targets keep the task.yaml they always had
        (tmp / TaskFiles.SPEC).write_text(yaml.safe_dump(dumped, sort_keys=False))
        frames.to_parquet(tmp / TaskFiles.FRAMES, index=False)
        F.write_folds(tmp / TaskFiles.FOLDS, folds, spec.seed)
        if au is not None:
            au.write(tmp)
        _write_provenance(tmp, cfg, frames, frames_dir if store else None, {f"ratings {au.source.name}": au.source} if au else None)
        (tmp / TaskFiles.README).write_text(task_readme(spec, frames, folds, info, notes or []))
    log.info("task written to %s (%d labelled frames, %d animals, %d folds)", out, len(frames), len(labels), len(folds))
    return out


PROVENANCE_FILE = TaskFiles.PROVENANCE  # the older name


def _refuse_stale_store(cfg, videos: list[str]) -> None:
    """A task is never made from crops whose keypoints, video or settings changed since extraction,
    nor from crops of a video whose last keypoint import failed (they come from an earlier pose file)."""
    from mouse_facial_expressions.io.keypoint_status import failure_message, import_failure
    from mouse_facial_expressions.preprocess.extract import IMPORT_FAILED, video_status

    stale, failed = {}, []
    for v in videos:
        reasons = video_status(cfg, v)
        if IMPORT_FAILED in reasons:
            table = cfg.path("keypoints") / f"{v}.parquet"
            failed.append(failure_message(table, import_failure(table) or {}))
            continue
        changed = [r for r in reasons if "changed" in r]  # "missing" inputs or old stores: not a change
        if changed:
            stale[v] = changed
    if failed:
        raise TaskError(f"{len(failed)} video(s) of the frame store have crops from an earlier pose file, whose "
                        "keypoint import failed since:\n  " + "\n  ".join(failed[:8])
                        + "\nimport them again (then `mfe extract`), or leave them out with exclude_videos")
    if stale:
        lines = [f"{v}: {', '.join(r)}" for v, r in list(stale.items())[:8]]
        raise TaskError(f"{cfg.path('frames')}: {len(stale)} video(s) of the frame store are stale (their inputs changed "
                        "since `mfe extract`):\n  " + "\n  ".join(lines) + "\nrun `mfe extract` first (it redoes exactly those)")


def _write_provenance(out: Path, cfg, frames: pd.DataFrame, frames_dir: Path | None, extra: dict | None = None) -> None:
    """``provenance.json``: the frame-store index of every task video (its fingerprint covers the
    crops too: each index records its ``.npy``), the metadata CSVs the labels came from and
    ``extra`` inputs (role -> path: the AU ratings table)."""
    from mouse_facial_expressions import provenance
    from mouse_facial_expressions.io.atomic import write_json

    inputs: dict[str, Path] = {}
    if frames_dir is not None:
        from mouse_facial_expressions.data._store import index_path

        inputs.update({f"video {v}": index_path(frames_dir, v) for v in sorted(frames["video"].unique())})
    meta_dir = cfg.path("metadata")
    inputs.update({f"metadata {n}": meta_dir / n for n in ("raw_videos.csv", "treatments.csv") if (meta_dir / n).is_file()})
    inputs.update(extra or {})
    write_json(out / PROVENANCE_FILE, {**provenance.record(inputs), "paths": {k: str(Path(v).resolve()) for k, v in inputs.items()}})


def stale_inputs(task_dir: str | Path) -> list[str]:
    """What changed since ``mfe task make`` wrote ``task_dir``: ``[]`` when nothing did, else
    lines such as ``"video m1_rec1_preinjection changed"`` (re-extracted), ``"video x missing"``
    or ``"metadata treatments.csv changed"``. Inputs whose folder no longer exists (a project
    moved elsewhere) cannot be checked and are passed over; tasks written before provenance
    records give ``[]``."""
    import json

    from mouse_facial_expressions import provenance

    path = Path(task_dir) / PROVENANCE_FILE
    if not path.is_file():
        return []
    rec = json.loads(path.read_text())
    out = []
    for role, fp in rec.get("inputs", {}).items():
        target = Path(rec.get("paths", {}).get(role, ""))
        if not target.parent.is_dir():
            continue
        if not target.is_file():
            out.append(f"{role} missing")
        elif not provenance.same_file(fp, target):
            out.append(f"{role} changed")
    return out


def make_task_from_table(
    cfg, spec: TaskSpec, table: str | Path, out: str | Path | None = None, *, dedupe: bool = False, fps: float = 30.0
) -> Path:
    """Make a task from a flat per-frame table (like ``lps_task1_dataset_table.csv``).

    Duplicated metadata rows raise :class:`DuplicateRowsError` naming the videos and their
    row counts unless ``dedupe``; what was dropped, and any disagreement between the rules
    and the table's own ``label`` column, is written to the README's notes.
    """
    from mouse_facial_expressions.data.flat_table import read_flat_table

    videos, index, report = read_flat_table(table, dedupe=dedupe, fps=fps, max_gap_s=spec.max_gap_s)
    notes = [f"made from the flat table `{table}` (no frame store: frame times = frame / {fps} fps)"]
    for r in report.itertuples():
        notes.append(
            f"duplicated metadata: {r.video} had {r.rows} rows for {r.frames} frames "
            f"({r.metadata_rows} metadata rows, differing in {r.differing_columns}); kept one row per frame"
        )
    notes += compare_table_labels(index, videos, spec)
    return make_task(cfg, spec, out, videos=videos, index=index, notes=notes)


def compare_table_labels(index: pd.DataFrame, videos: pd.DataFrame, spec: TaskSpec) -> list[str]:
    """Lines naming the videos where the rules disagree with a ``table_label`` column."""
    if "table_label" not in index.columns:
        return []
    frames, _ = label_frames(index, videos, spec)
    lines = []
    differ = frames[frames["label"] != frames["table_label"]]
    for v, g in differ.groupby("video"):
        lines.append(f"label differs from the table's label column: {v} ({len(g)} frames)")
    kept = set(frames["video"])
    gone = index.merge(videos[["video", "animal"]], on="video")
    gone = gone[~gone["video"].isin(kept) & ~gone["animal"].astype(str).isin(spec.exclude_animals)
                & ~gone["video"].isin(spec.exclude_videos)]
    for v, g in gone.groupby("video"):
        labs = sorted(g["table_label"].unique().tolist())
        lines.append(f"unlabelled by the rules but labelled {labs} in the table: {v} ({len(g)} frames)")
    return lines


__all__ = [
    "PRESETS", "Task", "TaskError", "TaskFiles", "TaskSpec", "RuleError", "DuplicateRowsError",
    "check_duplicate_videos", "compare_table_labels", "label_frames", "load_spec", "load_task", "make_task", "make_task_from_table", "preset",
]
