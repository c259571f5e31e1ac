"""`mfe keypoints import|info`: DeepLabCut/SLEAP files -> canonical keypoint tables."""

from __future__ import annotations

import argparse
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
"""

INFO_DESCRIPTION = """\
Summarise a pose file (DLC/SLEAP) or a canonical .parquet table: bodyparts or landmarks,
individuals, frames, and per point the share of frames present, the mean likelihood and
the share above the likelihood cutoff.
"""


def register(sub, formatter):
    p = sub.add_parser(
        "keypoints",
        help="import DLC/SLEAP keypoints as canonical tables; inspect pose files",
        description="Keypoint files: `import` writes the canonical tables, `info` summarises a file.",
        formatter_class=formatter,
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    ks = p.add_subparsers(dest="keypoints_command", metavar="ACTION")

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
    imp.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
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


def run_import(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.io.keypoints import describe_import, import_keypoints

    cfg = project_config(args)
    out = getattr(args, "out", None)
    if args.dry_run:
        print(describe_import(cfg, sources=getattr(args, "sources", None) or None,
                              individual=getattr(args, "individual", None), out=out))
        return 0
    outputs = import_keypoints(
        cfg, sources=getattr(args, "sources", None) or None, individual=getattr(args, "individual", None), out=out
    )
    print(f"{len(outputs)} canonical keypoint tables in {out or cfg.path('keypoints')}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.io.keypoints import describe

    print(describe(args.file, individual=getattr(args, "individual", None), pcutoff=args.pcutoff))
    return 0
