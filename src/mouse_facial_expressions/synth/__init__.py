"""Synthetic cohorts with known ground truth (``mfe synth``).

``generate_cohort(out, preset="tiny", **overrides)`` writes a full project (raw videos,
metadata CSVs, DLC output, truth table); ``contact_sheet(project, png)`` draws frames with
their keypoints for both labels; ``truth_table(preset, **overrides)`` is the truth table alone
(nothing rendered), for oracle accuracies over many seeds. Names load lazily, so that ``mfe --help`` stays fast.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "generate_cohort": "cohort", "SCORER": "cohort", "summary": "cohort", "truth_table": "cohort",
    "PRESETS": "params", "SynthConfig": "params", "make_config": "params",
    "contact_sheet": "sheet",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
