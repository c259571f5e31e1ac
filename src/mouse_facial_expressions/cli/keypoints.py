"""`mfe keypoints` (stub until its issue lands)."""

from mouse_facial_expressions.cli._common import not_implemented


def register(sub, formatter):
    p = sub.add_parser("keypoints", help="(not implemented yet)", formatter_class=formatter)
    p.set_defaults(func=not_implemented("keypoints", "see the open issues"))
