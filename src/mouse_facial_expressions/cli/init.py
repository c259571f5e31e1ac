"""`mfe init DIR`: a new project folder."""

from pathlib import Path

from mouse_facial_expressions.project import init_project


def register(sub, formatter):
    p = sub.add_parser(
        "init",
        help="create a project folder with a commented mfe.yaml",
        description="Create DIR with a commented mfe.yaml (every setting and its default) and "
        "the folders the pipeline stages write to. Put raw_videos.csv and treatments.csv in "
        "metadata/, camera files in videos/raw/ and DeepLabCut output in keypoints/dlc/.",
        formatter_class=formatter,
    )
    p.add_argument("dir", type=Path, help="project folder to create")
    p.add_argument("--force", action="store_true", help="overwrite an existing mfe.yaml")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = init_project(args.dir, force=args.force)
    print(f"project ready: {cfg.root / 'mfe.yaml'}")
    for name in type(cfg.paths).model_fields:
        print(f"  {name:<17} {cfg.path(name)}")
    return 0
