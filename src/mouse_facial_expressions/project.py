"""Project folders: ``mfe init`` and the commented ``mfe.yaml`` it writes."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from mouse_facial_expressions.config import CONFIG_NAME, Config, load_config

_HEADER = """\
# mouse-facial-expressions project configuration.
# Paths are relative to this file's folder. Unknown keys are errors.
# MFE_RAW_CSV_FOLDER, MFE_RAW_VIDEO_FOLDER, MFE_PROCESSED_VIDEO_FOLDER,
# MFE_DLC_FACIAL_LABELS_FOLDER, MFE_EXTRACTED_FRAMES_FOLDER, MFE_TASKS and MFE_VERSION
# fill the matching settings when set; a value written here wins over them.
"""


def _yaml_scalar(value) -> str:
    return json.dumps(value) if not isinstance(value, (dict, list)) else json.dumps(value)


def commented_yaml(cfg: Config) -> str:
    """Every setting of ``cfg`` as YAML, each with its description as a comment."""
    lines = [_HEADER]
    data = cfg.model_dump(mode="json", exclude={"root"})
    for section, model in cfg:
        if section == "root":
            continue
        doc = (type(model).__doc__ or "").strip().splitlines()
        lines.append(f"{section}:" + (f"  # {doc[0]}" if doc else ""))
        assert isinstance(model, BaseModel)
        for name, field in type(model).model_fields.items():
            if field.description:
                lines.append(f"  # {field.description}")
            lines.append(f"  {name}: {_yaml_scalar(data[section][name])}")
        lines.append("")
    return "\n".join(lines)


def init_project(folder: str | Path, force: bool = False) -> Config:
    """Create a project folder with a commented ``mfe.yaml`` and the stage folders.

    Raises:
        FileExistsError: if ``mfe.yaml`` exists already and ``force`` is false.
    """
    folder = Path(folder)
    cfg_path = folder / CONFIG_NAME
    if cfg_path.exists() and not force:
        raise FileExistsError(f"{cfg_path} exists already (use --force to overwrite it)")
    folder.mkdir(parents=True, exist_ok=True)
    cfg = Config(root=folder)
    tmp = cfg_path.with_suffix(".yaml.tmp")
    tmp.write_text(commented_yaml(cfg))
    tmp.replace(cfg_path)
    cfg = load_config(cfg_path)  # round-trip: what we wrote must load
    for name in type(cfg.paths).model_fields:
        cfg.path(name).mkdir(parents=True, exist_ok=True)
    return cfg
