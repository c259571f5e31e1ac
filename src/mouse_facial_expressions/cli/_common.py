"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mouse_facial_expressions.config import Config, ConfigError, load_config, project_file


def project_folder(text: str) -> Path:
    """``-p PATH``: a folder holding ``mfe.yaml`` (or an existing ``.yaml`` file); anything else is
    a usage error naming it (a folder without ``mfe.yaml`` is never taken as a project)."""
    try:
        project_file(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return Path(text)


def add_project_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p",
        "--project",
        type=project_folder,
        default=None,
        help="project folder holding mfe.yaml (default: the current folder, whose mfe.yaml is optional); "
        "MFE_* environment variables fill settings the file does not set",
    )


def add_encoding_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoding", default=None, help="text encoding of the metadata CSVs, e.g. latin-1 or cp1252 "
                        "for files saved by Excel on Windows (default: metadata.encoding in mfe.yaml, else utf-8)")


def project_config(args: argparse.Namespace) -> Config:
    """The project's configuration: ``-p`` (which must hold ``mfe.yaml``), else the current folder."""
    project = getattr(args, "project", None)
    cfg = load_config(project_file(project) if project is not None else None)
    if getattr(args, "encoding", None):
        cfg.metadata.encoding = args.encoding  # validated: an unknown encoding is an error
    return cfg


class BothSpellingsParser(argparse.ArgumentParser):
    """Takes every long option in both spellings, ``--learning_rate`` and ``--learning-rate``
    (``--x=1`` too); help shows the one each command registers (the original code's where it
    had one). Subcommand parsers are of this class as well (``add_subparsers`` uses the parent's)."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        known = self._option_string_actions
        out = []
        for i, a in enumerate(args):
            if a == "--":
                out += args[i:]
                break
            name, eq, value = a.partition("=")
            if name.startswith("--") and name not in known:
                for other in (name[:2] + name[2:].replace("-", "_"), name[:2] + name[2:].replace("_", "-")):
                    if other in known:
                        a = other + eq + value
                        break
            out.append(a)
        return super().parse_known_args(out, namespace)

    def error(self, message):
        """A ``-p`` that names no project: its one line, without the usage (it is not a usage slip)."""
        prefix = "argument -p/--project: "
        if message.startswith(prefix):
            self.exit(2, f"{self.prog}: error: {message[len(prefix):]}\n")
        super().error(message)
