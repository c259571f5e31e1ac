"""Reference pages of the documentation site, generated from the code (issue 31).

``docs/reference/cli.md`` lists every command of :func:`mouse_facial_expressions.cli.build_parser`
with its description and options; ``docs/reference/configuration.md`` every section and key of
:class:`mouse_facial_expressions.config.Config`. The parser and the configuration are the source of
truth: ``tests/test_docs.py`` fails when the committed pages differ from what this module writes.

    python -m mouse_facial_expressions.cli.docs            # check: exit 1 naming stale pages
    python -m mouse_facial_expressions.cli.docs --write    # regenerate them (make docs-ref)

The output depends only on the code: no terminal width, no absolute path, no machine-dependent
default (a help text that says "default: the number of CPUs" is printed as written).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from mouse_facial_expressions.cli.docs_config import config_reference  # a page of PAGES, found by name in globals()
from mouse_facial_expressions.cli.docs_markdown import _GENERATED, REGENERATE, _blocks, _code, _inline, _table

#: Where ``--write`` puts the pages, relative to the repository root (the current folder).
REFERENCE_DIR = Path("docs/reference")
#: The generated pages, file name -> function that makes it.
PAGES = {"cli.md": "cli_reference", "configuration.md": "config_reference"}


# --- CLI ----------------------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _visible(action: argparse.Action) -> bool:
    return action.help is not argparse.SUPPRESS and not isinstance(
        action, (argparse._HelpAction, argparse._SubParsersAction))


def _expand(parser: argparse.ArgumentParser, text: str | None, action: argparse.Action | None = None) -> str:
    """``%(prog)s``, ``%(default)s`` ... filled in as argparse does."""
    if not text:
        return ""
    if action is not None:  # the plain formatter: no "(default: ...)" appended, the table has a column
        return argparse.HelpFormatter(parser.prog)._expand_help(action)
    return text % {"prog": parser.prog} if "%(prog)" in text else text


def _invocation(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    if not action.option_strings:
        metavar = formatter._metavar_formatter(action, action.dest)(1)[0]
        return _code(formatter._format_args(action, metavar) if action.nargs not in (None, 1) else metavar)
    if action.nargs == 0:
        return ", ".join(_code(s) for s in action.option_strings)
    args = formatter._format_args(action, formatter._get_default_metavar_for_optional(action))
    return ", ".join(_code(f"{s} {args}") for s in action.option_strings)


def _default(action: argparse.Action) -> str:
    d = action.default
    if d is None or d is argparse.SUPPRESS or action.nargs == 0 and isinstance(d, bool):
        return ""  # not given: the help says what happens (a flag is off)
    if isinstance(d, (list, tuple)):
        return _code(" ".join(str(x) for x in d)) if d else ""
    return _code(str(d))


def _usage(parser: argparse.ArgumentParser) -> str:
    """``mfe train [options] RUN ...``: required options and positionals, deterministic (no width)."""
    formatter = parser._get_formatter()
    parts = [parser.prog]
    if any(_visible(a) and a.option_strings and not a.required for a in parser._actions):
        parts.append("[options]")
    for a in parser._actions:
        if _visible(a) and a.option_strings and a.required:
            parts.append(f"{a.option_strings[0]} {formatter._format_args(a, formatter._get_default_metavar_for_optional(a))}".strip())
    for a in parser._actions:
        if _visible(a) and not a.option_strings:
            metavar = formatter._metavar_formatter(a, a.dest)(1)[0]
            parts.append(formatter._format_args(a, metavar) if a.nargs not in (None, 1) else metavar)
    sub = _subparsers(parser)
    if sub is not None:
        parts.append("COMMAND")
    return " ".join(parts)


def _command_section(parser: argparse.ArgumentParser, help_text: str, depth: int, root: bool = False) -> list[str]:
    """A command's heading, usage, description, option tables, subcommands; its subcommands'
    sections follow (the top level's at its own depth, so that each command is a section)."""
    out = [f"{'#' * depth} {parser.prog}\n"]
    if help_text:
        out.append(f"*{_inline(help_text)}*\n")
    out.append(f"```text\n{_usage(parser)}\n```\n")
    description = _blocks(_expand(parser, parser.description))
    if description:
        out.append(description)
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if _visible(a)]
        if not actions:
            continue
        title = group.title or "options"
        out.append(f"**{_inline(title)}**\n")
        front = getattr(parser, "front_options", None)  # plain --help shows these; --help-all the rest

        def text(a):
            hidden = front is not None and a.option_strings and a.dest not in front
            return ("*(--help-all)* " if hidden else "") + _inline(_expand(parser, a.help, a))

        rows = [[_invocation(parser, a), _default(a), text(a)] for a in actions]
        out.append(_table(["argument", "default", "description"], rows))
    sub = _subparsers(parser)
    if sub is not None:
        helps = {c.dest: c.help for c in sub._choices_actions}
        rows = [[f"[{_code(sp.prog)}](#{_anchor(sp.prog)})", _inline(helps.get(name) or "")]
                for name, sp in sub.choices.items() if helps.get(name) is not argparse.SUPPRESS]
        out.append("**commands**\n")
        out.append(_table(["command", "what it does"], rows))
    epilog = _blocks(_expand(parser, parser.epilog))
    if epilog:
        out.append(epilog)
    if sub is not None:
        helps = {c.dest: c.help for c in sub._choices_actions}
        seen: set[int] = set()
        for name, sp in sub.choices.items():
            if id(sp) in seen or helps.get(name) is argparse.SUPPRESS:  # an alias, or hidden
                continue
            seen.add(id(sp))
            out += _command_section(sp, helps.get(name) or "", depth if root else depth + 1)
    return out


