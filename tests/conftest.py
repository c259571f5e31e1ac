"""Shared fixtures: a tiny synthetic cohort (generated once per session) and the real data
committed under ``tests/data`` (see its README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REAL_DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """A synthetic project from preset ``tiny`` (seed 0), generated once per test session.

    Read-only for tests: copy it (``tiny_project``) before modifying anything.
    """
    from mouse_facial_expressions.synth import generate_cohort

    return generate_cohort(tmp_path_factory.mktemp("tiny") / "project", preset="tiny", seed=0)


@pytest.fixture
def tiny_project(tiny_cohort: Path, tmp_path: Path) -> Path:
    """A private copy of ``tiny_cohort`` that a test may modify."""
    dest = tmp_path / "project"
    shutil.copytree(tiny_cohort, dest)
    return dest


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``tests/data``: small real files (DeepLabCut and facemap labels, images, a video, the seed's
    tables, a SLEAP file), committed. Read-only: copy before modifying."""
    return REAL_DATA


@pytest.fixture(scope="session")
def tiny8_task(tmp_path_factory) -> Path:
    """synth ``tiny`` with 8 mice (so each fold has validation animals), prepared, extracted and
    made into task1 with 2 folds of 3-frame windows; returns the task folder. Read-only."""
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.data.tasks import make_task, preset
    from mouse_facial_expressions.io.keypoints import import_keypoints
    from mouse_facial_expressions.preprocess.extract import extract_videos
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.synth import generate_cohort

    project = generate_cohort(tmp_path_factory.mktemp("tiny8") / "project", preset="tiny", seed=0, mice=8)
    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    assert extract_videos(cfg, progress=False).ok
    return Path(make_task(cfg, preset("task1", n_folds=2, num_frames=3, frame_stride=1)))


@pytest.fixture(scope="session")
def run(tiny_cohort, tmp_path_factory):
    """The session's tiny trained run (``tiny_run.py``, built once): read-only, copy before modifying.
    A module may define its own ``run`` (``test_domain.py`` does)."""
    from tiny_run import tiny_run

    return tiny_run(tiny_cohort, tmp_path_factory)
