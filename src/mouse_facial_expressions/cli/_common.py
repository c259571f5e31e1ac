"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
import re
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


#: ``--x_y`` in text (help, descriptions): an old snake-case spelling of an option.
_SNAKE_FLAG = re.compile(r"--[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+")


def kebab(option: str) -> str:
    """``--image_size`` -> ``--image-size`` (the dashes in front kept)."""
    stripped = option.lstrip("-")
    return option[: len(option) - len(stripped)] + stripped.replace("_", "-")


class BothSpellingsParser(argparse.ArgumentParser):
    """Takes every long option in both spellings, ``--learning-rate`` and ``--learning_rate``
    (``--x=1`` and abbreviations too). Subcommand parsers are of this class as well
    (``add_subparsers`` uses the parent's).

    ``mfe``'s parsers go through :func:`kebab_case_options`: help shows the kebab-case spelling
    only and an old snake-case one prints a one-line notice (``snake_notice``). The seed's module
    entry points (``python -m mouse_facial_expressions.models.train_task1_<model>_model``) keep the
    seed's snake-case spellings as their documented interface, silently accepting both."""

    #: Print ``mfe: --x_y is deprecated; use --x-y`` (once per flag per parse) for an old spelling.
    snake_notice = False
    #: Renamed options (issue 31, one name per idea): old long option -> new one; the old name
    #: (in either spelling) parses as the new one with ``mfe: --old is deprecated; use --new``.
    #: Set with :func:`rename_option`; help shows the new name only.
    renamed_options: dict[str, str] = {}

    #: ``dest``s of the options plain ``--help`` shows (None: every option); the others show with
    #: ``--help-all`` (:func:`add_help_all`) and in the generated CLI reference.
    front_options: set[str] | None = None

    def format_help(self) -> str:
        if self.front_options is None:
            return super().format_help()
        back = [a for a in self._actions if a.option_strings and a.dest not in self.front_options
                and not isinstance(a, (argparse._HelpAction, _HelpAll))]
        saved = [(a, a.help) for a in back]
        groups = [(g, g.description) for g in self._action_groups
                  if g._group_actions and all(a in back for a in g._group_actions)]
        try:
            for a in back:
                a.help = argparse.SUPPRESS
            for g, _ in groups:
                g.description = None
            return super().format_help()
        finally:
            for a, text in saved:
                a.help = text
            for g, text in groups:
                g.description = text

    def format_help_all(self) -> str:
        """The help with every option (``--help-all``)."""
        front, self.front_options = self.front_options, None
        try:
            return self.format_help()
        finally:
            self.front_options = front

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        out, noticed = [], set()
        for i, a in enumerate(args):
            if a == "--":
                out += args[i:]
                break
            name, eq, value = a.partition("=")
            if name.startswith("--") and name not in self._option_string_actions and kebab(name) in self.renamed_options:
                full = self.renamed_options[kebab(name)]
                if name not in noticed:
                    noticed.add(name)
                    print(f"{self.prog.split()[0]}: {name} is deprecated; use {full}", file=sys.stderr)
                out.append(full + eq + value)
                continue
            if name.startswith("--") and name not in self._option_string_actions:
                new, full = self._other_spelling(name)
                if new is not None:
                    if self.snake_notice and full and "_" in name and name not in noticed:
                        noticed.add(name)
                        print(f"{self.prog.split()[0]}: {name} is deprecated; use {full}", file=sys.stderr)
                    a = new + eq + value
            out.append(a)
        return super().parse_known_args(out, namespace)

    def _other_spelling(self, name: str) -> tuple[str | None, str | None]:
        """``name`` in the spelling this parser knows, and the full option it stands for; a
        unique abbreviation of the other spelling is expanded, an ambiguous one is passed on in the
        known spelling with no full option (for argparse's "ambiguous option" error).
        ``(None, None)``: no such option (argparse names ``name`` as typed)."""
        known = self._option_string_actions
        for other in (kebab(name), name[:2] + name[2:].replace("-", "_")):
            if other in known:
                return other, other
        if self.allow_abbrev:
            for other in (kebab(name), name[:2] + name[2:].replace("-", "_")):
                matches = [o for o in known if o.startswith(other)]
                if len(matches) == 1:
                    return matches[0], matches[0]
                if matches:
                    return other, None
        return None, None

    def error(self, message):
        """A ``-p`` that names no project: its one line, without the usage (it is not a usage slip)."""
        prefix = "argument -p/--project: "
        if message.startswith(prefix):
            self.exit(2, f"{self.prog}: error: {message[len(prefix):]}\n")
        super().error(message)


