"""What a part is: the contract every capability of a model implements, and the part registry.

A model (:class:`~mouse_facial_expressions.models.parts.net.PartsNet`) is a list of parts run
in stage order over one :class:`State` per batch. Each part reads what earlier parts wrote and
adds its own: the face encoder writes the window embedding ``z``, a reference part subtracts a
baseline from it, a pooling part pools a bag of windows, the class head turns ``z`` into logits,
the action-unit head adds its scores, fusion adds the other modalities' evidence.

A part declares, on its class:

- ``fields``: the dataset fields it reads in training (beyond ``clip``, ``soft``, ``label``);
- ``weight``: the weight of its loss (:meth:`Part.loss`) in the model's loss;
- ``columns``: the output columns it adds to every prediction table, with their descriptions
  (``COLUMNS.md``); :meth:`Part.outputs` gives them per window;
- ``metrics``: the evaluation sections it adds (``evaluation.sections``);
- ``onnx_inputs`` / ``onnx_outputs``: what it adds to an exported graph, or ``no_onnx``: why it
  cannot be exported;

and it may implement the hooks of the stages around the model (all no-ops by default): the
dataset builder (:meth:`Part.select_frames`, :meth:`Part.dataset_fields`, :meth:`Part.score_fields`), training
(:meth:`Part.configure`, :meth:`Part.prepare`, :meth:`Part.train_loader`,
:meth:`Part.after_selection`) and scoring (:meth:`Part.score_context`,
:meth:`Part.extra_predictions`). Those stages iterate over the parts and name no feature.

Adding a head or an input is one file with a :func:`register_part` class, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn as nn

#: Stage order of the forward pass: an earlier stage writes what a later one reads.
STAGES = ("input", "reference", "pooling", "head", "fusion")

_PARTS: dict[str, type[Part]] = {}


def register_part(cls: type[Part]) -> type[Part]:
    """Class decorator: register a part under ``cls.name`` (one name, one class)."""
    if cls.stage not in STAGES:
        raise ValueError(f"part {cls.name!r}: stage {cls.stage!r} is not one of {', '.join(STAGES)}")
    if _PARTS.get(cls.name, cls) is not cls:
        raise ValueError(f"part {cls.name!r} is registered twice")
    _PARTS[cls.name] = cls
    return cls


def part_classes() -> dict[str, type[Part]]:
    """Every registered part class by name, in the order the parts run: by stage, then ``order``, then name."""
    from mouse_facial_expressions.models.parts import builtin  # noqa: F401  (registers the built-in parts)

    return dict(sorted(_PARTS.items(), key=lambda kv: (STAGES.index(kv[1].stage), kv[1].order, kv[0])))


@dataclass
class LossSettings:
    """How a class head turns logits and targets into a loss (``mfe train``'s options)."""

    use_soft_labels: bool = True
    label_smoothing: float = 0.1
    class_weights: torch.Tensor | None = None


@dataclass
class State:
    """What the parts of a model compute for one batch.

    Attributes:
        batch: the batch's fields (``clip`` normalised, and whatever the parts' ``fields`` are).
        z: ``(B, D)`` the embedding the heads read (after reference and pooling).
        face_z: ``(B, D)`` the window's own embedding (before any reference; a bag's first window).
        zs: ``(B, K, D)`` the windows' embeddings of a bag of ``K`` (None: single windows).
        logits: ``(B, 2)`` class logits; ``p1`` is their softmax's second column.
        evidence: class-loss terms, name -> ``(logits, rows)`` (``rows``: a bool mask, None: all).
        own_loss: a face model's own loss on its own logits (models without an embedding).
        outputs: per-window outputs beyond ``p1``, name -> tensor ``(B, ...)`` (e.g. ``au``).
        settings: the loss settings when training (None: scoring).
    """

    batch: dict
    settings: LossSettings | None = None
    z: torch.Tensor | None = None
    face_z: torch.Tensor | None = None
    zs: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    evidence: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = field(default_factory=dict)
    own_loss: torch.Tensor | None = None
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)


