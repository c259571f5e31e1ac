"""A tiny trained run on the ``tiny`` synthetic cohort, built once per test session.

synth tiny (the ``tiny_cohort`` fixture) -> prepare -> keypoints import -> extract -> task1
(2 folds, 3-frame windows) -> ``train_cv`` 1 epoch of a tiny ``advanced`` model (resnet18,
32 px, one 32-wide Transformer layer). About 30 s on one CPU thread. Shared by the predict,
export, zero-shot and fine-tune tests; treat it as read-only (copy before modifying).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

_CACHE: dict[str, "TinyRun"] = {}


@dataclass
class TinyRun:
    project: Path
    cfg: object
    task_dir: Path
    run_dir: Path
    summary: dict


def tiny_params(**kw):
    from mouse_facial_expressions.training import make_params

    base = dict(backbone="resnet18", num_layers=1, num_heads=2, d_model=32, ff_dim=32, epochs=1, learning_rate=1e-3,
                train_batch_size=4, test_batch_size=8, image_size=32, workers=0, precision="32-true", seed=0,
                limit_batches=2)
    base.update(kw)
    return make_params("advanced", **base)


def tiny_run(tiny_cohort: Path, tmp_path_factory) -> TinyRun:
    """The session's tiny trained run (built on first use)."""
    if "run" in _CACHE:
        return _CACHE["run"]
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.data.tasks import make_task, preset
    from mouse_facial_expressions.io.keypoints import import_keypoints
    from mouse_facial_expressions.preprocess.extract import extract_videos
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.training import train_cv

    torch.set_num_threads(1)
    project = tmp_path_factory.mktemp("tinyrun") / "project"
    shutil.copytree(tiny_cohort, project)
    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    report = extract_videos(cfg, progress=False)
    assert report.ok, report.summary()
    task_dir = make_task(cfg, preset("task1", n_folds=2, num_frames=3, frame_stride=1))
    summary = train_cv(task_dir, tiny_params(run_name="tiny"), cfg.path("models"), progress=False, track=False)
    _CACHE["run"] = TinyRun(project, cfg, Path(task_dir), Path(summary["run_dir"]), summary)
    return _CACHE["run"]
