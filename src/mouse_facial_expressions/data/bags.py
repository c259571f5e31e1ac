"""Bags of windows of one video, for attention pooling (``mfe train --weak attention``, ``models.parts.attention``)."""

from __future__ import annotations

import numpy as np
import torch

#: Windows per bag of ``--weak attention``.
DEFAULT_BAG = 8


class BagDataset(torch.utils.data.Dataset):
    """Bags of windows of one video, for ``--weak attention``.

    Item ``i`` is a bag built around training window ``i``: that window and ``bag - 1`` others of
    the same video, drawn without replacement (with replacement when the video has fewer), from
    a generator seeded by ``(seed, i, draw)`` where ``draw`` counts this dataset's items so far in
    this process (so a window drawn again in a later epoch gets another bag). Clips come from the
    wrapped dataset (augmented as it augments). The bag's ``soft`` and ``label`` are the window's,
    i.e. its video's (every window of a video carries the video's label before any E-step).

    Item: ``clip (K, T, C, H, W)`` (or uint8 ``(K, T, 1, H, W)``), ``soft (2,)``, ``label``,
    ``video``, ``animal``, ``start_time``/``end_time`` (of window ``i``).
    """

    def __init__(self, windows, bag: int = DEFAULT_BAG, seed: int = 0):
        if bag < 1:
            raise ValueError(f"weak_bag={bag} must be >= 1")
        self.windows, self.bag, self.seed = windows, int(bag), int(seed)
        videos = np.asarray(windows._video).astype(str)
        self._members = {v: np.flatnonzero(videos == v) for v in np.unique(videos)}
        self._video = videos
        self._draws = 0

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def labels(self):
        return self.windows.labels

    def bag_indices(self, i: int, draw: int = 0) -> np.ndarray:
        """Window indices of bag ``i`` (``(bag,)``; window ``i`` first)."""
        members = self._members[self._video[i]]
        others = members[members != i]
        rng = np.random.default_rng([self.seed, int(i), int(draw)])
        k = self.bag - 1
        pick = rng.choice(others, size=k, replace=len(others) < k) if k and len(others) else np.full(k, i)
        return np.concatenate([[i], pick]).astype(np.int64)

    def __getitem__(self, i: int) -> dict:
        self._draws += 1
        items = [self.windows[int(j)] for j in self.bag_indices(i, self._draws)]
        first = items[0]
        return {**first, "clip": torch.stack([it["clip"] for it in items])}  # (K, T, C, H, W)


class BagSampler(torch.utils.data.Sampler):
    """The first ``ceil(n / bag)`` indices of each epoch of ``sampler`` (which draws ``n``): the
    same number of clips per epoch as plain training, in bags; ``set_epoch`` is passed on."""

    def __init__(self, sampler, bag: int):
        self.sampler, self.bag = sampler, int(bag)
        self.balances_classes = getattr(sampler, "balances_classes", True)  # what the class weights ask

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.bag)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        for k, i in enumerate(self.sampler):
            if k >= len(self):
                return
            yield i
