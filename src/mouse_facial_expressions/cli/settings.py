"""A command's settings from its flags, ``--config FILE`` and ``mfe.yaml`` (``settings.py``).

The options of a command with a configuration section (:data:`SECTIONS`) default to
``argparse.SUPPRESS``: a flag left out is absent from the parsed arguments, so the layers below it
(``--config``, ``mfe.yaml``, the section's defaults) can fill it. :func:`resolve_args` puts the
resolved value of every key back on the arguments, so a command reads ``args.<key>`` as before.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mouse_facial_expressions.settings import Resolved, flat_fields, read_config_file, resolve

#: Commands with a configuration section: the command (as typed) -> its section of ``mfe.yaml``.
SECTIONS = {"train": "train", "predict": "predict", "evaluate": "evaluate", "finetune": "finetune",
            "extract": "extract", "task make": "task"}

#: Parsed names that are no settings, so have no key: positional inputs (what to work on), the
#: project and ``--config`` themselves, ``--dry-run`` (a mode, not a setting) and argparse's own.
NOT_SETTINGS = {"help", "help_all", "project", "config", "command", "task_command", "func", "verbose",
                "videos", "run", "dry_run"}


def add_config_arg(parser: argparse.ArgumentParser, section: str) -> None:
    """``--config FILE``: settings between the flags and ``mfe.yaml``."""
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help=f"YAML or JSON file of settings, above mfe.yaml and below the flags: laid out as mfe.yaml "
                        f"(its {section}: section) or one flat mapping of its keys"
                        + (", e.g. a run's params.json (replays the run)" if section == "train" else ""))


def config_backed(parser: argparse.ArgumentParser, model) -> None:
    """Options of ``parser`` whose ``dest`` is a key of ``model`` take their default from the
    configuration: their parser default becomes ``SUPPRESS`` (the help keeps showing the model's
    default) and none is required (a file may give it; the command checks after resolving)."""
    fields = flat_fields(model)
    for action in parser._actions:
        if action.dest not in fields or not action.option_strings or action.default is argparse.SUPPRESS:
            continue
        default = fields[action.dest][1].get_default(call_default_factory=True)
        help_text = action.help or ""
        shown = default is not None and default is not False and default != []
        if shown and "default" not in help_text.lower() and help_text is not argparse.SUPPRESS:
            action.help = f"{help_text} (default: {default})"
        action.default = argparse.SUPPRESS
        action.required = False


def _layers(section: str, args: argparse.Namespace, cfg, model) -> list[tuple[str, dict]]:
    from mouse_facial_expressions.config import Config
    from mouse_facial_expressions.settings import written

    config_file = getattr(args, "config", None)
    from_file = read_config_file(config_file, section, model, set(Config.model_fields)) if config_file else {}
    keys = flat_fields(model)
    flags = {k: v for k, v in vars(args).items() if k in keys}
    in_yaml = {k: _from_project(v, cfg.root) if _is_path(keys[k][1].annotation) else v
               for k, v in written(getattr(cfg, section)).items()}
    return [("mfe.yaml", in_yaml), ("--config", from_file), ("flag", flags)]


def _is_path(annotation) -> bool:
    import typing

    return annotation is Path or any(_is_path(a) for a in typing.get_args(annotation))


def _from_project(value, root: Path):
    """A path written in ``mfe.yaml`` is relative to the project folder, as ``paths:`` are."""
    if isinstance(value, list):
        return [_from_project(v, root) for v in value]
    return value if Path(value).is_absolute() else root / value


def resolve_args(args: argparse.Namespace, section: str, cfg=None) -> Resolved:
    """Resolve the ``section`` settings of ``args`` and set each on ``args``."""
    from mouse_facial_expressions.cli._common import project_config

    cfg = cfg if cfg is not None else project_config(args)
    model = type(getattr(cfg, section))
    resolved = resolve(model, _layers(section, args, cfg, model))
    for key, value in resolved.values.items():
        setattr(args, key, value)
    return resolved


def resolve_train(args: argparse.Namespace, model: str | None = None, cfg=None):
    """``mfe train``'s settings: ``(cfg, params, resolved)``. The model's defaults (seed and
    recipe values) fill every training parameter no layer sets (:func:`training.make_params`).

    ``model`` fixes the model (the seed's module entry points)."""
    import dataclasses

    from mouse_facial_expressions.cli._common import project_config
    from mouse_facial_expressions.settings import TrainConfig
    from mouse_facial_expressions.training.params import TrainParams, make_params

    cfg = cfg if cfg is not None else project_config(args)
    layers = _layers("train", args, cfg, TrainConfig)
    if model is not None:
        layers.append(("flag", {"model": model}))
    resolved = resolve(TrainConfig, layers)
    names = {f.name for f in dataclasses.fields(TrainParams)}
    given = {k: v for k, v in resolved.values.items() if resolved.sources[k] != "default" and k in names and k != "model"}
    params = make_params(resolved.values["model"], None, **given)
    resolved.values.update({k: getattr(params, k) for k in names if k in resolved.values})
    return cfg, params, resolved


def format_resolved(title: str, resolved: Resolved) -> str:
    """One line per key: name, value, source."""
    shown = {k: _show(v) for k, v in resolved.values.items()}
    vwidth = min(max(len(v) for v in shown.values()), 40)
    width = max(len(resolved.paths.get(k, k)) for k in resolved.values)
    lines = [title] + [f"  {resolved.paths.get(k, k):<{width}}  {shown[k]:<{vwidth}}  {resolved.sources[k]}"
                       for k in resolved.values]
    return "\n".join(lines)


def _show(value) -> str:
    import json

    if value is None:
        return "null"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
