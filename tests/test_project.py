"""``mfe init`` (project.py, cli/init.py): the metadata templates and the next steps."""

from __future__ import annotations

import pytest

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.config import load_config
from mouse_facial_expressions.io.metadata import (
    RAW_VIDEO_COLUMNS,
    TREATMENT_COLUMNS,
    load_video_table,
    parse_trim,
    read_raw_videos,
    read_treatments,
)
from mouse_facial_expressions.project import METADATA_TEMPLATES, init_project


def test_init_writes_metadata_templates_that_read_as_empty_tables(tmp_path):
    cfg = init_project(tmp_path / "proj")
    raw, trt = cfg.path("metadata") / "raw_videos.csv", cfg.path("metadata") / "treatments.csv"
    assert raw.read_text().splitlines()[0].split(",") == list(RAW_VIDEO_COLUMNS)
    assert trt.read_text().splitlines()[0].split(",") == list(TREATMENT_COLUMNS)
    assert len(read_raw_videos(raw)) == 0 and len(read_treatments(trt)) == 0
    assert len(load_video_table(load_config(tmp_path / "proj"))) == 0  # what prepare reads: no error


def test_the_commented_example_rows_are_valid_rows(tmp_path):
    # uncommented, each example row reads as one row: its date, time and trims are in formats the reader takes
    for name, text in METADATA_TEMPLATES.items():
        header, example = text.splitlines()
        assert example.startswith("# ")
        (tmp_path / name).write_text(f"{header}\n{example[2:]}\n")
    raw = read_raw_videos(tmp_path / "raw_videos.csv")
    assert raw["timestamp"].iloc[0].isoformat() == "2024-02-01T10:30:00"
    assert (raw["start_s"].iloc[0], raw["end_s"].iloc[0]) == (parse_trim("0:13"), parse_trim("11:03")) == (13.0, 663.0)
    assert list(read_treatments(tmp_path / "treatments.csv")["mouse"]) == ["m1"]


def test_init_never_overwrites_the_users_metadata(tmp_path, capsys):
    cfg = init_project(tmp_path)
    mine = ",".join(RAW_VIDEO_COLUMNS) + "\nm1,1,c,2024,1,1,1,0,0,0,-1,0\n"
    (cfg.path("metadata") / "raw_videos.csv").write_text(mine)
    (cfg.path("metadata") / "treatments.csv").unlink()
    assert main(["init", str(tmp_path), "--force"]) == 0  # mfe.yaml is rewritten, metadata is not
    assert (cfg.path("metadata") / "raw_videos.csv").read_text() == mine
    assert (cfg.path("metadata") / "treatments.csv").read_text() == METADATA_TEMPLATES["treatments.csv"]
    out = capsys.readouterr().out
    assert "raw_videos.csv: yours, kept" in out and "treatments.csv: template" in out


def test_init_prints_the_numbered_next_steps(tmp_path, capsys):
    assert main(["init", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    steps = ["1. fill in metadata/raw_videos.csv", "2. mfe prepare", "3. keypoints (DeepLabCut)",
             "4. mfe extract", "5. mfe task make", "6. mfe train", "7. mfe evaluate"]
    positions = [out.index(s) for s in steps]
    assert positions == sorted(positions)
    for text in ("videos/raw/", "keypoints/dlc/", "mfe keypoints detect --dlc-config", "mfe keypoints import",
                 "extract.alignment", "headfixed_eye_nose", "dlc_face", "mfe predict"):
        assert text in out, text


# --------------------------------------------------------------------------- -p must name a project

COMMANDS_WITH_P = [
    ["train"], ["extract"], ["prepare"], ["task", "make", "--preset", "task1"], ["keypoints", "import"],
    ["keypoints", "detect"], ["behaviour", "import"], ["ratings", "import", "sheet.csv"], ["evaluate", "RUN"],
    ["predict", "video.mp4", "--keypoints", "kp", "--model", "RUN"], ["export", "RUN", "--onnx"],
    ["finetune", "--from", "RUN", "--task", "TASK"],
]


@pytest.mark.parametrize("argv", COMMANDS_WITH_P, ids=lambda a: " ".join(a[:2]))
def test_a_project_folder_that_does_not_exist_is_refused(argv, tmp_path, capsys):
    missing = tmp_path / "typo"
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "-p", str(missing)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"{missing}: not an mfe project (no such folder); create one with `mfe init {missing}`" in err
    assert "usage:" not in err  # one line, not the command's whole usage
    assert list(tmp_path.iterdir()) == []  # not taken as a project rooted in its parent: nothing written


@pytest.mark.parametrize("argv", [["train"], ["extract"], ["task", "make", "--preset", "task1"]], ids=lambda a: a[0])
def test_a_folder_without_mfe_yaml_is_not_a_project(argv, tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    with pytest.raises(SystemExit):
        main([*argv, "--project", str(tmp_path)])
    assert f"{tmp_path}: not an mfe project (no mfe.yaml); create one with `mfe init {tmp_path}`" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["videos"]


def test_a_project_folder_or_its_mfe_yaml_is_accepted(tmp_path):
    from mouse_facial_expressions.cli import build_parser
    from mouse_facial_expressions.cli._common import project_config

    init_project(tmp_path / "proj")
    (tmp_path / "proj" / "mfe.yaml").write_text("project:\n  dataset_version: '7'\n")
    for given in (tmp_path / "proj", tmp_path / "proj" / "mfe.yaml"):
        cfg = project_config(build_parser().parse_args(["extract", "-p", str(given)]))
        assert cfg.root == (tmp_path / "proj").resolve() and cfg.project.dataset_version == "7"


def test_without_p_the_current_folder_is_used_even_without_mfe_yaml(tmp_path, monkeypatch):
    from mouse_facial_expressions.cli import build_parser
    from mouse_facial_expressions.cli._common import project_config

    monkeypatch.chdir(tmp_path)
    assert project_config(build_parser().parse_args(["extract"])).root == tmp_path.resolve()


def test_load_config_of_a_folder_that_does_not_exist_is_rooted_there(tmp_path):
    assert load_config(tmp_path / "new").path("frames") == (tmp_path / "new" / "frames").resolve()


def test_init_makes_a_project_in_a_folder_that_does_not_exist(tmp_path):
    assert main(["init", str(tmp_path / "a" / "proj")]) == 0
    assert (tmp_path / "a" / "proj" / "mfe.yaml").is_file()
    text = (tmp_path / "a" / "proj" / "mfe.yaml").read_text()
    assert "onnx_cache: null" in text and not (tmp_path / "a" / "proj" / "onnx_cache").exists()
