"""`mfe evaluate` (metrics, batch-effect check, HTML report) and `mfe compare` (runs side by side)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mouse_facial_expressions.cli._common import add_project_arg, rename_option
from mouse_facial_expressions.cli.settings import add_config_arg, config_backed
from mouse_facial_expressions.settings import EvaluateConfig

EVALUATE_DESCRIPTION = """\
Evaluate a trained run's cross-validated test predictions (RUN/predictions.csv).

Aggregates windows -> videos (mean probability) -> animals (mean of the animal's videos
with the same label) and reports accuracy, balanced accuracy, AUROC, F1, precision,
recall, the confusion matrix and calibration (ECE) at each level, with 95% bootstrap
confidence intervals that resample animals. Breaks results down by sex (from the f/m id
prefix or a sex column), treatment, recording and cohort, and checks each cohort for a
shift that changes calls: more of its controls called positive, or of its positives missed,
than a reference (with --task: the run's own cross-validated training animals; else the other
cohorts), by a one-sided Fisher exact test that can reach p <= 0.05 at its animal counts. The
AUROC inside the cohort is shown beside it, so "ranking intact, threshold moved" (recalibrate)
reads differently from "signal lost" (fine-tune), and a remedy that fits the setting is named.

Writes metrics.json, metrics.csv, predictions_{window,video,animal}.csv, breakdown.csv
and a self-contained report.html into --out (default: RUN/evaluation).
Unlabelled predictions (empty label) give scores per animal only.

