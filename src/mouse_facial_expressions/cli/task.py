"""`mfe task make` / `mfe task show`: task folders (labels, exclusions, folds, windows)."""

from __future__ import annotations

from pathlib import Path

from mouse_facial_expressions.cli._common import add_encoding_arg, add_project_arg, project_config
from mouse_facial_expressions.cli.settings import add_config_arg, config_backed, resolve_args
from mouse_facial_expressions.settings import TaskMakeConfig
from mouse_facial_expressions.data.task_files import TaskFiles


def register(sub, formatter):
    p = sub.add_parser(
        "task",
        help="make or show a task folder (labels, exclusions, animal-grouped folds)",
        description="Tasks describe a classification problem over the frame store: label rules "
        "over metadata columns, exclusions, animal-grouped outer folds with an inner validation "
        "split, soft labels and the temporal window settings.",
        formatter_class=formatter,
    )
    tsub = p.add_subparsers(dest="task_command", metavar="SUBCOMMAND")
    m = tsub.add_parser(
        "make",
        help="write tasks/task-<version>/ from a preset or a task YAML",
        description="Label the frame store with a task's rules, exclude animals/videos, make "
        "StratifiedGroupKFold folds by animal (each split again by animal into train and "
        "validation) and write task.yaml, frames.parquet, folds.json and README.md to "
        "<paths.tasks>/task-<dataset_version>/. Crops that mfe extract flagged (a landmark off the frame, a "
        "likelihood below the cutoff, an implausible face geometry) are left out, and so is a video with too few "
        "crops left for one window: each such video is printed with its counts and the reason, and listed in the "
        "README's notes. Errors name the rows, videos or animals involved.",
        formatter_class=formatter,
    )
    add_project_arg(m)
    add_encoding_arg(m)
    src = m.add_mutually_exclusive_group()
    src.add_argument("--preset", default=None, help="built-in task: task1 (the original LPS task) or task1_table")
    src.add_argument("--spec", type=Path, default=None, help="task YAML (keys of TaskSpec: rules, exclude_animals, n_folds, ...)")
    m.add_argument("--dataset-version", dest="dataset_version", default=None,
                   help="task folder version (task-<V>); default: the spec's version or project.dataset_version")
    m.add_argument("--from-table", dest="from_table", type=Path, default=None,
                   help="make the task from a flat per-frame CSV (like lps_task1_dataset_table.csv) instead of the frame store")
    m.add_argument("--dedupe", action="store_true",
                   help="keep one row per frame/video where metadata rows are duplicated (reported in the README) instead of failing")
    m.add_argument("--out", type=Path, default=None, help="task folder to write (default: <paths.tasks>/task-<version>)")
    au = m.add_argument_group(
        "Mouse Grimace Scale targets", "add action-unit targets (ot, nb, cb, ep, wc) from rated frames beside the "
        "class labels, for mfe train --targets au|au+class. Each rated frame's target per AU is the raters' "
        "distribution over the scores 0, 1, 2; a window takes that of the rated frame nearest its centre")
    au.add_argument("--au-ratings", dest="au_ratings", default=None, metavar="PARQUET",
                    help="imported ratings table (mfe ratings import writes ratings/<name>.parquet; relative to the "
                    "project or absolute), e.g. ratings/synthetic_raters.parquet; overrides the spec's au.ratings")
    au.add_argument("--au-tolerance", dest="au_tolerance", type=float, default=None, metavar="S",
                    help="a rated frame further than S seconds from a window's centre gives it no AU target "
                    "(default: the spec's, else 0.5)")
    au.add_argument("--au-match", dest="au_match", choices=("nearest", "interpolate"), default=None,
                    help="nearest: the nearest rated frame; interpolate: the rated frames before and after the "
                    "centre, blended by closeness (default: the spec's, else nearest)")
    add_config_arg(m, "task")
    config_backed(m, TaskMakeConfig)
    m.set_defaults(func=run_make)
    s = tsub.add_parser("show", help="print a task folder's README", description="Print a task folder's README "
                        "(the task in words, counts per class, animal and fold, window settings).", formatter_class=formatter)
    s.add_argument("task_dir", type=Path, help="task folder (tasks/task-<version>)")
    s.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_make(args) -> int:
    from mouse_facial_expressions.data.tasks import load_spec, make_task, make_task_from_table, preset

    cfg = project_config(args)
    resolve_args(args, "task", cfg)
    if args.encoding:
        cfg.metadata.encoding = args.encoding
    spec = load_spec(args.spec) if args.spec else preset(args.preset or "task1")
    if args.dataset_version:
        spec = spec.model_copy(update={"version": str(args.dataset_version)})
    spec = with_au_target(spec, args.au_ratings, args.au_tolerance, args.au_match)
    if args.from_table:
        out = make_task_from_table(cfg, spec, args.from_table, args.out, dedupe=args.dedupe)
    else:
        out = make_task(cfg, spec, args.out, dedupe=args.dedupe)
    print(f"task written: {out}")
    return 0


def with_au_target(spec, ratings: str | None, tolerance: float | None, match: str | None):
    """``spec`` with the AU target of the ``--au-*`` flags (unchanged when none is given)."""
    from mouse_facial_expressions.data.au_targets import AUTargetSpec

    if ratings is None and spec.au is None:
        if tolerance is not None or match is not None:
            raise ValueError("--au-tolerance and --au-match need --au-ratings (or an au: section in the task spec)")
        return spec
    base = spec.au.model_dump() if spec.au is not None else {}
    given = {k: v for k, v in (("ratings", ratings), ("tolerance_s", tolerance), ("match", match)) if v is not None}
    return spec.model_copy(update={"au": AUTargetSpec(**{**base, **given})})


def run_show(args) -> int:
    from mouse_facial_expressions.data.tasks import load_task

    task = load_task(args.task_dir)  # validates the spec and re-checks the folds for leakage
    print((task.path / TaskFiles.README).read_text())
    return 0
