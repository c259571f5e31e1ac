"""Move a run's operating point to a new cohort: the math of ``--recalibrate controls``.

A model applied to another cohort can keep its ranking (high AUROC inside the cohort) while
the scores as a whole move, so the fixed threshold calls the cohort's controls positive (the
original's 45% zero-shot result). ``controls`` recalibration moves the threshold by as much as
the new cohort's control animals moved, in logit units, against where the run's own
cross-validated predictions (``<run>/predictions.csv``, the training animals scored by the
fold that did not train on them) place the training controls::

    offset        = median(logit(new controls' mean p1)) - median(logit(training controls' mean p1))
    new threshold = sigmoid(logit(threshold) + offset)

One score per animal (the mean p1 of its rows at animal level); the median over animals, so
one odd animal does not move the threshold. New-cohort controls are the animals whose
``treatment`` is a control treatment (:data:`evaluation.batch_effects.CONTROL_TREATMENTS`):
this uses the control animals' treatment labels, and the metrics of those same animals after
recalibration are not an independent test. Training controls: the control-treated animals
when the run's metadata names them, else its label-0 rows.

Pure functions on score tables (animal-level tables as ``evaluation.aggregate.to_animal``
gives them); ``report.runs.report_zeroshot`` applies them, and ``inference.adabn`` holds the
label-free alternative.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mouse_facial_expressions.evaluation import metrics as M
from mouse_facial_expressions.evaluation.batch_effects import CONTROL_TREATMENTS, logit

#: Recalibration methods of ``mfe evaluate RUN --task X --recalibrate``.
METHODS = ("controls", "adabn")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _is_control(treatment: pd.Series, control_treatments=CONTROL_TREATMENTS) -> pd.Series:
    return treatment.astype(str).str.strip().str.lower().isin([c.lower() for c in control_treatments])


def control_animal_scores(animals: pd.DataFrame, *, allow_labels: bool = False,
                          control_treatments=CONTROL_TREATMENTS) -> tuple[pd.Series, str]:
    """The mean p1 of each control animal, and where the controls came from.

    Controls: animals whose ``treatment`` is a control treatment (``"treatment"``); with
    ``allow_labels`` and no such animal, the label-0 rows (``"label"``).

    Raises:
        ValueError: no control animal (the message says what was found).
    """
    if "treatment" in animals.columns:
        ctrl = animals[_is_control(animals["treatment"], control_treatments)]
        if len(ctrl):
            return ctrl.groupby("animal")["p1"].mean().astype(float), "treatment"
    if allow_labels and "label" in animals.columns and (animals["label"] == 0).any():
        return animals[animals["label"] == 0].groupby("animal")["p1"].mean().astype(float), "label"
    found = sorted(map(str, animals["treatment"].dropna().unique())) if "treatment" in animals.columns else []
    raise ValueError(
        "no control animals: recalibrating on controls needs animals whose 'treatment' is one of "
        f"{', '.join(control_treatments)} (treatments found: {', '.join(found) or 'no treatment column'}). "
        "Without control animals use --recalibrate adabn (no labels needed)")


def controls_threshold(new_animals: pd.DataFrame, reference_animals: pd.DataFrame, threshold: float = M.THRESHOLD,
                       *, control_treatments=CONTROL_TREATMENTS) -> dict:
    """The threshold that sits as far above the new cohort's controls as ``threshold`` sits above
    the training controls (module docstring).

    Args:
        new_animals: animal-level scores of the new cohort (``animal, p1, treatment``).
        reference_animals: animal-level cross-validated scores of the training animals
            (``animal, p1`` and ``treatment`` or ``label``).
        threshold: the run's threshold on p1.

    Returns:
        ``method, threshold, new_threshold, offset_logit, new_controls_median_logit,
        reference_controls_median_logit`` (and their p1), ``n_new_controls,
        n_reference_controls, new_control_animals, new_controls_from, reference_controls_from``
        and ``uses`` (what labels it used, in words).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold}")
    new, new_from = control_animal_scores(new_animals, control_treatments=control_treatments)
    ref, ref_from = control_animal_scores(reference_animals, allow_labels=True, control_treatments=control_treatments)
    new_med = float(np.median(logit(new.to_numpy())))
    ref_med = float(np.median(logit(ref.to_numpy())))
    offset = new_med - ref_med
    new_thr = float(sigmoid(float(logit(threshold)) + offset))
    treatments = sorted(set(new_animals.loc[new_animals["animal"].isin(new.index), "treatment"].astype(str)))
    return {
        "method": "controls",
        "threshold": float(threshold),
        "new_threshold": new_thr,
        "offset_logit": offset,
        "new_controls_median_logit": new_med,
        "reference_controls_median_logit": ref_med,
        "new_controls_median_p1": float(sigmoid(new_med)),
        "reference_controls_median_p1": float(sigmoid(ref_med)),
        "n_new_controls": int(len(new)),
        "n_reference_controls": int(len(ref)),
        "new_control_animals": [str(a) for a in new.index],
        "new_controls_from": new_from,
        "reference_controls_from": ref_from,
        "uses": (f"the treatment labels of the new cohort's {len(new)} control animals (treatment "
                 f"{', '.join(treatments)}): their scores set the threshold, so their calls afterwards are not "
                 "an independent test"),
    }


def scoring_row(name: str, animals: pd.DataFrame, threshold: float = M.THRESHOLD, *,
                control_treatments=CONTROL_TREATMENTS) -> dict:
    """One row of the raw-vs-recalibrated table: animal-level accuracy, balanced accuracy and
    AUROC (labelled rows; None without labels), how many animal rows are called positive, and
    how many control-treated animals are."""
    p = animals["p1"].to_numpy(float)
    lab = animals[animals["label"].notna()] if "label" in animals.columns else animals.iloc[:0]
    row = {"scoring": name, "threshold": float(threshold), "n": int(len(animals)),
           "n_called_positive": int((p >= threshold).sum()), "accuracy": None, "balanced_accuracy": None,
           "auroc": None, "n_labelled": 0, "controls_called_positive": None}
    if len(lab):
        y, q = lab["label"].to_numpy(float), lab["p1"].to_numpy(float)
        row.update(n_labelled=int(len(lab)), accuracy=M.accuracy(y, q, threshold),
                   balanced_accuracy=M.balanced_accuracy(y, q, threshold), auroc=M.auroc(y, q))
        row = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
    if "treatment" in animals.columns:
        ctrl = animals[_is_control(animals["treatment"], control_treatments)].groupby("animal")["p1"].mean()
        if len(ctrl):
            row["controls_called_positive"] = f"{int((ctrl >= threshold).sum())}/{len(ctrl)}"
    return row


def format_comparison(rows: list[dict]) -> str:
    """The raw-vs-recalibrated rows as a terminal table (animal level)."""
    def f(v):
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    heads = ("threshold", "accuracy", "balanced_accuracy", "auroc", "n_called_positive", "controls_called_positive")
    names = {"balanced_accuracy": "bal. accuracy", "n_called_positive": "called positive",
             "controls_called_positive": "controls called positive"}
    width = max([len(r["scoring"]) for r in rows] + [len("animal level")])
    lines = ["animal level".ljust(width) + "  " + "  ".join(names.get(h, h).rjust(max(9, len(names.get(h, h)))) for h in heads)]
    for r in rows:
        cells = []
        for h in heads:
            v = f"{r[h]}/{r['n']}" if h == "n_called_positive" else f(r.get(h))
            cells.append(v.rjust(max(9, len(names.get(h, h)))))
        lines.append(r["scoring"].ljust(width) + "  " + "  ".join(cells))
    return "\n".join(lines)
