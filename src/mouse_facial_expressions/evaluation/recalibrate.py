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

Not recommended (``mfe evaluate --help``, and the cohort check no longer suggests it): the one
offset assumes every score moved alike, but on the synthetic shift benchmark the controls moved
further than the positives, and the moved threshold (0.85-0.95) called no animal positive on 6 of
10 shifted cohorts. It stays for comparison beside ``adabn`` and ``baseline``.

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
METHODS = ("controls", "adabn", "baseline")


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


def _baseline_level(pred: pd.DataFrame, recording_of: dict, recording: int) -> pd.Series:
    """animal -> median logit of its windows from ``recording`` (its own baseline)."""
    rec = pd.to_numeric(pred["video"].astype(str).map(recording_of), errors="coerce")
    base = pred[rec == int(recording)]
    return base.groupby(base["animal"].astype(str))["p1"].apply(lambda p: float(np.median(logit(p.to_numpy()))))


def baseline_shift(pred: pd.DataFrame, recording_of: dict, reference: pd.DataFrame, reference_recording_of: dict,
                   recording: int = 1) -> tuple[pd.DataFrame, dict]:
    """Scores relative to each animal's own baseline recording, from an absolute run's scores.

    A cohort shift moves an animal's windows alike in logit units (the zero-shot ranking held in
    every shifted synthetic cohort), so each animal's windows are moved by as much as its own
    baseline windows sit above where the training animals' baselines sit::

        offset(animal) = median logit(its recording-``recording`` windows) - median over training animals
                         of the same (the run's cross-validated ``predictions.csv``)
        p1'            = sigmoid(logit(p1) - offset(animal))

    No label is used: only which recording is the baseline (pre-treatment by design). The baseline
    windows themselves are dropped (they sit at the reference by construction); animals without a
    baseline window are dropped and named in ``details["dropped_animals"]``.

    Returns:
        ``(predictions without the baseline windows, p1 shifted; details)``.
    """
    ref_levels = _baseline_level(reference, reference_recording_of, recording)
    if ref_levels.empty:
        raise ValueError(f"--recalibrate baseline: the run's own predictions hold no window of recording {recording} "
                         "(the training animals' baselines); choose the baseline recording with --baseline-recording")
    ref = float(np.median(ref_levels.to_numpy()))
    levels = _baseline_level(pred, recording_of, recording)
    rec = pd.to_numeric(pred["video"].astype(str).map(recording_of), errors="coerce")
    out = pred[rec != int(recording)].copy()
    animals = out["animal"].astype(str)
    dropped = sorted(set(animals) - set(levels.index))
    out = out[animals.isin(levels.index)].copy()
    offset = out["animal"].astype(str).map(levels - ref).to_numpy(float)
    out["p1"] = sigmoid(logit(out["p1"].to_numpy(float)) - offset)
    for col in [c for c in out.columns if c.startswith("p1_")]:  # the fold members move with their mean
        out[col] = sigmoid(logit(out[col].to_numpy(float)) - offset)
    return out, {
        "method": "baseline", "baseline_recording": int(recording), "reference_median_logit": ref,
        "reference_median_p1": float(sigmoid(ref)), "n_reference_animals": int(len(ref_levels)),
        "offsets_logit": {a: float(v - ref) for a, v in levels.items()}, "dropped_animals": dropped,
        "uses": (f"no labels: each animal's scores move by as much as its own recording-{recording} (baseline) windows sit "
                 f"above the training animals' baselines (median p1 {float(sigmoid(ref)):.3f}); baseline windows are not scored"
                 + (f"; animals without a baseline: {', '.join(dropped)}" if dropped else "")),
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
