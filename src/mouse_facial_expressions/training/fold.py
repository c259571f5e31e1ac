"""One outer fold: build its data from the model's parts, train, select on validation animals, test once.

:func:`train_fold` is what ``training.cv.train_cv`` runs per fold. It names no capability of the
model: the parts (``models.parts``) choose the fold's windows and fields, complete their options
from the data, shape the training loader, fit what is fit after selection and add their
prediction tables; a weak-supervision strategy adds its callbacks (``training.weak``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

from mouse_facial_expressions.compat import import_torchvision

import_torchvision()

import lightning.pytorch as pl  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from mouse_facial_expressions.data.task_files import TaskFiles  # noqa: E402
from mouse_facial_expressions.models.scoring import score_loader  # noqa: E402
from mouse_facial_expressions.io.atomic import atomic_path, write_csv, write_text  # noqa: E402
from mouse_facial_expressions.io.checkpoint import (MODEL_PREFIX, UnsafeCheckpointError, checkpoint_parts,  # noqa: E402
                                                    load_weights_only)
from mouse_facial_expressions.models.parts import bound_parts, part_classes  # noqa: E402
from mouse_facial_expressions.models.registry import trained_model  # noqa: E402
from mouse_facial_expressions.training.callbacks import (EpochLine, FoldTimeEstimate, LastCheckpoint,  # noqa: E402
                                                          RecalibrateBatchNorm, SamplerEpoch)
from mouse_facial_expressions.training.domain import fold_domain  # noqa: E402
from mouse_facial_expressions.training.module import ClipClassifier, auto_precision  # noqa: E402
from mouse_facial_expressions.training.params import TrainParams  # noqa: E402
from mouse_facial_expressions.training.runs import record_path  # noqa: E402
from mouse_facial_expressions.training.selection import SELECT_DESCRIPTIONS  # noqa: E402
from mouse_facial_expressions.training.tracking import Tracker, epoch_logger  # noqa: E402
from mouse_facial_expressions.training.weak import weak_callbacks  # noqa: E402

log = logging.getLogger(__name__)

#: model -> (checkpoint folder, file prefix), as in the seed README.
CHECKPOINT_LAYOUT = {
    "baseline": ("checkpoints", "task1"),
    "advanced": ("checkpoints_advanced", "advanced"),
    "resup": ("checkpoints_resup", "resup"),
}


def _loaders(data: dict, p: TrainParams, parts: dict[str, dict]) -> tuple[DataLoader, DataLoader, DataLoader]:
    from mouse_facial_expressions.data.datasets import collate_clips

    pin = torch.cuda.is_available()
    kw = dict(num_workers=p.workers, pin_memory=pin, persistent_workers=p.workers > 0, collate_fn=collate_clips)
    train_ds, sampler, batch_size = data["train"], data.get("train_sampler"), p.train_batch_size
    classes = part_classes()
    for name, options in parts.items():  # e.g. bags of windows (attention pooling)
        train_ds, sampler, batch_size = classes[name].train_loader(options, train_ds, sampler, batch_size, p.seed)
    data["train_sampler"] = sampler  # SamplerEpoch advances it
    n_train = len(sampler) if sampler is not None else len(train_ds)
    train = DataLoader(
        train_ds, batch_size=batch_size, sampler=sampler, shuffle=sampler is None,
        drop_last=n_train > batch_size,  # BatchNorm needs > 1 sample per batch
        generator=torch.Generator().manual_seed(p.seed), **kw,
    )
    val = DataLoader(data["val"], batch_size=p.test_batch_size, shuffle=False, **kw)
    test = DataLoader(data["test"], batch_size=p.test_batch_size, shuffle=False, num_workers=p.workers, pin_memory=pin,
                      collate_fn=collate_clips)
    return train, val, test


def _class_weights(data: dict) -> list[float] | None:
    """None with a class-balancing sampler (weights would correct twice), else inverse frequency."""
    sampler = data.get("train_sampler")
    if sampler is not None and getattr(sampler, "balances_classes", True):
        return None
    labels = getattr(data["train"], "labels", None)
    if labels is None:
        return None
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=2).astype(float)
    return [float(w) for w in counts.sum() / (2 * np.maximum(counts, 1))]


def augmentation_enabled(policy: str | bool | None) -> bool:
    """The seed's ``--train_augmentation`` name -> on/off for the loader ('none'/'false' turn it off)."""
    if isinstance(policy, bool):
        return policy
    return str(policy).strip().lower() not in ("none", "false", "off", "0", "")


