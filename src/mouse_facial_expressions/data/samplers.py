"""Training window samplers: which windows an epoch draws (balanced by class and video, or uniform)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch.utils.data import Sampler


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
