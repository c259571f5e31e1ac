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
import ast
import inspect
import io
import re
import sys
import textwrap
import tokenize
import types
import typing
from pathlib import Path

#: Where ``--write`` puts the pages, relative to the repository root (the current folder).
REFERENCE_DIR = Path("docs/reference")
#: The generated pages, file name -> function that makes it.
PAGES = {"cli.md": "cli_reference", "configuration.md": "config_reference"}
REGENERATE = "python -m mouse_facial_expressions.cli.docs --write"

_GENERATED = (
    "<!-- Generated from the code by `{cmd}` (make docs-ref); do not edit by hand: "
    "tests/test_docs.py fails when this page is stale. -->\n"
)


# --- Markdown text ------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def _escape_plain(text: str) -> str:
    """Escape Markdown/HTML syntax in text that is not a code span."""
    text = text.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("|", "&#124;")
    for ch in "*_[]":
        text = text.replace(ch, "\\" + ch)
    return text


def _inline(text: str) -> str:
    """One line of prose for Markdown: code spans (`x`, ``x``) kept, everything else escaped."""
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_escape_plain(text[pos:m.start()]))
        out.append(_code(m.group(2).strip()))
        pos = m.end()
    out.append(_escape_plain(text[pos:]))
    line = " ".join("".join(out).split())
    if re.match(r"(#|[-+] |\d+\. )", line):  # would start a heading or a list
        line = "\\" + line if not line[0].isdigit() else re.sub(r"^(\d+)\.", r"\1\\.", line)
    return line


def _code(text: str) -> str:
    """A code span (HTML when it holds a pipe, which would split a table cell)."""
    if "|" in text or "`" in text:
        return "<code>" + text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;") + "</code>"
    return f"`{text}`"


def _blocks(text: str | None) -> str:
    """Description or epilog (written for a terminal) -> Markdown: prose paragraphs are joined and
    escaped; a paragraph with indented lines (a table, an example) is kept as written, in a code block."""
    if not text:
        return ""
    text = textwrap.dedent(text).strip("\n")
    out = []
    for para in re.split(r"\n\s*\n", text):
        lines = para.rstrip().splitlines()
        if any(line[:1].isspace() for line in lines):
            out.append("```text\n" + "\n".join(line.rstrip() for line in lines) + "\n```")
        else:
            out.append(_inline(" ".join(line.strip() for line in lines)))
    return "\n\n".join(out) + "\n"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


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
        rows = [[_invocation(parser, a), _default(a), _inline(_expand(parser, a.help, a))] for a in actions]
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


# --- configuration ------------------------------------------------------------------------------


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) if not isinstance(a, str) else f'"{a}"' for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " | ".join(names + (["null"] if type(None) in args else []))
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]"
    if tp is type(None):
        return "null"
    if tp is Path:
        return "path"
    if inspect.isclass(tp) and _is_model(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _is_model(tp) -> bool:
    from pydantic import BaseModel

    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _models_in(tp) -> list[type]:
    """Pydantic models inside an annotation (``str | AlignmentConfig`` -> ``[AlignmentConfig]``)."""
    if _is_model(tp):
        return [tp]
    return [m for a in typing.get_args(tp) for m in _models_in(a)]


def _constraints(field) -> str:
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for meta in field.metadata:
        for attr, sym in symbols.items():
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sym} {value}")
    return ", ".join(parts)


def _source_comments(cls: type) -> dict[str, str]:
    """Inline ``# comments`` on a model's field lines: the description of fields that have none."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments.setdefault(tok.start[0], tok.string.lstrip("#").strip())
    out = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                if line in comments:
                    out[node.target.id] = comments[line]
                    break
    return out


def _plain(value):
    """Paths as strings, containers recursively: what ``mfe.yaml`` holds."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _yaml_value(value) -> str:
    import yaml

    value = _plain(value)
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _field_rows(model: type, defaults: dict | None) -> list[list[str]]:
    comments = _source_comments(model)
    rows = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        if field.is_required():
            default = "*required*"
        else:
            value = defaults[name] if defaults is not None else field.get_default(call_default_factory=True)
            default = _code(_yaml_value(value))
        kind = _code(_type_name(field.annotation))
        limits = _constraints(field)
        if limits:
            kind += f" ({_inline(limits)})"
        description = field.description or comments.get(name, "")
        rows.append([_code(name), kind, default, _inline(description)])
    return rows


def config_reference() -> str:
    """``docs/reference/configuration.md``: every section and key of ``Config``."""
    from mouse_facial_expressions import config as config_module
    from mouse_facial_expressions.config import CONFIG_NAME, ENV_VARS, Config

    defaults = Config().model_dump(exclude={"root"})
    out = [
        _GENERATED.format(cmd=REGENERATE),
        f"# Configuration (`{CONFIG_NAME}`)\n",
        _blocks(config_module.__doc__),
        f"`mfe init PROJECT` writes a `{CONFIG_NAME}` with every key below and its default. "
        "Types are YAML types; `null` is YAML's empty value.\n",
    ]
    for section, field in Config.model_fields.items():
        if field.exclude:
            continue
        model = field.annotation
        out.append(f"## {section}\n")
        doc = inspect.getdoc(model) if model.__doc__ else ""
        if doc:
            out.append(_blocks(doc))
        out.append(_table(["key", "type", "default", "description"], _field_rows(model, defaults[section])))
        for key, sub_field in model.model_fields.items():
            for nested in _models_in(sub_field.annotation):
                out.append(f"### {section}.{key} as a mapping\n")
                if nested.__doc__:
                    out.append(_blocks(inspect.getdoc(nested)))
                out.append(_table(["key", "type", "default", "description"], _field_rows(nested, None)))
    out.append("## Environment variables\n")
    out.append("The original code's variables (also read from a `.env` file in the project folder) fill "
               f"these settings when set; a value written in `{CONFIG_NAME}` wins over them.\n")
    out.append(_table(["variable", "setting"], [[_code(var), _code(f"{s}.{k}")] for var, (s, k) in ENV_VARS.items()]))
    text = "\n".join(out)
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
