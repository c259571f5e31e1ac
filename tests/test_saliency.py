"""Grad-CAM over clips: shapes, range, hooks, and that it points at the evidence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from mouse_facial_expressions.compat import import_torchvision
from mouse_facial_expressions.inference.saliency import grad_cam, last_conv_layer

torch.set_num_threads(1)


class ClipNet(nn.Module):
    """(B, T, C, H, W) -> (B, 2): a per-frame backbone, then the mean over time."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        b, t = x.shape[:2]
        y = self.backbone(x.flatten(0, 1))  # (B*T, 2)
        return y.view(b, t, -1).mean(dim=1)  # (B, 2)


class BrightnessNet(nn.Module):
    """Class-1 logit = mean brightness, class-0 logit = minus it: Grad-CAM of class 1 must be
    the image itself (up to scale), and of class 0 all zero."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, kernel_size=1, bias=False)
        nn.init.ones_(self.conv.weight)
        self.head = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-1.0], [1.0]]))

    def forward(self, x):
        b, t = x.shape[:2]
        f = torch.relu(self.conv(x.flatten(0, 1)))  # (B*T, 1, H, W)
        f = f.mean(dim=(2, 3))  # (B*T, 1)
        return self.head(f).view(b, t, 2).mean(dim=1)  # (B, 2)


def _resnet_clip_model():
    tv = import_torchvision()
    torch.manual_seed(0)
    return ClipNet(tv.models.resnet18(weights=None, num_classes=2)).eval()


def test_resnet18_gives_one_map_per_frame_in_unit_range():
    model = _resnet_clip_model()
    clip = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))  # (T, C, H, W)
    cam = grad_cam(model, clip, model.backbone.layer4)
    assert cam.shape == (3, 64, 64)
    assert cam.dtype == np.float32
    assert np.isfinite(cam).all()
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    assert np.isclose(cam.max(), 1.0)  # per-frame normalisation reaches 1 somewhere


def test_batched_clip_with_b1_returns_t_h_w():
    model = _resnet_clip_model()
    clip = torch.randn(1, 2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert grad_cam(model, clip, model.backbone.layer3).shape == (2, 32, 32)


def test_hooks_are_removed_and_weights_untouched():
    model = _resnet_clip_model()
    layer = model.backbone.layer4
    before = [p.detach().clone() for p in model.parameters()]
    grad_cam(model, torch.randn(2, 3, 32, 32), layer)
    assert len(layer._forward_hooks) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_map_peaks_on_the_bright_patch():
    model = BrightnessNet()
    clip = torch.zeros(2, 1, 20, 20)
    clip[0, 0, 2:6, 12:16] = 1.0  # frame 0: patch top right
    clip[1, 0, 14:18, 3:7] = 1.0  # frame 1: patch bottom left
    cam = grad_cam(model, clip, model.conv)
    for t, (rows, cols) in enumerate([(slice(2, 6), slice(12, 16)), (slice(14, 18), slice(3, 7))]):
        r, c = np.unravel_index(cam[t].argmax(), cam[t].shape)
        assert rows.start <= r < rows.stop and cols.start <= c < cols.stop
        assert cam[t][rows, cols].mean() > 0.9
        assert cam[t][10, 10] == 0.0  # far from both patches


def test_no_positive_evidence_gives_zero_map():
    model = BrightnessNet()
    clip = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    cam = grad_cam(model, clip, model.conv, target_class=0)  # brightness lowers class 0
    assert np.all(cam == 0.0)


def test_frozen_backbone_still_gets_maps():
    model = _resnet_clip_model()
    for p in model.parameters():
        p.requires_grad_(False)
    cam = grad_cam(model, torch.randn(2, 3, 32, 32), model.backbone.layer4)
    assert cam.shape == (2, 32, 32) and cam.max() > 0


def test_clip_normalisation_keeps_relative_strength():
    model = BrightnessNet()
    clip = torch.zeros(2, 1, 8, 8)
    clip[0, 0, 2, 2] = 1.0
    clip[1, 0, 5, 5] = 0.5  # half as strong
    cam = grad_cam(model, clip, model.conv, normalize="clip")
    assert cam[0].max() == pytest.approx(1.0)
    assert cam[1].max() < 0.9 * cam[0].max()


def test_last_conv_layer_finds_a_conv():
    model = _resnet_clip_model()
    assert isinstance(last_conv_layer(model), nn.Conv2d)
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        last_conv_layer(nn.Linear(2, 2))


def test_layer_after_time_pooling_is_rejected():
    model = BrightnessNet()
    with pytest.raises(ValueError, match="feature maps"):
        grad_cam(model, torch.rand(2, 1, 8, 8), model.head)
