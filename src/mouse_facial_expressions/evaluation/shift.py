"""The cohort-shift rule: does a cohort's group change calls beyond what the reference shows?

A cohort is flagged only when its calls would change: more of its controls called positive
(false positives), or more of its positives called negative (misses), than in the reference
(the training animals' cross-validated scores, or the other cohorts pooled). Scores that
merely moved towards the threshold, without crossing it, change no call and raise no warning
(the median logit shift and its Mann-Whitney p are still computed and shown).

The test is a one-sided Fisher exact test on the wrong-call counts (``k`` of ``n`` against
``rk`` of ``rn``), flagged at ``p <= alpha`` (0.05) and an excess rate of at least
``min_rate_excess`` (20 points). An exact test has a smallest attainable p at given group
sizes: every cohort animal wrong and no reference animal wrong gives ``1 / C(n + rn, n)``.
Where that exceeds ``alpha`` (1 animal against 16: 1/17 = 0.059; 2 against 3: 1/10) the
comparison cannot reach significance whatever the scores, so it is reported as "too few
animals", never as a shift. 1 of 3 controls positive against 0 of 16 gives p = 3/19 = 0.16:
not flagged (one odd animal); 2 of 3 gives 3/171 = 0.018: flagged.
"""

from __future__ import annotations

from math import comb

import numpy as np

from mouse_facial_expressions.evaluation.metrics import THRESHOLD

#: Defaults of the shift rule (module docstring) and of the within-cohort reading.
MIN_RATE_EXCESS = 0.2
ALPHA = 0.05
INTACT_AUROC = 0.75
LOST_AUROC = 0.65

VERDICTS = {
    "intact": "ranking intact, threshold moved",
    "weakened": "ranking weakened",
    "lost": "signal lost",
    "unknown": "ranking unknown",
}


def logit(p, eps: float = 1e-6) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [eps, 1 - eps]."""
    p = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    return np.log(p / (1 - p))


def _median(x) -> float | None:
    return float(np.median(x)) if len(x) else None


def fisher_min_p(n: int, rn: int) -> float:
    """The smallest one-sided Fisher exact p attainable with ``n`` cohort and ``rn`` reference
    animals: all ``n`` wrong, none of the reference, ``1 / C(n + rn, n)`` (1.0 if either is empty)."""
    if n <= 0 or rn <= 0:
        return 1.0
    return 1.0 / comb(n + rn, n)


def fisher_greater(k: int, n: int, rk: int, rn: int) -> float:
    """One-sided Fisher exact p that the cohort's wrong-call rate ``k/n`` exceeds the
    reference's ``rk/rn``: the hypergeometric upper tail P(X >= k), X the cohort's share of the
    ``k + rk`` wrong calls among ``n + rn`` animals."""
    total, wrong = n + rn, k + rk
    denom = comb(total, wrong)
    return float(sum(comb(n, x) * comb(rn, wrong - x) for x in range(k, min(n, wrong) + 1)) / denom)


def shift_test(x, ref, threshold: float = THRESHOLD, *, up: bool = True, min_n: int = 2,
               min_rate_excess: float = MIN_RATE_EXCESS, alpha: float = ALPHA) -> dict:
    """One group's scores ``x`` against the reference group's ``ref``, in one direction.

    ``up=True`` (controls): wrong calls are ``p >= threshold`` (false positives). ``up=False``
    (positives): wrong calls are ``p < threshold`` (misses).

    Returns:
        ``n, n_wrong, rate, median_p1`` and, with a non-empty reference, ``n_reference,
        reference_rate, reference_median_p1``, ``rate_p`` (one-sided Fisher exact on the
        wrong-call counts), ``min_p`` (its smallest attainable value at these counts),
        ``testable`` (``min_p <= alpha``), ``shift_logit`` (median logit of ``x`` minus the
        reference's; positive = up) and ``shift_p`` (one-sided Mann-Whitney; shown, not
        used), ``flagged`` and ``rule`` (``"calls"`` or None).
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    ref = np.asarray(ref, dtype=float)
    n, rn = len(x), len(ref)
    out: dict = {"n": n, "n_wrong": None, "rate": None, "median_p1": _median(x), "n_reference": rn,
                 "reference_rate": None, "reference_median_p1": _median(ref), "shift_logit": None,
                 "shift_p": None, "rate_p": None, "min_p": fisher_min_p(n, rn), "testable": False,
                 "flagged": False, "rule": None}
    if n == 0:
        return out
    wrong = (x >= threshold) if up else (x < threshold)
    out.update(n_wrong=int(wrong.sum()), rate=float(wrong.mean()))
    if rn == 0:
        return out
    rwrong = (ref >= threshold) if up else (ref < threshold)
    k, rk = int(wrong.sum()), int(rwrong.sum())
    mw = stats.mannwhitneyu(x, ref, alternative="greater" if up else "less")
    rate_p = fisher_greater(k, n, rk, rn)
    testable = n >= min_n and out["min_p"] <= alpha + 1e-12
    flagged = testable and k > 0 and k / n - rk / rn >= min_rate_excess - 1e-12 and rate_p <= alpha + 1e-12
    out.update(reference_rate=float(rk / rn), shift_logit=float(np.median(logit(x)) - np.median(logit(ref))),
               shift_p=float(mw.pvalue) if np.isfinite(mw.pvalue) else 1.0, rate_p=rate_p,
               testable=bool(testable), flagged=bool(flagged), rule="calls" if flagged else None)
    return out


