"""`mfe behaviour import`: DLC/SLEAP body keypoints -> one body table per video (behaviour features)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mouse_facial_expressions.cli._common import add_project_arg, project_config

IMPORT_DESCRIPTION = """\
Read DeepLabCut (.h5/.csv, single- or multi-animal) or SLEAP (.slp, analysis .h5) files of
the mouse's BODY, tracked on the same processed videos as the face, and write one table
per video: behaviour/<video>.parquet (paths.behaviour) with columns frame, <L>_x, <L>_y,
<L>_likelihood for each landmark of behaviour.bodyparts in mfe.yaml, then the file's other
bodyparts, and the video's frame rate in its metadata.

Track at least nose, body_centre and tail_base (left_ear and right_ear are read too). If
your DLC model names them differently, map them in mfe.yaml, e.g.

  behaviour:
    bodyparts:
      nose: [snout]
      body_centre: [spine2]          # several names are averaged: [spine1, spine2]
      tail_base: [tailbase]
      left_ear: [ear_left]
      right_ear: [ear_right]

The video name comes from the file name (<video>DLC_<scorer>.h5 -> <video>) and must be a
processed video, videos/processed/<video>.mp4 (its frame rate times the frames; its frame
count must match the file's rows within extract.max_count_mismatch). Multi-animal files:
behaviour.individual picks the animal.

From these tables the window features are computed where they are used (speed, distance,
immobility below behaviour.immobile_speed px/s, elongation, rearing, head-movement
variance; see docs/ARCHITECTURE.md "Behaviour and physiology"). Each table records its pose
file, video and mapping: a rerun skips fresh tables and redoes changed ones (--overwrite
redoes all). A file that fails does not stop the others; the failures are listed at the end
(exit code 1).
"""


def register(sub, formatter):
    p = sub.add_parser(
        "behaviour",
        help="import DLC/SLEAP body keypoints -> behaviour/<video>.parquet (speed, rearing, ... per window)",
        description="Behaviour from body keypoints: `import` writes one body table per processed video.",
        formatter_class=formatter,
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    bs = p.add_subparsers(dest="behaviour_command", metavar="ACTION")
    imp = bs.add_parser(
        "import",
        help="DLC/SLEAP body files -> behaviour/<video>.parquet",
        description=IMPORT_DESCRIPTION,
        formatter_class=formatter,
    )
    imp.add_argument("sources", metavar="SRC", nargs="*", type=Path, default=argparse.SUPPRESS,
                     help="body pose files or folders of them (folders are not searched recursively); "
                     "default: paths.body_dlc of the project (keypoints/body)")
    add_project_arg(imp)
    imp.add_argument("--overwrite", action="store_true", help="rewrite tables that are up to date")
    imp.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.io.behaviour import import_behaviour

    cfg = project_config(args)
    outputs = import_behaviour(cfg, sources=getattr(args, "sources", None) or None, overwrite=args.overwrite)
    print(f"{len(outputs)} body tables in {cfg.path('behaviour')}")
    return 0
