"""Lightning callbacks of ``mfe train``: sampler epochs, BatchNorm recalibration, epoch lines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from mouse_facial_expressions.compat import import_torchvision

import_torchvision()  # before lightning

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from torch.optim.swa_utils import update_bn  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from mouse_facial_expressions.io.atomic import atomic_path, tmp_path  # noqa: E402


class SamplerEpoch(pl.Callback):
    """Advance the balanced sampler's epoch (fresh draws each epoch), also under DDP,
    where Lightning wraps it and would only set the wrapper's epoch."""

    def __init__(self, sampler):
        self.sampler = sampler

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(trainer.current_epoch)


class EpochLine(pl.Callback):
    """One line per epoch where no progress bar is drawn (logs, batch jobs, notebooks): fold,
    epoch/epochs, train and validation accuracy and loss, seconds, and the time the fold still
    needs at the mean epoch time so far."""

    def __init__(self, fold: int, epochs: int):
        self.fold, self.epochs, self.t0 = fold, epochs, time.time()
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.t0 = time.time()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pl_module.record_train_epoch()  # callbacks run before the module's own epoch-end hook
        if not trainer.is_global_zero:
            return
        e = int(trainer.current_epoch)
        h = pl_module.history.get(e, {})
        parts = [f"{k} {h[k]:.3f}" for k in ("train_acc", "train_loss", "val_acc", "val_loss") if k in h]
        self.seconds.append(time.time() - self.t0)
        left = max(self.epochs - (e + 1), 0) * sum(self.seconds) / len(self.seconds)
        eta = f", fold ETA {format_seconds(left)}" if left else ""
        tqdm.write(f"fold {self.fold} epoch {e + 1}/{self.epochs}: " + ", ".join(parts) + f" ({self.seconds[-1]:.0f} s{eta})")


class FoldTimeEstimate(pl.Callback):
    """A time estimate for the fold from a short timed warm-up: the first ``n`` training batches
    after one untimed batch (allocation, first-call overheads), times the batches of an epoch
    and the epochs. Printed once, early in the first epoch, so a long run can be stopped and
    resized before it has cost much."""

    def __init__(self, fold: int, epochs: int, n: int = 4):
        self.fold, self.epochs, self.n = fold, epochs, n
        self.t0: float | None = None
        self.done = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.done or not trainer.is_global_zero:
            return
        if batch_idx == 0:
            self.t0 = time.time()
        elif self.t0 is not None and batch_idx == self.n:
            per = (time.time() - self.t0) / self.n
            batches = trainer.num_training_batches
            if isinstance(batches, (int, float)) and batches != float("inf"):
                left = per * (batches * self.epochs - (trainer.current_epoch * batches + batch_idx + 1))
                tqdm.write(f"fold {self.fold}: about {format_seconds(per * batches)} per epoch of {int(batches)} batches, "
                           f"{format_seconds(left)} for the rest of its training (timed on {self.n} batches; "
                           "validation and testing add to it)")
            self.done = True


