"""A realistic fake predictions table (ARCHITECTURE.md "Predictions") + metadata, seeded.

12 animals (f/m ids), half LPS 'high' and half 'saline', 2 cohorts, 3 folds grouped by
animal; videos ``<animal>_rec1_preinjection`` (label 0) and, for treated animals,
``<animal>_rec4_4h-postinjection`` (label 1); windows every ``step`` s over ``duration`` s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ANIMALS = ["f1", "f3", "f7", "f8", "f12", "f15", "m3", "m4", "m5", "m7", "m9", "m12"]


def fake_predictions(
    seed: int = 0,
    animals: list[str] = ANIMALS,
    duration: float = 30.0,
    step: float = 1.0,
    window: float = 2.0,
    effect: float = 1.6,
    batch_shift: float = 0.0,
    unlabelled: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(predictions, metadata)``; ``batch_shift`` raises cohort B's logits (a batch effect)."""
    rng = np.random.default_rng(seed)
    rows, meta = [], []
    for i, animal in enumerate(animals):
        treatment = "high" if i % 2 == 0 else "saline"
        cohort = "A" if (i // 2) % 2 == 0 else "B"
        fold = i % 3
        offset = rng.normal(0, 0.7)
        videos = [(1, "preinjection", 0)]
        if treatment == "high":
            videos.append((4, "4h-postinjection", 1))
        for rec, name, label in videos:
            video = f"{animal}_rec{rec}_{name}"
            meta.append({"video": video, "animal": animal, "recording": rec, "treatment": treatment, "cohort": cohort})
            starts = np.arange(0.0, duration - window + 1e-9, step)
            noise = np.convolve(rng.normal(0, 1.2, len(starts) + 4), np.ones(5) / 5 ** 0.5, "valid")  # smooth over time
            logit = (effect if label else -effect) + offset + noise + (batch_shift if cohort == "B" else 0.0)
            p1 = 1 / (1 + np.exp(-logit))
            for s, p in zip(starts, p1):
                rows.append({"fold": fold, "video": video, "animal": animal, "start_time": round(s, 3),
                             "end_time": round(s + window, 3), "label": np.nan if unlabelled else label, "p1": float(p)})
    return pd.DataFrame(rows), pd.DataFrame(meta)
