"""Seed entry point: train the resup model with k-fold cross-validation by animal.

    python -m mouse_facial_expressions.models.train_task1_resup_model --help

Same flags (the seed's names) as `mfe train --model resup`; run it from the project folder
(the one holding mfe.yaml) or pass --project.
"""

from __future__ import annotations

import sys

from mouse_facial_expressions.cli.train import build_entry_parser, entry_point


def build_parser():
    """The argument parser (for tests and docs)."""
    return build_entry_parser("resup")


def main(argv: list[str] | None = None) -> int:
    return entry_point("resup", argv)


if __name__ == "__main__":
    sys.exit(main())
