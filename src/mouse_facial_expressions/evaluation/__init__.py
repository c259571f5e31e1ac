"""evaluation stage: metrics on prediction tables, with bootstrap CIs over animals;
aggregation, breakdowns, cohort shift (batch-effect) checks, zero-shot recalibration of the
threshold (``recalibrate``), run comparison.

>>> from mouse_facial_expressions.evaluation import evaluate_run
>>> results = evaluate_run("models/runs/<run>")          # writes <run>/evaluation/*.csv, metrics.json

The HTML report (with Grad-CAM maps from the inference stage) is ``report.runs.report_run``.
"""

from mouse_facial_expressions.evaluation.aggregate import aggregate_levels, to_animal, to_video
from mouse_facial_expressions.evaluation.batch_effects import check_batch_effects
from mouse_facial_expressions.evaluation.breakdown import breakdown
from mouse_facial_expressions.evaluation.compare import compare_runs, format_compare
from mouse_facial_expressions.evaluation.evaluate import compute_results, evaluate_predictions
from mouse_facial_expressions.evaluation.run_folder import evaluate_run
from mouse_facial_expressions.evaluation.metrics import METRICS, binary_metrics, bootstrap_ci
from mouse_facial_expressions.evaluation.recalibrate import controls_threshold

__all__ = [
    "METRICS",
    "aggregate_levels",
    "binary_metrics",
    "bootstrap_ci",
    "breakdown",
    "check_batch_effects",
    "compare_runs",
    "compute_results",
    "controls_threshold",
    "evaluate_predictions",
    "evaluate_run",
    "format_compare",
    "to_animal",
    "to_video",
]
