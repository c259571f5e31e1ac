"""`mfe config show [COMMAND] [FLAGS ...]`: the values a command will use, and where each comes from."""

from __future__ import annotations

import argparse
import sys

from mouse_facial_expressions.cli._common import add_project_arg
from mouse_facial_expressions.cli.settings import SECTIONS

DESCRIPTION = """\
Print the settings COMMAND resolves (every key of its section of mfe.yaml) and where each
value comes from: default (the configuration model's, or for train the model's seed and recipe
defaults), mfe.yaml, --config (a file given with --config) or flag. Anything after COMMAND is
read as COMMAND's own flags, so `mfe config show train --config RUN/params.json --epochs 5`
shows what `mfe train --config RUN/params.json --epochs 5` would train with. Without COMMAND,
every command's settings, from mfe.yaml and the defaults.
"""


def register(sub, formatter):
    p = sub.add_parser("config", help="show the resolved settings of a command and where each comes from",
                       description="The project's configuration (mfe.yaml, see `mfe init`).", formatter_class=formatter)
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    s = csub.add_parser("show", help="print a command's resolved settings and their sources", description=DESCRIPTION,
                        formatter_class=formatter,
                        epilog="example: mfe config show -p PROJECT train --config models/runs/RUN/params.json")
    s.add_argument("section", nargs="?", choices=[c.split()[0] for c in SECTIONS], metavar="COMMAND",
                   help=f"one of {', '.join(SECTIONS)} (task: task make) (default: all of them)")
    s.add_argument("flags", nargs=argparse.REMAINDER, metavar="FLAGS",
                   help="COMMAND's own flags (--config FILE, --epochs 5 ...)")
    add_project_arg(s)
    s.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _command_args(command: str, flags: list[str]) -> argparse.Namespace:
    """``flags`` parsed by ``command``'s own parser, its positional inputs made optional."""
    from mouse_facial_expressions.cli import build_parser
    from mouse_facial_expressions.cli._common import command_tree

    parser = build_parser()
    path = command.split()
    target = {p.prog: p for p in command_tree(parser)}[f"mfe {command}"]
    for action in target._actions:  # this parser is built for the show alone
        action.required = False
        if not action.option_strings and action.nargs is None:
            action.nargs = "?"
    return parser.parse_args(path + list(flags))


def show(command: str, flags: list[str]) -> str:
    """The resolved settings of ``command`` (a key of :data:`SECTIONS`) given its ``flags``."""
    from mouse_facial_expressions.cli.settings import format_resolved, resolve_args, resolve_train

    args = _command_args(command, flags)
    section = SECTIONS[command]
    if section == "train":
        cfg, _, resolved = resolve_train(args)
    else:
        from mouse_facial_expressions.cli._common import project_config

        cfg = project_config(args)
        resolved = resolve_args(args, section, cfg)
    where = f"mfe.yaml: {cfg.root / 'mfe.yaml'}" + ("" if (cfg.root / "mfe.yaml").is_file() else " (none)")
    if getattr(args, "config", None) is not None:
        where += f"; --config: {args.config}"
    return format_resolved(f"mfe {command} ({where})", resolved)


def run_show(args: argparse.Namespace) -> int:
    flags = list(args.flags or [])
    if flags[:1] == ["--"]:
        flags = flags[1:]
    if args.project is not None:
        flags = ["-p", str(args.project), *flags]
    commands = [c for c in SECTIONS if c.split()[0] == args.section] if args.section else list(SECTIONS)
    if not args.section and args.flags:
        print("mfe config show: give COMMAND before its flags", file=sys.stderr)
        return 2
    print("\n\n".join(show(c, flags) for c in commands))
    return 0
