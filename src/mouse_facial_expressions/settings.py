"""Command settings: one pydantic section per command (``train``, ``predict``, ``evaluate``,
``finetune``, ``task``; ``extract`` lives with its stage settings in :mod:`config`), and how a
command's values are resolved.

Precedence, highest first: a flag on the command line, a ``--config FILE``, the project's
``mfe.yaml``, the defaults. A key written in a file always counts, even when it equals the
default; ``null`` means "not set" (the default). A section's key is the name of the command's
option with ``_`` for ``-`` (its ``dest``: ``--learning-rate`` -> ``learning_rate``). A path
written in ``mfe.yaml`` is relative to the project folder; on the command line and in a
``--config`` file, to the current folder (a run's ``params.json``: ``task_dir`` to the run's).

``train``'s defaults that depend on the model (the seed scripts' ``SEED_DEFAULTS``) or the
recipe (``RECIPES``) are ``null`` here and filled by :func:`training.params.make_params`, below
everything written.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A configuration problem, with a message that names the file and the key."""


def _format_validation_error(err, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{where}' (check the spelling; `mfe init` writes every key)")
        else:
            lines.append(f"  {where}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


#: Where a resolved value came from, lowest precedence first.
SOURCES = ("default", "mfe.yaml", "--config", "flag")

#: ``--device`` (one name across commands) -> Lightning's accelerator; ``gpu`` is Lightning's own.
LIGHTNING_ACCELERATOR = {"auto": "auto", "cpu": "cpu", "cuda": "gpu", "gpu": "gpu", "mps": "mps"}
#: ``--precision 32|bf16|16`` -> Lightning's precision; Lightning's spellings pass through.
LIGHTNING_PRECISION = {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed"}


class Section(BaseModel):
    """A section of ``mfe.yaml``: unknown keys are errors; a sub-section written empty (a header
    whose keys are all commented out, as ``mfe init`` writes them) is its defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_subsections(cls, data: Any) -> Any:
        if isinstance(data, dict):
            subs = {k for k, f in cls.model_fields.items() if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)}
            data = {k: v for k, v in data.items() if not (v is None and k in subs)}
        return data


def _model_default(what: str) -> Any:
    return Field(None, description=f"{what} (null: the model's default, see `mfe train --help-all`).")


def _recipe_default(what: str) -> Any:
    return Field(None, description=f"{what} (null: the recipe's value).")


class TrainAdvancedConfig(Section):
    """The ablation knobs of mfe train (`mfe train --help-all`): the recipe's settings, the optimiser, the Transformer's sizes, the weak-supervision and fusion details."""

    in_channels: Literal[1, 3] = Field(3, description="3: grey repeated to RGB; 1: conv1 weights summed.")
    optimizer: Literal["adamw", "sgd"] | None = _model_default("Optimiser: adamw or sgd")
    momentum: float | None = _model_default("SGD momentum")
    weight_decay: float | None = _model_default("Weight decay")
    label_smoothing: float | None = _model_default("Smoothing [1-s, s] of hard targets (LDL) or CE label smoothing")
    use_soft_labels: bool | None = _model_default("LDL on soft labels; false: cross-entropy on hard labels")
    dropout: float | None = _model_default("Transformer/MLP dropout")
    d_model: int = Field(512, gt=0, description="Transformer width (advanced); the backbone feature is projected when it differs.")
    num_layers: int = Field(4, gt=0, description="Transformer layers (advanced).")
    num_heads: int = Field(8, gt=0, description="Attention heads (advanced).")
    ff_dim: int = Field(2048, gt=0, description="Transformer feed-forward size (advanced).")
    train_augmentation: str = Field("TrivialAugmentWide", description="Training augmentation policy name (seed flag).")
    epoch_size: int | None = Field(None, description="Training windows per epoch (null: the loader's default).")
    test_windows_per_video: int | None = Field(None, description="Test windows scored per video (null: every window).")
    recipe: str = Field("mfe2", description="Training recipe: mfe2, mfe1 or original (docs/RECIPE.md); the keys below up to val_windows_per_video change one of its settings.")
    augment_policy: Literal["mild", "wide"] | None = _recipe_default("Augmentation ranges: mild or wide")
    augment_scope: Literal["clip", "frame"] | None = _recipe_default("One augmentation per clip or per frame")
    sampler: Literal["balanced", "uniform"] | None = _recipe_default("Training windows balanced by class then video, or uniform")
    pos_init_std: float | None = _recipe_default("Std of the positional table's initialisation")
    head_activation: Literal["gelu", "relu"] | None = _recipe_default("Classifier MLP activation")
    head_dropout: float | None = _recipe_default("Dropout before the classifier's last layer")
    warmup_epochs: float | None = _recipe_default("Linear learning-rate warm-up, in epochs")
    bn_recalibrate: int | None = _recipe_default("Training batches to recompute BatchNorm statistics from before validation (0: off)")
    select: str | None = _recipe_default("Checkpoint selection on the validation animals: val_acc, val_loss or last")
    val_windows_per_video: int | None = _recipe_default("Validation windows scored per video, 0: every window")
    weak_fraction: float | None = Field(None, description="--weak em: expected fraction of a positive video's windows in the affected state (null: 0.3).")
    weak_every: int | None = Field(None, description="--weak em: epochs between E-steps (null: 1).")
    weak_start: int | None = Field(None, description="--weak em: epoch of the first E-step (null: 1).")
    weak_bag: int | None = Field(None, description="--weak attention: windows per bag (null: 8).")
    weak_posterior: Literal["scaled", "bayes"] | None = Field(None, description="--weak em's E-step: scaled or bayes (null: scaled).")
    fusion: Literal["stacked", "late", "mid"] | None = Field(None, description="How modalities are fused: stacked, late or mid (null: stacked).")
    modality_dropout: float | None = Field(None, description="Probability of switching off each present modality per training window (null: 0.3).")

#: The ``train:`` defaults an older ``mfe init`` wrote out (commit d1e10e8's ``config.TrainConfig``).
_OLD_TRAIN_DEFAULTS = dict(model="advanced", backbone="resnet34", pretrained="none", image_size=112, epochs=20,
                           learning_rate=1e-4, weight_decay=1e-4, train_batch_size=16, test_batch_size=32, num_frames=10,
                           frame_stride=2, label_smoothing=0.1, use_soft_labels=True, seed=97531, recipe=None,
                           tracking_uri=None)
#: Keys an older ``train:`` section had at its top that now sit under ``train.advanced``.
_OLD_ONLY_KEYS = {"weight_decay", "label_smoothing", "use_soft_labels", "recipe"}


class TrainConfig(Section):
    """mfe train: each key is a flag of `mfe train` (params.json of a run holds the same keys)."""

    model: Literal["baseline", "advanced", "resup"] = Field("advanced", description="Model to train: baseline, advanced or resup.")
    backbone: str | None = _model_default("Per-frame CNN, e.g. resnet18, resnet34, mobilenet_v2")
    pretrained: str = Field("none", description="Backbone weights: imagenet (offline cache, see `mfe weights`), none, or a state-dict path.")
    image_size: int = Field(112, gt=0, description="Side of the input crops in pixels.")
    num_frames: int | None = Field(None, gt=0, description="Frames per window (null: the task's num_frames).")
    frame_stride: int | None = Field(None, gt=0, description="Kept frames between window frames (null: the task's frame_stride).")
    epochs: int | None = Field(None, gt=0, description="Training epochs (null: the model's default, baseline 10, advanced and resup 20).")
    learning_rate: float | None = Field(None, gt=0, description="Peak learning rate, cosine decay to 1% (null: the model's default).")
    train_batch_size: int | None = _model_default("Clips per training batch")
    test_batch_size: int | None = _model_default("Clips per validation/test batch")
    seed: int | None = _model_default("Seed of the training RNGs (--train-seed)")
    dataset_version: str | None = Field(None, description="Task folder tasks/task-<version> (null: project.dataset_version).")
    task_dir: Path | None = Field(None, description="Task folder to train on (null: <paths.tasks>/task-<dataset_version>); a run's params.json records it relative to the run folder.")
    baseline_recording: int | None = Field(None, description="Baseline-relative scoring against the animal's recording K (null: the task's, else none).")
    weak: Literal["em", "attention"] | None = Field(None, description="Weak supervision: em or attention (null: every window takes its video's label).")
    modalities: str | None = Field(None, description="Comma-separated subset of face, behaviour, physiology (null: face).")
    targets: Literal["class", "au", "au+class"] | None = Field(None, description="What the model learns: class, au or au+class (null: class).")
    folds: list[int] | None = Field(None, description="Outer folds to run, e.g. [0, 1] (null: every fold of the task).")
    accelerator: str = Field("auto", description="Where training runs (--device): auto, cpu, cuda or mps.")
    devices: str | int = Field("auto", description="Devices per node: auto, a count, or a list such as '0,1'.")
    strategy: str = Field("auto", description="Lightning strategy: auto, ddp, ddp_spawn, fsdp ...")
    num_nodes: int = Field(1, gt=0, description="Nodes for multi-node DDP.")
    precision: str | None = Field(None, description="32, bf16 or 16 (Lightning's 32-true, bf16-mixed, 16-mixed too) (null: auto).")
    channels_last: bool | None = Field(None, description="channels_last memory format (null: on with bf16).")
    max_time: str | None = Field(None, description="Time limit per fold, DD:HH:MM:SS (null: none).")
    workers: int = Field(2, ge=0, description="Data loader worker processes (--loader-workers).")
    limit_batches: int | float | None = Field(None, description="Cap train/val batches per epoch (int) or a fraction (float), for quick checks.")
    run_name: str | None = Field(None, description="Run folder name under <out>/runs (null: <model>-<backbone>-<hash of the parameters>).")
    extra: dict = Field(default_factory=dict, description="Free-form values recorded with the run (params.json).")
    out: Path | None = Field(None, description="Output folder for checkpoints*/, runs/, mlruns.db (null: paths.models).")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (null: sqlite:///<out>/mlruns.db).")
    experiment: str = Field("mfe", description="MLflow experiment name.")
    no_tracking: bool = Field(False, description="Do not log to MLflow.")
    advanced: TrainAdvancedConfig = Field(default_factory=TrainAdvancedConfig, description="The ablation knobs: the recipe's settings, the optimiser, the Transformer's sizes (`mfe train --help-all`).")

    @model_validator(mode="before")
    @classmethod
    def _older_layout(cls, data: Any) -> Any:
        """A ``train:`` section written by an mfe from before ``train.advanced`` (its ``mfe init``
        wrote every key with its default, and only values that differed from those defaults
        counted): read it as that mfe did, so an existing project trains as it did."""
        if not isinstance(data, dict) or not _OLD_ONLY_KEYS & set(data):
            return data
        log.warning("mfe.yaml's train: section has the older layout (%s at its top): values equal to the older "
                    "defaults are ignored, as that mfe did; `mfe init` in a new folder writes the current layout "
                    "(ablation keys under train.advanced)", ", ".join(sorted(_OLD_ONLY_KEYS & set(data))))
        advanced = dict(data.get("advanced") or {})
        out = {}
        for key, value in data.items():
            if key in _OLD_TRAIN_DEFAULTS and value == _OLD_TRAIN_DEFAULTS[key]:
                continue  # written out by the older mfe init: not a choice
            if key in TrainAdvancedConfig.model_fields and key not in cls.model_fields:
                advanced[key] = value
            else:
                out[key] = value
        return {**out, **({"advanced": advanced} if advanced else {})}

    @field_validator("accelerator")
    @classmethod
    def _device(cls, v: str) -> str:
        if str(v).lower() not in LIGHTNING_ACCELERATOR:
            raise ValueError(f"expected auto, cpu, cuda or mps, got {v!r}")
        return LIGHTNING_ACCELERATOR[str(v).lower()]

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, v):
        return v if v is None else LIGHTNING_PRECISION.get(str(v), str(v))


class PredictConfig(Section):
    """mfe predict: each key is a flag of `mfe predict`."""

    model: Path | None = Field(None, description="Run folder (fold ensemble) or one .ckpt; a bare run name is looked up in models/runs (required, here or as --model).")
    keypoints: Path | None = Field(None, description="Keypoints of the videos (a file or a folder matched by name); with images, their keypoint file.")
    images: list[Path] | None = Field(None, description="Score still images instead of videos: a folder or image files.")
    live: str | None = Field(None, description="Score a live source instead: a camera index or an RTSP/HTTP URL.")
    dlc_config: Path | None = Field(None, description="--live: a DeepLabCut 3 project whose model computes the keypoints.")
    dlc_shuffle: int = Field(1, description="--live with dlc_config: the DeepLabCut shuffle to load.")
    ratings: Path | None = Field(None, description="--images: a ratings table (mfe ratings import) to compare the AU scores with.")
    individual: str | None = Field(None, description="Multi-animal keypoint files: the animal to score (null: keypoints.individual).")
    preview: bool = Field(False, description="Also write a contact sheet of the scored crops per video.")
    modalities: str | None = Field(None, description="Fused runs: score with these of the run's modalities (null: all of them).")
    body: Path | None = Field(None, description="Fused runs: body keypoints of the same videos.")
    physiology: Path | None = Field(None, description="Fused runs: physiology CSV (animal, recording, one column per measure).")
    out: Path | None = Field(None, description="Output folder (null: <paths.reports>/predict, else ./predictions).")
    window_step: int | None = Field(None, gt=0, description="Kept frames between window starts (null: the window span).")
    workers: int = Field(0, ge=0, description="Decode/align/crop processes (--decode-workers; 0: decode in this process).")
    batch_size: int | None = Field(None, gt=0, description="Windows (images) per forward pass (null: 16 on a CPU, what fills a GPU).")
    precision: Literal["32", "bf16", "16"] | None = Field(None, description="32 or bf16 autocast (null: bf16 on a GPU, 32 on a CPU).")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="Where the model runs (auto: CUDA when available).")
    backend: Literal["auto", "torch", "onnx"] = Field("auto", description="What runs the model (auto: onnx on a CPU, torch on a GPU).")
    quantize: Literal["none", "int8"] = Field("none", description="onnx only: int8 weights.")
    threads: int | None = Field(None, gt=0, description="CPU threads for the model (null: every core this process may use).")


class EvaluateConfig(Section):
    """mfe evaluate: each key is a flag of `mfe evaluate`."""

    out: Path | None = Field(None, description="Output folder (null: RUN/evaluation).")
    metadata: Path | None = Field(None, description="Metadata CSV joined by video (or animal) adding cohort, treatment, sex, recording.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples of animals for the CIs (0: none).")
    seed: int = Field(0, description="Seed of the bootstrap resampling (--bootstrap-seed).")
    threshold: float = Field(0.5, ge=0, le=1, description="p1 at or above which a window/video/animal is called positive.")
    cohort_column: str = Field("cohort", description="Metadata column naming the recording cohort (batch-effect check).")
    no_report: bool = Field(False, description="Write metrics files only, no HTML report.")
    task: Path | None = Field(None, description="Score another cohort's task folder zero-shot with the run's fold ensemble.")
    recalibrate: list[Literal["controls", "adabn", "baseline"]] | None = Field(None, description="With task: recalibration methods shown next to the zero-shot numbers.")
    recalibrate_by: str | None = Field(None, description="With recalibrate adabn: metadata column whose groups get BatchNorm statistics of their own.")
    baseline_recording: int = Field(1, description="Each animal's baseline recording, for recalibrate baseline.")


class FinetuneConfig(Section):
    """mfe finetune: each key is a flag of `mfe finetune`."""

    source: Path | None = Field(None, description="Source run folder or .ckpt (--from; required, here or as a flag).")
    task: Path | None = Field(None, description="The new cohort's task folder, or its name under paths.tasks (required, here or as --task).")
    freeze_backbone: bool = Field(False, description="Keep the per-frame CNN fixed; train the rest.")
    lr_scale: float | None = Field(None, gt=0, description="Learning rate = source learning rate x this (null: 1.0 with freeze_backbone, else 0.1).")
    learning_rate: float | None = Field(None, gt=0, description="Base learning rate before lr_scale (null: the source's).")
    epochs: int | None = Field(None, gt=0, description="Epochs per fold (null: the source's).")
    source_fold: int | None = Field(None, description="Fold of the source run to start from (null: the first).")
    folds: list[int] | None = Field(None, description="New-task folds to run (null: all).")
    train_batch_size: int | None = Field(None, gt=0, description="Clips per training batch (null: the source's model default).")
    workers: int | None = Field(None, ge=0, description="Data loader worker processes (--loader-workers; null: 2).")
    precision: str | None = Field(None, description="32, bf16 or 16 (null: auto).")
    limit_batches: float | None = Field(None, description="Cap train/val batches per epoch (>= 1: a count), for quick checks.")
    run_name: str | None = Field(None, description="Run folder name (null: finetune-<source>-<frozen|full>-on-<task>).")
    out: Path | None = Field(None, description="Models folder of the new run (null: <paths.models>/finetune).")
    no_tracking: bool = Field(False, description="Do not log to MLflow.")
    allow_overlap: bool = Field(False, description="Fine-tune folds whose test animals the source model trained or validated on.")

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, v):
        return v if v is None else LIGHTNING_PRECISION.get(str(v), str(v))


class TaskMakeConfig(Section):
    """mfe task make: each key is a flag of `mfe task make`."""

    preset: str | None = Field(None, description="Built-in task: task1 or task1_table (null: task1 unless spec is given).")
    spec: Path | None = Field(None, description="Task YAML (keys of TaskSpec: rules, exclude_animals, n_folds, ...).")
    dataset_version: str | None = Field(None, description="Task folder version task-<V> (null: the spec's version or project.dataset_version).")
    from_table: Path | None = Field(None, description="Make the task from a flat per-frame CSV instead of the frame store.")
    dedupe: bool = Field(False, description="Keep one row per frame/video where metadata rows are duplicated instead of failing.")
    out: Path | None = Field(None, description="Task folder to write (null: <paths.tasks>/task-<version>).")
    encoding: str | None = Field(None, description="Text encoding of the metadata CSVs (null: metadata.encoding).")
    au_ratings: str | None = Field(None, description="Imported ratings table for action-unit targets (overrides the spec's au.ratings).")
    au_tolerance: float | None = Field(None, ge=0, description="Seconds from a window's centre beyond which a rated frame gives no AU target (null: the spec's, else 0.5).")
    au_match: Literal["nearest", "interpolate"] | None = Field(None, description="nearest or interpolate rated frames (null: the spec's, else nearest).")


def _sub_sections(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    return {k: f.annotation for k, f in model.model_fields.items()
            if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)}


def flat_fields(model: type[BaseModel], prefix: str = "") -> dict[str, tuple[str, Any]]:
    """Every key of ``model``, sub-sections flattened (``train.advanced.d_model`` is ``d_model``):
    key -> (its path in the section, e.g. ``advanced.d_model``, its pydantic field)."""
    subs = _sub_sections(model)
    out: dict[str, tuple[str, Any]] = {}
    for name, f in model.model_fields.items():
        if name in subs:
            out.update(flat_fields(subs[name], f"{prefix}{name}."))
        else:
            out[name] = (prefix + name, f)
    return out


def nest(model: type[BaseModel], flat: dict) -> dict:
    """A flat mapping of ``model``'s keys (as :func:`flat_fields` names them, e.g. a run's
    ``params.json``) laid out as the section is (``d_model`` under ``advanced``)."""
    paths = {k: path for k, (path, _) in flat_fields(model).items()}
    out: dict = {}
    for key, value in flat.items():
        *parents, last = paths.get(key, key).split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value
    return out


def written(section: BaseModel) -> dict:
    """The keys written for ``section`` (set, and not null), with their values; sub-sections
    flattened (:func:`flat_fields`)."""
    subs = _sub_sections(type(section))
    out = {}
    for k in section.model_fields_set:
        value = getattr(section, k)
        if k in subs:
            out.update(written(value))
        elif value is not None:
            out[k] = value
    return out


@dataclass
class Resolved:
    """A command's values (flat keys) and where each came from (one of :data:`SOURCES`)."""

    values: dict
    sources: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)  # key -> its path in the section (``advanced.d_model``)


def resolve(model: type[BaseModel], layers: list[tuple[str, dict]]) -> Resolved:
    """The defaults of ``model``, then each ``(source, values)`` layer over the ones before."""
    fields = flat_fields(model)
    values = {name: f.get_default(call_default_factory=True) for name, (_, f) in fields.items()}
    sources = dict.fromkeys(values, "default")
    for source, layer in layers:
        for key, value in layer.items():
            values[key], sources[key] = value, source
    return Resolved(values, sources, {name: path for name, (path, _) in fields.items()})


def _is_sections(data: dict, sections: set[str]) -> bool:
    return bool(data) and all(k in sections and (v is None or isinstance(v, dict)) for k, v in data.items())


def read_config_file(path: str | Path, section: str, model: type[BaseModel], sections: set[str]) -> dict:
    """``--config FILE``: the values ``FILE`` writes for ``section``.

    ``FILE`` (YAML or JSON) is laid out as ``mfe.yaml`` (only its ``section:`` is read), or is one
    flat mapping of the section's keys, as a run's ``params.json`` (so ``mfe train --config
    RUN/params.json`` replays the run). A relative ``task_dir`` is relative to the file's folder
    (``params.json`` records it relative to the run folder); other paths as on the command line.

    Raises:
        ConfigError: a missing or unreadable file, or an unknown key or invalid value, named.
    """
    from pydantic import ValidationError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such configuration file (--config)")
    try:
        data = json.loads(p.read_text()) if p.suffix.lower() == ".json" else yaml.safe_load(p.read_text())
    except (ValueError, yaml.YAMLError) as err:
        raise ConfigError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {err}") from err
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping, got {type(data).__name__}")
    where = str(p)
    if _is_sections(data, sections):
        data, where = data.get(section) or {}, f"{p} ({section}:)"
    else:  # one flat mapping (a run's params.json): sub-section keys too
        data = nest(model, data)
    try:
        values = written(model(**data))
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, where)) from err
    if values.get("task_dir") is not None and not Path(values["task_dir"]).is_absolute():
        values["task_dir"] = (p.parent / values["task_dir"]).resolve()
    return values
