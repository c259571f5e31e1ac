"""A registry of named model constructors (timm style).

>>> from mouse_facial_expressions.models import create_model, list_models
>>> list_models()
['advanced', 'baseline', 'resup']
>>> net = create_model("advanced", backbone="resnet18", num_layers=2)

Every registered model maps a clip batch ``(B, T, C, H, W)`` to logits ``(B, 2)``, keeps the
keyword arguments it was built with in ``net.config`` (so ``create_model(name, **net.config)``
rebuilds it), and owns its loss: ``net.loss(clip, soft, label, **loss_cfg) -> (loss, logits)``.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str | Callable | None = None):
    """Register a model constructor under ``name`` (default: the callable's own name).

    Usable as ``@register_model`` or ``@register_model("name")``.
    """

    def deco(fn: Callable[..., nn.Module], key: str | None = None):
        key = key or fn.__name__
        if key in _REGISTRY and _REGISTRY[key] is not fn:
            raise ValueError(f"model {key!r} is registered twice")
        _REGISTRY[key] = fn
        return fn

    if callable(name):
        return deco(name)
    return lambda fn: deco(fn, name)


def _ensure_builtin() -> None:
    # Importing the model modules runs their @register_model decorators.
    from mouse_facial_expressions.models import advanced, baseline, resup  # noqa: F401


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def create_model(name: str, **cfg) -> nn.Module:
    """Build a registered face model. Unknown keyword arguments are errors (never dropped).

    With ``parts={...}`` (what a trained model's ``config`` holds) it builds the model of those
    parts around the face model (:class:`~mouse_facial_expressions.models.parts.PartsNet`); so do
    the settings of checkpoints from before the parts (``fusion=``, ``au=``, ``mil=``,
    ``relative=True``), read as their parts (:func:`models.parts.legacy_spec`).

    Raises:
        ValueError: for an unknown model name, or parts that cannot work together (the part says why).
        TypeError: for a keyword the model does not take.
    """
    _ensure_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}")
    from mouse_facial_expressions.models.parts import build_net, legacy_spec

    face_cfg, parts = legacy_spec(cfg)
    if "parts" in cfg or set(parts) - {"face", "class"}:
        return build_net(name, cfg)[0]
    return _REGISTRY[name](**face_cfg)


# --------------------------------------------------------------------------- trained models


def trained_model(hparams: dict, state_dict: dict) -> nn.Module:
    """The model an ``mfe train`` checkpoint holds, rebuilt with :func:`create_model`, in eval mode.

    Pretrained weights are not looked up again (the checkpoint holds every weight).

    Args:
        hparams, state_dict: what :func:`mouse_facial_expressions.io.checkpoint.read_checkpoint`
            (or ``checkpoint_parts``) returns.
    """
    from mouse_facial_expressions.models.parts import build_net, legacy_state_dict

    model, legacy = build_net(hparams["model_name"], dict(hparams["model_cfg"], pretrained="none"))
    if legacy:  # written before the parts: the wrappers' key names
        state_dict = legacy_state_dict(state_dict, model.config["parts"], bool(model.face_dim))
    model.load_state_dict(state_dict)
    model.eval()
    return model


def load_trained_model(path, map_location="cpu") -> tuple[nn.Module, dict]:
    """``(model, hparams)`` of an ``mfe train`` checkpoint file (errors: ``io.checkpoint.read_checkpoint``).

    ``hparams`` has ``model_name``, ``model_cfg`` and ``data`` (num_frames, frame_stride,
    image_size, norm_mean, norm_std, task_dir, fold, ...).
    """
    from mouse_facial_expressions.io.checkpoint import read_checkpoint

    hparams, state_dict = read_checkpoint(path, map_location)
    return trained_model(hparams, state_dict), hparams
