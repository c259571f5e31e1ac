"""The optional extras [track] (mlflow) and [onnx] (onnx, onnxruntime): without them the defaults
degrade (training untracked, scoring with torch) with one notice, and an explicit request is an
error that names the install command. A missing package is simulated with ``sys.modules[name] =
None`` (``import name`` then raises ImportError); nothing is uninstalled."""

from __future__ import annotations

import logging
import sys

import pytest
import torch

from fake_clips import FOLD_SPECS, fake_fold_datasets
from mouse_facial_expressions.inference import export as ex
from mouse_facial_expressions.inference import onnx_backend as ob
from mouse_facial_expressions.training import make_params, train_cv
from mouse_facial_expressions.training import tracking as tr

TRACK_HINT = r"pip install 'mouse-facial-expressions\[track\]'"
ONNX_HINT = r"pip install 'mouse-facial-expressions\[onnx\]'"


def _missing(monkeypatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)  # restored after the test


@pytest.fixture
def no_mlflow(monkeypatch):
    _missing(monkeypatch, "mlflow")
    monkeypatch.setattr(tr, "_told_missing", False)


@pytest.fixture
def no_onnxruntime(monkeypatch):
    _missing(monkeypatch, "onnxruntime")
    monkeypatch.setattr(ob, "_told_fallback", False)


def _notices(caplog, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


# --- [track]: mlflow ---------------------------------------------------------------------------

def test_without_mlflow_default_tracking_turns_off_with_one_notice(no_mlflow, caplog):
    caplog.set_level(logging.WARNING)
    assert not tr.mlflow_available()
    assert tr.resolve_tracking(True) is False
    assert tr.resolve_tracking(True) is False  # said once per process
    notices = _notices(caplog, "MLflow is not installed")
    assert len(notices) == 1 and "mouse-facial-expressions[track]" in notices[0].getMessage()
    assert tr.resolve_tracking(False) is False  # --no-tracking: nothing to say


def test_without_mlflow_an_explicit_tracking_uri_is_an_error_with_the_install_command(no_mlflow):
    with pytest.raises(ImportError, match=TRACK_HINT):
        tr.resolve_tracking(True, "http://mlflow.lab:5000")
    assert tr.resolve_tracking(False, "http://mlflow.lab:5000") is False  # --no-tracking wins
    with pytest.raises(ImportError, match=TRACK_HINT):
        tr.Tracker("sqlite:///x.db")


def test_with_mlflow_tracking_is_as_asked():
    pytest.importorskip("mlflow")
    assert tr.resolve_tracking(True) is True and tr.resolve_tracking(True, "sqlite:///x.db") is True
    assert tr.resolve_tracking(False) is False


def _params():
    return make_params("advanced", backbone="resnet18", num_layers=1, num_heads=2, d_model=64, ff_dim=64,
                       epochs=1, train_batch_size=4, test_batch_size=8, num_frames=3, frame_stride=1,
                       image_size=32, workers=0, precision="32-true", limit_batches=1)


def test_train_without_mlflow_trains_untracked(no_mlflow, tmp_path, caplog):
    torch.set_num_threads(1)
    caplog.set_level(logging.WARNING)
    summary = train_cv("/nonexistent/task", _params(), tmp_path, folds=[0], datasets_fn=fake_fold_datasets,
                       fold_specs=FOLD_SPECS, norm=([0.5], [0.25]), progress=False)
    assert [r["fold"] for r in summary["folds"]] == [0]
    assert not summary.get("mlflow_parent_run")
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "mlartifacts").exists()
    assert not (tmp_path / "runs" / summary["run_name"] / "mlflow.json").exists()
    assert len(_notices(caplog, "MLflow is not installed")) == 1


