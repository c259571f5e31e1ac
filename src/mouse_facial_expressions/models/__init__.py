"""Models: per-frame backbones + set/temporal heads, each owning its loss.

Public API: :func:`create_model`, :func:`list_models`, :func:`register_model`,
:func:`build_backbone`, :data:`BACKBONES`.
"""

from mouse_facial_expressions.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model", "build_backbone", "BACKBONES"]


def __getattr__(name):  # lazy: backbones import torchvision (through compat)
    if name in ("build_backbone", "BACKBONES"):
        from mouse_facial_expressions.models import backbones

        return getattr(backbones, name)
    raise AttributeError(name)
