"""What a task is: :class:`TaskSpec` (``task.yaml``), the built-in presets and reading a spec file.

The spec is plain configuration (label rules, exclusions, folds, window settings), checked when it
is made; ``data.tasks`` applies it to the frame store and writes the task folder. Kept apart so that
the spec can be read and validated without the machinery that makes a task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mouse_facial_expressions.data.au_targets import AUTargetSpec
from mouse_facial_expressions.data.rules import parse_rule
from mouse_facial_expressions.data.soft_labels import SoftLabelSpec


class TaskSpec(BaseModel):
    """A binary classification task over the frame store (``task.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("task", description="Short name, shown in the README.")
    version: str | None = Field(None, description="Folder is task-<version>; None = project.dataset_version.")
    description: str = Field("", description="The task in words, for the README.")
    class_names: list[str] = Field(default_factory=lambda: ["class 0", "class 1"],
                                   description="Names of label 0 and label 1, used in reports and tables (e.g. baseline, sick).")
    rules: list[str] = Field(description="Label rules '<condition> -> <label>', e.g. 'recording == 1 -> 0'.")
    exclude_animals: list[str] = Field(default_factory=list)
    exclude_videos: list[str] = Field(default_factory=list)
    n_folds: int = Field(5, ge=2, description="Outer folds (fewer when a class has fewer animals).")
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Share of each fold's training animals used for validation.")
    seed: int = 42
    soft_labels: SoftLabelSpec = Field(default_factory=SoftLabelSpec)
    num_frames: int = Field(10, ge=1, description="Frames per window.")
    frame_stride: int = Field(2, ge=1, description="Kept frames between consecutive window frames.")
    max_gap_s: float = Field(0.5, gt=0, description="A window never bridges a time gap longer than this.")
    short_runs: Literal["resample", "drop"] = Field("resample", description="Runs shorter than a window: resample (original) or drop.")
    frames_dir: str | None = Field(None, description="Frame store the task was made from, relative to the task folder (set by make_task; older tasks: absolute).")
    frames_dir_made: str | None = Field(None, description="Where the frame store was when the task was made (absolute): used only when frames_dir does not resolve, i.e. the task folder alone was moved out of its project.")
    baseline_recording: int | None = Field(None, description="Recording that is each animal's own baseline (e.g. 1, "
                                           "pre-injection): models trained on this task score windows relative to it "
                                           "(mfe train --baseline-recording). None: absolute scores.")
    au: AUTargetSpec | None = Field(None, description="Mouse Grimace Scale action-unit targets from imported ratings "
                                    "(data/au_targets.py; mfe task make --au-ratings): the class rules stay.")

    @field_validator("version")
    @classmethod
    def _safe_version(cls, v: str | None) -> str | None:
        if v is not None:
            check_version(v)
        return v

    @field_validator("class_names")
    @classmethod
    def _two_names(cls, v: list[str]) -> list[str]:
        if len(v) != 2 or len(set(v)) != 2 or not all(str(n).strip() for n in v):
            raise ValueError(f"class_names needs two different names [label 0, label 1], got {v!r}")
        return v

    @field_validator("rules")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one label rule is needed")
        for r in v:
            rule = parse_rule(r)
            if rule.label not in (0, 1):
                raise ValueError(f"rule {r!r}: labels must be 0 or 1 (binary task)")
        return v


_TASK1 = dict(
    name="task1",
    description=(
        "The original LPS task: label 0 = every mouse at recording 1 (pre-injection); label 1 = "
        "mice given the high LPS dose, at recording 4 (4 h post-injection). Mouse m18 is excluded "
        "(sick before the experiment)."
    ),
    rules=["recording == 1 -> 0", 'recording == 4 and treatment == "high" -> 1'],
    class_names=["baseline (pre-injection)", "sick (LPS high, 4 h)"],
    exclude_animals=["m18"],
    n_folds=5,
    val_fraction=0.2,
    seed=42,
    num_frames=10,
    frame_stride=2,
)
#: Built-in tasks by name.
PRESETS: dict[str, dict] = {
    "task1": _TASK1,
    # What the original's saved table actually holds: saline mice at rec4 also labelled 0.
    "task1_table": {
        **_TASK1,
        "name": "task1_table",
        "description": _TASK1["description"].replace(
            "label 0 = every mouse at recording 1 (pre-injection)",
            "label 0 = every mouse at recording 1 (pre-injection) and saline mice at recording 4",
        ),
        "rules": [*_TASK1["rules"], 'recording == 4 and treatment == "saline" -> 0'],
    },
}


class TaskError(ValueError):
    """A task that cannot be made; the message names the rows, videos or animals."""


def check_version(version: str) -> str:
    """A task version names the folder ``task-<version>``: no path separator, no ``..``, not empty."""
    v = str(version)
    if not v or "/" in v or "\\" in v or ".." in v or v.strip() != v or v.startswith("."):
        raise TaskError(f"task version {v!r} cannot name a folder (task-<version>): use letters, digits, '.', '-' or '_', "
                        "without '/', '\\' or '..'")
    return v


def preset(name: str, **overrides) -> TaskSpec:
    """A built-in task spec by name (``task1``, ``task1_table``)."""
    if name not in PRESETS:
        raise TaskError(f"unknown task preset {name!r} (known: {', '.join(PRESETS)})")
    return TaskSpec(**{**PRESETS[name], **overrides})


def load_spec(path: str | Path) -> TaskSpec:
    """Read a task spec YAML; errors name the file and the key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return TaskSpec(**data)
    except (yaml.YAMLError, TypeError) as err:
        raise TaskError(f"{path}: not a task spec: {err}") from err
    except ValidationError as err:
        msgs = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]
        raise TaskError(f"{path}: invalid task spec:\n  " + "\n  ".join(msgs)) from err