def _anchor(title: str) -> str:
    """The id Python-Markdown's toc extension gives a heading (its default slugify)."""
    import unicodedata

    value = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


def command_parsers(parser: argparse.ArgumentParser | None = None) -> list[tuple[list[str], argparse.ArgumentParser]]:
    """Every command path (``[]``, ``["train"]``, ``["keypoints", "detect"]`` ...) with its parser,
    in the parser's order (hidden commands and aliases left out)."""
    if parser is None:
        from mouse_facial_expressions.cli import build_parser

        parser = build_parser()
    out: list[tuple[list[str], argparse.ArgumentParser]] = []

    def walk(p: argparse.ArgumentParser, path: list[str]) -> None:
        out.append((path, p))
        sub = _subparsers(p)
        if sub is None:
            return
        helps = {c.dest: c.help for c in sub._choices_actions}
        seen: set[int] = set()
        for name, sp in sub.choices.items():
            if id(sp) in seen or helps.get(name) is argparse.SUPPRESS:
                continue
            seen.add(id(sp))
            walk(sp, path + [name])

    walk(parser, [])
    return out


def cli_reference() -> str:
    """``docs/reference/cli.md``: every command and subcommand, its description and options."""
    from mouse_facial_expressions.cli import build_parser

    parser = build_parser()
    head = [
        _GENERATED.format(cmd=REGENERATE),
        "# Command line\n",
        "Every command of `mfe`, as `mfe <command> --help` prints it (every command takes `-h`/`--help`). Long options take both "
        "spellings (`--dry-run` and `--dry_run`); a default left blank means the option is not "
        "set unless given, and its description says what happens then (often: the value in "
        "`mfe.yaml`, see [Configuration](configuration.md)).\n",
    ]
    body = _command_section(parser, "", 2, root=True)
    text = "\n".join(head + body)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


# --- command ------------------------------------------------------------------------------------


def stale_pages(folder: Path = REFERENCE_DIR) -> list[Path]:
    """The reference pages under ``folder`` that differ from what the code generates."""
    stale = []
    for name, func in PAGES.items():
        path = Path(folder) / name
        if not path.is_file() or path.read_text(encoding="utf-8") != globals()[func]():
            stale.append(path)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mouse_facial_expressions.cli.docs",
        description="Generate the reference pages of the documentation site from the code "
        "(docs/reference/cli.md, docs/reference/configuration.md). Without --write: check them, "
        "exit 1 when one is stale.",
    )
    parser.add_argument("--write", action="store_true", help="(re)write the pages")
    parser.add_argument("--out", type=Path, default=REFERENCE_DIR, help="folder of the pages (run from the repository root)")
    args = parser.parse_args(argv)
    if args.write:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, func in PAGES.items():
            path = args.out / name
            text = globals()[func]()
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path}")
            else:
                print(f"{path} is up to date")
        return 0
    stale = stale_pages(args.out)
    for path in stale:
        print(f"{path} is stale: run `make docs-ref` ({REGENERATE})", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
