"""Project folders: ``mfe init`` and the commented ``mfe.yaml`` it writes."""

from __future__ import annotations

from pathlib import Path

from mouse_facial_expressions.config import CONFIG_NAME, Config, commented_yaml, load_config

__all__ = ["METADATA_TEMPLATES", "commented_yaml", "init_project", "write_metadata_templates"]

#: What ``mfe init`` writes into ``paths.metadata``: the header of the schema that
#: ``io.metadata`` reads and one example row, commented out (the readers skip ``#`` lines).
#: The row shows the formats: the recording's date and time as numbers (it matches the raw
#: file ``cam1__<serial>__20240201_103000.mp4``), trims ``start``/``end`` as ``M:SS``.
METADATA_TEMPLATES = {
    "raw_videos.csv": "animal,recording,camera,year,month,day,hour,minutes,seconds,start,end,discard\n"
                      "# m1,1,cam1,2024,2,1,10,30,0,0:13,11:03,0\n",
    "treatments.csv": "mouse,date_of_birth,treatment,injection_time,notes\n"
                      "# m1,2023-11-20,saline,2024-02-01 11:00,example row: copy it without the leading #\n",
}


def write_metadata_templates(folder: str | Path) -> list[Path]:
    """Write the :data:`METADATA_TEMPLATES` into ``folder``; a file that exists is never touched.

    Returns:
        The files written (those that did not exist).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in METADATA_TEMPLATES.items():
        try:
            with open(folder / name, "x", encoding="utf-8", newline="") as fh:  # "x": never overwrite
                fh.write(text)
        except FileExistsError:
            continue
        written.append(folder / name)
    return written


def init_project(folder: str | Path, force: bool = False) -> Config:
    """Create a project folder with a commented ``mfe.yaml``, the stage folders and the metadata
    templates (``raw_videos.csv``, ``treatments.csv``: header + a commented example row; files
    that exist are kept, also with ``force``).

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
        if getattr(cfg.paths, name) is not None:  # optional folders (onnx_cache) are made when used
            cfg.path(name).mkdir(parents=True, exist_ok=True)
    write_metadata_templates(cfg.path("metadata"))  # header + a commented example row; never overwrites
    return cfg
