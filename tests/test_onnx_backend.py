"""mfe predict --backend onnx [--quantize int8]: same scores as torch, a cache keyed by the checkpoints."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.inference import onnx_backend as ob
from mouse_facial_expressions.inference.ensemble import load_ensemble
from mouse_facial_expressions.inference.predict import predict_videos
from mouse_facial_expressions.training.runs import fold_checkpoints

torch.set_num_threads(1)
pytestmark = pytest.mark.slow
VIDEO = "m3_rec4_4h-postinjection"


def _predict(run, out, **kw) -> pd.DataFrame:
    rep = predict_videos(run.cfg.path("processed_videos") / f"{VIDEO}.mp4", run.cfg.path("keypoints") / f"{VIDEO}.parquet",
                         run.run_dir, out, cfg=run.cfg, progress=False, **kw)
    assert rep.ok, rep.summary()
    return pd.read_csv(out / f"{VIDEO}_scores.csv")


def test_auto_is_onnx_on_a_cpu_and_torch_on_a_gpu():
    assert ob.resolve_backend("auto", torch.device("cpu")) == "onnx"
    assert ob.resolve_backend("auto", torch.device("cuda")) == "torch"
    with pytest.raises(ValueError, match="--backend torch on a GPU"):
        ob.resolve_backend("onnx", torch.device("cuda"))


def test_onnx_and_torch_give_the_same_scores_on_the_same_windows(run, tmp_path):
    torch_scores = _predict(run, tmp_path / "torch", backend="torch")
    onnx_scores = _predict(run, tmp_path / "onnx", backend="onnx", threads=1)
    assert len(torch_scores) >= 2
    pd.testing.assert_frame_equal(torch_scores[["start_time", "end_time"]], onnx_scores[["start_time", "end_time"]])
    p1 = [c for c in torch_scores if c.startswith("p1")]
    assert len(p1) == 3  # the ensemble mean and both folds
    np.testing.assert_allclose(onnx_scores[p1].to_numpy(), torch_scores[p1].to_numpy(), rtol=0, atol=1e-4)


def test_int8_model_loads_and_scores_close_to_fp32(run, tmp_path):
    fp32 = _predict(run, tmp_path / "fp32", backend="onnx")
    int8 = _predict(run, tmp_path / "int8", backend="onnx", quantize="int8")
    assert np.isfinite(int8["p1"]).all() and int8["p1"].between(0, 1).all()
    assert np.abs(int8["p1"] - fp32["p1"]).max() < 0.05
    assert any(p.name.endswith("-int8.onnx") for p in (run.run_dir / "onnx").iterdir())


def test_quantize_needs_the_onnx_backend(run, tmp_path):
    with pytest.raises(ValueError, match="needs the onnx backend"):
        _predict(run, tmp_path, backend="torch", quantize="int8")


def test_the_cached_export_is_reused_until_a_checkpoint_changes(run, tmp_path):
    # a private copy of one fold's checkpoint: the run's best checkpoints live outside the run
    # folder (models/checkpoints_*), and the session's run must stay as it is
    ckpt = tmp_path / "model.ckpt"
    shutil.copy(dict(fold_checkpoints(run.run_dir))[1], ckpt)
    first, reused = ob.exported_model(load_ensemble(ckpt))
    assert not reused and first.parent == tmp_path / "onnx"
    again, reused = ob.exported_model(load_ensemble(ckpt))
    assert reused and again == first
    # retrain (here: change one weight in the checkpoint): a new export, the stale one goes
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    name = next(k for k, v in state["state_dict"].items() if v.dtype.is_floating_point)
    state["state_dict"][name] = state["state_dict"][name] + 0.01
    torch.save(state, ckpt)
    new, reused = ob.exported_model(load_ensemble(ckpt))
    assert not reused and new != first and new.is_file() and not first.exists()


def test_onnx_backend_without_onnxruntime_says_how_to_get_it(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(ImportError, match=r"onnxruntime is not installed.*--backend torch"):
        ob.scoring_ensemble(load_ensemble(run.run_dir), "onnx", torch.device("cpu"))
    code = main(["predict", str(run.cfg.path("processed_videos") / f"{VIDEO}.mp4"), "--keypoints",
                 str(run.cfg.path("keypoints") / f"{VIDEO}.parquet"), "--model", str(run.run_dir), "--backend", "onnx",
                 "--out", str(tmp_path / "out")])
    assert code != 0 and "onnxruntime is not installed" in capsys.readouterr().err
