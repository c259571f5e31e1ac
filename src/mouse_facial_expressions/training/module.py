"""LightningModule that trains any registered model, and checkpoint loading.

The module's hyperparameters (saved in every checkpoint) hold the model name and config,
the data settings (num_frames, frame_stride, image_size, normalisation, task path) and the
optimisation settings, so :func:`load_model_from_checkpoint` rebuilds the model alone.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

from mouse_facial_expressions.compat import import_torchvision

import_torchvision()  # before lightning (it imports torchvision through torchmetrics)

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402

from mouse_facial_expressions._logs import requiet  # noqa: E402

requiet()  # lightning reset its loggers' levels on import

from mouse_facial_expressions.data.augment import normalize_clips  # noqa: E402
from mouse_facial_expressions.data.datasets import batch_tensors  # noqa: E402
from mouse_facial_expressions.models.parts import LossSettings, build_net  # noqa: E402
from mouse_facial_expressions.training.selection import select_score  # noqa: E402


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True on CPUs with native bf16 (AVX512-BF16 or AMX), where bf16 autocast is fast."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def auto_precision(accelerator: str = "auto") -> str:
    """Lightning precision: bf16/16 mixed on CUDA, bf16 mixed on bf16-capable CPUs, else fp32.

    On this project's reference CPU (AMD EPYC, AVX512-BF16) bf16 autocast + channels_last
    trained ``advanced`` 2-3x faster than fp32 (bench/bench_train_throughput.py).
    """
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_supports_bf16() else "32-true"


class ClipClassifier(pl.LightningModule):
    """Trains a model of parts (:class:`~mouse_facial_expressions.models.parts.PartsNet`); the parts own the loss.

    Args:
        model_name: the registered face model (baseline | advanced | resup).
        model_cfg: its keyword arguments and ``parts`` (name -> options; without it: the face and
            the class head, or what a pre-parts config's wrapper settings say). The checkpoint
            records the built model's ``config``.
        optimizer: 'adamw' or 'sgd' (with ``momentum``).
        learning_rate, weight_decay, momentum: optimiser settings.
        epochs: length of the cosine schedule (down to 1% of ``learning_rate``).
        label_smoothing, use_soft_labels: passed to the model's loss.
        class_weights: per-class CE weights (None: equal).
        data: data settings stored with the checkpoint (num_frames, frame_stride,
            image_size, norm_mean, norm_std, task_dir, fold, ...).
        channels_last: run the backbone in channels_last memory format.
        select: checkpoint selection rule, one of :data:`SELECT_RULES` (logged as ``val_select``).
            ``val_loss`` is the model's whole loss (every part's, e.g. the action units' too).
        warmup_epochs: linear learning-rate warm-up over this many epochs (stepped per batch)
            before the cosine decay; 0: none (the original).
        weak: the weak-supervision strategy the run was trained with (recorded only; its E-step is a
            callback, :mod:`~mouse_facial_expressions.training.weak`).

    ``history`` holds, per epoch, ``train_acc``, ``train_loss``, ``val_acc``, ``val_loss``
    (exact totals over the epoch's windows); checkpoints carry it, so a resumed fold keeps it.
    """

    def __init__(
        self,
        model_name: str,
        model_cfg: dict,
        optimizer: str = "adamw",
        learning_rate: float = 1e-4,
        weight_decay: float = 1e-4,
        momentum: float = 0.9,
        epochs: int = 20,
        label_smoothing: float = 0.1,
        use_soft_labels: bool = True,
        class_weights: list[float] | None = None,
        data: dict | None = None,
        channels_last: bool = False,
        select: str = "val_acc",
        warmup_epochs: float = 0.0,
        weak: str | None = None,
    ):
        super().__init__()
        select_score(select, 0, 0.0, 0.0)  # unknown rule: fail before training
        self.save_hyperparameters()
        self.model = build_net(model_name, model_cfg)[0]
        self.hparams.model_cfg = self.model.config  # what the checkpoint rebuilds: the parts as built
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
            for m in self.model.modules():
                if hasattr(m, "channels_last"):
                    m.channels_last = True
        cw = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", cw, persistent=False)
        self.history: dict[int, dict[str, float]] = {}  # epoch -> train/val acc and loss, kept in checkpoints
        self._stats: dict[str, torch.Tensor | None] = {"train": None, "val": None}

    def forward(self, clip: torch.Tensor, **fields) -> torch.Tensor:
        """Class logits ``(B, 2)`` of clips (uint8 or normalised) and the parts' other fields."""
        fields = {k: normalize_clips(v, self.in_channels) if k == "ref_clip" else v for k, v in fields.items()}
        return self.model(normalize_clips(clip, self.in_channels), **fields)

    @property
    def in_channels(self) -> int:
        return int((self.hparams.data or {}).get("in_channels", 3))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """uint8 ``(B, T, 1, H, W)`` clips (``clip_dtype="uint8"`` loaders) are normalised
        here, on the device: workers then ship 1 byte per pixel instead of 12. Numpy fields
        (``collate_clips``) become tensors on the device."""
        if isinstance(batch, dict) and "clip" in batch:
            batch = batch_tensors(batch, self.device)  # collate_clips sends labels as numpy
            batch["clip"] = normalize_clips(batch["clip"], self.in_channels)
            if "ref_clip" in batch:  # baseline-relative training: the same animal's baseline window
                batch["ref_clip"] = normalize_clips(batch["ref_clip"], self.in_channels)
        return batch

    @property
    def loss_settings(self) -> LossSettings:
        hp = self.hparams
        return LossSettings(use_soft_labels=hp.use_soft_labels, label_smoothing=hp.label_smoothing,
                            class_weights=self.class_weights)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        loss, logits = self.model.loss(batch, self.loss_settings)
        acc = (logits.argmax(-1) == batch["label"]).float().mean()
        bs = batch["clip"].shape[0]
        # exact epoch totals (correct, windows, loss sum) for the history and val_select
        step = torch.stack([acc.detach().float() * bs, torch.tensor(float(bs), device=acc.device), loss.detach().float() * bs])
        self._stats[stage] = step if self._stats[stage] is None else self._stats[stage] + step
        kw = dict(on_step=False, on_epoch=True, batch_size=bs, sync_dist=True)
        self.log(f"{stage}_loss", loss.detach().float(), prog_bar=stage == "val", **kw)
        self.log(f"{stage}_acc", acc, prog_bar=True, **kw)
        return loss

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True, batch_size=1, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    @property
    def val_history(self) -> dict[int, list[float]]:
        """epoch -> [val_acc, val_loss] (the epochs validated so far)."""
        return {e: [h["val_acc"], h["val_loss"]] for e, h in self.history.items() if "val_acc" in h}

    def _epoch_totals(self, stage: str) -> tuple[float, float] | None:
        stats, self._stats[stage] = self._stats[stage], None
        if stats is None:
            return None
        stats = self.all_gather(stats)  # (world, 3) under DDP, (3,) otherwise
        stats = stats.sum(0) if stats.dim() == 2 else stats
        return float(stats[0] / stats[1]), float(stats[2] / stats[1])

    def on_train_epoch_start(self) -> None:
        self._stats["train"] = None

    def on_validation_epoch_start(self) -> None:
        self._stats["val"] = None

    def on_validation_epoch_end(self) -> None:
        totals = self._epoch_totals("val")
        if totals is None:
            return
        epoch = int(self.current_epoch)
        self.history.setdefault(epoch, {}).update(val_acc=totals[0], val_loss=totals[1])
        self.log("val_select", select_score(self.hparams.select, epoch, *totals), on_epoch=True, batch_size=1)

    def on_train_epoch_end(self) -> None:
        self.record_train_epoch()

    def record_train_epoch(self) -> None:
        """Move this epoch's training totals into ``history`` (idempotent; every DDP rank calls it)."""
        totals = self._epoch_totals("train")
        if totals is not None:
            self.history.setdefault(int(self.current_epoch), {}).update(train_acc=totals[0], train_loss=totals[1])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mfe_history"] = {str(k): v for k, v in self.history.items()}
        checkpoint["mfe_val_history"] = {str(k): v for k, v in self.val_history.items()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        hist = checkpoint.get("mfe_history")
        if hist is None:  # checkpoints of the first recipe carry only [val_acc, val_loss]
            hist = {k: {"val_acc": v[0], "val_loss": v[1]} for k, v in (checkpoint.get("mfe_val_history") or {}).items()}
        self.history = {int(k): dict(v) for k, v in hist.items()}

    def configure_optimizers(self):
        hp = self.hparams
        params = self.model.param_groups(hp.learning_rate)  # parts may learn faster (e.g. fusion's small networks)
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=hp.learning_rate, momentum=hp.momentum, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {hp.optimizer!r} (adamw | sgd)")
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, hp.epochs), eta_min=hp.learning_rate * 0.01)
        if not hp.warmup_epochs:
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        # Warm-up per batch, then the same cosine per epoch: one LambdaLR over batches.
        steps = max(1, int(self.trainer.estimated_stepping_batches / max(1, hp.epochs)))  # batches per epoch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(warmup_cosine, steps_per_epoch=steps,
                                                                        warmup_epochs=hp.warmup_epochs, epochs=hp.epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def warmup_cosine(step: int, steps_per_epoch: int, warmup_epochs: float, epochs: int) -> float:
    """Learning-rate factor at optimiser ``step``: linear warm-up from ~0 over ``warmup_epochs``,
    then the cosine of :func:`cosine_lr` by whole epoch (down to 1%)."""
    warm = warmup_epochs * steps_per_epoch
    if step < warm:
        return (step + 1) / warm
    return cosine_lr(step // steps_per_epoch, epochs, 1.0)


def load_model_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the trained model from an ``mfe train`` checkpoint, in eval mode
    (:func:`models.registry.load_trained_model`; errors: :func:`io.checkpoint.read_checkpoint`).

    Returns:
        (model, hparams): ``hparams`` has ``model_name``, ``model_cfg`` and ``data``
        (num_frames, frame_stride, image_size, norm_mean, norm_std, task_dir, fold, ...).
    """
    from mouse_facial_expressions.models.registry import load_trained_model

    return load_trained_model(path, map_location)


def model_from_checkpoint(ckpt: dict, source: str | Path = "checkpoint") -> tuple[torch.nn.Module, dict]:
    """:func:`load_model_from_checkpoint` for a checkpoint dict already loaded (``source`` names it in errors)."""
    from mouse_facial_expressions.io.checkpoint import checkpoint_parts
    from mouse_facial_expressions.models.registry import trained_model

    hp, state = checkpoint_parts(ckpt, source)
    return trained_model(hp, state), hp


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def cosine_lr(epoch: int, epochs: int, lr: float) -> float:
    """The learning rate the schedule gives at ``epoch`` (for checks and docs)."""
    eta_min = lr * 0.01
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * epoch / max(1, epochs))) / 2