def _strategy(strategy: str) -> str:
    """``ddp_spawn`` -> ``ddp_fork`` where torchvision only imports through ``compat``.

    A spawned process unpickles Lightning (which imports torchvision) before any of our
    code runs, so on a CPU-only torch with the CUDA torchvision wheel it cannot start;
    forked processes inherit the patched import. CUDA machines keep ``ddp_spawn``.
    """
    from mouse_facial_expressions.compat import torchvision_was_patched

    if strategy == "ddp_spawn" and torchvision_was_patched():
        log.warning("strategy ddp_spawn cannot re-import torchvision on this CPU-only torch: using ddp_fork")
        return "ddp_fork"
    return strategy


def _trainer(p: TrainParams, callbacks: list, precision: str, progress: bool, logger=None) -> pl.Trainer:
    limit = p.limit_batches
    return pl.Trainer(
        max_epochs=p.epochs, max_time=p.max_time, accelerator=p.accelerator, devices=p.devices,
        strategy=_strategy(p.strategy) if isinstance(p.strategy, str) else p.strategy, num_nodes=p.num_nodes,
        precision=precision, callbacks=callbacks, logger=logger or False, log_every_n_steps=1, enable_progress_bar=progress,
        enable_model_summary=False, limit_train_batches=limit, limit_val_batches=limit, num_sanity_val_steps=0,
        deterministic=False, use_distributed_sampler=True,
    )


def usable_resume_point(path: Path, fold: int) -> Path | None:
    """``path`` when it is a checkpoint this version can resume from; an unreadable one, or one
    written before the models were put together from parts, is moved aside (``last.ckpt.unreadable-<time>``)
    with a warning, and the fold starts over."""
    if not path.is_file():
        return None
    try:
        ckpt = load_weights_only(path)
        if "parts" not in (ckpt.get("hyper_parameters") or {}).get("model_cfg", {}):
            raise UnsafeCheckpointError("it was written by an older mfe, whose training state this one cannot continue")
    except UnsafeCheckpointError as err:
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        log.warning("fold %d: cannot resume: %s; moved it to %s and the fold starts over", fold, err, aside.name)
        return None
    return path


def task_fingerprint(task_dir: Path) -> dict:
    """The task files a fold's results depend on (``frames.parquet``, ``folds.json``), fingerprinted."""
    from mouse_facial_expressions import provenance

    files = {n: task_dir / n for n in (TaskFiles.FRAMES, TaskFiles.FOLDS, TaskFiles.AU_TARGETS) if (task_dir / n).is_file()}
    return provenance.record(files)["inputs"]


def stored_record(rec: dict, run_dir: Path) -> dict:
    """A fold record as ``fold.json`` / ``summary.json`` store it: ``best_checkpoint`` relative to the run folder."""
    return {**rec, "best_checkpoint": record_path(rec["best_checkpoint"], run_dir)} if rec.get("best_checkpoint") else rec


