"""What ``mfe predict`` checks before and around scoring: output names that cannot collide, videos
too short for one window, keypoints that cannot be aligned as the model's training crops were,
and windows without a face (:mod:`preprocess.facecheck`).

Pure functions on paths, tables and settings; :mod:`inference.predict` and
:mod:`inference.images` call them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.data.sequences import window_span
from mouse_facial_expressions.preprocess import alignment as alignment_mod

#: Separator between a parent folder and the file stem in a disambiguated output name.
NAME_SEP = "__"


# ----------------------------------------------------------------------------- output names

def source_key(path: str | Path) -> str:
    """How ``summary.csv`` keys a video: its absolute path."""
    return str(Path(path).resolve())


def output_names(paths: list[Path], previous: dict[str, str] | None = None) -> dict[Path, str]:
    """The name of each video's outputs (``<name>_scores.csv``, its ``summary.csv`` row).

    The file stem, unless two inputs of the call share it, or ``previous`` (``{name: source}``
    of the scored rows already in ``summary.csv``, :func:`previous_sources`; an empty source =
    unknown, taken as the same video)
    holds the stem for another source: then parent folders are prefixed until the name is free
    (``day2/cam.mp4`` -> ``day2__cam``), and a counter when the folders run out.
    """
    previous = dict(previous or {})
    stems: dict[str, int] = {}
    for p in paths:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    taken: dict[str, str] = {}
    out: dict[Path, str] = {}
    for p in paths:
        src = source_key(p)

        def free(name: str) -> bool:
            old = previous.get(name)
            return taken.get(name, src) == src and (old is None or old in ("", src))

        parents = [q.name for q in Path(src).parents if q.name]
        name = p.stem
        if stems[p.stem] > 1 or not free(name):
            for k in range(1, len(parents) + 1):
                name = NAME_SEP.join([*reversed(parents[:k]), p.stem])
                if free(name):
                    break
            k = 2
            while not free(name):
                name = f"{NAME_SEP.join([*reversed(parents[:1]), p.stem])}{NAME_SEP}{k}"
                k += 1
        taken[name] = src
        out[p] = name
    return out


def previous_sources(summary_csv: Path) -> dict[str, str]:
    """``{video: source}`` of the scored videos of an existing ``summary.csv`` (source '' where it
    has none). Failed rows claim no name: a rerun of a failed video from another path (fixed,
    re-exported) replaces its row, as before."""
    if not summary_csv.is_file():
        return {}
    try:
        old = pd.read_csv(summary_csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return {}
    if "video" not in old.columns:
        return {}
    src = old["source"] if "source" in old.columns else pd.Series("", index=old.index)
    done = old["status"].eq("done") if "status" in old.columns else pd.Series(True, index=old.index)
    return dict(zip(old.loc[done, "video"], src[done]))


# ----------------------------------------------------------------------------- too short

def too_short(n_kept: int, settings: dict) -> str | None:
    """Why a video with ``n_kept`` kept frames cannot be scored: fewer than one window spans
    (``num_frames`` frames at the model's ``frame_stride``); None when it can."""
    span = window_span(int(settings["num_frames"]), int(settings["frame_stride"]))
    if n_kept >= span:
        return None
    fps = float(settings.get("target_fps") or 0)
    secs = f" (about {span / fps:.1f} s at {fps:g} kept frames/s)" if fps else ""
    return (f"too short: {n_kept} usable frame(s) kept, one window needs {span} ({settings['num_frames']} frames at "
            f"stride {settings['frame_stride']}){secs}; not scored")


# ----------------------------------------------------------------------------- alignment

def keypoint_landmarks(path: Path, cfg, needed=(), individual: str | None = None) -> list[str] | None:
    """The landmarks a keypoint file gives: a canonical parquet's columns; a pose file's are the
    landmarks ``keypoints.bodyparts`` maps, and when those lack one of ``needed``, the file is read
    (its unmapped bodyparts come along under their own names). None when it cannot be told (an
    unreadable file: decoding says why, naming it)."""
    from mouse_facial_expressions.io.keypoints import landmark_names, read_pose, to_canonical

    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return landmark_names(pd.DataFrame(columns=pq.read_schema(path).names))
        have = list(cfg.keypoints.bodyparts)
        if all(n in have for n in needed):
            return have
        pose = read_pose(path, individual if individual is not None else cfg.keypoints.individual)
        return landmark_names(to_canonical(pose, cfg.keypoints.bodyparts))
    except Exception:
        return None


def _name(setting) -> str:
    align = alignment_mod.resolve(setting)
    return repr(align.name) if align.name in alignment_mod.PRESETS else f"custom {align.to_setting()}"


def alignment_fit(have: list[str] | None, setting, where) -> str | None:
    """Why keypoints with the landmarks ``have`` cannot be aligned as the model's training crops
    were (the model's ``extract.alignment`` ``setting``); None when they can or ``have`` is None."""
    if have is None:
        return None
    align = alignment_mod.resolve(setting)
    missing = alignment_mod.missing_landmarks(align, have)
    if not missing:
        return None
    fits = [n for n, a in alignment_mod.PRESETS.items() if not alignment_mod.missing_landmarks(a, have)]
    hint = f" (extract.alignment {fits[0]!r} fits these keypoints)" if fits else ""
    return (f"{where}: the model was trained on crops aligned with extract.alignment {_name(setting)}, which needs "
            f"landmarks {align.landmarks()}; these keypoints lack {missing} (they have {have}). Crops of this rig "
            "cannot be aligned like the model's training crops: a model for this rig must be trained on crops from "
            f"it (mfe extract with an extract.alignment for its landmarks{hint}, mfe task make, mfe train)")


def alignment_mismatch(setting, cfg) -> str | None:
    """A note when the project's ``extract.alignment`` is not the one the model's crops were made with."""
    if cfg is None:
        return None
    mine = alignment_mod.resolve(cfg.extract.alignment).to_setting()
    model = alignment_mod.resolve(setting).to_setting()
    if mine == model:
        return None
    return (f"the model was trained on crops aligned with extract.alignment {_name(model)}, but this project's "
            f"extract.alignment is {_name(mine)}: predict aligns as the model's training crops were ({_name(model)})")


# ----------------------------------------------------------------------------- face check

def expand(values: np.ndarray | None, keep: np.ndarray) -> np.ndarray | None:
    """Rows of ``values`` (one per kept window) put back among all windows, NaN elsewhere."""
    if values is None:
        return None
    out = np.full((len(keep), *np.asarray(values).shape[1:]), np.nan)
    out[keep] = values
    return out
