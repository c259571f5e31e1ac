"""`mfe keypoints detect|import|info`: DeepLabCut on the videos; DLC/SLEAP files -> canonical keypoint tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mouse_facial_expressions.cli._common import add_project_arg, project_config
from mouse_facial_expressions.config import KeypointsConfig

IMPORT_DESCRIPTION = """\
Read DeepLabCut (.h5/.csv: analysis output or labeled-data CollectedData files, single- or
multi-animal) or SLEAP (.slp, analysis .h5; needs the [sleap] extra) files and write one
canonical table per video: <out>/<video>.parquet with columns frame, <L>_x, <L>_y,
<L>_likelihood for each landmark of keypoints.bodyparts in mfe.yaml.

The video name comes from the file name: <video>DLC_<scorer>.h5 -> <video>,
labeled-data/<video>/CollectedData_<name>.h5 -> <video>. When a file exists as .h5 and
.csv, the .h5 is read. Each table records the pose file's content hash, the bodypart mapping
and the individual: a rerun skips fresh tables and redoes those whose source or mapping
changed, and says why (--dry-run lists both without writing).

A file that fails (unreadable, a bodypart missing, no frame that can be aligned) leaves no
table to crop from: its previous <video>.parquet moves to <video>.parquet.stale and
<video>.import-failed.json says why, so `mfe extract` refuses the video and `mfe task make`
its old crops until an import of it succeeds. A pose file older than its processed video
(made from an earlier cut of it?) is warned about, naming both files and their times.
"""

DETECT_DESCRIPTION = """\
Run your own trained DeepLabCut 3 model (PyTorch engine) on the processed videos
(paths.processed_videos, *.mp4; made by `mfe prepare`) and write DLC's output under DLC's
own names, keypoints/dlc/<video>DLC_<scorer>.h5 (paths.dlc), where `mfe keypoints import`
reads it. Needs the [dlc] extra: pip install 'mouse-facial-expressions[dlc]'.

The model: a DeepLabCut project you labelled and trained. For a freely moving mouse seen
from the side, label the points mfe aligns faces with: nose, left_eye, left_ear, right_eye,
right_ear (the eye and ear of the side facing the camera; leave hidden points empty), a few
dozen frames per video over 10-20 videos that span your animals, days, lighting and
treatments. Other names work too: map them in mfe.yaml (keypoints.bodyparts). Then in
Python: deeplabcut.create_training_dataset(config), deeplabcut.train_network(config). See
`mfe synth --dlc-project DIR` for a labelled example project. A head-fixed rig without
ears: label e.g. eye_top/eye_front/eye_bottom/eye_back and nose_tip, and set
extract.alignment: headfixed_eye_nose with keypoints.bodyparts (docs/guide/head-fixed-and-stills.md).

A video whose output is not older than the video is skipped (rerun after a crash to
resume; --force reruns all; a redone video's outputs from another model move to
keypoints/dlc/superseded/). DLC writes into a hidden folder that is renamed into place, so
a killed run leaves no half file. A video that fails does not stop the others; the
failures are listed at the end (exit code 1).

