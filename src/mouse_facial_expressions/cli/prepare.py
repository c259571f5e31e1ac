"""`mfe prepare`: trim and rename raw videos per raw_videos.csv (frame-exact, PyAV)."""

from __future__ import annotations

import argparse

from mouse_facial_expressions.cli._common import add_encoding_arg, add_project_arg, project_config

DESCRIPTION = """\
For every row of raw_videos.csv with discard != 1, find the raw video by camera and
timestamp (<camera>__<serial>__YYYYMMDD_HHMMSS.mp4 in paths.raw_videos), cut it to
start..end frame-exactly (output frame 0 is the raw frame at `start`) and write
paths.processed_videos/<animal>_rec<k>_<label>.mp4 with a <video>.prepare.json record.

All rows are checked first: duplicated rows, animals missing from treatments.csv and
missing or ambiguous raw videos stop the run before anything is written. Complete outputs
are skipped; a video that cannot be decoded fails alone and the exit code is 1.
"""


def register(sub, formatter):
    p = sub.add_parser("prepare", help="trim + rename raw videos per raw_videos.csv",
                       description=DESCRIPTION, formatter_class=formatter)
    add_project_arg(p)
    add_encoding_arg(p)
    p.add_argument("--overwrite", action="store_true",
                   help="rewrite videos whose output is complete already, or was made from other trims")
    p.add_argument("--skip-missing", dest="skip_missing", action="store_true",
                   help="prepare the other videos when a row's raw video is missing, and list what was skipped "
                   "(default: stop; or set discard=1 on that row)")
    p.add_argument("--dry-run", action="store_true",
                   help="only print the plan (row -> raw file -> output, trims in frames); write nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.preprocess.prepare import describe_plan, prepare_videos

    cfg = project_config(args)
    if args.dry_run:
        print(describe_plan(cfg, overwrite=args.overwrite, skip_missing=args.skip_missing))
        return 0
    report = prepare_videos(cfg, overwrite=args.overwrite, skip_missing=args.skip_missing)
    print(report.summary())
    return 0 if report.ok else 1
