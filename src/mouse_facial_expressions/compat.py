"""Make torchvision importable on a CPU-only torch.

The torchvision wheel on PyPI is a CUDA build. On the local CPU torch its import fails with
``operator torchvision::nms does not exist`` because its C++ ops library does not load. The
Python models and transforms never need those ops, so registering the missing operator
*schemas* before the first import is enough. Where torchvision imports cleanly (a CUDA
machine with a matching torch) this module does nothing.

Import torchvision through :func:`import_torchvision`, or import this module first.
"""

from __future__ import annotations

import importlib

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_patched = False


def _has_op(name: str) -> bool:
    import torch

    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False


def ensure_torchvision_ops() -> bool:
    """Register any missing torchvision operator schema. Returns True if it had to."""
    global _patched, _lib
    import torch

    missing = [n for n in _SCHEMAS if not _has_op(n)]
    if not missing:
        return False
    _lib = torch.library.Library("torchvision", "FRAGMENT")  # kept alive at module level
    for name in missing:
        try:
            _lib.define(_SCHEMAS[name])
        except RuntimeError:  # already defined by a concurrent import
            pass
    _patched = True
    return True


def import_torchvision():
    """Import and return torchvision, patching operator schemas only when needed."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    import sys

    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[mod]
    ensure_torchvision_ops()
    return importlib.import_module("torchvision")


def torchvision_was_patched() -> bool:
    return _patched
