"""``mfe finetune --from RUN --task NEW_TASK``: adapt a trained model to a new cohort.

k-fold cross-validation by animal on the new task (its ``folds.json``), exactly as
``mfe train`` does it (:func:`training.cv.train_cv`: same loaders, selection on validation
animals, test once, same outputs), except that every fold STARTS from the source model:

- the source model is the source run's first fold's selected checkpoint (``fold0``'s
  ``best_checkpoint``, i.e. the first member of the run's fold ensemble), or the ``.ckpt``
  given; ``source_fold`` picks another fold;
- the architecture, clip length (``num_frames``/``frame_stride``), image size and loss
  settings come from that checkpoint, so the new folds score the same inputs;
- two modes: ``freeze_backbone`` (the per-frame CNN ``encoder`` keeps its weights AND its
  BatchNorm statistics: it stays in eval mode; the temporal model and head train at the
  source learning rate, ``lr_scale`` 1 by default), or everything trains at
  ``lr_scale`` x the source learning rate (0.1 by default).

``train_cv`` has no hook for initial weights, so :func:`finetune` swaps
``training.cv.ClipClassifier`` for :class:`FinetuneClassifier` while it runs (one process;
``ddp_spawn`` workers would not see the swap: use ``ddp_fork`` or one device). A small
``init_state_dict=`` / ``module_cls=`` argument on ``train_cv`` would make this unnecessary.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

from mouse_facial_expressions.io.atomic import write_json
from mouse_facial_expressions.training import cv
from mouse_facial_expressions.models.registry import load_trained_model
from mouse_facial_expressions.training.module import ClipClassifier
from mouse_facial_expressions.training.params import TrainParams, make_params
from mouse_facial_expressions.training.runs import record_path

log = logging.getLogger(__name__)

#: Name part of the parameters that belong to the per-frame backbone (every model's ``encoder``).
BACKBONE_KEY = "encoder"


def is_backbone(name: str) -> bool:
    """True for a parameter/module name inside a backbone (``encoder``, ``net1.encoder``, ...)."""
    return BACKBONE_KEY in name.split(".")


class FinetuneClassifier(ClipClassifier):
    """:class:`ClipClassifier` that starts from given weights and can freeze the backbone.

    The class attributes :attr:`init_state` and :attr:`freeze_backbone` are set by
    :func:`finetune` (``train_cv`` builds the module with fixed arguments).
    """

    init_state: dict | None = None
    freeze_backbone: bool = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.init_state is not None:
            self.model.load_state_dict(self.init_state)
        if self.freeze_backbone:
            for name, p in self.model.named_parameters():
                if is_backbone(name):
                    p.requires_grad_(False)

    def _backbone_eval(self) -> None:
        if self.freeze_backbone:  # frozen BatchNorm statistics too
            for name, m in self.model.named_modules():
                if is_backbone(name):
                    m.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self._backbone_eval()
        return self

    def on_train_batch_start(self, batch, batch_idx):
        # Lightning restores submodule modes itself (not through train()): re-apply per batch.
        self._backbone_eval()

    def configure_optimizers(self):
        conf = super().configure_optimizers()
        opt = conf["optimizer"]
        for group in opt.param_groups:  # frozen parameters are not optimised (nor decayed)
            group["params"] = [p for p in group["params"] if p.requires_grad]
        return conf


@contextlib.contextmanager
def start_from(state: dict, freeze_backbone: bool = False):
    """While active, every ``train_cv`` fold builds a :class:`FinetuneClassifier` from ``state``."""
    cls = type("FinetuneClassifier", (FinetuneClassifier,), {"init_state": state, "freeze_backbone": freeze_backbone})
    cls.__module__ = FinetuneClassifier.__module__
    cls.__qualname__ = FinetuneClassifier.__qualname__
    saved = cv.ClipClassifier
    cv.ClipClassifier = cls
    try:
        yield cls
    finally:
        cv.ClipClassifier = saved


def source_checkpoint(from_run: str | Path, source_fold: int | None = None) -> Path:
    """The checkpoint fine-tuning starts from: a ``.ckpt`` as given, else a run fold's selected one."""
    from mouse_facial_expressions.training.runs import fold_checkpoints

    p = Path(from_run)
    if p.is_file():
        return p
    pairs = fold_checkpoints(p)
    if source_fold is None:
        return pairs[0][1]
    found = dict(pairs)
    if source_fold not in found:
        raise ValueError(f"{p}: no fold {source_fold} (folds {sorted(found)})")
    return found[source_fold]


class OverlapError(ValueError):
    """Test animals of the new task were training or validation animals of the source model."""


def source_overlap(hp: dict, fold_specs: list[dict]) -> dict[int, list[str]]:
    """Per new-task fold, its test animals that the source model trained or validated on
    (the checkpoint records them); folds without such animals are left out."""
    data = hp.get("data") or {}
    seen = set(map(str, list(data.get("train_animals") or []) + list(data.get("val_animals") or [])))
    out = {}
    for spec in fold_specs:
        both = sorted(seen & set(map(str, spec.get("test", []))))
        if both:
            out[int(spec["fold"])] = both
    return out


