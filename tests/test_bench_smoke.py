"""Every benchmark in bench/ runs its ``--smoke`` mode: the benchmark's own code on the smallest
settings, in this process (``main(argv)``), printing its numbers. The benchmarks that need a
labelled cohort share one (``synth.build.SMOKE``), built once and copied where each expects it;
``build_cohort`` then finds its task's provenance fresh and reuses it."""

from __future__ import annotations

import importlib
import logging
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(autouse=True)
def logging_restored():
    """A benchmark is a program: some quiet the package's loggers for their whole run. Give the
    levels and propagation back, so later tests still see the warnings they check for."""
    names = [None, "mouse_facial_expressions", *logging.root.manager.loggerDict]
    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
    yield
    for n, (level, propagate) in saved.items():
        logging.getLogger(n).setLevel(level)
        logging.getLogger(n).propagate = propagate


def bench_main(name: str):
    """``bench/<name>.py``'s ``main`` (bench/ on the path, as when the script runs)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name).main


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory) -> Path:
    """The smoke cohort, built once for this module (read-only: :func:`copy_to` it)."""
    from mouse_facial_expressions.synth.build import SMOKE, build_cohort

    return build_cohort(tmp_path_factory.mktemp("smoke") / "project", SMOKE).parent.parent


def copy_to(project: Path, dest: Path) -> Path:
    shutil.copytree(project, dest, ignore=shutil.ignore_patterns("models"))
    return dest


@pytest.fixture(scope="module")
def cohorts_run(smoke_project, tmp_path_factory) -> tuple[Path, str]:
    """``bench_accuracy_cohorts.py --smoke`` (it runs ``bench_accuracy.py --smoke``) on the smoke
    cohort: the cohorts folder and what it printed."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("cohorts")
    copy_to(smoke_project, root / "tiny-0")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert bench_main("bench_accuracy_cohorts")([str(root), "--smoke"]) == 0
    return root, out.getvalue()


@pytest.mark.parametrize("name", ["bench_extract", "bench_eye_warp", "bench_loader", "bench_predict", "bench_streams",
                                  "bench_train_throughput"])
def test_speed_benchmark_smoke(name, capsys):
    assert bench_main(name)(["--smoke"]) == 0
    assert any(ch.isdigit() for ch in capsys.readouterr().out)


def test_accuracy_over_cohorts_smoke(cohorts_run):
    root, out = cohorts_run
    assert "paired gap" in out and "oracle" in out
    assert "video acc" in (root / "tiny-0.log").read_text()  # bench_accuracy's table


def test_quantize_smoke(cohorts_run, capsys):
    pytest.importorskip("onnxruntime")
    root, _ = cohorts_run
    run = next((root / "tiny-0" / "models" / "bench" / "runs").iterdir())
    assert bench_main("bench_quantize")([str(run), str(root / "tiny-0"), "--smoke"]) == 0
    assert "video calls changed" in capsys.readouterr().out


def test_dlc_proof_smoke(smoke_project, capsys):
    assert bench_main("dlc_proof")([str(smoke_project), "--smoke"]) == 0
    assert "side on clean portraits" in capsys.readouterr().out


@pytest.mark.parametrize("name, folder, expect", [
    ("bench_fusion", "cohort-1", "null physiology"),
    ("bench_mgs", "cohort-1", "MGS total"),
    ("bench_weak", "cohort-s1", "window bout AUROC"),
    ("bench_shift", "train-seed0", "in-cohort (CV)"),
])
def test_cohort_benchmark_smoke(name, folder, expect, smoke_project, tmp_path, capsys):
    copy_to(smoke_project, tmp_path / folder)
    assert bench_main(name)([str(tmp_path), "--smoke"]) == 0
    assert expect in capsys.readouterr().out


def test_recipe_smoke(smoke_project, tmp_path, capsys):
    copy_to(smoke_project, tmp_path / "tiny-seed0")
    assert bench_main("bench_recipe")(["--cohorts", str(tmp_path), "--smoke"]) == 0
    assert "other rules on the same runs" in capsys.readouterr().out
