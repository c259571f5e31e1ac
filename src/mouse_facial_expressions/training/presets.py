"""Named training settings the benchmarks share: ``preset_params("small", image_size=64)``.

A preset is a set of :class:`~mouse_facial_expressions.training.params.TrainParams` fields laid
over the model's seed defaults by ``make_params``; the caller's overrides come last. Each
benchmark names its preset and states, as an override, every setting in which it differs, so
that its published figures stay reproducible:

- ``small``: the small advanced face model of the fusion, MGS, weak-supervision and eye-warp
  benchmarks (resnet18, a 1-layer Transformer of width 128, 4-frame clips, 4 epochs of 160
  clips, 48 px; ``bench_mgs`` overrides ``image_size=64``, ``bench_weak`` ``precision="32-true"``).
- ``recipe``: the setting ``bench_recipe`` compares the training recipes in (resnet18 from
  scratch at 64 px, a 4-layer Transformer, batch 16, AdamW 1e-4, soft labels with 0.1
  smoothing, 3 epochs of 160 clips, fp32).
- ``bench``: resnet18 at 64 px with a 2-layer Transformer, the cohort benchmarks' model
  (``bench_accuracy`` sets the epochs from its time budget; ``bench_shift`` trains 6).
- ``smoke``: the smallest model that runs the same code (a 32-wide layer, 16 px, one epoch of
  one batch, 2 validation and test windows per video), for the benchmarks' ``--smoke`` runs and tests.
"""

from __future__ import annotations

from mouse_facial_expressions.training.params import TrainParams, make_params

#: Fields of the model's architecture (``models.create_model`` keywords as well).
ARCHITECTURE = ("backbone", "d_model", "num_layers", "num_heads", "ff_dim")

PRESETS: dict[str, dict] = {
    "small": dict(backbone="resnet18", d_model=128, num_layers=1, num_heads=4, ff_dim=256, image_size=48,
                  num_frames=4, frame_stride=2, epochs=4, epoch_size=160),
    "recipe": dict(backbone="resnet18", pretrained="none", image_size=64, num_layers=4, train_batch_size=16,
                    learning_rate=1e-4, label_smoothing=0.1, use_soft_labels=True, precision="32-true",
                    epochs=3, epoch_size=160),
    "bench": dict(backbone="resnet18", image_size=64, num_layers=2),
    "smoke": dict(backbone="resnet18", pretrained="none", d_model=32, num_layers=1, num_heads=2, ff_dim=32,
                  image_size=16, num_frames=3, frame_stride=1, epochs=1, epoch_size=8, train_batch_size=4,
                  test_batch_size=16, learning_rate=1e-3, precision="32-true", limit_batches=1, workers=0,
                  val_windows_per_video=2, test_windows_per_video=2),
}


def preset(name: str) -> dict:
    """A copy of the named preset's fields."""
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r} (known: {', '.join(PRESETS)})")
    return dict(PRESETS[name])


def architecture(name: str) -> dict:
    """The preset's architecture fields (:data:`ARCHITECTURE`) that it sets."""
    return {k: v for k, v in preset(name).items() if k in ARCHITECTURE}


def preset_params(name: str, model: str = "advanced", **overrides) -> TrainParams:
    """``make_params(model, **preset(name), **overrides)``; an override of None keeps the preset's value."""
    return make_params(model, **{**preset(name), **{k: v for k, v in overrides.items() if v is not None}})