def verdict_of(auroc: float | None, *, intact_auroc: float = INTACT_AUROC, lost_auroc: float = LOST_AUROC) -> str:
    """The within-cohort AUROC in words: a key of :data:`VERDICTS`."""
    if auroc is None or (isinstance(auroc, float) and np.isnan(auroc)):
        return "unknown"
    if auroc >= intact_auroc:
        return "intact"
    if auroc <= lost_auroc:
        return "lost"
    return "weakened"


#: Label-free recalibrations, best first on bench/bench_shift.py's shifted cohorts. ``controls`` is
#: not among them: it moved the threshold past the positives on 6 of 10 shifted cohorts (``--help``).
_RECALIBRATIONS = {
    "adabn": "`mfe evaluate RUN --task TASK --recalibrate adabn` (recomputes the backbone's BatchNorm statistics on "
             "the cohort's crops, per recording cohort; no labels)",
    "baseline": "`mfe evaluate RUN --task TASK --recalibrate baseline` (moves each animal by its own baseline "
                "recording; no labels)",
}

_FINETUNE = "retrain or fine-tune with labelled animals of this cohort (`mfe finetune --from RUN --task TASK`)"


def _in_cohort_remedy(verdict: str, relative: bool) -> str:
    if verdict == "lost":
        return ("The model does not rank this cohort's animals (their cross-validated AUROC is low): check their labels "
                "and recordings, and whether the other cohorts hold animals like them.")
    fix = ("the run is baseline-relative already, so the cohort differs beyond a per-animal offset: check its recording "
           "conditions (light, camera, zoom) and its labels" if relative else
           "train baseline-relative (`mfe train --baseline-recording 1`: each animal scored against its own baseline), "
           "or normalise the crops per video (`extract.normalize: video_hist`) and retrain")
    return ("In-cohort: this cohort's cross-validated calls are wrong more often than the other cohorts', so the "
            f"operating point differs between the training cohorts; {fix}.")


