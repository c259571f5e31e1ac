"""A tiny stand-in for ``data.datasets.fold_datasets`` (same item format), for training tests.

Class-1 clips are bright, class-0 clips dark, plus noise: trivially separable.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

ANIMALS = [f"m{i}" for i in range(8)]  # even: class 0, odd: class 1
FOLD_SPECS = [
    {"fold": 0, "train": ANIMALS[:4], "val": ANIMALS[4:6], "test": ANIMALS[6:]},
    {"fold": 1, "train": ANIMALS[4:], "val": ANIMALS[:2], "test": ANIMALS[2:4]},
]


class FakeClips(Dataset):
    def __init__(self, animals, windows_per_animal=6, num_frames=3, image_size=32, seed=0):
        self.items = [(a, w) for a in animals for w in range(windows_per_animal)]
        self.num_frames, self.image_size, self.seed = num_frames, image_size, seed
        self.labels = np.array([int(a[1:]) % 2 for a, _ in self.items])

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        animal, w = self.items[i]
        label = int(animal[1:]) % 2
        g = torch.Generator().manual_seed(self.seed * 100003 + i)
        grey = torch.randn(self.num_frames, 1, self.image_size, self.image_size, generator=g) * 0.3
        grey += 0.8 if label else -0.8
        return {
            "clip": grey.expand(-1, 3, -1, -1).contiguous(),  # (T, 3, H, W): grey repeated
            "soft": torch.tensor([0.0, 1.0] if label else [1.0, 0.0]),
            "label": torch.tensor(label, dtype=torch.int64),
            "video": f"{animal}_rec{1 + 3 * label}", "animal": animal,
            "start_time": float(w), "end_time": float(w) + 0.5,
        }


def fake_fold_datasets(task_dir, fold, *, num_frames, frame_stride, image_size, train_augmentation,
                       epoch_size, seed, val_windows_per_video, test_windows_per_video, clip_dtype="float32",
                       augment_policy="mild", augment_scope="clip", sampler="balanced", parts=None):
    """Float clips whatever ``clip_dtype`` says: normalisation is a no-op on float input.
    No augmentation and no sampler (the recipe's augmentation and sampler settings are ignored)."""
    spec = FOLD_SPECS[fold]
    return {
        "train": FakeClips(spec["train"], 6, num_frames, image_size, seed),
        "val": FakeClips(spec["val"], 4, num_frames, image_size, seed + 1),
        "test": FakeClips(spec["test"], 4, num_frames, image_size, seed + 2),
        "train_sampler": None,
    }


class FakeRelativeClips(Dataset):
    """Baseline-relative stand-in: each animal has its own brightness (uniform in -1..1, larger
    than the effect), its baseline clips are that brightness plus noise, and its later clips add
    +1.5 when the animal is sick (odd number). Absolute brightness is confounded by the animal;
    the change from its own baseline is not. ``with_ref``: items carry a baseline ``ref_clip``."""

    def __init__(self, animals, windows_per_animal=6, num_frames=3, image_size=32, seed=0, baseline=False, with_ref=True):
        self.items = [(a, w) for a in animals for w in range(windows_per_animal)]
        self.num_frames, self.image_size, self.seed = num_frames, image_size, seed
        self.baseline, self.with_ref = baseline, with_ref
        self.labels = np.array([0 if baseline else int(a[1:]) % 2 for a, _ in self.items])

    def __len__(self):
        return len(self.items)

    def _clip(self, animal, w, baseline, salt):
        level = float(np.random.default_rng(int(animal[1:]) + 1000).uniform(-1, 1))  # the animal's own brightness
        sick = 0.0 if baseline else 1.5 * (int(animal[1:]) % 2)
        g = torch.Generator().manual_seed(self.seed * 100003 + salt * 7919 + w * 31 + int(animal[1:]))
        grey = torch.randn(self.num_frames, 1, self.image_size, self.image_size, generator=g) * 0.3 + level + sick
        return grey.expand(-1, 3, -1, -1).contiguous()

    def __getitem__(self, i):
        animal, w = self.items[i]
        label = int(self.labels[i])
        item = {
            "clip": self._clip(animal, w, self.baseline, 1),
            "soft": torch.tensor([0.0, 1.0] if label else [1.0, 0.0]),
            "label": torch.tensor(label, dtype=torch.int64),
            "video": f"{animal}_rec{1 if self.baseline else 4}", "animal": animal,
            "start_time": float(w), "end_time": float(w) + 0.5,
        }
        if self.with_ref:
            item["ref_clip"] = self._clip(animal, (w + 3) % 6, True, 2)
        return item


def fake_relative_datasets(task_dir, fold, *, num_frames, frame_stride, image_size, train_augmentation,
                           epoch_size, seed, val_windows_per_video, test_windows_per_video, clip_dtype="float32",
                           augment_policy="mild", augment_scope="clip", sampler="balanced", parts=None):
    """:func:`fake_fold_datasets` for baseline-relative runs (items carry ``ref_clip``; the test
    animals' baseline windows are the test pass's context)."""
    assert [p.options for p in parts if p.name == "relative"] == [{"recording": 1}]
    spec = FOLD_SPECS[fold]
    return {
        "train": FakeRelativeClips(spec["train"], 6, num_frames, image_size, seed),
        "val": FakeRelativeClips(spec["val"], 4, num_frames, image_size, seed + 1),
        "test": FakeRelativeClips(spec["test"], 4, num_frames, image_size, seed + 2, with_ref=False),
        "context": {"test": FakeRelativeClips(spec["test"], 4, num_frames, image_size, seed + 3, baseline=True, with_ref=False)},
        "train_sampler": None,
    }


class FakeBoutClips(Dataset):
    """Weak-supervision stand-in (``--weak em``): a sick animal (odd number) is bright only in its
    bout windows (even window index: half of them); its other windows look like a control's
    (dark). Labels are the video's (every window of a sick animal is labelled 1). Carries the
    arrays the E-step reads (``_soft``, ``_video``, ``labels``, ``_start``)."""

    def __init__(self, animals, windows_per_animal=6, num_frames=3, image_size=32, seed=0):
        self.items = [(a, w) for a in animals for w in range(windows_per_animal)]
        self.num_frames, self.image_size, self.seed = num_frames, image_size, seed
        self.labels = np.array([int(a[1:]) % 2 for a, _ in self.items])
        self.bout = np.array([bool(int(a[1:]) % 2 and w % 2 == 0) for a, w in self.items])
        self._soft = self.labels.astype(np.float32)
        self._video = np.array([f"{a}_rec{1 + 3 * (int(a[1:]) % 2)}" for a, _ in self.items])
        self._start = np.array([float(w) for _, w in self.items])

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        animal, w = self.items[i]
        label = int(self.labels[i])
        g = torch.Generator().manual_seed(self.seed * 100003 + i)
        grey = torch.randn(self.num_frames, 1, self.image_size, self.image_size, generator=g) * 0.3
        grey += 0.8 if self.bout[i] else -0.8
        p1 = float(self._soft[i])
        return {
            "clip": grey.expand(-1, 3, -1, -1).contiguous(),
            "soft": torch.tensor([1.0 - p1, p1]),
            "label": torch.tensor(label, dtype=torch.int64),
            "video": str(self._video[i]), "animal": animal,
            "start_time": float(w), "end_time": float(w) + 0.5,
        }


#: The training datasets :func:`fake_bout_datasets` made, by fold (tests read their targets).
MADE_BOUT_TRAIN: dict = {}


def fake_bout_datasets(task_dir, fold, *, num_frames, frame_stride, image_size, train_augmentation,
                       epoch_size, seed, val_windows_per_video, test_windows_per_video, clip_dtype="float32",
                       augment_policy="mild", augment_scope="clip", sampler="balanced", parts=None):
    """:func:`fake_fold_datasets` with :class:`FakeBoutClips` (sick animals affected in half their windows)."""
    spec = FOLD_SPECS[fold]
    train = FakeBoutClips(spec["train"], 6, num_frames, image_size, seed)
    MADE_BOUT_TRAIN[fold] = train
    return {
        "train": train,
        "val": FakeBoutClips(spec["val"], 4, num_frames, image_size, seed + 1),
        "test": FakeBoutClips(spec["test"], 4, num_frames, image_size, seed + 2),
        "train_sampler": None,
    }