def format_seconds(s: float) -> str:
    """``75`` -> ``"1 min 15 s"``, ``4000`` -> ``"1 h 07 min"``."""
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class RecalibrateBatchNorm(pl.Callback):
    """Recompute the BatchNorm statistics with the epoch's final weights before validation.

    Why: BatchNorm layers normalise with batch statistics while training and with running
    averages (momentum 0.1) in evaluation. After a few dozen steps from scratch those averages
    still mix early weights' activations, so an evaluated model is shifted: it can rank the
    windows right and still score them all on one side of 0.5, and the validation accuracy of
    early epochs (and the epoch selected on it) is noise. Here the last ``num_batches`` training
    batches of the epoch are kept (half precision, on the CPU) and passed forward once more, in
    training mode without gradients, with cumulative averaging (``momentum=None``), so the
    statistics belong to the weights being evaluated ("precise BN", Wu & Johnson 2021).
    Nothing is learned: only the ``running_mean``/``running_var`` buffers change.

    Args:
        num_batches: training batches to recompute from (0: off).
    """

    def __init__(self, num_batches: int):
        self.num_batches = int(num_batches)
        self._kept: list[tuple[torch.Tensor, ...]] = []  # (clip,) or (clip, ref_clip) per batch
        self._live: list[torch.nn.Module] | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._kept = []
        self._live = None  # found again at the epoch's first batch, once the modules' modes are set

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.num_batches > 0:
            ref = batch.get("ref_clip")  # baseline-relative models see a reference window too
            clip = batch["clip"]
            if clip.dim() == 6:  # bags (--weak attention): (B, K, T, C, H, W) -> their windows
                clip = clip.flatten(0, 1)
            self._kept.append(tuple(t.detach().to("cpu", torch.float16) for t in (clip, ref) if t is not None))  # (B, T, C, H, W), normalised
            del self._kept[: -self.num_batches]
            if self._live is None:  # only layers that train: a frozen backbone (fine-tuning) keeps its statistics
                self._live = [m for m in pl_module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.recalibrate(pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # An epoch without validation (no validation set, or validation every n epochs) still
        # ends with statistics that belong to its weights: checkpoints written now use them.
        self.recalibrate(pl_module)

    def recalibrate(self, pl_module) -> None:
        """Recompute the statistics from the kept batches (once; nothing happens when none are kept)."""
        if not self._kept:
            return
        if self._live:
            device = pl_module.device
            recompute_batchnorm(self._live, lambda clips: pl_module.model(*(c.to(device, torch.float32) for c in clips[:1]),
                                                                  **{"ref_clip": c.to(device, torch.float32) for c in clips[1:]}),
                                self._kept)
        self._kept = []


class _OnlyLayers(torch.nn.Module):
    """What ``update_bn`` is given in place of the model: ``layers`` as its only submodules, so
    that only they are reset and put in training mode (``update_bn`` calls ``train()`` on what it
    gets: on the model itself that would turn dropout on and reset frozen BatchNorm layers), and
    ``forward`` (held in a function, never as a submodule, so ``train()`` does not reach the model,
    also when ``forward`` is the model itself)."""

    def __init__(self, layers: list[torch.nn.Module], forward: Callable):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.run = lambda batch: forward(batch)

    def forward(self, batch) -> None:
        self.run(batch)


def recompute_batchnorm(layers: list[torch.nn.Module], forward: Callable, batches: Iterable) -> None:
    """Reset the running statistics of the BatchNorm ``layers`` and recompute them as a cumulative
    average (``momentum=None``) over ``forward(batch)`` for every batch, without gradients, with
    ``torch.optim.swa_utils.update_bn``.

    A thin wrapper, for what ``update_bn`` cannot do alone: recompute some layers only (the others,
    dropout and frozen BatchNorm layers, keep their mode and statistics), pass a batch that is not
    one tensor for one model (a tuple of inputs, several models in one pass over the batches, a
    model's ``embed``), and give each layer back its own training flag (``update_bn`` gives all of
    them the mode of the module it got).
    Momentum is restored by ``update_bn``. ``batches`` is read to its end, also without layers.
    """
    training = [m.training for m in layers]
    batches = iter(batches)
    # update_bn passes on element 0 of a list or tuple: a batch wrapped in a list reaches forward whole.
    update_bn(([b] for b in batches), _OnlyLayers(layers, forward))
    for _ in batches:  # update_bn reads nothing when there is no layer
        pass
    for m, t in zip(layers, training):
        m.train(t)


class LastCheckpoint(pl.Callback):
    """Write the full training state (weights, optimiser, schedule, sampler epoch, history) to
    ``path`` at the end of every epoch, atomically, so a killed fold resumes after its last
    finished epoch."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if hasattr(pl_module, "record_train_epoch"):
            pl_module.record_train_epoch()  # this epoch's training totals belong in the saved history
        # The full state. Every rank calls save_checkpoint (it synchronises the ranks); rank 0 writes.
        if not trainer.is_global_zero:
            trainer.save_checkpoint(tmp_path(self.path), weights_only=False)
            return
        with atomic_path(self.path) as tmp:
            trainer.save_checkpoint(tmp, weights_only=False)
