"""Clip dataset over the memory-mapped frame store, balanced window sampler, fold datasets.

What the model receives (``channels == 3``): ``(T, 3, H, W)`` float32, the grey crop
repeated to 3 channels and normalised with ``NORM_MEAN`` / ``NORM_STD`` (see
:mod:`~mouse_facial_expressions.data.augment`). No PNG is decoded: frames come from the
``.npy`` memory maps, opened lazily in each DataLoader worker (never pickled).

With ``clip_dtype="uint8"`` a dataset stops before normalisation and returns the resized,
augmented ``(T, 1, H, W)`` uint8 clip: 12x fewer bytes for workers to send to the main
process. :func:`~mouse_facial_expressions.data.augment.normalize_clips` then turns the batch
into the same float input (``mfe train`` does this after the batch reaches the device).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from mouse_facial_expressions.data._store import open_frames
from mouse_facial_expressions.data.augment import GREY_MEAN, GREY_STD, NORM_MEAN, NORM_STD, POLICIES, SCOPES, normalize_clips, prepare_clip
from mouse_facial_expressions.data.modalities import video_recordings
from mouse_facial_expressions.data.samplers import SAMPLERS, BalancedWindowSampler, UniformWindowSampler  # noqa: F401 (re-exported)
from mouse_facial_expressions.data.sequences import WINDOW_COLUMNS, make_windows, select_per_video, window_span

log = logging.getLogger(__name__)

__all__ = ["BalancedWindowSampler", "UniformWindowSampler", "SAMPLERS", "ClipDataset", "collate_clips", "batch_tensors", "fold_datasets", "NORM_MEAN", "NORM_STD", "GREY_MEAN", "GREY_STD"]


class ClipDataset(Dataset):
    """Windows of the frame store as normalised clips.

    Args:
        frames_dir: the frame store folder (``<video>.npy`` files).
        windows: window table (``video, animal, label, soft, start_time, end_time, rows``).
        image_size: output side in pixels.
        augment: TrivialAugmentWide-like augmentation (training).
        augment_policy: ``mild`` | ``wide`` ranges (see :mod:`~mouse_facial_expressions.data.augment`).
        augment_scope: ``clip`` (one op for the whole clip) | ``frame`` (one op per frame).
        channels: 3 (grey repeated to 3) or 1.
        seed: augmentation seed; mixed with the process's torch seed so DataLoader workers
            (seeded per worker and epoch by PyTorch) draw different, reproducible parameters.
        clip_dtype: ``"float32"`` (normalised model input) or ``"uint8"`` (``(T, 1, H, W)``
            grey, to be normalised later by ``normalize_clips(batch, channels)``).
        fields: the model parts' per-window fields (:mod:`~mouse_facial_expressions.data.fields`),
            name -> field: item ``i`` holds ``field.item(self, i)`` under that name (e.g. ``aux``
            tabular features, ``au``/``au_mask`` action-unit targets, ``ref_clip`` a reference clip).
        load_clips: False for a model without the face: no frame is read, and ``clip``
            is a ``(1, C, 1, 1)`` placeholder (``(1, 1, 1, 1)`` uint8), so batches keep their shape.

    Item: ``{"clip": (T, C, H, W) float32 (or (T, 1, H, W) uint8), "soft": (2,) float32 [1-p, p], "label": int64,
    "video": str, "animal": str, "start_time": float, "end_time": float}``, plus the fields.
    """

    def __init__(
        self,
        frames_dir: str | Path,
        windows: pd.DataFrame,
        image_size: int,
        augment: bool = False,
        channels: int = 3,
        seed: int = 0,
        clip_dtype: str = "float32",
        augment_policy: str = "mild",
        augment_scope: str = "clip",
        fields: dict | None = None,
        load_clips: bool = True,
    ):
        if augment_policy not in POLICIES or augment_scope not in SCOPES:
            raise ValueError(f"augmentation: policy must be one of {list(POLICIES)} and scope one of {list(SCOPES)}, "
                             f"got {augment_policy!r} / {augment_scope!r}")
        if clip_dtype not in ("float32", "uint8"):
            raise ValueError(f"clip_dtype must be 'float32' or 'uint8', got {clip_dtype!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        missing = [c for c in WINDOW_COLUMNS if c not in windows.columns]
        if missing:
            raise ValueError(f"window table lacks columns {missing}")
        self.frames_dir = Path(frames_dir)
        self.windows = windows.reset_index(drop=True)
        self.image_size = int(image_size)
        self.augment = bool(augment)
        self.channels = int(channels)
        self.seed = int(seed)
        self.clip_dtype = clip_dtype
        self.augment_policy = augment_policy
        self.augment_scope = augment_scope
        # Plain arrays: cheap to index and to pickle into workers.
        self._video = self.windows["video"].astype(str).to_numpy()
        self._animal = self.windows["animal"].astype(str).to_numpy()
        self._label = self.windows["label"].to_numpy(dtype=np.int64)
        self._soft = self.windows["soft"].to_numpy(dtype=np.float32)
        self._start = self.windows["start_time"].to_numpy(dtype=np.float64)
        self._end = self.windows["end_time"].to_numpy(dtype=np.float64)
        lengths = {len(r) for r in self.windows["rows"]}
        if len(lengths) > 1:
            raise ValueError(f"window table: windows of different lengths {sorted(lengths)}")
        t = lengths.pop() if lengths else 0
        self._rows = np.asarray(self.windows["rows"].tolist(), dtype=np.int64).reshape(len(self.windows), t)  # (W, T)
        self.fields = dict(fields or {})
        for name, f in self.fields.items():
            f.check(len(self.windows), name)
        self.load_clips = bool(load_clips)
        self._maps: dict[str, np.ndarray] = {}
        self._gen: torch.Generator | None = None
        self._gen_key: tuple | None = None

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def labels(self) -> np.ndarray:
        """Hard label per window, ``(W,)`` int64."""
        return self._label

    def field_values(self, name: str) -> np.ndarray | None:
        """An array field's values ``(W, ...)`` (None when the dataset has no such field)."""
        f = self.fields.get(name)
        return getattr(f, "values", None)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"], state["_gen"], state["_gen_key"] = {}, None, None  # reopened per process
        state["windows"] = None  # workers read the arrays; the table stays in the main process
        return state

    def _frames(self, video: str) -> np.ndarray:
        m = self._maps.get(video)
        if m is None:
            m = self._maps[video] = open_frames(self.frames_dir, video)
        return m

    def _generator(self) -> torch.Generator:
        key = (os.getpid(), torch.initial_seed())  # a new worker or a re-seeded process: new generator
        if self._gen is None or self._gen_key != key:
            # Seeded from the process's torch seed only (PyTorch derives each worker's from the
            # loader's seeded generator), never from the pid, so reruns draw the same augmentation.
            self._gen = torch.Generator().manual_seed(hash((self.seed, torch.initial_seed())) & 0x7FFF_FFFF_FFFF_FFFF)
            self._gen_key = key
        return self._gen

    def _clip(self, video: str, rows: np.ndarray, i: int) -> torch.Tensor:
        arr = self._frames(video)
        if rows.max(initial=-1) >= len(arr):
            raise IndexError(f"{self.frames_dir / (video + '.npy')}: window {i} asks for row {int(rows.max())}, the file has {len(arr)}")
        frames = torch.from_numpy(np.ascontiguousarray(arr[rows]))  # (T, S, S) uint8
        clip = prepare_clip(frames, self.image_size, self.augment, self._generator() if self.augment else None,
                            self.augment_policy, self.augment_scope)
        if self.clip_dtype == "float32":
            clip = normalize_clips(clip, self.channels)  # (T, C, S, S) float32
        return clip

    def _placeholder(self) -> torch.Tensor:
        if self.clip_dtype == "uint8":
            return torch.zeros((1, 1, 1, 1), dtype=torch.uint8)
        return torch.zeros((1, self.channels, 1, 1), dtype=torch.float32)

    def __getitem__(self, i: int) -> dict:
        video, rows = self._video[i], self._rows[i]
        clip = self._clip(video, rows, i) if self.load_clips else self._placeholder()
        p1 = float(self._soft[i])
        extra = {name: f.item(self, i) for name, f in self.fields.items()}
        return {**extra,
            "clip": clip,  # (T, C, H, W) float32 or (T, 1, H, W) uint8
            "soft": torch.tensor([1.0 - p1, p1], dtype=torch.float32),
            "label": torch.tensor(self._label[i], dtype=torch.int64),
            "video": video,
            "animal": self._animal[i],
            "start_time": float(self._start[i]),
            "end_time": float(self._end[i]),
        }