def finetune_params(hp: dict, *, freeze_backbone: bool, lr_scale: float | None, **overrides) -> TrainParams:
    """:class:`TrainParams` that rebuild the source architecture and data settings from its hparams."""
    from mouse_facial_expressions.models.parts import build_net, params_of_parts

    net = build_net(hp["model_name"], dict(hp["model_cfg"], pretrained="none"))[0]  # a pre-parts config read as parts
    cfg, data = dict(net.config), dict(hp.get("data") or {})
    values = {k: cfg[k] for k in ("backbone", "in_channels", "d_model", "num_layers", "num_heads", "ff_dim", "dropout",
                                  "pos_init_std", "head_activation", "head_dropout") if k in cfg}
    if "head_activation" not in cfg:  # saved before the recipe settings: the first recipe's architecture
        values.setdefault("recipe", "mfe1")
    values.update({k: data[k] for k in ("num_frames", "frame_stride", "image_size") if data.get(k) is not None})
    values.update({k: hp[k] for k in ("optimizer", "momentum", "weight_decay", "label_smoothing", "use_soft_labels", "epochs")
                   if k in hp})
    scale = lr_scale if lr_scale is not None else (1.0 if freeze_backbone else 0.1)
    lr = overrides.pop("learning_rate", None) or hp.get("learning_rate", 1e-4)
    values["learning_rate"] = float(lr) * scale
    values["pretrained"] = "none"  # every weight comes from the source checkpoint
    values.update({k: v for k, v in params_of_parts(cfg["parts"]).items() if v is not None})  # the same parts
    values.update({k: v for k, v in overrides.items() if v is not None})
    p = make_params(hp["model_name"], **values)
    want = {k: v for k, v in cfg.items() if k not in ("pretrained", "parts")}
    got = {k: v for k, v in p.model_config().items() if k != "pretrained" and k in want}
    want["parts"], got["parts"] = sorted(cfg["parts"]), sorted(p.model_config()["parts"])
    diff = {k: (want.get(k), got.get(k)) for k in set(want) | set(got) if want.get(k) != got.get(k)}
    if diff:
        raise ValueError(f"cannot rebuild the source architecture from training parameters: {diff}")
    return p


def finetune(
    from_run: str | Path,
    task_dir: str | Path,
    out: str | Path,
    *,
    freeze_backbone: bool = False,
    lr_scale: float | None = None,
    epochs: int | None = None,
    source_fold: int | None = None,
    run_name: str | None = None,
    folds: list[int] | None = None,
    track: bool = True,
    progress: bool | None = None,
    allow_overlap: bool = False,
    **train_kwargs,
) -> dict:
    """Fine-tune a trained model on a new task with k-fold CV by animal.

    Args:
        from_run: the source run folder (its first fold's selected checkpoint) or a ``.ckpt``.
        task_dir: the new cohort's task folder.
        out: models folder for the new run (``<out>/runs/<run_name>/...``; use another folder
            than the source's: checkpoint file names do not include the run name).
        freeze_backbone: keep the per-frame CNN fixed; train the rest.
        lr_scale: learning rate = source learning rate x this (default 1.0 frozen, 0.1 not).
        epochs: epochs per fold (default: the source's).
        source_fold: which fold of the source run to start from (default: the first).
        run_name: default ``finetune-<source run>-<frozen|full>-on-<task>``.
        folds: new-task folds to run (default all).
        allow_overlap: fine-tune folds whose test animals the source model trained or
            validated on, with a warning (in ``finetune.json`` and the evaluation report);
            by default that is an :class:`OverlapError` naming them, because every number
            such a fold prints would be inflated.
        **train_kwargs: other :class:`TrainParams` fields (``train_batch_size``, ``workers``,
            ``limit_batches``, ``precision``, ``learning_rate`` (before scaling), ...) and
            ``train_cv`` keywords (``datasets_fn``, ``fold_specs``, ``tracking_uri``).

    Returns:
        ``train_cv``'s summary, plus ``source_checkpoint``, ``freeze_backbone``, ``learning_rate``.
    """
    cv_keys = {"datasets_fn", "fold_specs", "norm", "tracking_uri", "experiment"}
    cv_kwargs = {k: train_kwargs.pop(k) for k in list(train_kwargs) if k in cv_keys}
    ckpt = source_checkpoint(from_run, source_fold)
    model, hp = load_trained_model(ckpt)
    specs = cv_kwargs.get("fold_specs")
    if specs is None:
        from mouse_facial_expressions.data.tasks import load_task

        specs = load_task(task_dir).folds
    specs = [s for s in specs if folds is None or int(s["fold"]) in set(folds)]
    overlap = source_overlap(hp, specs)
    warnings = [f"fold {k}: test animals {', '.join(a)} were training or validation animals of the source model "
                f"{ckpt.name}; this fold's scores are inflated" for k, a in overlap.items()]
    if overlap and not allow_overlap:
        raise OverlapError(f"{ckpt}: {len(overlap)} fold(s) of {task_dir} test animals the source model saw:\n  "
                           + "\n  ".join(warnings) + "\n(pass --allow-overlap to fine-tune anyway, with this warning in the report)")
    for w in warnings:
        log.warning(w)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    src_name = Path(from_run).name if Path(from_run).is_dir() else ckpt.stem
    name = run_name or f"finetune-{src_name}-{'frozen' if freeze_backbone else 'full'}-on-{Path(task_dir).name}"
    params = finetune_params(hp, freeze_backbone=freeze_backbone, lr_scale=lr_scale, epochs=epochs, run_name=name,
                             **train_kwargs)
    with start_from(state, freeze_backbone):
        summary = cv.train_cv(task_dir, params, out, folds=folds, track=track, progress=progress, **cv_kwargs)
    info = {"source_checkpoint": str(Path(ckpt).resolve()), "freeze_backbone": freeze_backbone, "learning_rate": params.learning_rate,
            "overlap": {str(k): a for k, a in overlap.items()}, "warnings": warnings}
    if summary.get("run_dir"):  # the source relative to the run folder when it lies in the same project
        run_dir = Path(summary["run_dir"])
        write_json(run_dir / "finetune.json", {**info, "source_checkpoint": record_path(ckpt, run_dir, within=Path(out).resolve().parent)})
    return {**summary, **info}


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total