With --task OTHER_TASK --recalibrate controls|adabn|baseline the recalibrated numbers are written
and printed NEXT TO the raw zero-shot numbers (predictions_recalibrated_<method>.csv,
recalibrated-<method>/metrics.json, recalibration.csv, a table in the report).
"""

RECALIBRATE_HELP = """with --task only: also score the other cohort with its operating point recalibrated, and show
it next to the raw zero-shot numbers (several: --recalibrate adabn baseline). 'adabn' (recommended):
recomputes every fold model's BatchNorm running statistics on the new cohort's clips (no labels,
no weight changes) and scores again, per recording cohort (--recalibrate-by); assumes each group
differs in recording conditions only and holds a mix of animals (a group of only sick animals
would absorb part of the signal). 'baseline': moves each ANIMAL's scores by as far as its own
baseline recording's windows (--baseline-recording, default 1) sit above the training animals'
baselines (median logits; no labels, only which recording came before treatment); its baseline
windows are then not scored, and an animal without one is left out (named). 'controls' (kept for
comparison, NOT recommended): moves the threshold by as far as the new cohort's CONTROL ANIMALS
moved: threshold' = sigmoid(logit(threshold) + median logit of their mean p1 - median logit of
the training controls' in RUN/predictions.csv). It assumes every score moved by one logit offset;
on the synthetic shift benchmark the controls moved further than the positives (already near 1),
and the moved threshold (0.85-0.95) called no animal positive on 6 of 10 shifted cohorts, worse
than no recalibration. It also uses the control animals' treatment labels, so their calls afterwards are no independent
test. None of them fixes a lost ranking (AUROC near 0.5 inside the cohort): fine-tune (mfe
finetune) for that"""

RECALIBRATE_BY_HELP = """with --recalibrate adabn: the metadata column (of the task's frames.parquet) whose groups get
BatchNorm statistics of their own, e.g. recording set-ups; default: the --cohort-column when the task
has it, else the whole task at once; 'none': the whole task at once. A group with fewer than 2 animals
(its statistics would remove its own face's signal) or 16 windows (one scoring batch) gets the whole
task's statistics instead; which each group got is printed and written to recalibration.csv"""


COMPARE_DESCRIPTION = """\
Compare several runs in one table: key metrics with 95% bootstrap CIs over animals, all
computed the same way (same level, resamples and seed) from each RUN/predictions.csv. Then
each run against the first on the units both scored: the accuracy difference with a PAIRED
bootstrap CI over animals (what the runs share, such as the same hard animals, cancels), and
how many units only one of the two calls right. A run given twice is refused.
"""


def _resolve_run(run: Path, args: argparse.Namespace) -> Path:
    """RUN as given, else relative to the project's models folder."""
    if run.exists():
        return run
    if getattr(args, "project", None) is not None or Path("mfe.yaml").is_file():
        from mouse_facial_expressions.cli._common import project_config

        models = project_config(args).path("models")
        for candidate in (models / "runs" / run, models / run):
            if candidate.exists():
                return candidate
    raise FileNotFoundError(f"run not found: {run} (a run folder holds predictions.csv)")


def register(sub, formatter):
    p = sub.add_parser(
        "evaluate",
        help="metrics with CIs, batch-effect checks, HTML report",
        description=EVALUATE_DESCRIPTION,
        formatter_class=formatter,
    )
    p.add_argument("run", type=Path, metavar="RUN", help="run folder holding predictions.csv (or the CSV itself; "
                   "a bare name is looked up in the project's models/runs folder)")
    p.add_argument("--out", type=Path, default=None, help="output folder; default: RUN/evaluation")
    p.add_argument("--metadata", type=Path, default=None, help="metadata CSV joined by 'video' (or by 'animal'/'mouse', "
                   "e.g. treatments.csv) adding cohort, treatment, sex, recording; default: RUN/metadata.csv, else the video metadata of the task named in RUN/params.json")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples of animals for the CIs (0: none)")
    p.add_argument("--bootstrap-seed", dest="seed", type=int, default=0, help="seed of the bootstrap resampling")
    p.add_argument("--threshold", type=float, default=0.5, help="p1 at or above which a window/video/animal is called positive")
    p.add_argument("--cohort-column", default="cohort", help="metadata column naming the recording cohort (batch-effect check)")
    p.add_argument("--no-report", action="store_true", help="write metrics files only, no HTML report")
    p.add_argument("--task", type=Path, default=None, metavar="OTHER_TASK", help="score another cohort's task folder "
                   "zero-shot with the run's fold ensemble (every window of its frame store, all its animals as test "
                   "animals): full metrics when it has labels, scores per animal when not; --out defaults to "
                   "RUN/zeroshot-<task folder>. RUN may also be one .ckpt")
    p.add_argument("--recalibrate", nargs="+", choices=["controls", "adabn", "baseline"], default=None, metavar="METHOD",
                   help=RECALIBRATE_HELP)
    p.add_argument("--recalibrate-by", dest="recalibrate_by", default=None, metavar="COLUMN", help=RECALIBRATE_BY_HELP)
    p.add_argument("--baseline_recording", type=int, default=1, metavar="K",
                   help="the recording that is each animal's own baseline, for --recalibrate baseline (default: 1)")
    add_project_arg(p)
    add_config_arg(p, "evaluate")
    rename_option(p, "--seed", "--bootstrap-seed")
    config_backed(p, EvaluateConfig)
    p.set_defaults(func=run)

    c = sub.add_parser(
        "compare",
        help="several runs side by side, metrics with CIs",
        description=COMPARE_DESCRIPTION,
        formatter_class=formatter,
    )
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folders holding predictions.csv")
    c.add_argument("--level", choices=["window", "video", "animal"], default="animal", help="aggregation level compared")
    c.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples of animals for the CIs")
    c.add_argument("--bootstrap-seed", dest="seed", type=int, default=0, help="seed of the bootstrap resampling")
    c.add_argument("--metadata", type=Path, default=None, help="metadata CSV for runs without their own metadata.csv")
    c.add_argument("--out", type=Path, default=None, help="also write the table as CSV here")
    add_project_arg(c)
    rename_option(c, "--seed", "--bootstrap-seed")
    c.set_defaults(func=run_compare)


def run(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.cli.settings import resolve_args

    resolve_args(args, "evaluate")
    if args.task is not None:
        return run_zeroshot(args)
    if getattr(args, "recalibrate", None) or getattr(args, "recalibrate_by", None):
        raise ValueError("--recalibrate moves the operating point to another cohort: it needs --task OTHER_TASK")
    from mouse_facial_expressions.evaluation.evaluate import headline
    from mouse_facial_expressions.report.runs import report_run

    run_dir = _resolve_run(args.run, args)
    results = report_run(
        run_dir,
        out_dir=args.out,
        metadata=args.metadata,
        n_boot=args.bootstrap,
        seed=args.seed,
        threshold=args.threshold,
        cohort=args.cohort_column,
        report=not args.no_report,
    )
    print(headline(results))
    paths = results["paths"]
    print(f"metrics: {paths['metrics_json']}")
    if "report" in paths:
        print(f"report:  {paths['report']}")
    return 0


def run_zeroshot(args: argparse.Namespace) -> int:
    """``--task``: the run's fold ensemble on another cohort's task (one library call)."""
    from mouse_facial_expressions.cli.finetune import resolve_task
    from mouse_facial_expressions.evaluation.evaluate import headline
    from mouse_facial_expressions.report.runs import report_zeroshot

    run_dir = args.run if args.run.exists() else _resolve_run(args.run, args)
    results = report_zeroshot(
        run_dir, resolve_task(args.task, args), args.out, n_boot=args.bootstrap, seed=args.seed,
        threshold=args.threshold, cohort=args.cohort_column, report=not args.no_report,
        recalibrate=args.recalibrate, baseline_recording=args.baseline_recording,
        recalibrate_by=args.recalibrate_by,
    )
    print(headline(results))
    recal = results.get("recalibration")
    if recal:
        from mouse_facial_expressions.evaluation.recalibrate import format_comparison

        print("\nRaw zero-shot and recalibrated, side by side:\n" + format_comparison(recal["comparison"]))
        for method, d in recal["methods"].items():
            if method == "controls":
                print(f"controls: threshold {d['threshold']:.3f} -> {d['new_threshold']:.3f} (logit offset "
                      f"{d['offset_logit']:+.3f}); uses {d['uses']}")
            else:
                print(f"{method}: {d['uses']}" + (f" ({d['note']})" if d.get("note") else ""))
    dom = results.get("domain") or {}
    if dom.get("warnings"):
        print(f"domain check: {len(dom['warnings'])} of {dom.get('n_videos')} videos lie outside the model's "
              f"training data: {', '.join(sorted(dom['warnings']))} (reasons in the report and the log)")
    elif dom.get("note"):
        print(dom["note"])
    paths = results["paths"]
    print(f"predictions: {paths['predictions']}\nmetrics: {paths['metrics_json']}")
    if "recalibration" in paths:
        print(f"recalibrated: {paths['recalibration']} (and recalibrated-<method>/, predictions_recalibrated_<method>.csv)")
    if "report" in paths:
        print(f"report:  {paths['report']}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.evaluation.compare import compare_runs, format_compare, format_paired, paired_differences

    runs = [_resolve_run(r, args) for r in args.runs]
    df = compare_runs(runs, level=args.level, n_boot=args.bootstrap, seed=args.seed, metadata=args.metadata)
    print(format_compare(df))
    if len(runs) > 1:
        print(format_paired(paired_differences(runs, level=args.level, n_boot=args.bootstrap, seed=args.seed)))
    if args.out is not None:
        from mouse_facial_expressions.io.atomic import write_csv

        print(f"table: {write_csv(df, args.out)}")
    return 0
