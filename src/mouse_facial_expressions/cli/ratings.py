"""`mfe ratings import`: Mouse Grimace Scale rating sheets -> ratings/<name>.parquet."""

from __future__ import annotations

import argparse
from pathlib import Path

from mouse_facial_expressions.cli._common import add_project_arg, project_config

DESCRIPTION = """\
Read a Mouse Grimace Scale rating sheet (five action units scored 0, 1 or 2: orbital
tightening ot, nose bulge nb, cheek bulge cb, ear position ep, whisker change wc) and write
<project>/ratings/<name>.parquet, one row per (item, rater, au): item, video, frame, time_s,
animal, rater, au, score (0..2), line.

Layouts: wide (one row per image/frame, columns ot1, nb1, ..., wc1, ot2, ...: AU then rater,
empty where a rater did not score) or long (one row per image, columns orbital.tightening,
nose.bulge, cheek.bulge, ear.position, whisker.change, optional rater, average, rejected).
The delimiter (comma, semicolon, tab) is sniffed; an unnamed index column is dropped.

Items get their video and time from ratings.pattern in mfe.yaml (a regex over the image name
with named groups video, animal, minute, second, frame), or from video,frame columns;
otherwise they are still images. Rows that are rejected, unparseable, out of range or
duplicated are listed with their line numbers here and in ratings/<name>.issues.csv.
"""


def _codes(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def register(sub, formatter):
    p = sub.add_parser("ratings", help="import Mouse Grimace Scale rating sheets",
                       description=DESCRIPTION, formatter_class=formatter)
    rsub = p.add_subparsers(dest="ratings_command", metavar="SUBCOMMAND")
    m = rsub.add_parser("import", help="rating sheet (CSV) -> ratings/<name>.parquet",
                        description=DESCRIPTION, formatter_class=formatter)
    add_project_arg(m)
    m.add_argument("file", type=Path, help="rating sheet (CSV; comma, semicolon or tab separated)")
    m.add_argument("--name", default=None, help="output name ratings/<NAME>.parquet (default: the sheet's file name)")
    m.add_argument("--missing-codes", dest="missing_codes", type=_codes, default=None, metavar="CODES",
                   help="comma-separated cell values meaning 'not scored', counted per AU (default: -,9,-1, "
                   "leaving out codes that are valid scores on the sheet's scale)")
    m.add_argument("--scale-max", dest="scale_max", type=float, default=None, metavar="N",
                   help="top score of the sheet's scale, mapped onto 0..2 (e.g. 9 for a 0-9 sheet, 6 for a sum "
                   "over 3 raters; default: 2)")
    m.add_argument("--layout", choices=("auto", "wide", "long"), default="auto",
                   help="sheet layout (auto: wide when <au><rater> columns exist)")
    m.set_defaults(func=run_import)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_import(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.io.ratings import import_ratings

    cfg = project_config(args)
    if not args.file.is_file():
        raise FileNotFoundError(f"no such rating sheet: {args.file}")
    result, parquet, issues = import_ratings(
        args.file, cfg.root, args.name, missing_codes=args.missing_codes, scale_max=args.scale_max,
        layout=args.layout, pattern=cfg.ratings.pattern)
    print(f"ratings from {args.file}")
    print(result.summary())
    print(f"ratings written: {parquet}")
    print(f"issues written:  {issues} ({len(result.issues)})")
    return 0