class Part(nn.Module):
    """One capability of a model (see the module docstring for what a part declares).

    ``options`` are the part's settings as stored in a checkpoint's ``model_cfg["parts"]``;
    ``net`` is the model being built (a part may read the face model's settings from it).
    """

    name: ClassVar[str] = ""
    stage: ClassVar[str] = "head"
    #: Order within the stage (lower first): a part that reads what another of its stage wrote comes later.
    order: ClassVar[int] = 0
    fields: ClassVar[tuple[str, ...]] = ()
    weight: ClassVar[float] = 1.0
    columns: ClassVar[dict[str, str]] = {}
    metrics: ClassVar[tuple[str, ...]] = ()
    onnx_inputs: ClassVar[tuple[str, ...]] = ()
    onnx_outputs: ClassVar[tuple[str, ...]] = ()
    no_onnx: ClassVar[str | None] = None
    #: Top-level state-dict names of the wrapper this part replaced -> its own (checkpoints from before the parts).
    legacy_keys: ClassVar[dict[str, str]] = {}

    def __init__(self, net: nn.Module, **options: Any):
        super().__init__()
        self.options = dict(options)

    # --- spec ---------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, p) -> dict | None:
        """This part's options for training parameters ``p`` (``TrainParams``), or None: not used."""
        return None

    @classmethod
    def to_params(cls, options: dict, spec: dict) -> dict:
        """The training parameters that ask for this part with these options (the inverse of
        :meth:`from_params`: fine-tuning rebuilds a trained model's parts from them)."""
        return {}

    @classmethod
    def from_legacy(cls, model_cfg: dict) -> dict | None:
        """Pop this part's settings from a pre-parts ``model_cfg`` (in place); its options or None."""
        return None

    @classmethod
    def check(cls, options: dict, spec: dict, face: str | None) -> None:
        """Raise ValueError when this part cannot work with the others of ``spec`` (name -> options)
        on the face model ``face`` (None: no face): the one place that says why."""

    # --- forward --------------------------------------------------------------------------------
    def before(self, s: State) -> None:
        """Before any part's forward (e.g. add clips to the backbone's pass)."""

    def forward(self, s: State) -> None:  # noqa: D102  (each part documents its own)
        raise NotImplementedError

    def after(self, s: State) -> None:
        """After every part's forward (undo what :meth:`before` did to the batch)."""

    def loss(self, s: State, settings: LossSettings) -> torch.Tensor | None:
        """This part's loss on the batch (None: it has none)."""
        return None

    def param_groups(self, lr: float) -> list[dict]:
        """Optimiser groups for parameters that learn at another rate than ``lr`` (default: none)."""
        return []

    # --- dataset builder (data.datasets.fold_datasets) -------------------------------------------
    @classmethod
    def select_frames(cls, options: dict, ctx, role: str, frames):
        """The frames whose windows ``role`` (train/val/test) scores; default: all of them."""
        return frames

    @classmethod
    def dataset_fields(cls, options: dict, ctx, role: str, windows) -> dict:
        """Per-window dataset fields for ``role``'s windows: name -> ``data.fields`` field."""
        return {}

    @classmethod
    def score_fields(cls, options: dict, ctx, windows) -> dict:
        """The input fields scoring another task's windows needs (``inference.zeroshot``): name -> field."""
        return {}

    # --- training (training.fold) -------------------------------------------------------------
    @classmethod
    def checkpoint_data(cls, options: dict) -> dict:
        """Entries this part adds to the checkpoint's data settings (``hparams["data"]``)."""
        return {}

    @classmethod
    def configure(cls, options: dict, data: dict) -> dict:
        """Options completed from the fold's data (e.g. feature columns) before the model is built."""
        return options

    def prepare(self, data: dict) -> None:
        """Set what the part learns from the training data before training (e.g. feature statistics)."""

    @classmethod
    def train_loader(cls, options: dict, dataset, sampler, batch_size: int, seed: int):
        """``(dataset, sampler, batch_size)`` of the training loader (e.g. bags of windows)."""
        return dataset, sampler, batch_size

    def after_selection(self, net: nn.Module, data: dict, loaders: dict, p, fold: int) -> dict:
        """Fit what is fit on the selected checkpoint (e.g. stacking weights); the fold record's entries."""
        return {}

    # --- scoring (models.scoring) ----------------------------------------------------------
    def score_context(self, net: nn.Module, batches) -> None:
        """Prepare scoring from the context batches (e.g. each animal's baseline windows)."""

    def extra_predictions(self, net: nn.Module, score) -> dict:
        """Extra prediction tables of a test pass, file name -> DataFrame (``score(loader)``)."""
        return {}

    def outputs(self, s: State) -> dict[str, torch.Tensor]:
        """Per-window outputs beyond ``p1``: name -> ``(B, ...)`` tensor (see :meth:`to_columns`)."""
        return {}

    @staticmethod
    def to_columns(outputs: dict) -> dict:
        """Output arrays -> prediction-table columns (``columns``' names) for this part."""
        return {}
