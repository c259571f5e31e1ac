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


def add_encoding_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoding", default=None, help="text encoding of the metadata CSVs, e.g. latin-1 or cp1252 "
                        "for files saved by Excel on Windows (default: metadata.encoding in mfe.yaml, else utf-8)")


def project_config(args: argparse.Namespace) -> Config:
    cfg = load_config(getattr(args, "project", None))
    if getattr(args, "encoding", None):
        cfg.metadata.encoding = args.encoding  # validated: an unknown encoding is an error
    return cfg
