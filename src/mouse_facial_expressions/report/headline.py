"""The report's first lines in plain language: what was tested, how well it did, and the caveats.

Pure functions of the evaluation results (``evaluation.evaluate.compute_results``), so each
sentence can be tested on constructed numbers. Each caveat appears exactly when its condition
holds:

- the data are synthetic (the run's task was made from an ``mfe synth`` cohort);
- the scores are over- or under-confident: window-level ECE above :data:`ECE_LIMIT`, with the
  direction from mean confidence against accuracy;
- sensitivity and specificity differ by more than :data:`BALANCE_LIMIT` at animal level;
- each batch-effect warning;
- the domain check found videos outside the model's training data.
"""

from __future__ import annotations

from mouse_facial_expressions.evaluation.animal_table import DEFAULT_CLASS_NAMES
from mouse_facial_expressions.evaluation.metrics import format_ci

#: Window-level expected calibration error above which the report says the scores are mis-calibrated.
ECE_LIMIT = 0.1
#: Animal-level |sensitivity - specificity| above which the report says the threshold favours one class.
BALANCE_LIMIT = 0.2


def _v(metrics: dict, level: str, name: str) -> float | None:
    d = metrics.get(level, {}).get(name)
    return d.get("value") if isinstance(d, dict) else d


def _with_ci(d, value: float) -> str:
    """``value`` to 2 decimals, with the metric's bootstrap CI from ``d`` when it has one, or
    ``[n/a (k of n resamples undefined)]`` when too many resamples left it undefined (a few
    undefined ones are counted in the metrics table, not in this sentence)."""
    if not isinstance(d, dict):
        return format_ci(value, None, None, digits=2)
    has_ci = all(isinstance(x, (int, float)) and x == x for x in (d.get("low"), d.get("high")))  # x == x: not NaN
    return format_ci(value, d.get("low"), d.get("high"), 0 if has_ci else d.get("n_undefined"),
                     d.get("n_resamples"), 2)


def headline(results: dict) -> str:
    """One paragraph: the task, how many animals and folds, animal-level accuracy with its CI,
    and the errors in the task's class names (sensitivity and specificity with their CIs, where
    the results have them)."""
    names = results.get("class_names") or list(DEFAULT_CLASS_NAMES)
    task = results.get("task") or {}
    s = results.get("summary", {})
    what = f"Task: {names[1]} vs {names[0]}" + (f" ({task['name']})" if task.get("name") else "") + "."
    m = results.get("metrics", {})
    if "animal" not in m:
        return (f"{what} {s.get('n_animals')} mice scored; no labels, so no accuracy: the report gives each "
                "animal's score.")
    a = m["animal"]
    acc = a["accuracy"]
    text = (f"{what} {a['n']} animal-conditions (one animal in one condition) from {s.get('n_animals')} mice, "
            f"{s.get('n_folds')} folds by animal. Animal-level accuracy {_with_ci(acc, acc.get('value'))}")
    (tn, fp), (fn, tp) = results.get("confusion", {}).get("animal", [[0, 0], [0, 0]])
    parts = []
    if tp + fn:
        parts.append(f"{fn} of {tp + fn} {names[1]} animal-conditions were called {names[0]} "
                     f"(sensitivity {_with_ci(a.get('recall'), tp / (tp + fn))})")
    if tn + fp:
        parts.append(f"{fp} of {tn + fp} {names[0]} were called {names[1]} "
                     f"(specificity {_with_ci(a.get('specificity'), tn / (tn + fp))})")
    return text + ("; " + "; ".join(parts) if parts else "") + "."


def caveats(results: dict, window_confidence: float | None = None) -> list[str]:
    """The caveats that apply, one sentence each (see the module docstring).

    Args:
        window_confidence: mean of ``max(p1, 1 - p1)`` over the labelled windows (the direction
            of a mis-calibration); None leaves the direction out.
    """
    names = results.get("class_names") or list(DEFAULT_CLASS_NAMES)
    m = results.get("metrics", {})
    out = []
    if (results.get("task") or {}).get("synthetic"):
        out.append("The data are synthetic (an `mfe synth` cohort): these numbers test the pipeline, not a biological effect.")
    ece = _v(m, "window", "ece")
    if ece is not None and ece > ECE_LIMIT:
        acc = _v(m, "window", "accuracy")
        if window_confidence is not None and acc is not None:
            way = "over-confident" if window_confidence > acc else "under-confident"
            out.append(f"The scores are {way}: window-level calibration error {ece:.2f} (mean confidence "
                       f"{window_confidence:.2f} against accuracy {acc:.2f}); read p1 as a ranking, not a probability.")
        else:
            out.append(f"The scores are mis-calibrated: window-level calibration error {ece:.2f}; read p1 as a ranking, "
                       "not a probability.")
    sens, spec = _v(m, "animal", "recall"), _v(m, "animal", "specificity")
    if sens is not None and spec is not None and abs(sens - spec) > BALANCE_LIMIT:
        missed = names[1] if sens < spec else names[0]
        out.append(f"Sensitivity {sens:.2f} and specificity {spec:.2f} differ by more than {BALANCE_LIMIT}: at p1 >= 0.5 the "
                   f"model misses {missed} animals more often; if that matters, choose the threshold on validation "
                   "animals (never on these test animals) and rerun `mfe evaluate --threshold`.")
    be = results.get("batch_effects") or {}
    batch = be.get("warnings", [])
    if batch:
        flagged = [r for r in be.get("per_cohort", []) if r.get("cohort") in set(be.get("flagged", []))]
        verdicts = {r.get("verdict") for r in flagged}
        what = ("its scores moved while their order held (a threshold problem: recalibrate, see below)"
                if verdicts == {"intact"} else
                "the model does not separate its animals there (the signal is lost, not just the threshold)"
                if verdicts == {"lost"} else "see each warning below for whether the ranking held")
        names = ", ".join(str(r.get("cohort")) for r in flagged) or "a cohort"
        out.append(f"Scores of {names} are shifted against the reference ({len(batch)} batch-effect warning"
                   f"{'s' if len(batch) > 1 else ''} below): {what}.")
    dom = results.get("domain") or {}
    outside = dom.get("warnings") or {}
    if outside:
        out.append(f"{len(outside)} of {dom.get('n_videos', '?')} videos lie outside the model's training data "
                   "(domain check below): their scores may not mean what they mean on the training cohort.")
    return out
