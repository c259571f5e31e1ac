"""`mfe train`: baseline | advanced | resup with k-fold cross-validation by animal.

The seed's module entry points (``python -m mouse_facial_expressions.models.
train_task1_{advanced,baseline,resup}_model``) use the same arguments with the model fixed.
Flags left out come from --config FILE (e.g. a run's params.json, which replays the run), then
from the project's ``mfe.yaml`` ``train:`` section (the ablation knobs under ``train.advanced``;
a key written there always counts), then from the model's defaults (shown in each flag's help).
`mfe config show train` prints every value and where it comes from.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mouse_facial_expressions.cli._common import BothSpellingsParser, add_help_all, add_project_arg, rename_option
from mouse_facial_expressions.cli.settings import add_config_arg
from mouse_facial_expressions.settings import LIGHTNING_ACCELERATOR, LIGHTNING_PRECISION

MODELS = ("baseline", "advanced", "resup")
_S = argparse.SUPPRESS  # flags not given stay absent, so mfe.yaml and the seed defaults apply


def str2bool(text: str) -> bool:
    """'True'/'False' (any case), yes/no, 1/0, as click.BOOL accepted in the seed."""
    t = str(text).strip().lower()
    if t in ("true", "t", "yes", "y", "1", "on"):
        return True
    if t in ("false", "f", "no", "n", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def int_list(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]."""
    try:
        return [int(x) for x in str(text).replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fold numbers such as 0,1, got {text!r}") from None


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _devices(text: str):
    return text if text == "auto" or "," in text else int(text)


def lightning_accelerator(text: str) -> str:
    """``--device auto|cpu|cuda|mps`` (old ``--accelerator gpu``) -> Lightning's accelerator."""
    t = str(text).strip().lower()
    if t not in LIGHTNING_ACCELERATOR:
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or mps, got {text!r}")
    return LIGHTNING_ACCELERATOR[t]


def lightning_precision(text: str) -> str:
    """``--precision 32|bf16|16`` -> ``32-true|bf16-mixed|16-mixed``; other values pass through."""
    t = str(text).strip()
    return LIGHTNING_PRECISION.get(t, t)


def add_train_arguments(parser: argparse.ArgumentParser, model: str | None = None) -> None:
    """Add every training flag (seed names). ``model`` fixes the model (seed entry points)."""
    from mouse_facial_expressions.training.selection import SELECT_RULES
    from mouse_facial_expressions.training.params import DEFAULT_RECIPE, RECIPES, SEED_DEFAULTS

    d = SEED_DEFAULTS[model or "advanced"]

    def dflt(key, fallback=None):
        if model is None and key in ("epochs", "learning_rate", "train_batch_size", "test_batch_size", "label_smoothing", "seed", "dropout", "backbone"):
            return " (default: " + ", ".join(f"{m} {SEED_DEFAULTS[m].get(key, fallback)}" for m in MODELS) + ")"
        return f" (default: {d.get(key, fallback)})"

    add = parser.add_argument
    add_project_arg(parser)
    add_config_arg(parser, "train")
    if model is None:
        add("--model", choices=MODELS, default=_S, help="model to train (default: train.model in mfe.yaml, else advanced)")
    g = parser.add_argument_group("seed flags")
    g.add_argument("--epochs", type=int, default=_S, help="training epochs" + dflt("epochs"))
    g.add_argument("--learning_rate", type=float, default=_S, help="peak learning rate; cosine decay to 1%%" + dflt("learning_rate"))
    g.add_argument("--train_batch_size", type=int, default=_S, help="clips per training batch" + dflt("train_batch_size"))
    g.add_argument("--test_batch_size", type=int, default=_S, help="clips per validation/test batch" + dflt("test_batch_size"))
    g.add_argument("--weight_decay", type=float, default=_S, help="weight decay" + dflt("weight_decay"))
    g.add_argument("--label_smoothing", type=float, default=_S, help="smoothing [1-s, s] of hard targets (LDL) or CE label smoothing" + dflt("label_smoothing"))
    g.add_argument("--num_frames", type=int, default=_S, help="frames per window (default: the task's num_frames)")
    g.add_argument("--frame_stride", type=int, default=_S, help="kept frames between window frames (default: the task's frame_stride)")
    g.add_argument("--use_soft_labels", type=str2bool, default=_S, metavar="{True,False}", help="LDL on soft labels; False: cross-entropy on hard labels" + dflt("use_soft_labels"))
    g.add_argument("--dataset_version", default=_S, help="task folder tasks/task-<version> (default: project.dataset_version in mfe.yaml; the seed used 1.0)")
    g.add_argument("--train_augmentation", default=_S, help="training augmentation policy (default: TrivialAugmentWide)")
    if model is None:
        g.add_argument("--train-seed", dest="seed", type=int, default=_S, help="seed of the training RNGs "
                       "(weight initialisation, sampling, augmentation)" + dflt("seed"))
    else:
        g.add_argument("--seed", type=int, default=_S, help="random seed" + dflt("seed"))
    g.add_argument("--folds", type=int_list, default=_S, help="comma-separated outer folds to run, e.g. 0 or 0,1 (default: every fold of the task)")
    if model in (None, "baseline"):
        g.add_argument("--momentum", type=float, default=_S, help="SGD momentum (baseline) (default: 0.9)")
    if model in (None, "resup", "advanced"):
        g.add_argument("--dropout", type=float, default=_S, help="Transformer/MLP dropout" + dflt("dropout"))
    if model is not None:  # the seed's name; mfe train: --device (runtime)
        g.add_argument("--accelerator", default=_S, help="auto | cpu | gpu (default: auto)")
    m = parser.add_argument_group("model")
    m.add_argument("--backbone", choices=("resnet18", "resnet34", "resnet50", "mobilenet_v2"), default=_S, help="per-frame CNN" + dflt("backbone"))
    m.add_argument("--pretrained", default=_S, help="imagenet (from the torch hub cache, never downloaded; see `mfe weights`), none, or a state-dict path (default: none)")
    m.add_argument("--in_channels", type=int, choices=(1, 3), default=_S, help="3: grey repeated to RGB (the loader's output); 1: conv1 weights summed (default: 3)")
    m.add_argument("--image_size", type=int, default=_S, help="side of the input crops in pixels (default: 112)")
    if model in (None, "advanced"):  # the baseline and resup models have no Transformer
        m.add_argument("--num_layers", type=int, default=_S, help="Transformer layers (default: 4)")
        m.add_argument("--num_heads", type=int, default=_S, help="attention heads (default: 8)")
        m.add_argument("--ff_dim", type=int, default=_S, help="Transformer feed-forward size (default: 2048)")
        m.add_argument("--d_model", type=int, default=_S, help="Transformer width; the backbone feature is projected when it differs (default: 512)")
        m.add_argument("--baseline_recording", type=int, default=_S, metavar="K",
                       help="baseline-relative scoring: each window is scored against the same animal's windows of "
                            "recording K (e.g. 1, pre-injection), so a new cohort needs its own baseline recordings, "
                            "not its labels. Only recording-K windows of the animal's own split are used; validation "
                            "and test score the other recordings (default: the task's baseline_recording, else none)")
    if model in (None, "advanced"):  # the AU heads need the advanced model's window embedding (models/parts/au.py)
        m.add_argument("--targets", choices=("class", "au", "au+class"), default=_S,
                       help="what the model learns. class: the task's two classes (as always). au+class: also the five "
                            "Mouse Grimace Scale action units (ot, nb, cb, ep, wc), one head each on the window "
                            "embedding, trained on the raters' score distribution (0/1/2) of the rated frame nearest "
                            "each window; predictions then add au_ot ... au_wc (expected score 0..2) and mgs (their "
                            "mean), and mfe evaluate an MGS table (kappa, r against the mean rater and the truth). "
                            "au: the action units only: p1 = mgs / 2 (a grimace score, not a probability) and the "
                            "checkpoint is selected on the validation AU loss. au and au+class need a task made "
                            "with --au-ratings (mfe task make) (default: class)")
    m.add_argument("--optimizer", choices=("adamw", "sgd"), default=_S, help="optimiser (default: sgd for baseline, adamw otherwise)")
    rc = parser.add_argument_group(
        "recipe", "how much is learned per epoch and which epoch is kept; --recipe sets all of these, the flags "
        "below change one (docs/RECIPE.md has the measured effect of each)")
    rc.add_argument("--recipe", choices=tuple(RECIPES), default=_S, help="mfe2: BatchNorm statistics recomputed before each "
                    "validation, every validation window, lowest validation loss kept; mfe1: the first mfe recipe; original: "
                    f"the original code's choices (default: {DEFAULT_RECIPE})")
    rc.add_argument("--augment_policy", choices=("mild", "wide"), default=_S, help="augmentation ranges: wide = torchvision's "
                    "TrivialAugmentWide, mild = rotation 30 deg, shear 0.3 (default: the recipe's)")
    rc.add_argument("--augment_scope", choices=("clip", "frame"), default=_S, help="one augmentation per clip, or one per frame "
                    "as the original (default: the recipe's)")
    rc.add_argument("--sampler", choices=("balanced", "uniform"), default=_S, help="training windows: balanced by class, then "
                    "video; or uniform over windows, as the original (default: the recipe's)")
    rc.add_argument("--pos_init_std", type=float, default=_S, help="std of the positional table's initialisation (default: the recipe's)")
    rc.add_argument("--head_activation", choices=("gelu", "relu"), default=_S, help="classifier MLP activation (default: the recipe's)")
    rc.add_argument("--head_dropout", type=float, default=_S, help="dropout before the classifier's last layer (default: the recipe's)")
    rc.add_argument("--warmup_epochs", type=float, default=_S, help="linear learning-rate warm-up, in epochs (default: the recipe's)")
    rc.add_argument("--select", choices=SELECT_RULES, default=_S, help="checkpoint selection on the validation animals: "
                    "val_acc (ties: lower loss), val_loss, or last (no selection) (default: the recipe's)")
    rc.add_argument("--val_windows_per_video", type=int, default=_S, help="validation windows scored per video; 0 = every "
                    "window (default: the recipe's)")
    w = parser.add_argument_group(
        "weak supervision", "labels belong to videos, but a sick mouse does not grimace every second "
        "(training/weak.py)")
    w.add_argument("--weak", choices=("em", "attention"), default=_S, help="em: each training window's target is "
                   "re-estimated every --weak_every epochs from the model's scores: 0 in negative videos; in a positive "
                   "video the scores rescaled so the video's mean target is --weak_fraction, its top window 1 (soft-label "
                   "LDL loss; validation and test animals are never used). attention: attention-MIL, the comparison "
                   "baseline (--model advanced): bags of --weak_bag windows of one video, their embeddings pooled by "
                   "learned attention, trained on the video's label; a single window scores as a bag of one "
                   "(models/parts/attention.py) (default: none, every window takes its video's label)")
    w.add_argument("--weak_posterior", choices=("scaled", "bayes"), default=_S, help="--weak em's E-step: scaled (the "
                   "scores rescaled to the prior's mass, see --weak) or bayes (the posterior a balanced video-label score "
                   "implies under the prior --weak_fraction: 1 - (1 - f)(1 - s)/s, clipped; no fixed mass) (default: scaled)")
    w.add_argument("--weak_bag", type=int, default=_S, help="--weak attention: windows per bag (default: 8); an epoch "
                   "holds as many clips as without bags")
    w.add_argument("--weak_fraction", type=float, default=_S, help="the prior: expected fraction of a positive video's "
                   "windows in the affected state (default: 0.3)")
    w.add_argument("--weak_every", type=int, default=_S, help="epochs between E-steps (default: 1)")
    w.add_argument("--weak_start", type=int, default=_S, help="epoch (0-based) of the first E-step; the epochs before it "
                   "train on the videos' labels, so the model has learned something to re-weight with (default: 1)")
    f = parser.add_argument_group(
        "multimodal fusion", "score with the face, the body's behaviour and physiology together (models/parts/fusion.py). "
        "behaviour needs `mfe behaviour import` (body keypoints of the same videos), physiology needs "
        "metadata/physiology.csv (animal, recording, one column per measure)")
    f.add_argument("--modalities", default=_S, help="comma-separated subset of face, behaviour, physiology, e.g. "
                   "face,behaviour,physiology or behaviour alone (default: face). The checkpoint records them; "
                   "with several, the test windows are also scored with each modality alone and each left out "
                   "(predictions_modalities.csv: mfe evaluate's modality table)")
    f.add_argument("--fusion", choices=("stacked", "late", "mid"), default=_S, help="stacked: one head per modality, "
                   "each trained on its own loss too, then weighed by a logistic regression fit on the fold's "
                   "validation animals (fold.json records the weights); late: those heads' logits averaged; mid: the "
                   "modalities' embeddings concatenated, then one head (the face part needs --model advanced). "
                   "Measured in docs/FUSION.md (default: late)")
    f.add_argument("--modality_dropout", type=float, default=_S, help="training: probability of switching off each "
                   "present modality per window (one always stays), so the model scores with any subset, e.g. a "
                   "new cohort without physiology (default: 0.3)")
    r = parser.add_argument_group("runtime")
    if model is None:
        r.add_argument("--device", dest="accelerator", type=lightning_accelerator, default=_S,
                       metavar="{auto,cpu,cuda,mps}", help="where training runs (auto: CUDA when available) (default: auto)")
    r.add_argument("--devices", type=_devices, default=_S, help="devices per node: auto, a count, or a list such as 0,1 (default: auto)")
    r.add_argument("--strategy", default=_S, help="Lightning strategy: auto, ddp, ddp_spawn, fsdp ... (default: auto)")
    r.add_argument("--num_nodes", type=int, default=_S, help="nodes for multi-node DDP (default: 1)")
    r.add_argument("--precision", type=lightning_precision, default=_S, metavar="{32,bf16,16}",
                   help="fp32, bf16 or fp16 mixed precision (Lightning's 32-true, bf16-mixed, 16-mixed also accepted) "
                   "(default: bf16/16 on CUDA, bf16 on bf16 CPUs, else 32)")
    r.add_argument("--channels_last", type=str2bool, default=_S, metavar="{True,False}", help="channels_last memory format (default: on with bf16)")
    r.add_argument("--max_time", default=_S, help="time limit per fold, DD:HH:MM:SS (default: none). The learning rate follows a cosine over "
                   "--epochs: when the limit stops training early the schedule is cut off, so also set --epochs to "
                   "what fits (a warning says how many did)")
    r.add_argument("--epoch_size", type=int, default=_S, help="training windows per epoch (default: the loader's)")
    r.add_argument("--loader-workers" if model is None else "--workers", dest="workers", type=int, default=_S, metavar="N",
                   help="data loader worker processes (default: 2)")
    if model is None:  # one name per idea across mfe's commands (issue 31)
        rename_option(parser, "--accelerator", "--device")
        rename_option(parser, "--workers", "--loader-workers")
        rename_option(parser, "--seed", "--train-seed")
    r.add_argument("--limit_batches", type=_number, default=_S, help="cap train/val batches per epoch (int) or fraction (float), for quick checks")
    r.add_argument("--out", type=Path, default=_S, help="output folder for checkpoints*/, runs/, mlruns.db (default: paths.models)")
    r.add_argument("--run_name", default=_S, help="run folder name under <out>/runs: one folder name, without '/', '\\' or '..' "
                   "(default: <model>-<backbone>-<hash of the parameters>; a rerun resumes it)")
    r.add_argument("--tracking_uri", default=_S, help="MLflow tracking URI (default: train.tracking_uri, else sqlite:///<out>/mlruns.db)")
    r.add_argument("--experiment", default=_S, help="MLflow experiment name (default: mfe)")
    r.add_argument("--no_tracking", action="store_true", default=_S, help="do not log to MLflow")


def run_training(args: argparse.Namespace, model: str | None = None) -> int:
    """Resolve parameters (flags > --config > mfe.yaml > the model's defaults), then one library
    call: :func:`training.train_cv`."""
    from mouse_facial_expressions.cli.settings import resolve_train
    from mouse_facial_expressions.training import train_cv
    from mouse_facial_expressions.training.runs import check_run_name

    if getattr(args, "run_name", None) is not None:
        check_run_name(args.run_name)  # before the project or the task is read
    for name in ("lightning.pytorch", "lightning.fabric"):  # they have their own handlers: no double lines
        logging.getLogger(name).propagate = False
    cfg, params, resolved = resolve_train(args, model)
    s = resolved.values
    if params.run_name is not None:
        check_run_name(params.run_name)
    version = params.dataset_version or cfg.project.dataset_version
    params.dataset_version = version
    task_dir = Path(s["task_dir"]) if s["task_dir"] is not None else cfg.path("tasks") / f"task-{version}"
    if not task_dir.is_dir():
        raise FileNotFoundError(f"task folder {task_dir} does not exist (run `mfe task make`, or pick --dataset-version)")
    out = s["out"] or cfg.path("models")
    summary = train_cv(
        task_dir, params, out, tracking_uri=s["tracking_uri"], experiment=s["experiment"], track=not s["no_tracking"],
    )
    if summary:
        acc = summary["mean_test_acc"]
        print(f"{params.model}: mean test accuracy {acc:.3f} over {len(summary['folds'])} folds" if acc is not None
              else f"{params.model}: no fold tested")
        print(f"predictions: {summary['predictions']}\nsummary: {Path(summary['run_dir']) / 'summary.json'}")
    return 0


def entry_point(model: str, argv: list[str] | None = None) -> int:
    """``python -m mouse_facial_expressions.models.train_task1_<model>_model`` (seed flags)."""
    parser = build_entry_parser(model)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    try:
        return run_training(args, model)
    except KeyboardInterrupt:
        print(f"\n{parser.prog}: interrupted; rerun to resume", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1


def build_entry_parser(model: str) -> argparse.ArgumentParser:
    name = {"baseline": "baseline", "advanced": "advanced", "resup": "resup"}[model]
    parser = BothSpellingsParser(
        prog=f"python -m mouse_facial_expressions.models.train_task1_{name}_model",
        description=f"Train the {model} model with k-fold cross-validation by animal (same as `mfe train --model {model}`).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_train_arguments(parser, model)
    return parser


#: What ``mfe train --help`` shows: what a lab sets, and the essentials. The rest (the recipe's
#: settings, the optimiser, the Transformer's sizes, the runtime) shows with ``--help-all``; in
#: ``mfe.yaml`` the ablation knobs sit under ``train.advanced`` (``settings.TrainAdvancedConfig``).
TRAIN_FRONT = {"project", "config", "model", "backbone", "pretrained", "image_size", "epochs", "targets", "modalities",
               "weak", "accelerator", "run_name", "dataset_version", "folds"}


def register(sub, formatter):
    p = sub.add_parser(
        "train",
        help="train baseline | advanced | resup with k-fold CV by animal",
        description=__doc__,
        formatter_class=formatter,
        epilog="example: mfe train -p PROJECT --model advanced --backbone resnet18 --epochs 10 --folds 0,1\n"
        "--help shows what a lab sets; --help-all also the recipe's settings, the optimiser, the Transformer's "
        "sizes and the runtime options",
    )
    add_train_arguments(p)
    add_help_all(p, TRAIN_FRONT, "the recipe's settings, the optimiser, the Transformer's sizes and the runtime")
    p.set_defaults(func=run_training)
