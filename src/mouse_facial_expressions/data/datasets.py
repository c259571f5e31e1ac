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
from torch.utils.data import Dataset, Sampler

from mouse_facial_expressions.data._store import open_frames
from mouse_facial_expressions.data.augment import GREY_MEAN, GREY_STD, NORM_MEAN, NORM_STD, POLICIES, SCOPES, normalize_clips, prepare_clip
from mouse_facial_expressions.data.modalities import feature_stats, modality_features, parse_modalities, video_recordings
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
        baseline: baseline-relative training (``--baseline-recording``): the window table of the
            baseline recording's windows of the *same split's* animals. Each item then also holds
            ``ref_clip``: one of the same animal's baseline windows (a random one when
            augmenting, else a fixed one per item), never the item's own window when the animal
            has another. Every animal of ``windows`` must have one.
        aux: ``(W, F)`` raw features of the other modalities, row ``i`` for window ``i``
            (:mod:`~mouse_facial_expressions.data.modalities`; NaN = not measured); items then hold ``aux``.
        load_clips: False for a model without the face modality: no frame is read, and ``clip``
            is a ``(1, C, 1, 1)`` placeholder (``(1, 1, 1, 1)`` uint8), so batches keep their shape.
        au: ``(W, 5, 3)`` Mouse Grimace Scale targets, row ``i`` for window ``i``: per action unit
            (``io.ratings.AUS`` order) the raters' distribution over the scores 0, 1, 2
            (:func:`data.au_targets.match_windows`); items then hold ``au`` and ``au_mask``.
        au_mask: ``(W, 5)``: 1 where window ``i`` has a target for that AU, else 0 (needed with ``au``).

    Item: ``{"clip": (T, C, H, W) float32 (or (T, 1, H, W) uint8), "soft": (2,) float32 [1-p, p], "label": int64,
    "video": str, "animal": str, "start_time": float, "end_time": float}``, plus ``"au": (5, 3) float32,
    "au_mask": (5,) float32`` with AU targets.
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
        baseline: pd.DataFrame | None = None,
        aux: np.ndarray | None = None,
        load_clips: bool = True,
        au: np.ndarray | None = None,
        au_mask: np.ndarray | None = None,
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
        self._ref: dict[str, np.ndarray] | None = None  # animal -> indices into the baseline arrays
        if baseline is not None:
            b = baseline.reset_index(drop=True)
            self._ref_video = b["video"].astype(str).to_numpy()
            self._ref_rows = np.asarray(b["rows"].tolist(), dtype=np.int64).reshape(len(b), t)
            animals = b["animal"].astype(str).to_numpy()
            self._ref = {a: np.flatnonzero(animals == a) for a in np.unique(animals)}
            lacking = sorted(set(self._animal) - set(self._ref))
            if lacking:
                raise ValueError(f"baseline-relative windows: animal(s) {', '.join(lacking)} have no baseline window in their split")
        self._aux = None if aux is None else np.asarray(aux, dtype=np.float32)
        if self._aux is not None and (self._aux.ndim != 2 or len(self._aux) != len(self.windows)):
            raise ValueError(f"aux features: {self._aux.shape} for {len(self.windows)} windows (one row per window)")
        self._au = None if au is None else np.asarray(au, dtype=np.float32)
        self._au_mask = None if au_mask is None else np.asarray(au_mask, dtype=np.float32)
        n = len(self.windows)
        if self._au is not None and (self._au_mask is None or self._au.ndim != 3 or self._au.shape[::2] != (n, 3)
                                     or self._au_mask.shape != self._au.shape[:2]):
            raise ValueError(f"AU targets: au {self._au.shape} and au_mask {None if self._au_mask is None else self._au_mask.shape} "
                             f"for {len(self.windows)} windows (expected (W, 5, 3) and (W, 5))")
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

    @property
    def aux(self) -> np.ndarray | None:
        """The other modalities' raw features, ``(W, F)`` float32 (None without them)."""
        return self._aux

    @property
    def au_targets(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Mouse Grimace Scale targets ``((W, 5, 3), (W, 5) mask)`` float32 (None without them)."""
        return None if self._au is None else (self._au, self._au_mask)

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

    def reference_index(self, i: int) -> int:
        """Index (into the baseline windows) of item ``i``'s reference window: a random draw of the
        same animal's when augmenting, else a fixed one; never the item's own window if avoidable."""
        choices = self._ref[self._animal[i]]
        if self.augment:
            k = int(torch.randint(len(choices), (1,), generator=self._generator()))
        else:
            k = i % len(choices)
        j = int(choices[k])
        if len(choices) > 1 and self._ref_video[j] == self._video[i] and self._ref_rows[j][0] == self._rows[i][0]:
            j = int(choices[(k + 1) % len(choices)])
        return j

    def _placeholder(self) -> torch.Tensor:
        if self.clip_dtype == "uint8":
            return torch.zeros((1, 1, 1, 1), dtype=torch.uint8)
        return torch.zeros((1, self.channels, 1, 1), dtype=torch.float32)

    def __getitem__(self, i: int) -> dict:
        video, rows = self._video[i], self._rows[i]
        clip = self._clip(video, rows, i) if self.load_clips else self._placeholder()
        p1 = float(self._soft[i])
        extra = {}
        if self._ref is not None:
            j = self.reference_index(i)
            extra["ref_clip"] = self._clip(self._ref_video[j], self._ref_rows[j], i)
        if self._aux is not None:
            extra["aux"] = torch.from_numpy(self._aux[i])
        if self._au is not None:  # Mouse Grimace Scale targets (data/au_targets.py)
            extra["au"] = torch.from_numpy(self._au[i])  # (5, 3)
            extra["au_mask"] = torch.from_numpy(self._au_mask[i])  # (5,)
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


class _EpochSampler(Sampler[int]):
    """``epoch_size`` indices per epoch from :meth:`indices`, seeded by ``(seed, epoch)``;
    call :meth:`set_epoch` before each epoch for fresh draws."""

    def __init__(self, epoch_size: int, seed: int = 0):
        self.epoch_size = int(epoch_size)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.epoch_size

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def indices(self) -> np.ndarray:
        raise NotImplementedError

    def __iter__(self):
        return iter(self.indices().tolist())


class BalancedWindowSampler(_EpochSampler):
    """Draws ``epoch_size`` window indices per epoch: a class uniformly, then a video of
    that class uniformly, then a window of that video uniformly (with replacement).

    Seeded: the same ``(seed, epoch)`` gives the same indices; call :meth:`set_epoch`
    before each epoch for fresh draws.
    """

    balances_classes = True

    def __init__(self, windows: pd.DataFrame, epoch_size: int, seed: int = 0):
        if len(windows) == 0:
            raise ValueError("BalancedWindowSampler: no windows to sample")
        super().__init__(epoch_size, seed)
        labels = windows["label"].to_numpy(dtype=np.int64)
        # A "video" here is a (video, label) pair, in case rules label parts of a video differently.
        videos = (windows["video"].astype(str) + "\x00" + windows["label"].astype(str)).to_numpy()
        order = np.lexsort((np.arange(len(videos)), videos))  # window indices grouped by video
        vid_sorted = videos[order]
        starts = np.flatnonzero(np.r_[True, vid_sorted[1:] != vid_sorted[:-1]])
        self._order = order
        self._vstart = starts
        self._vcount = np.diff(np.r_[starts, len(order)])
        vlabel = labels[order][starts]  # label of each video (its first window)
        self.classes_ = np.unique(vlabel)
        self._class_videos = [np.flatnonzero(vlabel == c) for c in self.classes_]

    def indices(self) -> np.ndarray:
        """This epoch's window indices, ``(epoch_size,)``."""
        rng = self._rng()
        cls = rng.integers(len(self.classes_), size=self.epoch_size)
        vids = np.empty(self.epoch_size, dtype=np.int64)
        for k, members in enumerate(self._class_videos):
            sel = cls == k
            vids[sel] = members[rng.integers(len(members), size=int(sel.sum()))]
        within = np.floor(rng.random(self.epoch_size) * self._vcount[vids]).astype(np.int64)
        return self._order[self._vstart[vids] + within]


class UniformWindowSampler(_EpochSampler):
    """Draws ``epoch_size`` window indices per epoch uniformly over all windows, without
    replacement inside an epoch (a fresh permutation, repeated when ``epoch_size`` exceeds
    the windows): the original's ``shuffle=True``. Classes and videos are drawn in proportion
    to their windows, so class weights (cross-entropy) correct the imbalance instead.

    Seeded like :class:`BalancedWindowSampler`.
    """

    balances_classes = False

    def __init__(self, windows: pd.DataFrame, epoch_size: int, seed: int = 0):
        if len(windows) == 0:
            raise ValueError("UniformWindowSampler: no windows to sample")
        super().__init__(epoch_size, seed)
        self.n = len(windows)

    def indices(self) -> np.ndarray:
        """This epoch's window indices, ``(epoch_size,)``."""
        rng = self._rng()
        reps = -(-self.epoch_size // self.n)  # ceil
        return np.concatenate([rng.permutation(self.n) for _ in range(reps)])[: self.epoch_size]


#: ``sampler=`` name -> training sampler class.
SAMPLERS = {"balanced": BalancedWindowSampler, "uniform": UniformWindowSampler}


def _other_recordings_hold_both_classes(frames: pd.DataFrame) -> bool:
    labels = set(pd.to_numeric(frames["label"], errors="coerce").dropna().astype(int))
    return {0, 1} <= labels


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
    baseline_recording: int | None = None,
    modalities: tuple[str, ...] = ("face",),
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

    ``baseline_recording=K`` (baseline-relative models): each split's items carry a reference
    window from the same animal's recording K, drawn from that split's own frames only (an
    animal's baseline never crosses a fold boundary). Items are the other recordings' windows
    (a baseline scored against itself would be right by construction), in training too when
    those hold both classes (controls' later recordings labelled 0, as in ``task1_table``):
    a baseline window against another window of the same video teaches "same video = no
    change", a shortcut that calls every control's later recording a change (measured: saline
    rec4 at p1 0.45-0.56 on the demo cohort). Otherwise (``task1``) training keeps recording K's
    windows as its "no change" items, with a warning. ``out["test_baseline"]`` holds the test
    animals' recording-K windows, whose mean embedding is each animal's reference at scoring.

    ``modalities`` other than ``face`` (multimodal fusion): every split's items carry ``aux``,
    the raw features of those modalities (:func:`data.modalities.modality_features`, read from
    the task's project: ``<project>/tasks/task-<v>``); ``out["aux_columns"]`` names them per
    modality and ``out["aux_stats"]`` holds the training windows' mean and SD. Without ``face``
    no frame is read.

    A task with Mouse Grimace Scale targets (``task.yaml`` ``au``, ``au_targets.parquet``): every
    split's items carry ``au`` and ``au_mask`` (:func:`data.au_targets.match_windows` with the
    task's ``match`` and ``tolerance_s``); windows without a rated frame nearby get mask 0.
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
    out = {}
    au_targets = _task_au_targets(task_dir, spec)
    tabular = [m for m in parse_modalities(modalities) if m != "face"]
    if tabular:
        from mouse_facial_expressions.config import load_config

        project_cfg = load_config(Path(task_dir).resolve().parent.parent)
        recordings = video_recordings(task.frames) if "physiology" in tabular else None
    if baseline_recording is not None and "recording" not in task.frames.columns:
        raise ValueError(f"{task_dir}: --baseline-recording needs a 'recording' column in frames.parquet; this task has none")
    for role in ("train", "val", "test"):
        frames = task.frames[task.frames["animal"].astype(str).isin(list(map(str, f[role])))]
        step = 1 if role == "train" else (eval_step or span)
        base = None
        if baseline_recording is not None:
            is_base = baseline_frames(frames, baseline_recording)
            base = make_windows(frames[is_base], t, s, spec.max_gap_s, spec.short_runs, step=step)
            lacking = sorted(set(frames["animal"].astype(str)) - set(base["animal"].astype(str)))
            if lacking:
                raise ValueError(f"{task_dir}: fold {fold} {role} animal(s) {', '.join(lacking)} have no window of recording "
                                 f"{baseline_recording}, their baseline: exclude them from the task, or choose another --baseline-recording")
            if role != "train" or _other_recordings_hold_both_classes(frames[~is_base]):
                frames = frames[~is_base]
            else:
                log.warning("%s: fold %d: the training animals' recordings other than %d hold one class only, so the "
                            "baseline windows themselves are the 'no change' examples; such a pair often comes from one "
                            "video, and the model can learn 'another video = change'. Label control animals' later "
                            "recordings (e.g. --preset task1_table) for a reliable baseline-relative model",
                            task_dir, fold, baseline_recording)
        w = make_windows(frames, t, s, spec.max_gap_s, spec.short_runs, step=step)
        if role == "val":
            w = select_per_video(w, val_windows_per_video)
        elif role == "test":
            w = select_per_video(w, test_windows_per_video)
        aux = None
        if tabular:
            feats, out["aux_columns"] = modality_features(project_cfg, w, modalities, recordings)
            aux = feats.to_numpy(np.float32)
            if role == "train":
                out["aux_stats"] = feature_stats(feats)
        au = {}
        if au_targets is not None:
            from mouse_facial_expressions.data.au_targets import match_windows

            au = dict(zip(("au", "au_mask"), match_windows(w, au_targets, spec.au.tolerance_s, spec.au.match)))
        out[role] = ClipDataset(fdir, w, image_size, augment=train_augmentation and role == "train", channels=channels, seed=seed,
                                clip_dtype=clip_dtype, augment_policy=augment_policy, augment_scope=augment_scope,
                                baseline=base if role != "test" else None,  # test: the animal's mean reference (below)
                                aux=aux, load_clips="face" in modalities, **au)
        if role == "test" and base is not None:
            out["test_baseline"] = ClipDataset(fdir, base, image_size, channels=channels, seed=seed, clip_dtype=clip_dtype)
    train_w = out["train"].windows
    if epoch_size is None:
        epoch_size = max(1, int(np.ceil(len(train_w) / span)))
    out["train_sampler"] = SAMPLERS[sampler](train_w, epoch_size, seed=seed)
    return out
