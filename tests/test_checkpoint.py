"""Reading an mfe train checkpoint: one entry (io.checkpoint.read_checkpoint), one-line errors."""

from __future__ import annotations

import pytest
import torch

from mouse_facial_expressions.io.checkpoint import (NotACheckpointError, UnsafeCheckpointError, checkpoint_parts,
                                                    read_checkpoint)
from mouse_facial_expressions.models.registry import create_model, load_trained_model

CFG = {"backbone": "resnet18", "pretrained": "none"}


def _checkpoint(tmp_path, **changes):
    """A checkpoint laid out as Lightning saves ClipClassifier's: weights under ``model.``."""
    torch.manual_seed(0)
    net = create_model("baseline", **CFG)
    ckpt = {"epoch": 3, "hyper_parameters": {"model_name": "baseline", "model_cfg": dict(CFG), "data": {"fold": 0}},
            "state_dict": {**{f"model.{k}": v for k, v in net.state_dict().items()}, "other.w": torch.zeros(1)}}
    ckpt.update(changes)
    path = tmp_path / "fold0.ckpt"
    torch.save(ckpt, path)
    return path, net


def test_read_checkpoint_gives_hparams_and_the_models_weights(tmp_path):
    path, net = _checkpoint(tmp_path)
    hp, state = read_checkpoint(path)
    assert hp["model_name"] == "baseline" and hp["data"] == {"fold": 0}
    assert set(state) == set(net.state_dict())  # prefix removed, other modules' weights left out
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_load_trained_model_rebuilds_the_same_model_in_eval_mode(tmp_path):
    path, net = _checkpoint(tmp_path)
    model, hp = load_trained_model(path)
    assert not model.training and hp["model_name"] == "baseline"
    assert list(model.parts) == ["face", "class"]  # a bare face model's checkpoint: the face and its class head
    assert all(torch.equal(model.face.state_dict()[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("changes, missing", [
    ({"hyper_parameters": {}}, "no model_name"),
    ({"hyper_parameters": {"model_name": "baseline"}}, "no model_cfg"),
    ({"state_dict": None}, "no state_dict"),
])
def test_missing_key_names_file_and_key(tmp_path, changes, missing):
    path, _ = _checkpoint(tmp_path, **changes)
    with pytest.raises(NotACheckpointError, match=missing) as err:
        read_checkpoint(path)
    assert str(path) in str(err.value) and "not an mfe checkpoint" in str(err.value)


def test_a_bare_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(NotACheckpointError, match="weights.pt: not an mfe checkpoint"):
        read_checkpoint(path)


def test_corrupt_file_is_one_line_error(tmp_path):
    path, _ = _checkpoint(tmp_path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UnsafeCheckpointError, match="not a readable PyTorch file"):
        read_checkpoint(path)


def test_pickled_object_is_refused_not_run(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"hyper_parameters": {"model_name": "baseline"}, "obj": __import__("pathlib").PurePosixPath("x"),
                "state_dict": {}}, path)
    with pytest.raises(UnsafeCheckpointError, match="evil.ckpt: holds"):
        read_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "gone.ckpt")


def test_checkpoint_parts_copies_hparams():
    ckpt = {"hyper_parameters": {"model_name": "m", "model_cfg": {}}, "state_dict": {}}
    hp, _ = checkpoint_parts(ckpt)
    hp["x"] = 1
    assert "x" not in ckpt["hyper_parameters"]
