"""``mfe export --onnx``: onnxruntime scores the exported model like torch (1e-4)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from mouse_facial_expressions.inference.ensemble import load_ensemble
from mouse_facial_expressions.training.runs import fold_checkpoints
from mouse_facial_expressions.inference.export import check_onnx, export_onnx

torch.set_num_threads(1)
pytestmark = pytest.mark.slow


def test_single_checkpoint_onnx_matches_torch(run, tmp_path):
    ckpt = dict(fold_checkpoints(run.run_dir))[0]
    path = export_onnx(ckpt, tmp_path / "m.onnx")
    assert check_onnx(path, ckpt, atol=1e-4) <= 1e-4


def test_fold_ensemble_onnx_matches_torch_on_real_clips(run, tmp_path):
    import onnxruntime as ort

    from mouse_facial_expressions.data.datasets import fold_datasets

    path = export_onnx(run.run_dir, tmp_path / "ens.onnx")
    ens = load_ensemble(run.run_dir)
    test = fold_datasets(run.task_dir, 0, num_frames=3, frame_stride=1, image_size=32, train_augmentation=False)["test"]
    clips = torch.stack([test[i]["clip"] for i in range(5)])  # (5, 3, 3, 32, 32): a batch size not traced
    p1, members = ort.InferenceSession(str(path)).run(None, {"clip": clips.numpy()})
    want = ens.predict(clips)
    assert members.shape == (5, 2)
    np.testing.assert_allclose(members, want, atol=1e-4)
    np.testing.assert_allclose(p1, want.mean(axis=1), atol=1e-4)


def test_onnx_metadata_records_the_preprocessing(run, tmp_path):
    import onnx

    path = export_onnx(run.run_dir, tmp_path / "ens.onnx")
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert meta["mfe.num_frames"] == 3 and meta["mfe.image_size"] == 32 and meta["mfe.channels"] == 3
    assert meta["mfe.members"] == ["fold0", "fold1"] and len(meta["mfe.norm_mean"]) == 3


def test_cli_export_writes_and_checks(run, tmp_path):
    from mouse_facial_expressions.cli import _Formatter, export

    parser = argparse.ArgumentParser()
    export.register(parser.add_subparsers(), _Formatter)
    args = parser.parse_args(["export", str(run.run_dir), "--onnx", "--out", str(tmp_path / "x.onnx")])
    assert args.func(args) == 0 and (tmp_path / "x.onnx").stat().st_size > 0