def remedy_text(verdict: str, *, setting: str = "zero-shot", relative: bool = False, recalibrated: str | None = None,
                tried: list[str] | None = None, cleared_by: list[str] | None = None) -> str:
    """What to do about a flagged cohort, in words fitting the situation.

    Args:
        verdict: :func:`verdict_of` of the within-cohort AUROC.
        setting: ``"in-cohort"`` (``mfe evaluate RUN``: the cohort is training data, so no
            ``--task`` and no recalibration) or ``"zero-shot"`` (``--task``).
        relative: the run is baseline-relative already: never suggest switching to it, nor
            ``--recalibrate baseline``.
        recalibrated: these scores come from ``--recalibrate <method>`` (which left the shift).
        tried: raw zero-shot scores: the recalibrations run alongside; ``cleared_by``: those of
            them that leave this cohort unflagged.
    """
    if setting == "in-cohort":
        return _in_cohort_remedy(verdict, relative)
    if cleared_by:
        return (f"Already applied: {', '.join(f'`--recalibrate {m}`' for m in cleared_by)} (run here) leaves no shift "
                "in this cohort: read the recalibrated numbers.")
    done = sorted(set(tried or []) | ({recalibrated} if recalibrated else set()))
    prefix = f"{', '.join(f'`--recalibrate {m}`' for m in done)} did not remove the shift. " if done else ""
    finetune = _FINETUNE[0].upper() + _FINETUNE[1:]
    if verdict == "lost":
        return (f"{prefix}The model does not transfer to this cohort: recalibration moves a threshold and cannot restore "
                f"a lost ranking. {finetune}.")
    options = [text for m, text in _RECALIBRATIONS.items() if m not in done and not (relative and m == "baseline")]
    if not relative:
        options.append("baseline-relative training (`mfe train --baseline-recording 1`)")
    if not options:
        return f"{prefix}{finetune}."
    recal = "; ".join(options)
    if verdict == "weakened":
        return f"{prefix}Partly both: recalibrate first ({recal}); if the AUROC inside the cohort stays low, {_FINETUNE}."
    if verdict == "unknown":
        return (f"{prefix}Recalibrate ({recal}), but check the ranking first: with one group only, the AUROC inside this "
                f"cohort is unknown; if the labelled animals rank badly, {_FINETUNE}.")
    return f"{prefix}Recalibrate rather than retrain: {recal}."


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def cohort_message(name: str, row: dict, who: tuple[str, str | None], ref_desc: str) -> str:
    """The warning line of one flagged cohort (a row of ``check_batch_effects``)."""
    parts = []
    for key, shifted, verb, group in (("controls", "controls_shifted", "called positive", who[0]),
                                      ("positives", "positives_shifted", "missed", who[1])):
        if row[shifted]:
            d = row[key]
            parts.append(
                f"{group} {'shifted up' if key == 'controls' else 'shifted down'}: {d['n_wrong']}/{d['n']} {verb} "
                f"({_pct(d['rate'])}) vs {_pct(d['reference_rate'])} in {ref_desc} (one-sided Fisher exact p = "
                f"{d['rate_p']:.2g}); median score {d['median_p1']:.2f} vs {d['reference_median_p1']:.2f} "
                f"(logit {d['shift_logit']:+.2f})")
    auc, ref_auc = row["auroc"], row["reference_auroc"]
    if row["verdict"] == "unknown":
        rank = "no AUROC inside the cohort (it lacks controls or positives)"
    else:
        rank = (f"inside the cohort, controls vs positives AUROC {auc:.2f}"
                + (f" (reference {ref_auc:.2f})" if ref_auc is not None else "") + ": ")
        rank += {"intact": "the ranking is intact, the operating point (threshold) moved",
                 "weakened": "the ranking is weakened, not only the threshold moved",
                 "lost": "the signal is lost in this cohort (near chance), not just the threshold"}[row["verdict"]]
        if row["verdict"] == "lost" and ref_auc is not None and ref_auc < auc + 0.2:
            rank += " (the reference ranks poorly too: the model itself is weak)"
    if row["signal_lost"] and not parts:
        parts.append("the scores no longer separate the groups")
    return f"COHORT SHIFT, cohort {name}: " + "; ".join(parts) + f". {rank[0].upper() + rank[1:]}. Remedy: {row['remedy']}"
