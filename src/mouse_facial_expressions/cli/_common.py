"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from mouse_facial_expressions.config import Config, load_config


def add_project_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p",
        "--project",
        type=Path,
        default=None,
        help="project folder holding mfe.yaml (default: the current folder); "
        "MFE_* environment variables fill settings the file does not set",
    )


def project_config(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "project", None))


def not_implemented(stage: str, issue: str):
    def run(args: argparse.Namespace) -> int:
        import sys

        print(f"mfe {stage}: not implemented yet ({issue}).", file=sys.stderr)
        return 3

    return run
