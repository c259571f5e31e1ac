"""`mfe finetune --from RUN --task NEW_TASK`: adapt a trained model to a new cohort."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mouse_facial_expressions.cli._common import add_project_arg, rename_option
from mouse_facial_expressions.cli.settings import add_config_arg, config_backed
from mouse_facial_expressions.cli.train import lightning_precision
from mouse_facial_expressions.settings import FinetuneConfig

DESCRIPTION = """\
Fine-tune a trained model on a new cohort with k-fold cross-validation by animal.

Every fold of the new task starts from the source model: the first fold's selected
checkpoint of RUN (the first member of its fold ensemble; --source-fold picks another),
or the .ckpt given. Architecture, clip length and image size come from that checkpoint.
Either freeze the backbone (--freeze-backbone: the per-frame CNN keeps its weights and
BatchNorm statistics; the temporal model and head train at the source learning rate x
--lr-scale, default 1) or train everything at a lower learning rate (source x --lr-scale,
default 0.1). Training, selection on validation animals, testing and outputs are those of
`mfe train` (runs/<name>/predictions.csv etc.), so `mfe evaluate` works on the result.
"""


def resolve_task(task: Path, args: argparse.Namespace) -> Path:
    """A task folder as given, else tasks/<name> or tasks/task-<name> of the project."""
    if task.is_dir():
        return task
    from mouse_facial_expressions.cli._common import project_config

    tasks = project_config(args).path("tasks")
    for cand in (tasks / task, tasks / f"task-{task}"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"task folder not found: {task} (looked in {tasks} too)")


def register(sub, formatter):
    p = sub.add_parser("finetune", help="fine-tune a trained model on a new cohort (k-fold CV by animal)",
                       description=DESCRIPTION, formatter_class=formatter,
                       epilog="example: mfe finetune --from advanced-resnet18-1a2b3c4d --task chronic --freeze-backbone")
    p.add_argument("--from", dest="source", type=Path, metavar="RUN|CKPT",
                   help="source run folder or .ckpt (a bare run name is looked up in the project's models/runs); required, as a "
                   "flag or finetune.source")
    p.add_argument("--task", type=Path, metavar="NEW_TASK",
                   help="the new cohort's task folder (or its name / version under the project's tasks folder)")
    p.add_argument("--freeze-backbone", action="store_true", help="keep the per-frame CNN fixed; train the rest")
    p.add_argument("--lr-scale", type=float, default=None,
                   help="learning rate = source learning rate x this (default: 1.0 with --freeze-backbone, else 0.1)")
    p.add_argument("--learning-rate", type=float, default=None, help="base learning rate before --lr-scale (default: the source's)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per fold (default: the source's)")
    p.add_argument("--source-fold", type=int, default=None, help="fold of RUN to start from (default: the first)")
    p.add_argument("--folds", type=lambda s: [int(x) for x in s.split(",") if x], default=None, help="new-task folds to run, e.g. 0,1 (default: all)")
    p.add_argument("--train-batch-size", type=int, default=None, help="clips per training batch (default: the source's model default)")
    p.add_argument("--loader-workers", dest="workers", type=int, default=None, metavar="N", help="data loader worker processes (default: 2)")
    p.add_argument("--precision", type=lightning_precision, default=None, metavar="{32,bf16,16}",
                   help="fp32, bf16 or fp16 mixed precision (Lightning's 32-true, bf16-mixed, 16-mixed also accepted) "
                   "(default: auto)")
    p.add_argument("--limit-batches", type=float, default=None, help="cap train/val batches per epoch (>= 1: a count), for quick checks")
    p.add_argument("--run-name", default=None, help="run folder name (default: finetune-<source>-<frozen|full>-on-<task>)")
    p.add_argument("--out", type=Path, default=None, help="models folder of the new run (default: <paths.models>/finetune)")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    p.add_argument("--allow-overlap", action="store_true",
                   help="fine-tune folds whose test animals the source model trained or validated on (default: refuse, "
                   "naming them); the warning goes into finetune.json and the evaluation report")
    add_project_arg(p)
    add_config_arg(p, "finetune")
    rename_option(p, "--workers", "--loader-workers")
    config_backed(p, FinetuneConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.cli._common import project_config
    from mouse_facial_expressions.cli.predict import resolve_model
    from mouse_facial_expressions.cli.settings import resolve_args
    from mouse_facial_expressions.training.finetune import finetune

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).propagate = False
    resolve_args(args, "finetune")
    if args.source is None or args.task is None:
        raise ValueError("--from RUN|CKPT and --task NEW_TASK are required (as flags, or source: and task: in the "
                         "finetune: section of mfe.yaml / --config)")
    source = resolve_model(args.source, args)
    task = resolve_task(args.task, args)
    out = args.out or project_config(args).path("models") / "finetune"
    limit = args.limit_batches
    limit = int(limit) if limit is not None and limit >= 1 else limit
    summary = finetune(source, task, out, freeze_backbone=args.freeze_backbone, lr_scale=args.lr_scale,
                       epochs=args.epochs, source_fold=args.source_fold, run_name=args.run_name, folds=args.folds,
                       track=not args.no_tracking, learning_rate=args.learning_rate,
                       train_batch_size=args.train_batch_size, workers=args.workers, precision=args.precision,
                       limit_batches=limit, allow_overlap=args.allow_overlap)
    acc = summary.get("mean_test_acc")
    print(f"fine-tuned from {summary['source_checkpoint']} ({'frozen backbone' if summary['freeze_backbone'] else 'all weights'}, "
          f"lr {summary['learning_rate']:g}): mean test accuracy {acc:.3f}" if acc is not None else "no fold tested")
    print(f"predictions: {summary.get('predictions')}\nrun: {summary.get('run_dir')}")
    return 0
