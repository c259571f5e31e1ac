"""k-fold cross-validation by animal: train, select on validation animals, test once.

For each outer fold of the task: train on the fold's training animals, keep the checkpoint
with the best accuracy on the fold's (inner) validation animals (among epochs with equal
accuracy, the one with the lower validation loss: ``ClipClassifier``'s ``val_select``), then
score the fold's test animals once with that checkpoint. Outputs (``out`` = the project's ``models/`` folder)::

    <out>/checkpoints/<run_name>/task1-fold{k}-epoch=E-val_acc=A.ckpt            (baseline, seed names)
    <out>/checkpoints_advanced/<run_name>/advanced-fold{k}-epoch=E-val_acc=A.ckpt (advanced)
    <out>/checkpoints_resup/<run_name>/resup-fold{k}-epoch=E-val_acc=A.ckpt       (resup)
    <out>/runs/<run_name>/fold{k}/last.ckpt           resume point (every epoch; removed when the fold finishes)
    <out>/runs/<run_name>/fold{k}/predictions_test.csv  marks the fold finished
    <out>/runs/<run_name>/fold{k}/fold.json           selection + test accuracy
    <out>/runs/<run_name>/predictions.csv, summary.json, params.json, mlflow.json

Paths in ``fold.json``, ``summary.json`` and ``params.json`` are relative to the run folder
(``best_checkpoint``: ``../../checkpoints_advanced/<run_name>/advanced-fold0-...ckpt``;
``params.json``'s ``task_dir``: ``../../../tasks/task-1``), so a copied
or moved project uses its own files (``training.runs`` reads both forms back). The dicts
:func:`train_cv` and :func:`train_fold` return hold absolute paths.

Checkpoints have one folder per run, so two runs training at once never replace or delete
each other's files.

A rerun with the same parameters (same run name) skips finished folds and continues an
interrupted fold from its ``last.ckpt``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Callable

from mouse_facial_expressions.compat import import_torchvision

import_torchvision()

import lightning.pytorch as pl  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.utilities import rank_zero_only  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from mouse_facial_expressions.data.task_files import TaskFiles  # noqa: E402
from mouse_facial_expressions.data.predictions import (AU_PREDICTION_COLUMNS, PREDICTION_COLUMNS,  # noqa: E402
                                                       au_prediction_columns)
from mouse_facial_expressions.io.atomic import atomic_path, write_csv, write_text  # noqa: E402
from mouse_facial_expressions.io.checkpoint import (MODEL_PREFIX, UnsafeCheckpointError, checkpoint_parts,  # noqa: E402
                                                    load_weights_only)
from mouse_facial_expressions.models.registry import trained_model  # noqa: E402
from mouse_facial_expressions.training.callbacks import (EpochLine, FoldTimeEstimate, LastCheckpoint,  # noqa: E402
                                                          RecalibrateBatchNorm, SamplerEpoch)
from mouse_facial_expressions.training.domain import fold_domain  # noqa: E402
from mouse_facial_expressions.training.module import ClipClassifier, auto_precision  # noqa: E402
from mouse_facial_expressions.training.runs import (check_run_name, record_path, resolve_recorded,  # noqa: E402
                                                    run_roots)
from mouse_facial_expressions.training.selection import SELECT_DESCRIPTIONS  # noqa: E402
from mouse_facial_expressions.training.params import TrainParams  # noqa: E402
from mouse_facial_expressions.training.tracking import (MlflowEpochLogger, Tracker, default_tracking_uri,  # noqa: E402
                                                       resolve_tracking)

log = logging.getLogger(__name__)
# The seed's checkpoint folders are shared by folds and runs by design.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
# torch 2.13 deprecates a check Lightning's own code makes at every fit: not the user's to act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")

#: model -> (checkpoint folder, file prefix), as in the seed README.
CHECKPOINT_LAYOUT = {
    "baseline": ("checkpoints", "task1"),
    "advanced": ("checkpoints_advanced", "advanced"),
    "resup": ("checkpoints_resup", "resup"),
}
PRED_COLUMNS = PREDICTION_COLUMNS


def _default_datasets_fn():
    from mouse_facial_expressions.data.datasets import fold_datasets

    return fold_datasets


def _default_norm() -> tuple[list[float], list[float]] | tuple[None, None]:
    try:
        from mouse_facial_expressions.data import datasets

        return [float(v) for v in np.ravel(datasets.NORM_MEAN)], [float(v) for v in np.ravel(datasets.NORM_STD)]
    except (ImportError, AttributeError):
        return None, None


def _loaders(data: dict, p: TrainParams) -> tuple[DataLoader, DataLoader, DataLoader]:
    from mouse_facial_expressions.data.datasets import collate_clips

    pin = torch.cuda.is_available()
    kw = dict(num_workers=p.workers, pin_memory=pin, persistent_workers=p.workers > 0, collate_fn=collate_clips)
    sampler = data.get("train_sampler")
    train_ds, batch_size = data["train"], p.train_batch_size
    if p.weak == "attention":  # bags of windows of one video, the same clips per epoch (training/weak.py)
        from mouse_facial_expressions.training.weak import DEFAULT_BAG, BagDataset, BagSampler

        bag = p.weak_bag or DEFAULT_BAG
        train_ds, batch_size = BagDataset(train_ds, bag, p.seed), max(2, p.train_batch_size // bag)
        if sampler is None:  # a plain shuffle, cut to 1 / bag of its length like any other sampler
            sampler = torch.utils.data.RandomSampler(train_ds, generator=torch.Generator().manual_seed(p.seed))
            sampler.balances_classes = False  # the class weights still apply (_class_weights)
        sampler = BagSampler(sampler, bag)
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


@torch.no_grad()
def predict_windows(
    model: torch.nn.Module, loader: DataLoader, fold: int, precision: str = "32-true", channels: int = 3,
) -> pd.DataFrame:
    """Score every window of ``loader``: a DataFrame with :data:`PRED_COLUMNS` (a model with AU
    heads, models/au.py: plus :data:`AU_PREDICTION_COLUMNS`, the expected AU scores and ``mgs``).

    uint8 clips are normalised on the device (``channels``: the model's input channels)."""
    from mouse_facial_expressions.data.augment import normalize_clips

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    use_bf16 = "bf16" in str(precision)
    au_heads = getattr(model, "kind", None) == "au"
    columns = PRED_COLUMNS + AU_PREDICTION_COLUMNS if au_heads else PRED_COLUMNS
    rows: list[pd.DataFrame] = []
    for batch in tqdm(loader, desc=f"fold {fold} test", leave=False, disable=None):
        clip = normalize_clips(batch["clip"].to(device, non_blocking=True), channels)
        aux = {"aux": torch.as_tensor(batch["aux"], device=device)} if "aux" in batch else {}  # a fused model's features
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            if au_heads:  # class logits and expected AU scores (B, 5) in one pass
                logits, au = model.scores(clip)
                p1 = torch.softmax(logits.float(), dim=-1)[:, 1]  # (B,)
            else:
                p1 = torch.softmax(model(clip, **aux).float(), dim=-1)[:, 1]  # (B,)
        meta = _window_meta(batch).assign(p1=p1.cpu().numpy())
        rows.append(meta.assign(**au_prediction_columns(au.float().cpu().numpy())) if au_heads else meta)
    return pd.concat(rows, ignore_index=True).assign(fold=fold)[columns] if rows else pd.DataFrame(columns=columns)


@torch.no_grad()
def fit_stack(model, loader: DataLoader, channels: int, fold: int) -> dict | None:
    """Fit a stacked fused model's modality weights on ``loader`` (the fold's validation windows);
    returns ``{modality: weight, "bias": b, "n_windows": N}``, or None (with a warning) when the
    validation windows lack a class, and the model keeps the sum of the modalities' log-odds (``late``)."""
    from mouse_facial_expressions.data.augment import normalize_clips

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    odds, labels = [], []
    for batch in loader:
        clip = normalize_clips(batch["clip"].to(device), channels)
        odds.append(model.modality_odds(clip, torch.as_tensor(batch["aux"], device=device)).float().cpu())
        labels.append(np.asarray(batch["label"]))
    y = np.concatenate(labels) if labels else np.zeros(0, dtype=int)
    if len(np.unique(y)) < 2:
        log.warning("fold %d: the validation windows hold %s: the modalities are averaged, not stacked", fold,
                    "no window" if not len(y) else "one class only")
        return None
    model.fit_stack(torch.cat(odds).numpy(), y)
    w = model.stack.cpu().tolist()
    return {**{m: round(v, 4) for m, v in zip(model.modalities, w[:-1])}, "bias": round(w[-1], 4), "n_windows": int(len(y))}


def modality_weights(model, train, epoch_size: int, p: TrainParams, fold: int) -> dict:
    """Set a late-fused model's tabular modality weights by leave-one-animal-out cross-fitting on
    the training windows ``train`` (a ``ClipDataset``; :func:`training.tabular.cross_fit_scales`,
    with the run's own budget: ``epoch_size`` windows per epoch); logs
    and returns them (``{modality: {"scale", "auroc", "animals"}}``)."""
    from mouse_facial_expressions.training.tabular import cross_fit_scales

    weights = cross_fit_scales(model, train.aux, train.windows, epochs=p.epochs, epoch_size=epoch_size,
                               batch_size=p.train_batch_size, weight_decay=p.weight_decay,
                               use_soft_labels=p.use_soft_labels, label_smoothing=p.label_smoothing, seed=p.seed)
    model.set_scales({m: w["scale"] for m, w in weights.items()})
    log.info("fold %d: weights of the tabular modalities in the fused score (leave-one-animal-out on the training "
             "animals): %s", fold, ", ".join(f"{m} {w['scale']:.2f} (out-of-animal AUROC "
                                              f"{'n/a' if w['auroc'] is None else format(w['auroc'], '.2f')})" for m, w in weights.items()))
    return weights


def _save_buffers(ckpt: dict, model, path, prefix: str) -> None:
    """Write ``model``'s buffers named ``prefix*`` into the checkpoint ``ckpt`` at ``path`` (atomically)."""
    ckpt["state_dict"].update({f"{MODEL_PREFIX}{k}": v.cpu() for k, v in model.state_dict().items() if k.startswith(prefix)})
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def modality_predictions(model, loader: DataLoader, fold: int, precision: str = "32-true", channels: int = 3) -> pd.DataFrame:
    """A fused model's test windows scored with each modality alone (``only_<m>``) and with each
    left out (``without_<m>``), next to all of them (``all``): :data:`PRED_COLUMNS` plus ``variant``.
    Each subset is one the model can score: ``late`` / ``stacked`` heads learned alone, ``mid``
    with modality dropout."""
    mods = list(model.modalities)
    variants = {"all": mods}
    if len(mods) > 1:
        variants.update({f"only_{m}": [m] for m in mods})
        if len(mods) > 2:
            variants.update({f"without_{m}": [o for o in mods if o != m] for m in mods})
    parts = []
    try:
        for name, use in variants.items():
            model.use(use)
            parts.append(predict_windows(model, loader, fold, precision, channels).assign(variant=name))
    finally:
        model.use(None)
    return pd.concat(parts, ignore_index=True)


def _window_meta(batch: dict) -> pd.DataFrame:
    """The window columns of a loader batch (video, animal, start_time, end_time, label)."""
    return pd.DataFrame({
        "video": list(batch["video"]), "animal": list(batch["animal"]),
        "start_time": np.asarray(batch["start_time"], dtype=np.float64),
        "end_time": np.asarray(batch["end_time"], dtype=np.float64), "label": np.asarray(batch["label"]),
    })


@torch.no_grad()
def _embeddings(model: torch.nn.Module, loader: DataLoader, device: torch.device, use_bf16: bool, channels: int,
                desc: str) -> tuple[pd.DataFrame, torch.Tensor]:
    """Every window of ``loader`` through ``model.embed``: (window rows, ``(W, D)`` float32 on ``device``)."""
    from mouse_facial_expressions.data.augment import normalize_clips

    rows, zs = [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=None):
        clip = normalize_clips(batch["clip"].to(device, non_blocking=True), channels)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            zs.append(model.embed(clip).float())
        rows.append(_window_meta(batch))
    if not rows:
        return pd.DataFrame(columns=["video", "animal", "start_time", "end_time", "label"]), torch.zeros(0, device=device)
    return pd.concat(rows, ignore_index=True), torch.cat(zs)


@torch.no_grad()
def predict_relative(
    model: torch.nn.Module, loader: DataLoader, baseline_loader: DataLoader, fold: int, precision: str = "32-true",
    channels: int = 3,
) -> pd.DataFrame:
    """:func:`predict_windows` for a baseline-relative model: each animal's reference is the
    mean embedding of its baseline windows (``baseline_loader``, the same animals), and a
    window's ``p1`` is the head's on ``embed(window) - reference``."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    use_bf16 = "bf16" in str(precision)
    base, zb = _embeddings(model, baseline_loader, device, use_bf16, channels, f"fold {fold} baselines")
    meta, z = _embeddings(model, loader, device, use_bf16, channels, f"fold {fold} test")
    if not len(meta):
        return pd.DataFrame(columns=PRED_COLUMNS)
    from mouse_facial_expressions.models.advanced import mean_by_animal

    refs = mean_by_animal(base["animal"], zb)
    lacking = sorted(set(meta["animal"].astype(str)) - set(refs))
    if lacking:
        raise ValueError(f"fold {fold}: test animal(s) {', '.join(lacking)} have no baseline window to score against")
    ref = torch.stack([refs[a] for a in meta["animal"].astype(str)])
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        p1 = torch.softmax(model.head(z - ref).float(), dim=-1)[:, 1]  # what forward(clip, ref) computes
    meta.insert(0, "fold", fold)
    meta["p1"] = p1.cpu().numpy()
    return meta[PRED_COLUMNS]


def augmentation_enabled(policy: str | bool | None) -> bool:
    """The seed's ``--train_augmentation`` name -> on/off for the loader.

    The loader has one policy (clip-consistent TrivialAugmentWide-like); 'none'/'false' turn it off.
    """
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


def _trainer(p: TrainParams, callbacks: list, precision: str, progress: bool) -> pl.Trainer:
    limit = p.limit_batches
    return pl.Trainer(
        max_epochs=p.epochs, max_time=p.max_time, accelerator=p.accelerator, devices=p.devices,
        strategy=_strategy(p.strategy) if isinstance(p.strategy, str) else p.strategy, num_nodes=p.num_nodes, precision=precision, callbacks=callbacks,
        logger=False, enable_progress_bar=progress, enable_model_summary=False,
        limit_train_batches=limit, limit_val_batches=limit, num_sanity_val_steps=0,
        deterministic=False, use_distributed_sampler=True,
    )


def usable_resume_point(path: Path, fold: int) -> Path | None:
    """``path`` when it is a readable checkpoint to resume from; a truncated or unreadable one is
    moved aside (``last.ckpt.unreadable-<time>``) with a warning, and the fold starts over."""
    if not path.is_file():
        return None
    try:
        load_weights_only(path)
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


def _same_content(a: dict, b: dict) -> bool:
    """Two fingerprint dicts describe the same files (size and hash; the time may differ)."""
    return a.keys() == b.keys() and all((a[k]["size"], a[k]["hash"]) == (b[k]["size"], b[k]["hash"]) for k in a)


def _weak_callback(train_ds, p: TrainParams, fold: int):
    """``--weak em``: the E-step callback over the training animals' windows only (training/weak.py).

    The training windows start at every row (``fold_datasets``): only every half window span
    of a positive video is scored; the rest take the nearest scored window's posterior."""
    from mouse_facial_expressions.data.sequences import window_span
    from mouse_facial_expressions.training.weak import DEFAULT_FRACTION, EStep

    if p.baseline_recording is not None:
        raise ValueError("--weak cannot be combined with baseline-relative training (--baseline-recording)")
    stride = max(1, window_span(p.num_frames or 1, p.frame_stride or 1) // 2) if hasattr(train_ds, "_rows") else 1
    return EStep(train_ds, p.weak_fraction or DEFAULT_FRACTION, p.weak_every or 1, p.test_batch_size, stride, fold,
                 start=p.weak_start or 1, posterior=p.weak_posterior or "scaled")


def train_fold(
    task_dir: Path, fold_spec: dict, p: TrainParams, out_dir: Path, run_dir: Path, datasets_fn: Callable,
    norm: tuple, tracker: Tracker | None, parent_run: str | None, fold_runs: dict, progress: bool,
    fold_callbacks: Callable | None = None,
) -> dict:
    """Train, select and test one outer fold; returns its record (also written to fold.json).

    ``fold_callbacks(fold, test_loader)`` may add Lightning callbacks (e.g. the learning curves
    of ``bench/bench_recipe.py``); nothing they compute reaches checkpoint selection."""
    fold = int(fold_spec["fold"])
    fold_dir = run_dir / f"fold{fold}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    pl.seed_everything(p.seed, workers=True, verbose=False)
    extra = {"channels": p.in_channels} if p.in_channels != 3 else {}  # the loader's default is 3
    data = datasets_fn(
        task_dir, fold, num_frames=p.num_frames, frame_stride=p.frame_stride, image_size=p.image_size,
        train_augmentation=augmentation_enabled(p.train_augmentation), epoch_size=p.epoch_size, seed=p.seed,
        val_windows_per_video=p.val_windows_per_video or None, test_windows_per_video=p.test_windows_per_video,
        clip_dtype="uint8",  # workers ship uint8; ClipClassifier normalises on the device
        augment_policy=p.augment_policy, augment_scope=p.augment_scope, sampler=p.sampler, **extra,
        **({"baseline_recording": p.baseline_recording} if p.baseline_recording is not None else {}),
        **({"modalities": p.modality_list} if p.modalities is not None else {}),
    )
    if p.targets is not None and getattr(data["train"], "au_targets", None) is None:
        raise ValueError(f"{task_dir}: --targets {p.targets} needs Mouse Grimace Scale targets, and this task has none: "
                         "remake it with them (mfe task make --au-ratings ratings/<name>.parquet)")
    train_dl, val_dl, test_dl = _loaders(data, p)
    precision = p.precision if p.precision not in (None, "auto") else auto_precision(p.accelerator)
    channels_last = p.channels_last if p.channels_last is not None else "bf16" in precision
    meta = dict(
        num_frames=p.num_frames, frame_stride=p.frame_stride, image_size=p.image_size, norm_mean=norm[0],
        norm_std=norm[1], in_channels=p.in_channels, task_dir=str(Path(os.path.abspath(task_dir))), fold=fold,
        train_animals=list(fold_spec.get("train", [])), val_animals=list(fold_spec.get("val", [])),
        test_animals=list(fold_spec.get("test", [])), run_name=run_dir.name, pretrained=p.pretrained,
        domain=fold_domain(task_dir, fold_spec.get("train", [])),  # the training videos' crops (training/domain.py)
    )
    if p.baseline_recording is not None:
        meta["baseline_recording"] = int(p.baseline_recording)
    fusion = p.fusion_config(data.get("aux_columns") or {})
    module = ClipClassifier(
        p.model, {**p.model_config(), **({"fusion": fusion} if fusion else {})}, optimizer=p.optimizer, learning_rate=p.learning_rate,
        weight_decay=p.weight_decay, momentum=p.momentum, epochs=p.epochs, label_smoothing=p.label_smoothing,
        use_soft_labels=p.use_soft_labels or p.weak is not None,  # weak: the E-step's posteriors are soft targets
        class_weights=_class_weights(data), data=meta, channels_last=channels_last,
        select=p.select, warmup_epochs=p.warmup_epochs, **({"weak": p.weak} if p.weak is not None else {}),
    )
    if fusion:
        module.model.set_feature_stats(*data["aux_stats"])  # the training windows' (saved with the weights)
    made_from = task_fingerprint(Path(task_dir))
    folder, prefix = CHECKPOINT_LAYOUT[p.model]
    best_cb = ModelCheckpoint(
        dirpath=out_dir / folder / run_dir.name, filename=f"{prefix}-fold{fold}-{{epoch}}-{{val_acc:.2f}}",
        monitor="val_select", mode="max", save_top_k=1,  # the recipe's selection rule (ClipClassifier.select)
        save_weights_only=True,  # what prediction needs: a third of the size without the optimiser state
    )
    resume = usable_resume_point(fold_dir / "last.ckpt", fold)
    # Order matters at an epoch's end: statistics are recalibrated before the resume point is written.
    callbacks = [RecalibrateBatchNorm(p.bn_recalibrate)] if p.bn_recalibrate else []
    if p.weak == "em":  # first: the epoch's targets are set before anything else starts it
        callbacks.insert(0, _weak_callback(data["train"], p, fold))
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
        callbacks.append(MlflowEpochLogger(tracker.tracking_uri, run_id))
    trainer = _trainer(p, callbacks, precision, progress)
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
    stack = weights = None
    if fusion and fusion["fusion"] == "stacked":  # weights of the modalities, from the validation animals
        stack = fit_stack(model, val_dl, p.in_channels, fold)
        if stack is not None:
            _save_buffers(ckpt, model, best, "stack")
    if fusion and fusion["fusion"] == "late" and len(p.modality_list) > 1:  # tabular modalities' weights (training/tabular.py)
        weights = modality_weights(model, data["train"], len(data["train_sampler"]), p, fold)
        _save_buffers(ckpt, model, best, "scale")
    del ckpt
    if p.baseline_recording is not None:
        from mouse_facial_expressions.data.datasets import collate_clips

        base_dl = DataLoader(data["test_baseline"], batch_size=p.test_batch_size, shuffle=False, num_workers=p.workers,
                             collate_fn=collate_clips)
        preds = predict_relative(model, test_dl, base_dl, fold, precision, channels=p.in_channels)
    else:
        preds = predict_windows(model, test_dl, fold, precision, channels=p.in_channels)
    if fusion:  # each modality alone and each left out: what the evaluation's modality table reads
        write_csv(modality_predictions(model, test_dl, fold, precision, p.in_channels), fold_dir / "predictions_modalities.csv")
    test_acc = float(((preds["p1"] >= 0.5).astype(int) == preds["label"]).mean()) if len(preds) else float("nan")
    record = dict(
        fold=fold, best_checkpoint=str(best), val_acc=best_val[0] if best_val else None,
        val_loss=best_val[1] if best_val else None, best_epoch=best_epoch,
        epochs_trained=int(trainer.current_epoch), test_acc=test_acc, n_test_windows=int(len(preds)),
        test_animals=meta["test_animals"], seconds=round(time.time() - t0, 1), precision=precision,
        channels_last=channels_last, recipe=p.recipe, select=p.select,
        select_rule=SELECT_DESCRIPTIONS[p.select], n_val_windows=len(data["val"]), task=made_from,
        **({"modalities": list(p.modality_list), "fusion": fusion["fusion"], "stack": stack, "modality_weights": weights}
           if fusion else {}),
        **({"targets": p.targets} if p.targets is not None else {}),
        history={str(e): h for e, h in sorted(module.history.items())},
    )
    write_text(fold_dir / "fold.json", json.dumps(_stored_record(record, run_dir), indent=1))
    write_csv(preds, fold_dir / "predictions_test.csv")  # last: marks the fold finished
    last = fold_dir / "last.ckpt"
    if last.is_file() and Path(best) != last:
        last.unlink()  # a finished fold is never resumed; its best checkpoint stays
    if tracker is not None and run_id:
        tracker.log_metrics(run_id, {"test_acc": test_acc, "best_val_acc": record["val_acc"] or float("nan")})
        tracker.log_artifact(run_id, fold_dir / "predictions_test.csv")
        tracker.end_run(run_id)
    return record


def _stored_record(rec: dict, run_dir: Path) -> dict:
    """A fold record as ``fold.json`` / ``summary.json`` store it: ``best_checkpoint`` relative to the run folder."""
    return {**rec, "best_checkpoint": record_path(rec["best_checkpoint"], run_dir)} if rec.get("best_checkpoint") else rec


def _loaded_record(rec: dict, run_dir: Path) -> dict:
    """A stored fold record with ``best_checkpoint`` as an absolute path here (older runs: re-rooted)."""
    if not rec.get("best_checkpoint"):
        return rec
    return {**rec, "best_checkpoint": str(resolve_recorded(rec["best_checkpoint"], run_dir, run_roots(run_dir, project=False)))}


def train_cv(
    task_dir: str | Path,
    params: TrainParams,
    out_dir: str | Path,
    folds: list[int] | None = None,
    *,
    datasets_fn: Callable | None = None,
    fold_specs: list[dict] | None = None,
    norm: tuple | None = None,
    tracking_uri: str | None = None,
    experiment: str = "mfe",
    track: bool = True,
    progress: bool | None = None,
    fold_callbacks: Callable | None = None,
) -> dict:
    """Cross-validate ``params.model`` on a task folder (see module docstring for outputs).

    Args:
        task_dir: the task folder (``tasks/task-<version>``).
        params: :class:`TrainParams` (``make_params`` resolves defaults).
        out_dir: the project's models folder.
        folds: outer folds to run (default: ``params.folds`` or every fold).
        datasets_fn: ``fold_datasets``-compatible callable (default: ``data.datasets.fold_datasets``).
        fold_specs: the folds (dicts fold/train/val/test); default: the task's ``folds.json``.
        norm: (mean, std) recorded in checkpoints; default: ``data.datasets.NORM_MEAN/STD``.
        tracking_uri: MLflow URI (default ``sqlite:///<out_dir>/mlruns.db``).
        track: log to MLflow (without the ``[track]`` extra: off with a notice, an error when
            ``tracking_uri`` is given; :func:`training.tracking.resolve_tracking`).
        progress: Lightning progress bar (default: when stderr is a terminal).
        fold_callbacks: ``(fold, test_loader) -> [Lightning callbacks]`` added to each fold's trainer
            (diagnostics only; selection never sees them).

    Returns:
        The summary dict (also ``<out>/runs/<run_name>/summary.json``): run_name, run_dir,
        per-fold records, mean test/val accuracy.
    """
    if params.run_name is not None:
        check_run_name(params.run_name)  # before anything is read or written
    track = resolve_tracking(track, tracking_uri)  # no MLflow: off with a notice, or an error for an explicit URI
    task_dir, out_dir = Path(task_dir), Path(out_dir)
    params = dataclasses.replace(params)
    if params.baseline_recording is None and (task_dir / TaskFiles.SPEC).is_file():
        from mouse_facial_expressions.data.tasks import load_spec

        params.baseline_recording = load_spec(task_dir / TaskFiles.SPEC).baseline_recording  # the task's, if it names one
    params.model_config()  # a setting the model cannot take fails here, before any fold
    if fold_specs is None or params.num_frames is None or params.frame_stride is None:
        from mouse_facial_expressions.data.tasks import load_task

        task = load_task(task_dir)
        fold_specs = fold_specs if fold_specs is not None else list(task.folds)
        params.num_frames = params.num_frames or task.spec.num_frames
        params.frame_stride = params.frame_stride or task.spec.frame_stride
    if fold_specs is None or (task_dir / TaskFiles.PROVENANCE).is_file():
        from mouse_facial_expressions.data.tasks import stale_inputs

        stale = stale_inputs(task_dir)
        if stale:
            raise ValueError(f"{task_dir}: its inputs changed since `mfe task make` wrote it: {', '.join(stale[:8])}"
                             f"{f' and {len(stale) - 8} more' if len(stale) > 8 else ''}; rerun `mfe task make` "
                             "(same --dataset_version) so the task labels, folds and windows match the frame store")
    datasets_fn = datasets_fn or _default_datasets_fn()
    norm = norm or _default_norm()
    wanted = folds if folds is not None else params.folds
    specs = [s for s in fold_specs if wanted is None or int(s["fold"]) in set(wanted)]
    if wanted is not None and len(specs) != len(set(wanted)):
        have = sorted(int(s["fold"]) for s in fold_specs)
        raise ValueError(f"--folds {wanted}: the task {task_dir} has folds {have}")
    run_name = check_run_name(params.run_name or params.default_run_name())
    run_dir = Path(os.path.abspath(out_dir / "runs" / run_name))
    run_dir.mkdir(parents=True, exist_ok=True)
    task_abs = Path(os.path.abspath(task_dir))
    # task_dir relative to the run folder; training.runs.run_task_dir reads it (and older runs' absolute paths)
    write_text(run_dir / "params.json", json.dumps({**params.to_dict(), "task_dir": record_path(task_abs, run_dir)},
                                                   indent=1, default=str))
    progress = (os.isatty(2) if progress is None else progress)

    tracker, parent, fold_runs = None, None, {}
    if track and rank_zero_only.rank == 0:
        state = json.loads((run_dir / "mlflow.json").read_text()) if (run_dir / "mlflow.json").is_file() else {}
        uri = tracking_uri or default_tracking_uri(out_dir)
        tracker = Tracker(uri, experiment, artifact_dir=out_dir / "mlartifacts")
        same_store = state.get("tracking_uri") == uri
        parent = tracker.start_run(run_name, {**params.to_dict(), "task_dir": str(task_dir)}, run_id=state.get("parent") if same_store else None)
        fold_runs = dict(state.get("folds", {})) if same_store else {}

    records = []
    current_task = task_fingerprint(task_dir)
    for spec in specs:
        fold = int(spec["fold"])
        done = run_dir / f"fold{fold}" / "predictions_test.csv"
        rec_path = done.parent / "fold.json"
        rec = _loaded_record(json.loads(rec_path.read_text()), run_dir) if done.is_file() and rec_path.is_file() else {"fold": fold}
        if done.is_file() and rec.get("task") is not None and not _same_content(rec["task"], current_task):
            tqdm.write(f"fold {fold}: redone: the task changed since it was trained ({task_dir})")
            done.unlink()
        if done.is_file():
            records.append(rec)
            tqdm.write(f"fold {fold}: finished earlier, skipped ({done})")
            continue
        rec = train_fold(task_dir, spec, params, out_dir, run_dir, datasets_fn, norm, tracker, parent, fold_runs, progress,
                         fold_callbacks)
        if rec:
            records.append(rec)
            tqdm.write(
                f"fold {fold}: val_acc {rec['val_acc'] if rec['val_acc'] is None else round(rec['val_acc'], 3)} "
                f"-> test_acc {rec['test_acc']:.3f} on {rec['n_test_windows']} windows of "
                f"{len(rec['test_animals'])} animals ({rec['seconds']:.0f} s, {rec['precision']}); {rec['best_checkpoint']}"
            )
    if rank_zero_only.rank != 0:
        return {}
    # The run's results so far: folds finished here or by earlier calls with other --folds.
    finished = sorted(run_dir.glob("fold*/predictions_test.csv"), key=lambda f: int(f.parent.name[4:]))
    by_fold = {int(r["fold"]): r for r in records}
    for f in finished:
        if int(f.parent.name[4:]) not in by_fold and (f.parent / "fold.json").is_file():
            by_fold[int(f.parent.name[4:])] = _loaded_record(json.loads((f.parent / "fold.json").read_text()), run_dir)
    records = [by_fold[k] for k in sorted(by_fold)]
    frames = [pd.read_csv(f) for f in finished]
    if frames:
        pred = pd.concat(frames, ignore_index=True)
        write_csv(pred[PRED_COLUMNS + [c for c in AU_PREDICTION_COLUMNS if c in pred.columns]], run_dir / "predictions.csv")
    test_accs = [r["test_acc"] for r in records if r.get("test_acc") is not None]
    val_accs = [r["val_acc"] for r in records if r.get("val_acc") is not None]
    summary = dict(
        run_name=run_name, run_dir=str(run_dir), model=params.model, task_dir=str(task_abs), folds=records,
        mean_test_acc=float(np.mean(test_accs)) if test_accs else None,
        mean_val_acc=float(np.mean(val_accs)) if val_accs else None,
        predictions=str(run_dir / "predictions.csv"),
    )
    stored = {**summary, "run_dir": ".", "task_dir": record_path(task_abs, run_dir), "predictions": "predictions.csv",
              "folds": [_stored_record(r, run_dir) for r in records]}  # paths relative to the run folder
    write_text(run_dir / "summary.json", json.dumps(stored, indent=1))
    if tracker is not None:
        if summary["mean_test_acc"] is not None:
            tracker.log_metrics(parent, {"mean_test_acc": summary["mean_test_acc"]})
        if (run_dir / "predictions.csv").is_file():
            tracker.log_artifact(parent, run_dir / "predictions.csv")
        tracker.end_run(parent)
        summary["mlflow_parent_run"] = parent
    return summary
