from pathlib import Path

import pytest
import yaml

from mouse_facial_expressions.config import ConfigError, load_config
from mouse_facial_expressions.project import init_project


def test_unknown_key_is_an_error_that_names_it(tmp_path):
    (tmp_path / "mfe.yaml").write_text("extract:\n  crop_sise: 200\n")
    with pytest.raises(ConfigError, match=r"unknown key 'extract.crop_sise'"):
        load_config(tmp_path)


def test_unknown_section_is_an_error(tmp_path):
    (tmp_path / "mfe.yaml").write_text("trian:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'trian'"):
        load_config(tmp_path)


def test_invalid_value_names_key_and_file(tmp_path):
    (tmp_path / "mfe.yaml").write_text("keypoints:\n  pcutoff: 2.0\n")
    with pytest.raises(ConfigError, match=r"keypoints.pcutoff") as err:
        load_config(tmp_path)
    assert "mfe.yaml" in str(err.value)


def test_environment_variables_fill_settings(tmp_path):
    env = {
        "MFE_RAW_CSV_FOLDER": "/data/csv",
        "MFE_RAW_VIDEO_FOLDER": "/data/raw",
        "MFE_PROCESSED_VIDEO_FOLDER": "/data/proc",
        "MFE_DLC_FACIAL_LABELS_FOLDER": "/data/dlc",
        "MFE_EXTRACTED_FRAMES_FOLDER": "/data/frames",
        "MFE_TASKS": "/data/tasks",
        "MFE_VERSION": "7",
    }
    cfg = load_config(tmp_path, environ=env)
    assert cfg.path("metadata") == Path("/data/csv")
    assert cfg.path("raw_videos") == Path("/data/raw")
    assert cfg.path("processed_videos") == Path("/data/proc")
    assert cfg.path("dlc") == Path("/data/dlc")
    assert cfg.path("frames") == Path("/data/frames")
    assert cfg.path("tasks") == Path("/data/tasks")
    assert cfg.project.dataset_version == "7"


def test_config_file_wins_over_environment(tmp_path):
    (tmp_path / "mfe.yaml").write_text("paths:\n  tasks: my_tasks\n")
    cfg = load_config(tmp_path, environ={"MFE_TASKS": "/elsewhere", "MFE_VERSION": "2"})
    assert cfg.path("tasks") == (tmp_path / "my_tasks").resolve()
    assert cfg.project.dataset_version == "2"  # not set in the file: the environment fills it


def test_dotenv_file_is_read_with_lower_priority(tmp_path):
    (tmp_path / ".env").write_text("MFE_TASKS=/from/dotenv\nMFE_VERSION=4\n")
    cfg = load_config(tmp_path, environ={"MFE_VERSION": "5"})
    assert cfg.path("tasks") == Path("/from/dotenv")
    assert cfg.project.dataset_version == "5"


def test_relative_paths_resolve_against_the_project(tmp_path):
    cfg = load_config(tmp_path, environ={})
    assert cfg.path("frames") == (tmp_path / "frames").resolve()


def test_init_writes_a_commented_config_that_loads_back(tmp_path):
    cfg = init_project(tmp_path / "proj")
    text = (tmp_path / "proj" / "mfe.yaml").read_text()
    assert "# " in text and "crop_size" in text
    data = yaml.safe_load(text)
    assert data["extract"] is None  # every key commented out: the defaults
    assert load_config(tmp_path / "proj").extract.crop_size == cfg.extract.crop_size
    for name in type(cfg.paths).model_fields:
        if getattr(cfg.paths, name) is not None:  # optional paths (onnx_cache) are unset, made when used
            assert cfg.path(name).is_dir()


def test_init_refuses_to_overwrite(tmp_path):
    init_project(tmp_path)
    with pytest.raises(FileExistsError):
        init_project(tmp_path)


def test_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.yaml")
