"""Body temperature and weight of a synthetic cohort: the physiology modality of ``mfe synth``.

One measurement per animal and recording (``metadata/physiology.csv``). Each animal has its
own normal temperature (``TEMP_NORMAL`` +- ``TEMP_ANIMAL_SD``), weight (``WEIGHT_RANGE``) and
responsiveness (``GAIN_RANGE``: weak responders barely change). A recording's mean latent
intensity above ``base_intensity``, times the gain and ``physiology_effect`` (0 = physiology
carries no information), lowers the temperature (``TEMP_DROP`` C per unit) and the weight
(``WEIGHT_LOSS`` of it per unit); measurement noise (``TEMP_NOISE_SD``, ``WEIGHT_NOISE_SD``)
is of the size of a weak responder's change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mouse_facial_expressions.synth.params import SynthConfig

#: Normal body temperature (C), its SD between animals, and the measurement noise SD.
TEMP_NORMAL, TEMP_ANIMAL_SD, TEMP_NOISE_SD = 37.3, 0.3, 0.25
#: Temperature drop (C) per unit of intensity above base (x gain): 0.5 (the default
#: effect_size) -> 1.5 C at gain 1, up to ~2 C for the strongest responders.
TEMP_DROP = 3.0
#: Animals' weights (g, uniform), fraction lost per unit of intensity above base, noise SD (g).
WEIGHT_RANGE, WEIGHT_LOSS, WEIGHT_NOISE_SD = (22.0, 30.0), 0.12, 0.3
#: Per-animal responsiveness (uniform): multiplies the drop in temperature and weight.
GAIN_RANGE = (0.1, 1.3)
#: First entries of the random streams ``[seed, 32, animal(, recording)]``.
PHYSIOLOGY_TAG = 32


def physiology_table(cfg: SynthConfig, takes: pd.DataFrame) -> pd.DataFrame:
    """One row per row of ``takes`` (``animal, recording, intensity``: the video's mean latent
    intensity): ``animal, recording, temperature_c, weight_g`` (measured, 0.1 rounded) and the
    truth ``gain, excess`` (intensity above base), ``temperature_true, weight_true``,
    ``temperature_normal, weight_normal``. Every random number is drawn whatever the
    intensity and ``physiology_effect``."""
    rows = []
    for t in takes.itertuples(index=False):
        number, rec = int(str(t.animal)[1:]), int(t.recording)
        r_animal = np.random.default_rng([cfg.seed, PHYSIOLOGY_TAG, number])
        temp0 = TEMP_NORMAL + r_animal.normal(0.0, TEMP_ANIMAL_SD)
        weight0 = r_animal.uniform(*WEIGHT_RANGE)
        gain = r_animal.uniform(*GAIN_RANGE)
        r_rec = np.random.default_rng([cfg.seed, PHYSIOLOGY_TAG, number, rec])
        excess = max(0.0, float(t.intensity) - cfg.base_intensity)
        drop = cfg.physiology_effect * gain * excess
        temp, weight = temp0 - TEMP_DROP * drop, weight0 * (1.0 - WEIGHT_LOSS * drop)
        rows.append({
            "animal": t.animal, "recording": rec,
            "temperature_c": round(temp + r_rec.normal(0.0, TEMP_NOISE_SD), 1),
            "weight_g": round(weight + r_rec.normal(0.0, WEIGHT_NOISE_SD), 1),
            "gain": gain, "excess": excess, "temperature_true": temp, "weight_true": weight,
            "temperature_normal": temp0, "weight_normal": weight0,
        })
    return pd.DataFrame(rows)


#: Columns of ``metadata/physiology.csv`` (the rest of :func:`physiology_table` is truth).
MEASURED = ["animal", "recording", "temperature_c", "weight_g"]
