"""The configuration page, ``docs/reference/configuration.md``, generated from :class:`Config`.

Apart from ``cli.docs`` (the command-line page and the ``--write``/check command) because it
reads pydantic models and their source, not argparse parsers.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from pathlib import Path

from mouse_facial_expressions.cli.docs_markdown import _GENERATED, REGENERATE, _blocks, _code, _inline, _table


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
        elif _is_model(field.annotation):  # a sub-section: its keys have a table of their own
            default = "see below"
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
        f"`mfe init PROJECT` writes a `{CONFIG_NAME}` with every key below and its default, commented out "
        "(uncomment a key to set it; a key written always counts, also at its default). "
        "Types are YAML types; `null` is YAML's empty value. A command's flags win over `--config FILE`, "
        f"which wins over `{CONFIG_NAME}`; `mfe config show COMMAND` prints what a command resolves.\n",
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
