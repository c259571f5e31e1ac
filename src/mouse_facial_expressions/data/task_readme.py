"""The README.md of a task folder: the task in words, counts, window parameters."""

from __future__ import annotations

import pandas as pd

from mouse_facial_expressions.data.sequences import make_windows, window_span


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def task_readme(spec, frames: pd.DataFrame, folds: list[dict], info: dict, notes: list[str]) -> str:
    """Markdown description of a task folder."""
    out = [f"# Task `{spec.name}` (task-{spec.version})", ""]
    if spec.description:
        out += [spec.description, ""]
    out += ["## Labels", "", "Rules (first column: condition over metadata columns, second: label):", ""]
    out += [f"- `{r}`" for r in spec.rules]
    out += [
        "",
        f"Rows no rule selects are not part of the task. Excluded animals found: {info['excluded_animals'] or 'none'}; "
        f"excluded videos found: {info['excluded_videos'] or 'none'}; "
        f"exclusions not present in the data: {info['absent_exclusions'] or 'none'}.",
        f"Soft labels: `{spec.soft_labels.model_dump(exclude_none=True)}` (P(class 1); distributions [1-p, p]).",
        "",
    ]
    if info.get("videos_without_metadata"):
        out += [f"Videos in the frame store without metadata (left out): {', '.join(info['videos_without_metadata'])}", ""]
    per_class = frames.groupby("label").agg(animals=("animal", "nunique"), videos=("video", "nunique"), frames=("video", "size"))
    out += ["## Counts per class", "", _md_table(per_class.reset_index()), ""]
    per_animal = frames.groupby(["animal", "label"]).agg(videos=("video", "nunique"), frames=("video", "size")).reset_index()
    out += ["## Counts per animal", "", _md_table(per_animal), ""]
    rows = []
    animal_class = frames.groupby("animal")["label"].max()
    for f in folds:
        row = {"fold": f["fold"]}
        for role in ("train", "val", "test"):
            a = list(f[role])
            n1 = int(animal_class.reindex(a).sum()) if a else 0
            sub = frames[frames["animal"].isin(a)]
            row[f"{role} animals (0/1)"] = f"{len(a)} ({len(a) - n1}/{n1})"
            row[f"{role} frames"] = len(sub)
        row["test animals"] = ", ".join(f["test"])
        rows.append(row)
    out += [
        "## Folds",
        "",
        f"{len(folds)} outer folds (StratifiedGroupKFold by animal, stratified on the animal's label: 1 when any "
        f"of its videos is class 1), seed {spec.seed}; each fold's training animals split again by animal into "
        f"train and validation (val_fraction {spec.val_fraction}). Validation selects models and stops training "
        "early; the test fold is used only for the final test. Animal counts are (class 0/class 1) by that label.",
        "",
        _md_table(pd.DataFrame(rows)),
        "",
    ]
    span = window_span(spec.num_frames, spec.frame_stride)
    out += [
        "## Windows",
        "",
        f"- num_frames: {spec.num_frames}",
        f"- frame_stride: {spec.frame_stride}",
        f"- max_gap_s: {spec.max_gap_s}",
        f"- short_runs: {spec.short_runs}",
        "",
        f"A window is {spec.num_frames} kept frames taken {spec.frame_stride} apart ({span} store rows) inside one "
        f"run of the frame store, never bridging a time gap longer than {spec.max_gap_s} s.",
    ]
    if "row" in frames.columns and "run" in frames.columns:
        w = make_windows(frames, spec.num_frames, spec.frame_stride, spec.max_gap_s, spec.short_runs, step=span)
        counts = w.groupby("label").agg(windows=("video", "size"), resampled=("resampled", "sum")).reset_index()
        out += ["", "Non-overlapping windows per class:", "", _md_table(counts)]
    if spec.frames_dir:
        out += ["", f"Frame store: `{spec.frames_dir}`"]
    if notes:
        out += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(out) + "\n"
