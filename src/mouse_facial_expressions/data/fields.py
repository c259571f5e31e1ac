"""Per-window dataset fields beyond the clip: what a model part reads from each item.

A part's ``dataset_fields`` hook (``models.parts.base.Part``) returns name -> field for a split's
windows; :class:`~mouse_facial_expressions.data.datasets.ClipDataset` puts ``field.item(ds, i)``
under that name in item ``i``. Two kinds cover every part so far: an array with one row per
window (:class:`ArrayField`: tabular features, action-unit targets) and a clip of another window
(:class:`ReferenceField`: the same animal's baseline window).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


class ArrayField:
    """Row ``i`` of an array ``(W, ...)`` as item ``i``'s value (float32)."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float32)

    def check(self, n: int, name: str) -> None:
        if len(self.values) != n:
            raise ValueError(f"dataset field {name}: {self.values.shape} for {n} windows (one row per window)")

    def item(self, ds, i: int) -> torch.Tensor:
        return torch.from_numpy(self.values[i])


class ReferenceField:
    """A clip of one of the same animal's reference windows (``reference``: a window table).

    A random draw of the animal's windows when the dataset augments, else a fixed one per item;
    never the item's own window when the animal has another. Every animal of ``windows`` needs one.
    """

    def __init__(self, reference: pd.DataFrame, windows: pd.DataFrame):
        b = reference.reset_index(drop=True)
        t = len(b["rows"].iloc[0]) if len(b) else 0
        self.video = b["video"].astype(str).to_numpy()
        self.rows = np.asarray(b["rows"].tolist(), dtype=np.int64).reshape(len(b), t)
        animals = b["animal"].astype(str).to_numpy()
        self.by_animal = {a: np.flatnonzero(animals == a) for a in np.unique(animals)}
        lacking = sorted(set(windows["animal"].astype(str)) - set(self.by_animal))
        if lacking:
            raise ValueError(f"reference windows: animal(s) {', '.join(lacking)} have no reference window in their split")

    def check(self, n: int, name: str) -> None:
        """Any number of windows: references are looked up by animal."""

    def index(self, ds, i: int) -> int:
        """Index (into the reference windows) of item ``i``'s reference."""
        choices = self.by_animal[ds._animal[i]]
        if ds.augment:
            k = int(torch.randint(len(choices), (1,), generator=ds._generator()))
        else:
            k = i % len(choices)
        j = int(choices[k])
        if len(choices) > 1 and self.video[j] == ds._video[i] and self.rows[j][0] == ds._rows[i][0]:
            j = int(choices[(k + 1) % len(choices)])
        return j

    def item(self, ds, i: int) -> torch.Tensor:
        j = self.index(ds, i)
        return ds._clip(self.video[j], self.rows[j], i)
