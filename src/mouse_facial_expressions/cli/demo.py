"""`mfe demo OUT`: the whole pipeline on a synthetic cohort (what `make demo` runs)."""

from pathlib import Path

from mouse_facial_expressions.pipeline import DemoSettings, run_demo


def register(sub, formatter):
    p = sub.add_parser(
        "demo",
        help="run the pipeline end to end on a synthetic cohort",
        description="Generate a synthetic cohort with known ground truth in OUT and run every "
        "pipeline stage on it (prepare, keypoints, extract, task, train, evaluate) on the CPU. "
        "Prints the headline metrics and the path of the HTML report.",
        formatter_class=formatter,
    )
    p.add_argument("out", type=Path, nargs="?", default=Path("demo"), help="output project folder")
    p.add_argument("--preset", default="demo", help="synthetic cohort preset (tiny, demo, bench)")
    p.add_argument("--epochs", type=int, default=DemoSettings.epochs, help="training epochs")
    p.add_argument("--image-size", type=int, default=DemoSettings.image_size, help="crop size fed to the model")
    p.add_argument("--folds", type=int, default=DemoSettings.n_folds,
                   help="outer folds by animal asked for (the task gets fewer when a class has fewer animals)")
    p.add_argument("--seed", type=int, default=0, help="seed for the cohort and training")
    p.set_defaults(func=run)


def run(args) -> int:
    s = DemoSettings(preset=args.preset, epochs=args.epochs, image_size=args.image_size, seed=args.seed,
                     n_folds=args.folds)
    run_demo(args.out, s)
    return 0