def test_train_without_mlflow_and_a_tracking_uri_fails_before_training(no_mlflow, tmp_path):
    with pytest.raises(ImportError, match=TRACK_HINT):
        train_cv("/nonexistent/task", _params(), tmp_path, folds=[0], datasets_fn=fake_fold_datasets,
                 fold_specs=FOLD_SPECS, norm=([0.5], [0.25]), progress=False,
                 tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert not (tmp_path / "runs").exists()


# --- [onnx]: onnx + onnxruntime ----------------------------------------------------------------

@pytest.mark.parametrize("missing", ["onnxruntime", "onnx"])
def test_auto_backend_falls_back_to_torch_with_one_notice(monkeypatch, caplog, missing):
    _missing(monkeypatch, missing)
    monkeypatch.setattr(ob, "_told_fallback", False)
    caplog.set_level(logging.WARNING)
    assert not ob.onnx_available()
    assert ob.resolve_backend("auto", torch.device("cpu")) == "torch"
    assert ob.resolve_backend("auto", torch.device("cpu")) == "torch"
    assert ob.resolve_backend("auto", torch.device("cuda")) == "torch"
    notices = _notices(caplog, "--backend auto scores with torch")
    assert len(notices) == 1 and "mouse-facial-expressions[onnx]" in notices[0].getMessage()


def test_auto_scoring_ensemble_is_the_torch_ensemble_without_onnxruntime(no_onnxruntime):
    ens = object()  # the torch path hands the ensemble back untouched
    scorer, line = ob.scoring_ensemble(ens, "auto", torch.device("cpu"))
    assert scorer is ens and line.startswith("backend torch")
    with pytest.raises(ValueError, match="needs the onnx backend"):  # --quantize int8 still needs onnx
        ob.scoring_ensemble(ens, "auto", torch.device("cpu"), quantize="int8")


def test_explicit_onnx_backend_without_onnxruntime_names_the_install_command(no_onnxruntime):
    with pytest.raises(ImportError, match=r"onnxruntime is not installed.*" + ONNX_HINT + r".*--backend torch"):
        ob.scoring_ensemble(None, "onnx", torch.device("cpu"))  # refused before the ensemble is touched


def test_explicit_onnx_backend_without_onnx_names_the_install_command(monkeypatch):
    if not _importable("onnxruntime"):
        pytest.skip("onnxruntime is not installed here")
    _missing(monkeypatch, "onnx")
    with pytest.raises(ImportError, match=r"onnx is not installed.*" + ONNX_HINT):
        ob.scoring_ensemble(None, "onnx", torch.device("cpu"))


def test_export_and_check_without_the_extra_name_the_install_command(monkeypatch, tmp_path):
    _missing(monkeypatch, "onnx", "onnxruntime")
    with pytest.raises(ImportError, match=r"needs the optional package onnx\b.*" + ONNX_HINT):
        ex.export_onnx(tmp_path / "none.ckpt", tmp_path / "model.onnx")  # refused before anything is read
    with pytest.raises(ImportError, match=r"needs the optional package onnxruntime.*" + ONNX_HINT):
        ex.check_onnx(tmp_path / "model.onnx", tmp_path / "none.ckpt")
    assert not (tmp_path / "model.onnx").exists()


def test_with_the_extra_auto_is_onnx_on_a_cpu():
    if not (_importable("onnx") and _importable("onnxruntime")):
        pytest.skip("the [onnx] extra is not installed here")
    assert ob.onnx_available() and ob.resolve_backend("auto", torch.device("cpu")) == "onnx"


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


@pytest.mark.slow
def test_mfe_predict_auto_without_onnxruntime_scores_with_torch(run, tmp_path, no_onnxruntime, caplog):
    from mouse_facial_expressions.cli import main

    video = "m3_rec4_4h-postinjection"
    out = tmp_path / "out"
    code = main(["predict", str(run.cfg.path("processed_videos") / f"{video}.mp4"), "--keypoints",
                 str(run.cfg.path("keypoints") / f"{video}.parquet"), "--model", str(run.run_dir), "--out", str(out)])
    assert code == 0 and (out / f"{video}_scores.csv").is_file()
    assert len(_notices(caplog, "--backend auto scores with torch")) == 1