def collate_clips(items: list[dict]) -> dict:
    """DataLoader ``collate_fn``: ``clip`` stacked as one tensor, the other numeric fields as
    numpy arrays, strings as lists.

    A worker hands each tensor of a batch to the main process through its own shared-memory
    segment; numpy arrays travel inside the pickle. With only the clip as a tensor, 2 workers
    deliver about twice as many batches per second (``bench/bench_loader.py``).
    :func:`batch_tensors` turns the numpy fields back into tensors.
    """
    batch = torch.utils.data.default_collate(items)
    return {k: v.numpy() if k not in ("clip", "ref_clip") and torch.is_tensor(v) else v for k, v in batch.items()}


def batch_tensors(batch: dict, device: torch.device | str | None = None) -> dict:
    """Numpy fields of a :func:`collate_clips` batch -> tensors (on ``device``); others as is."""
    return {k: torch.as_tensor(v, device=device) if isinstance(v, np.ndarray) else v for k, v in batch.items()}


#: Window columns a batch carries as they are (strings and times: ``ClipDataset`` items).
WINDOW_FIELDS = ("video", "animal", "start_time", "end_time", "label")


def prepare_batch(batch: dict, device, channels: int = 3) -> dict:
    """A loader batch ready for a model on ``device``: uint8 clips normalised (``clip``, ``ref_clip``),
    numpy fields as tensors, the window columns as they are."""
    out = batch_tensors({k: v for k, v in batch.items() if k not in WINDOW_FIELDS}, device)
    out.update({k: batch[k] for k in WINDOW_FIELDS if k in batch})
    for key in ("clip", "ref_clip"):
        if key in out:
            out[key] = normalize_clips(out[key].to(device, non_blocking=True), channels)
    return out



