"""The file names of a task folder (docs/ARCHITECTURE.md, "Task folder"), in one place.

Owned by :mod:`data.tasks` (which re-exports :class:`TaskFiles`); a module of its own so that
modules ``data.tasks`` imports (``data.au_targets``) can name them too without an import cycle.
"""

from __future__ import annotations

from typing import Final


class TaskFiles:
    """Names of the files in ``tasks/task-<version>/``: ``task_dir / TaskFiles.FRAMES``."""

    SPEC: Final = "task.yaml"  # the resolved task spec (data.tasks.TaskSpec)
    FRAMES: Final = "frames.parquet"  # labelled frame-store rows joined with video metadata
    FOLDS: Final = "folds.json"  # animal-grouped folds (data.folds)
    README: Final = "README.md"  # the task in words
    PROVENANCE: Final = "provenance.json"  # what the task was made from (data.tasks.stale_inputs)
    AU_TARGETS: Final = "au_targets.parquet"  # MGS targets per rated frame (optional; data.au_targets)
    AU_RATINGS: Final = "au_ratings.parquet"  # the imported ratings of those frames (optional)