class _HelpAll(argparse.Action):
    def __init__(self, option_strings, dest="help_all", default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        text = parser.format_help_all() if hasattr(parser, "format_help_all") else parser.format_help()
        parser._print_message(text, sys.stdout)
        parser.exit()


def add_help_all(parser: argparse.ArgumentParser, front: set[str], what: str) -> None:
    """Plain ``--help`` shows the options whose ``dest`` is in ``front``; ``--help-all`` every
    option (``what`` says what the others are)."""
    parser.add_argument("--help-all", action=_HelpAll, help=f"show every option, also {what}, and exit")
    parser.front_options = set(front) | {"help_all"}


def rename_option(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """``old`` (e.g. ``--workers``) was renamed ``new`` (``--loader-workers``, already added to
    ``parser``): ``old`` still parses as ``new``, with a one-line deprecation notice."""
    if new not in parser._option_string_actions:
        raise ValueError(f"{parser.prog}: rename {old} -> {new}: no option {new}")
    if old in parser._option_string_actions:
        raise ValueError(f"{parser.prog}: rename {old} -> {new}: {old} is still an option")
    # a plain ArgumentParser (a notebook registering one command) keeps the record; only
    # BothSpellingsParser rewrites old names when it parses
    parser.renamed_options = {**getattr(parser, "renamed_options", {}), kebab(old): new}


def command_tree(parser: argparse.ArgumentParser):
    """``parser`` and every subcommand parser under it, each once (aliases share a parser)."""
    seen: set[int] = set()
    todo = [parser]
    while todo:
        p = todo.pop(0)
        if id(p) in seen:
            continue
        seen.add(id(p))
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += list(action.choices.values())


def kebab_case_options(parser: argparse.ArgumentParser) -> int:
    """One spelling for ``mfe`` (issue 31): every long option with ``_`` in its name is shown as
    ``--x-y``; ``--x_y`` still parses (to the same ``dest``) with a one-line deprecation notice
    (:class:`BothSpellingsParser`). ``--x_y`` in help texts, descriptions and epilogs becomes
    ``--x-y`` where that is an option of some command. Returns the number of options renamed."""
    parsers = list(command_tree(parser))
    renamed = 0
    for p in parsers:
        p.snake_notice = True
        table = p._option_string_actions  # shared with the parser's argument groups
        for action in p._actions:
            if not any(o.startswith("--") and "_" in o for o in action.option_strings):
                continue
            new = list(dict.fromkeys(kebab(o) if o.startswith("--") else o for o in action.option_strings))
            for o in action.option_strings:
                if o not in new and table.get(o) is action:
                    del table[o]
            for o in new:
                if table.setdefault(o, action) is not action:
                    raise ValueError(f"{p.prog}: {o} names two options")
            if [o for o in action.option_strings if "_" not in o] != new:
                renamed += 1
            action.option_strings = new
    known = {o for p in parsers for o in p._option_string_actions}

    def fix(text):
        if not isinstance(text, str):
            return text
        return _SNAKE_FLAG.sub(lambda m: kebab(m.group()) if kebab(m.group()) in known else m.group(), text)

    for p in parsers:
        p.description, p.epilog = fix(p.description), fix(p.epilog)
        for group in p._action_groups + p._mutually_exclusive_groups:
            group.description = fix(getattr(group, "description", None))
        for action in p._actions:
            action.help = fix(action.help)
            for choice in getattr(action, "_choices_actions", ()):
                choice.help = fix(choice.help)
    return renamed
