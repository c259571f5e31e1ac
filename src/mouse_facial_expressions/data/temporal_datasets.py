"""Names from the original advanced-model README (``TemporalMouseDataset``, ``create_soft_label``).

``TemporalMouseDataset`` is :class:`~mouse_facial_expressions.data.datasets.ClipDataset`:
sequences of ``num_frames`` frames in temporal order, from real runs of the frame store, with
soft labels. ``create_soft_label(hard_label, smoothing)`` gives ``[1-s, s]`` for label 0 and
``[s, 1-s]`` for label 1, as in the original.
"""

from __future__ import annotations

from mouse_facial_expressions.data.datasets import BalancedWindowSampler, ClipDataset, fold_datasets
from mouse_facial_expressions.data.soft_labels import create_soft_label


class TemporalMouseDataset(ClipDataset):
    """The original name of :class:`ClipDataset` (same arguments, same items)."""


__all__ = ["BalancedWindowSampler", "ClipDataset", "TemporalMouseDataset", "create_soft_label", "fold_datasets"]