def predict_windows(model, loader: DataLoader, fold: int, precision: str = "32-true", channels: int = 3, context=None):
    """Every window of ``loader`` scored by one trained model (the test pass; ``models.scoring``)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if "bf16" in str(precision) else torch.float32
    return score_loader([model.to(device)], loader, channels=channels, dtype=dtype, fold=fold, context=context,
                        desc=f"fold {fold} test")


def _fold_data(task_dir, fold: int, p: TrainParams, datasets_fn: Callable, parts: dict) -> tuple[dict, dict]:
    """The fold's datasets, and the parts' options completed from them."""
    extra = {"channels": p.in_channels} if p.in_channels != 3 else {}  # the loader's default is 3
    data = datasets_fn(
        task_dir, fold, num_frames=p.num_frames, frame_stride=p.frame_stride, image_size=p.image_size,
        train_augmentation=augmentation_enabled(p.train_augmentation), epoch_size=p.epoch_size, seed=p.seed,
        val_windows_per_video=p.val_windows_per_video or None, test_windows_per_video=p.test_windows_per_video,
        clip_dtype="uint8",  # workers ship uint8; ClipClassifier normalises on the device
        augment_policy=p.augment_policy, augment_scope=p.augment_scope, sampler=p.sampler, parts=bound_parts(parts), **extra,
    )
    classes = part_classes()
    return data, {name: classes[name].configure(options, data) for name, options in parts.items()}


def _after_selection(model, data: dict, loaders: dict, p: TrainParams, fold: int, ckpt: dict, best: str) -> dict:
    """Let each part fit what is fit on the selected model; write it into the checkpoint when any did."""
    record = {}
    for part in model.parts.values():
        record.update(part.after_selection(model, data, loaders, p, fold))
    if record:
        ckpt["state_dict"].update({f"{MODEL_PREFIX}{k}": v.cpu() for k, v in model.state_dict().items()})
        with atomic_path(best) as tmp:
            torch.save(ckpt, tmp)
    return record


def train_fold(
    task_dir: Path, fold_spec: dict, p: TrainParams, out_dir: Path, run_dir: Path, datasets_fn: Callable,
    norm: tuple, tracker: Tracker | None, parent_run: str | None, fold_runs: dict, progress: bool,
    fold_callbacks: Callable | None = None,
) -> dict:
    """Train, select and test one outer fold; returns its record (also written to fold.json).

    ``fold_callbacks(fold, test_loader)`` may add Lightning callbacks (e.g. the learning curves
    of ``bench/bench_recipe.py``); nothing they compute reaches checkpoint selection."""
    from lightning.pytorch.utilities import rank_zero_only

    fold = int(fold_spec["fold"])
    fold_dir = run_dir / f"fold{fold}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    pl.seed_everything(p.seed, workers=True, verbose=False)
    cfg = p.model_config()
    data, parts = _fold_data(task_dir, fold, p, datasets_fn, cfg["parts"])
    train_dl, val_dl, test_dl = _loaders(data, p, parts)
    precision = p.precision if p.precision not in (None, "auto") else auto_precision(p.accelerator)
    channels_last = p.channels_last if p.channels_last is not None else "bf16" in precision
    meta = dict(
        num_frames=p.num_frames, frame_stride=p.frame_stride, image_size=p.image_size, norm_mean=norm[0],
        norm_std=norm[1], in_channels=p.in_channels, task_dir=str(Path(os.path.abspath(task_dir))), fold=fold,
        train_animals=list(fold_spec.get("train", [])), val_animals=list(fold_spec.get("val", [])),
        test_animals=list(fold_spec.get("test", [])), run_name=run_dir.name, pretrained=p.pretrained,
        domain=fold_domain(task_dir, fold_spec.get("train", [])),  # the training videos' crops (training/domain.py)
    )
    classes = part_classes()
    for name, options in parts.items():
        meta.update(classes[name].checkpoint_data(options))
    module = ClipClassifier(
        p.model, {**cfg, "parts": parts}, optimizer=p.optimizer, learning_rate=p.learning_rate,
        weight_decay=p.weight_decay, momentum=p.momentum, epochs=p.epochs, label_smoothing=p.label_smoothing,
        use_soft_labels=p.use_soft_labels or p.weak is not None,  # weak labels: the E-step's posteriors are soft targets
        class_weights=_class_weights(data), data=meta, channels_last=channels_last,
        select=p.select, warmup_epochs=p.warmup_epochs, **({"weak": p.weak} if p.weak is not None else {}),
    )
    for part in module.model.parts.values():
        part.prepare(data)  # what a part learns from the training data before training (e.g. feature statistics)
    made_from = task_fingerprint(Path(task_dir))
    folder, prefix = CHECKPOINT_LAYOUT[p.model]
    best_cb = ModelCheckpoint(
        dirpath=out_dir / folder / run_dir.name, filename=f"{prefix}-fold{fold}-{{epoch}}-{{val_acc:.2f}}",
        monitor="val_select", mode="max", save_top_k=1,  # the recipe's selection rule (ClipClassifier.select)
        save_weights_only=True,  # what prediction needs: a third of the size without the optimiser state
    )
    resume = usable_resume_point(fold_dir / "last.ckpt", fold)
    # Order matters at an epoch's end: statistics are recalibrated before the resume point is written;
    # a strategy's callbacks come first, so the epoch's targets are set before anything else starts it.
    callbacks = weak_callbacks(p, data["train"], fold)
    callbacks += [RecalibrateBatchNorm(p.bn_recalibrate)] if p.bn_recalibrate else []
    callbacks += [best_cb, LastCheckpoint(fold_dir / "last.ckpt"), SamplerEpoch(data.get("train_sampler"))]
    if not progress:
        callbacks.append(EpochLine(fold, p.epochs))
    callbacks.append(FoldTimeEstimate(fold, p.epochs))
    if fold_callbacks is not None:
        callbacks += list(fold_callbacks(fold, test_dl))
    run_id = None
    if tracker is not None and rank_zero_only.rank == 0:
        run_id = tracker.start_run(f"fold{fold}", {**p.to_dict(), "fold": fold}, parent=parent_run, run_id=fold_runs.get(str(fold)))
        fold_runs[str(fold)] = run_id
        tracker.set_tags(run_id, {"fold": fold, "model": p.model, **{f"{k}_animals": ",".join(map(str, fold_spec.get(k, []))) for k in ("train", "val", "test")}})
        write_text(run_dir / "mlflow.json", json.dumps({"tracking_uri": tracker.tracking_uri, "parent": parent_run, "folds": fold_runs}, indent=1))
    trainer = _trainer(p, callbacks, precision, progress,  # epoch metrics through Lightning's MLFlowLogger
                       logger=epoch_logger(tracker.tracking_uri, run_id) if run_id else None)
    trainer.fit(module, train_dl, val_dl, ckpt_path=str(resume) if resume else None, weights_only=True)
    if not trainer.is_global_zero:
        return {}
    done = int(trainer.current_epoch)
    if p.max_time and done < p.epochs:
        log.warning(
            "fold %d: max_time %s stopped training after %d of %d epochs, before the cosine learning-rate "
            "schedule reached its end; for a fixed time budget pass --epochs %d (or fewer)",
            fold, p.max_time, done, p.epochs, max(1, done),
        )
    best = os.path.abspath(best_cb.best_model_path or str(fold_dir / "last.ckpt"))
    ckpt = load_weights_only(best)
    best_epoch = int(ckpt.get("epoch", -1))
    best_val = module.val_history.get(best_epoch)  # [val_acc, val_loss] of the selected epoch
    model = trained_model(*checkpoint_parts(ckpt, best))
    part_record = _after_selection(model, data, {"train": train_dl, "val": val_dl}, p, fold, ckpt, best)
    del ckpt
    from mouse_facial_expressions.data.datasets import collate_clips

    context = {role: DataLoader(ds, batch_size=p.test_batch_size, shuffle=False, num_workers=p.workers,
                                collate_fn=collate_clips) for role, ds in data.get("context", {}).items()}
    preds = predict_windows(model, test_dl, fold, precision, p.in_channels, context.get("test"))
    for part in model.parts.values():  # e.g. each modality alone and each left out
        tables = part.extra_predictions(model, lambda: predict_windows(model, test_dl, fold, precision, p.in_channels,
                                                                       context.get("test")))
        for name, table in tables.items():
            write_csv(table, fold_dir / name)
    test_acc = float(((preds["p1"] >= 0.5).astype(int) == preds["label"]).mean()) if len(preds) else float("nan")
    record = dict(
        fold=fold, best_checkpoint=str(best), val_acc=best_val[0] if best_val else None,
        val_loss=best_val[1] if best_val else None, best_epoch=best_epoch,
        epochs_trained=int(trainer.current_epoch), test_acc=test_acc, n_test_windows=int(len(preds)),
        test_animals=meta["test_animals"], seconds=round(time.time() - t0, 1), precision=precision,
        channels_last=channels_last, recipe=p.recipe, select=p.select,
        select_rule=SELECT_DESCRIPTIONS[p.select], n_val_windows=len(data["val"]), task=made_from,
        parts=sorted(parts), **part_record, targets=p.targets,
        history={str(e): h for e, h in sorted(module.history.items())},
    )
    write_text(fold_dir / "fold.json", json.dumps(stored_record(record, run_dir), indent=1))
    write_csv(preds, fold_dir / "predictions_test.csv")  # last: marks the fold finished
    last = fold_dir / "last.ckpt"
    if last.is_file() and Path(best) != last:
        last.unlink()  # a finished fold is never resumed; its best checkpoint stays
    if tracker is not None and run_id:
        tracker.log_metrics(run_id, {"test_acc": test_acc, "best_val_acc": record["val_acc"] or float("nan")})
        tracker.log_artifact(run_id, fold_dir / "predictions_test.csv")
        tracker.end_run(run_id)
    return record
