"""Where ``mfe predict``'s ONNX export is kept (``paths.onnx_cache``), and that writing it is logged."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from mouse_facial_expressions.config import ConfigError, load_config
from mouse_facial_expressions.inference import onnx_backend as ob
from mouse_facial_expressions.inference.ensemble import load_ensemble
from mouse_facial_expressions.training.runs import fold_checkpoints

torch.set_num_threads(1)
pytestmark = pytest.mark.slow


def _project(run, root: Path, yaml: str = "", runs=("tiny",)) -> list[Path]:
    """A project at ``root`` whose runs each hold a copy of the session run's fold-1 checkpoint."""
    root.mkdir(parents=True)
    (root / "mfe.yaml").write_text(yaml)
    src = dict(fold_checkpoints(run.run_dir))[1]
    out = []
    for name in runs:
        ckpt = root / "models" / "checkpoints_advanced" / name / "advanced-fold1.ckpt"
        ckpt.parent.mkdir(parents=True)
        shutil.copy(src, ckpt)
        out.append(ckpt)
    return out


def test_writing_the_export_is_logged_with_its_path_and_size(run, tmp_path, caplog):
    (ckpt,) = _project(run, tmp_path / "proj")
    with caplog.at_level(logging.INFO, logger="mouse_facial_expressions.inference.onnx_backend"):
        path, reused = ob.exported_model(load_ensemble(ckpt))
    assert not reused and path.parent == ckpt.parent / "onnx"  # no setting: beside the run's files, as before
    wrote = [r.getMessage() for r in caplog.records if "wrote" in r.getMessage()]
    assert len(wrote) == 1 and str(path) in wrote[0] and f"({path.stat().st_size / 1e6:.1f} MB)" in wrote[0]
    assert "paths.onnx_cache" in wrote[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mouse_facial_expressions.inference.onnx_backend"):
        assert ob.exported_model(load_ensemble(ckpt)) == (path, True)
    assert not [r for r in caplog.records if "wrote" in r.getMessage()]


def test_paths_onnx_cache_moves_the_export_and_keeps_runs_apart(run, tmp_path):
    # two runs with the same weights: one folder each in the shared cache, neither removes the other's file
    a, b = _project(run, tmp_path / "proj", "paths:\n  onnx_cache: cache\n", runs=("tiny", "tiny-copy"))
    first, _ = ob.exported_model(load_ensemble(a))
    second, reused = ob.exported_model(load_ensemble(b))
    cache = tmp_path / "proj" / "cache"
    assert first.parent.parent == cache and second.parent.parent == cache  # relative: under the project root
    assert not reused and first.parent != second.parent and first.is_file() and second.is_file()
    assert first.parent.name.startswith("advanced-fold1-")
    assert not (a.parent / "onnx").exists()  # nothing written beside the run
    # a caller's own setting (the project mfe predict runs in) wins
    elsewhere, _ = ob.exported_model(load_ensemble(a), cache_dir=tmp_path / "elsewhere")
    assert elsewhere.parent.parent == tmp_path / "elsewhere"


def test_onnx_cache_setting_resolves_against_the_project(tmp_path):
    assert ob.onnx_cache_dir(load_config(tmp_path)) is None
    with pytest.raises(ConfigError, match="paths.onnx_cache is not set"):
        load_config(tmp_path).path("onnx_cache")
    (tmp_path / "mfe.yaml").write_text("paths:\n  onnx_cache: big/onnx\n")
    assert ob.onnx_cache_dir(load_config(tmp_path)) == (tmp_path / "big" / "onnx").resolve()
