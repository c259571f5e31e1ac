"""Training: Lightning module, k-fold CV by animal, MLflow tracking.

Public API: :func:`train_cv`, :func:`make_params`, :class:`TrainParams`,
:func:`load_model_from_checkpoint`.
"""

from __future__ import annotations

__all__ = ["train_cv", "make_params", "TrainParams", "load_model_from_checkpoint"]


def __getattr__(name):  # lazy: importing lightning costs seconds
    if name == "train_cv":
        from mouse_facial_expressions.training.cv import train_cv

        return train_cv
    if name in ("make_params", "TrainParams"):
        from mouse_facial_expressions.training import params

        return getattr(params, name)
    if name == "load_model_from_checkpoint":
        from mouse_facial_expressions.training.module import load_model_from_checkpoint

        return load_model_from_checkpoint
    raise AttributeError(name)
