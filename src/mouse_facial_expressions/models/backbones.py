"""Per-frame CNN backbones from torchvision, with explicit grey-scale handling.

Grey input. Face crops are grey. The data loader repeats the grey channel three times, so a
clip arrives as ``(B, T, 3, H, W)`` with three identical channels: that is what ImageNet
weights expect, and it is the default (``in_channels=3``). With ``in_channels=1`` the first
convolution takes a single grey channel; its ImageNet weights are summed over RGB, which
gives the same response to a grey image repeated three times, at a third of the conv1 cost.
A 1-channel clip fed to a 3-channel backbone is repeated to 3 channels (and the reverse is
an error), so a mismatch is never silent.

Pretrained weights (``pretrained=``):
- ``"none"``: random initialisation (train from scratch).
- ``"imagenet"``: torchvision's ImageNet weights, read from the torch hub cache
  ``$TORCH_HOME/hub/checkpoints/<file>.pth`` (``torch.hub.get_dir()``). Nothing is ever
  downloaded; a missing file is an error that names the exact path to put it at.
  ``mfe weights`` installs the MobileNetV2 file offline.
- a path to a state dict (torchvision layout; the classifier keys may be absent).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from mouse_facial_expressions.compat import import_torchvision

#: name -> (torchvision constructor, weights enum name, feature dim, classifier attribute)
BACKBONES: dict[str, tuple[str, str, int, str]] = {
    "resnet18": ("resnet18", "ResNet18_Weights", 512, "fc"),
    "resnet34": ("resnet34", "ResNet34_Weights", 512, "fc"),
    "resnet50": ("resnet50", "ResNet50_Weights", 2048, "fc"),
    "mobilenet_v2": ("mobilenet_v2", "MobileNet_V2_Weights", 1280, "classifier"),
}


def imagenet_weights_file(name: str) -> Path:
    """Where torchvision's ImageNet (V1) weights for ``name`` must lie in the hub cache."""
    tv = import_torchvision()
    _, enum_name, _, _ = _spec(name)
    url = getattr(tv.models, enum_name).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _spec(name: str):
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    return BACKBONES[name]


def _load_state_dict(path: Path) -> dict:
    from mouse_facial_expressions.io.checkpoint import load_weights_only

    sd = load_weights_only(path)  # a corrupt file or a pickle with objects: a one-line ValueError
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{path}: expected a state dict (parameter name -> tensor)")
    return sd


def resolve_pretrained(name: str, pretrained: str | Path | None) -> dict | None:
    """The state dict that ``pretrained`` names for backbone ``name`` (None for 'none')."""
    if pretrained is None or str(pretrained).lower() in ("none", ""):
        return None
    if str(pretrained).lower() == "imagenet":
        path = imagenet_weights_file(name)
        if not path.is_file():
            hint = (
                "run `mfe weights` to install it offline"
                if name == "mobilenet_v2"
                else "copy torchvision's file there from a machine with internet access "
                "(e.g. python -c \"import torchvision; torchvision.models."
                f"{_spec(name)[0]}(weights='IMAGENET1K_V1')\" fills that machine's hub cache), "
                "or use --pretrained none / --pretrained PATH"
            )
            raise FileNotFoundError(
                f"ImageNet weights for {name} not found at {path} (set TORCH_HOME to use "
                f"another cache); nothing is downloaded: {hint}"
            )
        return _load_state_dict(path)
    path = Path(pretrained)
    if not path.is_file():
        raise FileNotFoundError(f"--pretrained {pretrained}: no such file (or use 'imagenet' / 'none')")
    return _load_state_dict(path)


def _first_conv(net: nn.Module, name: str) -> tuple[nn.Module, str, nn.Conv2d]:
    if name.startswith("resnet"):
        return net, "conv1", net.conv1
    parent = net.features[0]  # mobilenet_v2: Conv2dNormActivation
    return parent, "0", parent[0]


class FrameEncoder(nn.Module):
    """A torchvision CNN without its classifier: one feature vector per image.

    Args:
        name: one of :data:`BACKBONES`.
        pretrained: 'none', 'imagenet' or a state-dict path (see module docstring).
        in_channels: 3 (grey repeated, default) or 1 (conv1 weights summed over RGB).

    Shapes: ``(N, C, H, W) -> (N, out_dim)``.
    """

    def __init__(self, name: str = "resnet18", pretrained: str | None = "none", in_channels: int = 3):
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        ctor, _, dim, head = _spec(name)
        tv = import_torchvision()
        net = getattr(tv.models, ctor)(weights=None)
        sd = resolve_pretrained(name, pretrained)
        if sd is not None:
            head_keys = {k for k in net.state_dict() if k.startswith(head + ".")}
            sd = {k: v for k, v in sd.items() if not k.startswith(head + ".")}
            missing, unexpected = net.load_state_dict(sd, strict=False)
            missing = [k for k in missing if k not in head_keys]
            if missing or unexpected:
                raise ValueError(
                    f"--pretrained {pretrained}: weights do not fit {name} "
                    f"(missing {missing[:3]}..., unexpected {unexpected[:3]}...)"
                )
        setattr(net, head, nn.Identity())
        if in_channels == 1:
            parent, attr, conv = _first_conv(net, name)
            grey = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)
            with torch.no_grad():
                grey.weight.copy_(conv.weight.sum(dim=1, keepdim=True))  # same response to grey x3
                if conv.bias is not None:
                    grey.bias.copy_(conv.bias)
            if attr == "0":
                parent[0] = grey
            else:
                setattr(parent, attr, grey)
        self.net = net
        self.in_channels = in_channels
        self.out_dim = dim
        self.channels_last = False  # set by the trainer on CPUs/GPUs where it is faster

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            if x.shape[1] == 1 and self.in_channels == 3:
                x = x.expand(-1, 3, -1, -1)  # (N, 3, H, W): grey repeated
            else:
                raise ValueError(f"backbone expects {self.in_channels} channel(s), got input {tuple(x.shape)}")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)  # (N, out_dim)


def build_backbone(name: str = "resnet18", pretrained: str | None = "none", in_channels: int = 3) -> FrameEncoder:
    """A :class:`FrameEncoder`; its feature size is ``.out_dim``."""
    return FrameEncoder(name, pretrained, in_channels)


def encode_frames(encoder: FrameEncoder, clip: torch.Tensor) -> torch.Tensor:
    """Run ``encoder`` on every frame: ``(B, T, C, H, W) -> (B, T, D)``."""
    if clip.dim() != 5:
        raise ValueError(f"expected a clip batch (B, T, C, H, W), got shape {tuple(clip.shape)}")
    b, t = clip.shape[:2]
    z = encoder(clip.flatten(0, 1))  # (B*T, D)
    return z.reshape(b, t, -1)  # (B, T, D)
