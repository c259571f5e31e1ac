"""What a synthetic project holds, in a few lines (``mfe synth``'s closing summary).

:func:`summary` reads a written project back (its metadata, ``truth/truth.parquet`` and the
marker file :data:`MARKER`, which records the cohort's settings); apart from
:mod:`~mouse_facial_expressions.synth.cohort` because it only reads what the writer wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mouse_facial_expressions.synth.body import BODY_SCORER
from mouse_facial_expressions.synth.dlc_output import SCORER

#: The file under ``truth/`` that marks a folder as a synthetic cohort and records its settings.
MARKER = "synth.json"


def summary(project: str | Path) -> str:
    """A few lines on what a synthetic project holds and where."""
    project = Path(project)
    raw = pd.read_csv(project / "metadata" / "raw_videos.csv")
    truth = pd.read_parquet(project / "truth" / "truth.parquet")
    per_video = truth.groupby("video").label_true.first()
    good = truth.visible & ~truth.occluded
    return "\n".join([
        f"synthetic cohort in {project}",
        f"  raw videos        {len(raw)} ({int(raw.discard.sum())} discarded) in videos/raw/",
        f"  trimmed videos    {len(per_video)} ({int(per_video.sum())} with label 1), "
        f"{len(truth)} frames, {good.mean():.0%} clean side portraits",
        f"  animals           {truth.animal.nunique()} in {truth.cohort.nunique()} cohort(s), "
        f"treatments {', '.join(sorted(truth.treatment.unique()))}",
        "  metadata          metadata/raw_videos.csv, metadata/treatments.csv",
        "  DLC keypoints     keypoints/dlc/<video>" + SCORER + ".h5|.csv",
        *_modality_lines(project),
        "  ground truth      truth/truth.parquet, truth/animals.csv, truth/synth.json",
        *_shift_lines(project),
    ])


def _modality_lines(project: Path) -> list[str]:
    """``summary``'s lines on the body keypoints and physiology, with how informative each is."""
    if not (project / "metadata" / "physiology.csv").is_file():
        return []  # a cohort from before the other modalities
    config = json.loads((project / "truth" / MARKER).read_text()).get("config", {})
    return [
        "  body keypoints    keypoints/body/<video>" + BODY_SCORER + ".h5|.csv "
        f"(open field; behaviour_effect={config.get('behaviour_effect', 1.0):g})",
        "  physiology        metadata/physiology.csv (temperature_c, weight_g; "
        f"physiology_effect={config.get('physiology_effect', 1.0):g})",
        "  their truth       truth/body.parquet, truth/physiology.csv (0 effect = no information)",
    ]


#: Shift and confound settings with the value that changes nothing.
NEUTRAL = {"brightness": 0.0, "contrast": 1.0, "zoom": 1.0, "blur": 0.0, "control_brightness": 0.0,
           "rec_cue": [], "occluder_treated": None, "control_handling": 0.0}


def _shift_lines(project: Path) -> list[str]:
    """``summary``'s line on the shifts and confounds that are set (none: no line)."""
    try:
        config = json.loads((project / "truth" / MARKER).read_text()).get("config", {})
    except (OSError, ValueError):
        return []
    parts = []
    for key, neutral in NEUTRAL.items():
        value = config.get(key, neutral)
        if value != neutral:
            text = ",".join(f"{r}:{g:+g}" for r, g in value) if key == "rec_cue" else f"{value:g}"
            parts.append(f"{key}={text}")
    return [f"  shifts/confounds  {', '.join(parts)} (truth columns shift_*, control_bright, cue, "
            "occluder, handled)"] if parts else []
