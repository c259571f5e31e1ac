"""The building blocks of the HTML report: escaping, number formatting, tables and figures.

Every section of the report uses them; keeping them apart leaves ``report/html.py`` with the page
and its sections only. ``FIGURES`` lives here because ``figure_html`` reads its captions.
"""

from __future__ import annotations

import base64
import html
import math

from mouse_facial_expressions.evaluation.animal_table import DEFAULT_CLASS_NAMES
from mouse_facial_expressions.evaluation.metrics import format_ci

#: Figure id -> (title, "how to read this"). The report shows figures in this order. ``{neg}`` and
#: ``{pos}`` in a text stand for the task's class names (label 0, label 1).
FIGURES: dict[str, tuple[str, str]] = {
    "roc": (
        "ROC curves",
        "Each curve sweeps the decision threshold on p1 and plots the fraction of positives caught "
        "(sensitivity) against the fraction of negatives wrongly called positive. The closer the curve "
        "hugs the top-left corner, the better; the diagonal is chance. The animal curve has few points "
        "(one per animal and label): read it with its confidence interval in the table above.",
    ),
    "confusion": (
        "Confusion matrices",
        "Rows are the true class, columns the class called at the threshold; each cell gives the count "
        "and the percentage of its row. The diagonal holds the correct calls. A dark off-diagonal cell "
        "shows which mistake the model makes (false alarms in the top right, misses in the bottom left).",
    ),
    "calibration": (
        "Calibration curve",
        "Predictions are binned by p1 (equal-width bins); each point is a bin's mean predicted "
        "probability against the fraction of {pos} actually in it. On the dashed diagonal a score "
        "of 0.8 means 80% are positive. Points below the diagonal: over-confident positives; above: "
        "under-confident. The histogram below shows where the scores fall. ECE in the table is the "
        "count-weighted mean gap between points and diagonal.",
    ),
    "animal_scores": (
        "Per-animal scores by condition",
        "One dot per animal (per label, if it has both): the mean over its videos of the video's mean "
        "window score. Colours mark cohorts, the bar is the median, the dashed line the threshold. "
        "Well-separated clouds mean the score ranks animals correctly; a cohort sitting high among the "
        "negatives is a warning sign of a batch effect.",
    ),
    "timecourse": (
        "Score over time per video",
        "Each panel is one video (a sample of them when there are many): dots are windows at their "
        "start time, the line a running mean. Stable scores mean the decision does not hinge on a few "
        "moments; brief spikes often come from grooming, rearing or bad crops rather than the animal's state.",
    ),
    "cohorts": (
        "Control scores by cohort (batch-effect check)",
        "Scores of the animals that should be negative (the controls), per recording cohort. They should sit "
        "low and at the same level in every cohort. A cohort whose controls score high across the board "
        "has moved: if its positives still score higher still (AUROC inside the cohort in the table above), "
        "the ranking survived and only the threshold is off (recalibrate); if not, the signal is lost there.",
    ),
    "saliency": (
        "Saliency maps (Grad-CAM)",
        "Aligned face crops with the Grad-CAM map of the {pos} score (p1) on top (red = regions that raise "
        "the score most). Every crop faces the same way, so eye, ear and nose sit in the same place across "
        "rows. Maps on the eye and ear agree with the grimace scale; maps on the background or the crop "
        "border suggest the model uses something other than the face.",
    ),
}

METRIC_NAMES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "auroc": "AUROC",
    "f1": "F1",
    "precision": "precision",
    "recall": "recall (sensitivity)",
    "specificity": "specificity",
    "ece": "ECE (calibration error)",
    "brier": "Brier score",
}


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def fmt(v, digits: int = 3) -> str:
    """Number for a table cell: ``-`` for missing, integers plain, floats rounded."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_ci(value, low, high, digits: int = 3, n_undefined=None, n_resamples=None) -> str:
    """``value [low, high]`` for a table cell; ``–`` for an undefined value, and ``[n/a (k of n
    resamples undefined)]`` when too many resamples were undefined for an interval."""
    return format_ci(value, low, high, n_undefined, n_resamples, digits, missing="–")


def table(rows: list[dict], columns: list[str] | None = None, headers: dict[str, str] | None = None) -> str:
    """HTML table of record dicts; text columns align left."""
    if not rows:
        return "<p class='sub'>(none)</p>"
    columns = columns or list(rows[0])
    headers = headers or {}
    text_cols = {c for c in columns if any(isinstance(r.get(c), str) for r in rows)}
    head = "".join(f"<th class='{'l' if c in text_cols else ''}'>{_e(headers.get(c, c))}</th>" for c in columns)
    body = []
    for r in rows:
        cells = "".join(f"<td class='{'l' if c in text_cols else ''}'>{_e(fmt(r.get(c)))}</td>" for c in columns)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure_html(fig_id: str, png: bytes, title: str | None = None, how: str | None = None,
                class_names=None) -> str:
    """A figure with its title and "how to read this", in the task's ``class_names``."""
    t, h = FIGURES.get(fig_id, (fig_id, ""))
    neg, pos = (list(class_names) if class_names else list(DEFAULT_CLASS_NAMES))[:2]
    title, how = title or t, how if how is not None else h.format(neg=neg, pos=pos)
    data = base64.b64encode(png).decode("ascii")
    return (
        f"<figure id='fig-{_e(fig_id)}'><h3>{_e(title)}</h3>"
        f"<img src=\"data:image/png;base64,{data}\" alt='{_e(title)}'>"
        f"<figcaption><b>How to read this:</b> {_e(how)}</figcaption></figure>"
    )