def baseline_frames(frames: pd.DataFrame, recording: int) -> np.ndarray:
    """Rows of ``frames`` from recording ``recording`` (the animals' own baseline), as a mask."""
    return (pd.to_numeric(frames["recording"], errors="coerce") == int(recording)).to_numpy()


def _task_au_targets(task_dir, spec) -> pd.DataFrame | None:
    """The task's ``au_targets.parquet`` when its spec has an AU target (else None)."""
    if spec.au is None:
        return None
    from mouse_facial_expressions.data.au_targets import AU_TARGETS_FILE, load_au_targets

    targets = load_au_targets(task_dir)
    if targets is None:
        raise FileNotFoundError(f"{task_dir}: task.yaml names AU targets but {AU_TARGETS_FILE} is missing; rerun `mfe task make`")
    return targets


class FoldContext:
    """What the model parts' dataset hooks read and write while one fold's datasets are built.

    Attributes:
        task_dir, task, spec, fold: the task folder, its loaded task and spec, the fold.
        references: role -> reference windows (a part's ``select_frames`` sets them).
        context: role -> windows scored beside the role's own (e.g. the test animals' baselines).
        out: extra entries of ``fold_datasets``' result (e.g. ``aux_columns``, ``aux_stats``).
        settings: the trained model's data settings when scoring (``hparams["data"]``; {} in training).
    """

    def __init__(self, task_dir, task, fold: int, num_frames: int, frame_stride: int, eval_step: int,
                 settings: dict | None = None):
        self.task_dir, self.task, self.spec, self.fold = Path(task_dir), task, task.spec, int(fold)
        self.settings = dict(settings or {})
        self.num_frames, self.frame_stride, self.eval_step = num_frames, frame_stride, eval_step
        self.references: dict[str, pd.DataFrame] = {}
        self.context: dict[str, pd.DataFrame] = {}
        self.out: dict = {}
        self._cache: dict = {}

    def windows(self, frames: pd.DataFrame, role: str) -> pd.DataFrame:
        """The role's windows of ``frames``: every start position in training, else every ``eval_step`` rows."""
        step = 1 if role == "train" else self.eval_step
        return make_windows(frames, self.num_frames, self.frame_stride, self.spec.max_gap_s, self.spec.short_runs, step=step)

    def _cached(self, key: str, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def au_targets(self) -> pd.DataFrame | None:
        """The task's ``au_targets.parquet`` when its spec names AU targets (else None)."""
        return self._cached("au_targets", lambda: _task_au_targets(self.task_dir, self.spec))

    def project_config(self):
        """The task's project configuration (``<project>/tasks/task-<v>``)."""
        from mouse_facial_expressions.config import load_config

        return self._cached("config", lambda: load_config(self.task_dir.resolve().parent.parent))

    def recordings(self) -> pd.Series:
        """Each video's recording number (``data.modalities.video_recordings``)."""
        return self._cached("recordings", lambda: video_recordings(self.task.frames))


def fold_datasets(
    task_dir: str | Path,
    fold: int,
    *,
    num_frames: int | None = None,
    frame_stride: int | None = None,
    image_size: int = 112,
    train_augmentation: bool = True,
    epoch_size: int | None = None,
    seed: int = 0,
    val_windows_per_video: int | None = None,
    test_windows_per_video: int | None = None,
    channels: int = 3,
    frames_dir: str | Path | None = None,
    eval_step: int | None = None,
    clip_dtype: str = "float32",
    augment_policy: str = "mild",
    augment_scope: str = "clip",
    sampler: str = "balanced",
    parts=None,
) -> dict:
    """Train/val/test clip datasets of one outer fold, and the balanced train sampler.

    Training windows: every start position (the sampler draws ``epoch_size`` per epoch;
    default: as many as there are non-overlapping training windows). Val/test windows:
    deterministic: every window whose start is ``eval_step`` rows after the previous one
    (default: the window span, i.e. all non-overlapping windows) or, with
    ``*_windows_per_video``, that many per video evenly spaced among those. ``None`` window
    settings come from the task spec. ``frames_dir`` overrides the store named in the task.
    ``clip_dtype="uint8"``: clips come un-normalised (see :class:`ClipDataset`).
    ``augment_policy`` / ``augment_scope``: see :class:`ClipDataset`. ``sampler``: ``balanced``
    (:class:`BalancedWindowSampler`) or ``uniform`` (:class:`UniformWindowSampler`).

    ``parts``: the model's parts, each with the dataset hooks ``name``, ``select_frames(ctx, role,
    frames)`` and ``dataset_fields(ctx, role, windows)`` (``models.parts.bound_parts``; default:
    the face alone). Each part chooses the frames a split scores (a baseline-relative model
    leaves out the baseline recording) and adds its per-window fields (``aux``, ``au``/``au_mask``,
    ``ref_clip``); :class:`FoldContext` is what they read. Without the face no frame is read. ``out["context"][role]`` holds windows scored beside a role's own (the test
    animals' baselines); parts may add entries (``aux_columns``, ``aux_stats``).
    """
    from mouse_facial_expressions.data.tasks import load_task, task_frames_dir

    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r} (choose from {', '.join(SAMPLERS)})")
    task = load_task(task_dir)
    spec = task.spec
    if not 0 <= fold < len(task.folds):
        raise ValueError(f"{task_dir}: fold {fold} does not exist (the task has {len(task.folds)} folds)")
    if "row" not in task.frames.columns:
        raise ValueError(f"{task_dir}: this task was made from a flat table, not a frame store: no clips to read")
    t = num_frames or spec.num_frames
    s = frame_stride or spec.frame_stride
    fdir = Path(frames_dir) if frames_dir is not None else (task_frames_dir(task_dir, spec) or Path(""))
    if frames_dir is None and not fdir.is_dir():  # project moved: try <project>/frames
        moved = Path(task_dir).resolve().parent.parent / "frames"
        if not moved.is_dir():
            raise FileNotFoundError(f"{task_dir}: its frame store {fdir} is missing (pass frames_dir=...)")
        fdir = moved
    span = window_span(t, s)
    f = task.folds[fold]
    parts = list(parts or [])
    ctx = FoldContext(task_dir, task, fold, t, s, eval_step or span)
    out: dict = {}
    for role in ("train", "val", "test"):
        frames = task.frames[task.frames["animal"].astype(str).isin(list(map(str, f[role])))]
        for part in parts:
            frames = part.select_frames(ctx, role, frames)
        w = ctx.windows(frames, role)
        if role != "train":
            w = select_per_video(w, val_windows_per_video if role == "val" else test_windows_per_video)
        fields = {}
        for part in parts:
            fields.update(part.dataset_fields(ctx, role, w))
        out[role] = ClipDataset(fdir, w, image_size, augment=train_augmentation and role == "train", channels=channels, seed=seed,
                                clip_dtype=clip_dtype, augment_policy=augment_policy, augment_scope=augment_scope,
                                fields=fields, load_clips=not parts or any(p.name == "face" for p in parts))
        if role in ctx.context:
            out.setdefault("context", {})[role] = ClipDataset(fdir, ctx.context[role], image_size, channels=channels, seed=seed,
                                                              clip_dtype=clip_dtype)
    out.update(ctx.out)
    train_w = out["train"].windows
    if epoch_size is None:
        epoch_size = max(1, int(np.ceil(len(train_w) / span)))
    out["train_sampler"] = SAMPLERS[sampler](train_w, epoch_size, seed=seed)
    return out
