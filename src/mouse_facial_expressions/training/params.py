"""Training parameters: one dataclass, with the seed scripts' defaults per model.

Resolution order (highest first): an explicit flag / keyword, a key written in the project's
``mfe.yaml`` ``train:`` section (or a ``--config`` file: ``settings.TrainConfig``; a key written
always counts, also when it equals a default), then "the model's defaults": the seed's default
for the chosen model (:data:`SEED_DEFAULTS`), the recipe's (:data:`RECIPES`), the dataclass
default. ``num_frames``/``frame_stride`` left at None come from the task folder's spec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

#: Defaults of the seed scripts (train_task1_{baseline,advanced}_model.py; ReSup per the spec).
SEED_DEFAULTS: dict[str, dict] = {
    "baseline": dict(backbone="resnet34", optimizer="sgd", epochs=10, learning_rate=1e-2, train_batch_size=20,
                     test_batch_size=50, momentum=0.9, weight_decay=1e-4, label_smoothing=0.1,
                     use_soft_labels=False, seed=97531),
    "advanced": dict(backbone="resnet34", optimizer="adamw", epochs=20, learning_rate=1e-4, train_batch_size=16,
                     test_batch_size=32, weight_decay=1e-4, label_smoothing=0.1, use_soft_labels=True,
                     seed=97531, dropout=0.2),
    "resup": dict(backbone="resnet34", optimizer="adamw", epochs=20, learning_rate=1e-4, train_batch_size=16,
                  test_batch_size=32, weight_decay=1e-4, label_smoothing=0.2, use_soft_labels=True,
                  seed=97531, dropout=0.5),
}

#: Training recipes: the choices besides the seed's hyperparameters that decide how much a
#: model learns per epoch and which epoch is kept. ``docs/RECIPE.md`` has the ablation that
#: chose ``mfe2`` (one difference at a time, measured).
#:
#: - ``mfe2`` (the default): ``mfe1`` plus BatchNorm statistics recomputed from the epoch's last
#:   4 training batches before each validation (the evaluated model otherwise lags its weights
#:   after few steps: the cause of "learns less"), every validation window scored, and the
#:   epoch with the lowest validation loss kept.
#: - ``mfe1``: the first mfe recipe: one mild augmentation per clip, balanced sampler,
#:   positional table N(0, 0.02), GELU head, best val accuracy on 8 windows per validation video.
#: - ``original``: the original code's choices where they differ (torchvision TrivialAugmentWide
#:   per frame, uniform shuffling, positional table N(0, 1), ReLU head with dropout 0.3), with
#:   leak-free selection on validation animals.
RECIPES: dict[str, dict] = {
    "mfe1": dict(augment_policy="mild", augment_scope="clip", sampler="balanced", pos_init_std=0.02,
                 head_activation="gelu", head_dropout=None, warmup_epochs=0.0, bn_recalibrate=0, select="val_acc",
                 val_windows_per_video=8),
    "mfe2": dict(augment_policy="mild", augment_scope="clip", sampler="balanced", pos_init_std=0.02,
                 head_activation="gelu", head_dropout=None, warmup_epochs=0.0, bn_recalibrate=4, select="val_loss",
                 val_windows_per_video=0),
    "original": dict(augment_policy="wide", augment_scope="frame", sampler="uniform", pos_init_std=1.0,
                     head_activation="relu", head_dropout=0.3, warmup_epochs=0.0, bn_recalibrate=0, select="val_acc",
                     val_windows_per_video=0),
}

#: The recipe ``mfe train`` uses unless told otherwise.
DEFAULT_RECIPE = "mfe2"

#: Fields added after runs were named: left at None they stay out of the run name's hash, so
#: earlier runs keep their names (and resume).
_ADDED_FIELDS = {"baseline_recording", "weak", "weak_fraction", "weak_every", "weak_start", "weak_bag", "weak_posterior", "modalities", "fusion",
                 "modality_dropout", "targets"}

#: Fields that do not change what is learned (excluded from the run name's hash).
_RUNTIME_FIELDS = {"folds", "devices", "strategy", "num_nodes", "accelerator", "workers", "max_time",
                   "limit_batches", "run_name", "precision", "channels_last"}


@dataclass
class TrainParams:
    """Everything ``train_cv`` needs besides the task folder and the output folder."""

    model: str = "advanced"
    backbone: str = "resnet34"
    pretrained: str = "none"  # 'imagenet' | 'none' | path to a state dict
    in_channels: int = 3  # 3 = grey repeated (what the loader gives); 1 = summed conv1
    image_size: int = 112
    num_frames: int | None = None  # None: the task's
    frame_stride: int | None = None
    epochs: int = 20
    learning_rate: float = 1e-4
    optimizer: str = "adamw"  # adamw | sgd (momentum)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    use_soft_labels: bool = True
    train_batch_size: int = 16
    test_batch_size: int = 32
    dropout: float | None = None  # None: the model's default
    d_model: int = 512
    num_layers: int = 4
    num_heads: int = 8
    ff_dim: int = 2048
    train_augmentation: str = "TrivialAugmentWide"
    epoch_size: int | None = None  # training windows per epoch (None: the loader's default)
    test_windows_per_video: int | None = None  # None: every window
    # The recipe: None takes the value of RECIPES[recipe] (see there).
    recipe: str = DEFAULT_RECIPE
    augment_policy: str | None = None  # mild | wide
    augment_scope: str | None = None  # clip | frame
    sampler: str | None = None  # balanced | uniform
    pos_init_std: float | None = None
    head_activation: str | None = None  # gelu | relu
    head_dropout: float | None = None
    warmup_epochs: float | None = None
    bn_recalibrate: int | None = None  # training batches to recompute BatchNorm statistics from before validation (0: off)
    select: str | None = None  # val_acc | val_loss | last
    val_windows_per_video: int | None = None  # 0: every validation window
    seed: int = 97531
    dataset_version: str | None = None
    # Baseline-relative scoring: score each window against the same animal's windows of this
    # recording (advanced only; None: the task spec's baseline_recording, else absolute scores).
    baseline_recording: int | None = None
    # Weak supervision (training/weak.py): None = every window takes its video's label; "em" =
    # window targets re-estimated by EM with the prior that a positive video's windows are
    # positive with expected fraction weak_fraction (None: 0.3), E-step every weak_every epochs (None: 1).
    weak: str | None = None
    weak_fraction: float | None = None
    weak_every: int | None = None
    weak_start: int | None = None  # epoch of the first E-step (None: 1)
    # "attention" = attention-MIL pooling (models/parts/attention.py) over bags of weak_bag windows of a video (None: 8)
    weak_bag: int | None = None
    weak_posterior: str | None = None  # the E-step: "scaled" (None) or "bayes" (training/weak.py)
    # Multimodal fusion (models/parts/fusion.py): None = the face alone; else a comma-separated subset of
    # face, behaviour, physiology, fused "stacked" (per-modality heads weighed by a logistic
    # regression fit on the validation animals, the default), "late" (their mean) or "mid"
    # (concatenated embeddings, one head), each present modality switched off per training window
    # with probability modality_dropout (None: 0.3).
    modalities: str | None = None
    fusion: str | None = None
    modality_dropout: float | None = None
    # What the model learns (models/parts/au.py): None (= "class") the binary class only; "au+class" also the
    # Mouse Grimace Scale action units of the task's rated frames (a head per AU on the window
    # embedding, KL to the raters' distribution); "au" the action units only (no class head; p1 =
    # MGS total / 2; checkpoints are then selected on the validation AU loss). Needs a task made
    # with AU targets (mfe task make --au-ratings) and --model advanced.
    targets: str | None = None
    # runtime
    folds: list[int] | None = None
    accelerator: str = "auto"
    devices: str | int = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str | None = None  # None: auto (see training.module.auto_precision)
    channels_last: bool | None = None  # None: auto (on when bf16 is)
    max_time: str | None = None  # per fold, "DD:HH:MM:SS"
    workers: int = 2
    limit_batches: int | float | None = None  # tests: cap train/val batches per epoch
    run_name: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r} (choose from {', '.join(RECIPES)})")
        self._check_targets()
        for key, value in RECIPES[self.recipe].items():  # None: the recipe's value
            if getattr(self, key) is None:
                setattr(self, key, value)
        self._check_weak()
        self._check_modalities()

    def _check_weak(self) -> None:
        """The weak-supervision options (training/weak.py): each belongs to one method."""
        from mouse_facial_expressions.training.weak import WEAK_METHODS

        if self.weak is not None and self.weak not in WEAK_METHODS:
            raise ValueError(f"unknown weak-supervision method {self.weak!r} (choose from {', '.join(WEAK_METHODS)})")
        if self.weak_posterior is not None and (self.weak != "em" or self.weak_posterior not in ("scaled", "bayes")):
            raise ValueError(f"--weak-posterior {self.weak_posterior}: scaled or bayes, for --weak em only")
        if self.weak_bag is not None and (self.weak != "attention" or self.weak_bag < 1):
            raise ValueError(f"--weak-bag {self.weak_bag}: a bag size (>= 1) for --weak attention only")
        if self.weak_fraction is not None and not 0 < self.weak_fraction <= 1:
            raise ValueError(f"weak_fraction={self.weak_fraction} must be in (0, 1]")
        if self.weak_every is not None and self.weak_every < 1:
            raise ValueError(f"weak_every={self.weak_every} must be >= 1")

    def _check_modalities(self) -> None:
        """``modalities``: ``face`` alone becomes None (the plain model: same run name, same checkpoints)."""
        if self.modalities is not None:
            from mouse_facial_expressions.data.modalities import parse_modalities

            self.modalities = ",".join(parse_modalities(self.modalities))
            if self.modalities == "face":
                self.modalities = None
        if (self.fusion is not None or self.modality_dropout is not None) and self.modalities is None:
            raise ValueError("--fusion and --modality-dropout need --modalities with more than the face")
        if self.fusion not in (None, "stacked", "late", "mid"):
            raise ValueError(f"--fusion must be stacked, late or mid, got {self.fusion!r}")

    def _check_targets(self) -> None:
        """``targets``: ``class`` becomes None (the plain model: same run name, same checkpoints);
        ``au`` has no class head, so it is selected on the validation loss (the AU loss), not accuracy."""
        if self.targets is None:
            return
        from mouse_facial_expressions.models.parts.au import TARGETS

        if self.targets not in TARGETS:
            raise ValueError(f"unknown --targets {self.targets!r} (choose from {', '.join(TARGETS)})")
        if self.targets == "class":
            self.targets = None
            return
        if self.targets == "au":
            if self.select == "val_acc":
                raise ValueError("--targets au has no class head, so no accuracy to select on: use --select val_loss "
                                 "(the validation AU loss, the default for --targets au) or last")
            self.select = self.select or "val_loss"

    @property
    def modality_list(self) -> tuple[str, ...]:
        """The model's modalities (``("face",)`` for a plain model)."""
        return tuple(self.modalities.split(",")) if self.modalities else ("face",)

    def model_config(self) -> dict:
        """``model_cfg`` of the model to train: the face model's keyword arguments and ``parts``
        (each part reads its own options from these parameters: ``models.parts.parts_from_params``).
        Parts that cannot work together fail here, each saying why."""
        from mouse_facial_expressions.models.parts import check_parts, parts_from_params

        cfg = dict(backbone=self.backbone, pretrained=self.pretrained, in_channels=self.in_channels)
        if self.model in ("advanced", "resup"):
            cfg.update(num_frames=self.num_frames or 10, d_model=self.d_model, num_layers=self.num_layers,
                       num_heads=self.num_heads, ff_dim=self.ff_dim, pos_init_std=self.pos_init_std,
                       head_activation=self.head_activation, head_dropout=self.head_dropout)
            if self.dropout is not None:
                cfg["dropout"] = self.dropout
        parts = parts_from_params(self)
        check_parts(self.model, parts)
        return {**cfg, "parts": parts}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def default_run_name(self) -> str:
        """``<model>-<backbone>-<hash of the learning-relevant params>``: stable across reruns."""
        learn = {k: v for k, v in self.to_dict().items() if k not in _RUNTIME_FIELDS and not (k in _ADDED_FIELDS and v is None)}
        digest = hashlib.sha1(json.dumps(learn, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return f"{self.model}-{self.backbone}-{digest}"


def make_params(model: str = "advanced", config_train=None, **overrides) -> TrainParams:
    """Resolve :class:`TrainParams` for ``model`` (see module docstring for the order).

    Args:
        model: baseline | advanced | resup.
        config_train: the values written in a file: a ``TrainConfig`` (``Config.train``: every
            key written counts, whatever its value) or a dict. Keys that are not training
            parameters (``out``, ``tracking_uri`` ...) and ``model`` are ignored.
        **overrides: explicit values; None means "not given".
    """
    if model not in SEED_DEFAULTS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(SEED_DEFAULTS)}")
    names = {f.name for f in dataclasses.fields(TrainParams)}
    values = dict(SEED_DEFAULTS[model])
    if config_train is not None:
        from mouse_facial_expressions.settings import written

        written_values = written(config_train) if not isinstance(config_train, dict) else config_train
        values.update({k: v for k, v in written_values.items() if k in names and k != "model" and v is not None})
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["model"] = model
    unknown = set(values) - names
    if unknown:
        raise TypeError(f"unknown training parameter(s): {', '.join(sorted(unknown))}")
    return TrainParams(**values)