Next: mfe keypoints import, then mfe extract.
"""

INFO_DESCRIPTION = """\
Summarise a pose file (DLC/SLEAP) or a canonical .parquet table: bodyparts or landmarks,
individuals, frames, and per point the share of frames present, the mean likelihood and
the share above the likelihood cutoff.
"""


def register(sub, formatter):
    p = sub.add_parser(
        "keypoints",
        help="run DeepLabCut on the videos; import DLC/SLEAP keypoints as canonical tables; inspect pose files",
        description="Keypoints: `detect` runs your DeepLabCut model on the processed videos, `import` writes the "
        "canonical tables, `info` summarises a file.",
        formatter_class=formatter,
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    ks = p.add_subparsers(dest="keypoints_command", metavar="ACTION")

    det = ks.add_parser(
        "detect",
        help="run your DeepLabCut model on the processed videos -> keypoints/dlc/",
        description=DETECT_DESCRIPTION,
        formatter_class=formatter,
    )
    add_project_arg(det)
    det.add_argument("--dlc-config", dest="dlc_config", metavar="PATH", type=Path,
                     default=argparse.SUPPRESS,
                     help="the DeepLabCut project's config.yaml (or its folder); default: keypoints.dlc_config "
                     "of mfe.yaml")
    det.add_argument("--videos", metavar="VIDEO", nargs="+", default=argparse.SUPPRESS,
                     help="only these videos (paths, or names in paths.processed_videos); default: every *.mp4 there")
    det.add_argument("--out", metavar="DIR", type=Path, default=argparse.SUPPRESS,
                     help="output folder; default: paths.dlc")
    det.add_argument("--shuffle", type=int, default=1, help="DLC shuffle of the trained model")
    det.add_argument("--trainingsetindex", type=int, default=0, help="DLC training-set index (of TrainingFraction)")
    det.add_argument("--snapshot-index", "--snapshotindex", dest="snapshot_index", type=int,
                     default=argparse.SUPPRESS,
                     help="DLC snapshot to use (-1 = the last); default: snapshotindex of the DLC config.yaml")
    det.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                     help="auto: CUDA when a GPU is present, else the CPU")
    det.add_argument("--batch-size", dest="batch_size", type=int, default=argparse.SUPPRESS,
                     help="frames per forward pass; default: batch_size of the DLC config.yaml")
    det.add_argument("--csv", action="store_true", help="also write DLC's .csv beside each .h5")
    det.add_argument("--force", action="store_true", help="rerun videos whose output is fresh")
    det.add_argument("--dry-run", dest="dry_run", action="store_true",
                     help="list which videos would run and which are skipped, and why; run nothing")
    det.set_defaults(func=run_detect)

    imp = ks.add_parser(
        "import",
        help="DLC/SLEAP files -> keypoints/canonical/<video>.parquet",
        description=IMPORT_DESCRIPTION,
        formatter_class=formatter,
    )
    imp.add_argument(
        "sources",
        metavar="SRC",
        nargs="*",
        type=Path,
        default=argparse.SUPPRESS,
        help="pose files or folders of them (folders are not searched recursively); "
        "default: paths.dlc of the project",
    )
    add_project_arg(imp)
    imp.add_argument(
        "--individual",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="multi-animal files: the individual (DLC) or track (SLEAP) to import; "
        "default: keypoints.individual of mfe.yaml",
    )
    imp.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=argparse.SUPPRESS,
        help="output folder; default: paths.keypoints of the project",
    )
    imp.add_argument("--dry-run", dest="dry_run", action="store_true",
                     help="list which tables are fresh and which would be (re)written, and why; write nothing")
    imp.set_defaults(func=run_import)

    info = ks.add_parser(
        "info",
        help="summarise a pose file or canonical table",
        description=INFO_DESCRIPTION,
        formatter_class=formatter,
    )
    info.add_argument("file", metavar="FILE", type=Path, help="DLC .h5/.csv, SLEAP .slp/.h5, or canonical .parquet")
    info.add_argument(
        "--individual",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="multi-animal files: summarise only this individual (default: each one)",
    )
    info.add_argument(
        "--pcutoff",
        type=float,
        default=KeypointsConfig().pcutoff,
        help="likelihood cutoff for the 'lik>' column",
    )
    info.set_defaults(func=run_info)


def run_detect(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.preprocess.detect import describe_detect, detect_keypoints

    cfg = project_config(args)
    dlc_config, videos, out = (getattr(args, k, None) for k in ("dlc_config", "videos", "out"))
    if args.dry_run:
        print(describe_detect(cfg, dlc_config, videos, out, force=args.force))
        return 0
    try:
        outputs = detect_keypoints(cfg, dlc_config, videos, out, shuffle=args.shuffle,
                                   trainingsetindex=args.trainingsetindex,
                                   snapshot_index=getattr(args, "snapshot_index", None), device=args.device,
                                   batch_size=getattr(args, "batch_size", None), save_as_csv=args.csv,
                                   force=args.force)
    except ImportError as err:  # deeplabcut missing: one line with the pip command, no traceback
        print(f"mfe keypoints detect: error: {err}", file=sys.stderr)
        return 1
    print(f"{len(outputs)} DeepLabCut files in {out or cfg.path('dlc')}; next: mfe keypoints import")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.io.keypoints import describe_import, import_keypoints
    from mouse_facial_expressions.preprocess.alignment import import_check

    cfg = project_config(args)
    out = getattr(args, "out", None)
    if args.dry_run:
        print(describe_import(cfg, sources=getattr(args, "sources", None) or None,
                              individual=getattr(args, "individual", None), out=out))
        return 0
    outputs = import_keypoints(
        cfg, sources=getattr(args, "sources", None) or None, individual=getattr(args, "individual", None), out=out,
        check=import_check(cfg),  # the alignment's landmarks are mapped, and some frame can be aligned
    )
    print(f"{len(outputs)} canonical keypoint tables in {out or cfg.path('keypoints')}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.io.keypoint_info import describe

    print(describe(args.file, individual=getattr(args, "individual", None), pcutoff=args.pcutoff))
    return 0
