"""Shared fixtures: a tiny synthetic cohort (generated once per session) and the real data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
def shared_data() -> Path:
    """The real, read-only data folder (``../shared/data``); skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not found")
    return SHARED_DATA
