"""`mfe init DIR`: a new project folder."""

from pathlib import Path

from mouse_facial_expressions.project import METADATA_TEMPLATES, init_project


def register(sub, formatter):
    p = sub.add_parser(
        "init",
        help="create a project folder with a commented mfe.yaml",
        description="Create DIR with a commented mfe.yaml (every setting with its description and its default, commented "
        "out: uncomment a key to set it), "
        "the folders the pipeline stages write to, and metadata/raw_videos.csv and "
        "metadata/treatments.csv with their header and one commented example row (existing "
        "metadata files are never overwritten, also with --force). Then it prints the next "
        "steps: fill in the metadata, camera files in videos/raw/, DeepLabCut output in "
        "keypoints/dlc/, and the commands to run.",
        formatter_class=formatter,
    )
    p.add_argument("dir", type=Path, help="project folder to create")
    p.add_argument("--force", action="store_true", help="overwrite an existing mfe.yaml")
    p.set_defaults(func=run)


NEXT_STEPS = """\
next steps (run the commands in {root}, or add --project {root}):
  1. fill in {metadata}/raw_videos.csv (one row per recording) and {metadata}/treatments.csv
     (one row per mouse); the '#' row in each is an example of the formats: date and time of
     the recording as numbers, trims start/end as M:SS (0 / -1 = no trim). Put the camera
     files in {raw_videos}/ (<camera>__<serial>__YYYYMMDD_HHMMSS.mp4)
  2. mfe prepare --dry-run, then mfe prepare       (trimmed videos -> {processed_videos}/)
  3. keypoints (DeepLabCut): put DLC's output for the trimmed videos in {dlc}/, or run DLC
     on them: mfe keypoints detect --dlc-config PATH/config.yaml; then mfe keypoints import
     (your bodypart names: keypoints.bodyparts in mfe.yaml; head-fixed rigs: set
     extract.alignment: headfixed_eye_nose, the default is dlc_face)
  4. mfe extract --preview                          (look at the preview before training)
  5. mfe task make --preset task1
  6. mfe train --model advanced
  7. mfe evaluate RUN, and score new videos: mfe predict VIDEO --keypoints FILE --model RUN
"""


def run(args) -> int:
    cfg = init_project(args.dir, force=args.force)
    print(f"project ready: {cfg.root / 'mfe.yaml'}")
    names = [n for n in type(cfg.paths).model_fields if getattr(cfg.paths, n) is not None]  # set paths only
    for name in names:
        print(f"  {name:<17} {cfg.path(name)}")
    for name, text in METADATA_TEMPLATES.items():
        path = cfg.path("metadata") / name
        print(f"  {path}: " + ("template (header + a commented example row)"
                               if path.read_text(encoding="utf-8") == text else "yours, kept"))
    rel = {name: _rel(cfg.path(name), cfg.root) for name in names}
    print(NEXT_STEPS.format(root=cfg.root, **rel), end="")
    return 0


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:  # a folder outside the project (an absolute path in mfe.yaml)
        return str(path)
