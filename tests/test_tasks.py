import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from fake_cohort import frame_store, video_table
from mouse_facial_expressions.config import Config
from mouse_facial_expressions.data.flat_table import DuplicateRowsError
from mouse_facial_expressions.data.folds import check_folds
from mouse_facial_expressions.data.rules import RuleError
from mouse_facial_expressions.data.tasks import (
    TaskError,
    TaskSpec,
    load_spec,
    load_task,
    make_task,
    make_task_from_table,
    preset,
    task_frames_dir,
)

# the real LPS task table (8,800 rows), gzipped: pandas reads it as it is
SEED_TABLE = Path(__file__).parent / "data" / "seed" / "lps_task1_dataset_table.csv.gz"


@pytest.fixture
def cohort(tmp_path):
    videos = video_table(n_high=4, n_saline=4)
    videos = pd.concat([videos, video_table(1, 0).replace({"m1": "m18", "m1_rec1": "m18_rec1", "m1_rec4": "m18_rec4"})])
    index = frame_store(tmp_path / "frames", videos)
    cfg = Config(root=tmp_path)
    return cfg, videos, index


def test_make_task_writes_the_folder(cohort):
    cfg, videos, index = cohort
    out = make_task(cfg, preset("task1"), videos=videos, index=index, frames_dir=cfg.path("frames"))
    assert out == cfg.path("tasks") / "task-1"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "folds.json", "frames.parquet", "provenance.json", "task.yaml"]
    task = load_task(out)
    assert task.spec.num_frames == 10 and task.spec.frames_dir == "../../frames"  # relative: a copied project reads its own
    assert task_frames_dir(out) == cfg.path("frames").resolve()
    assert json.loads((out / "folds.json").read_text())["n_folds"] == len(task.folds) == 4
    check_folds(task.folds, task.frames["animal"].unique())
    readme = (out / "README.md").read_text()
    for text in ("num_frames: 10", "frame_stride: 2", "max_gap_s: 0.5", "Counts per class", "Folds", "m18"):
        assert text in readme


def test_task1_label_rule_and_m18_exclusion(cohort):
    cfg, videos, index = cohort
    task = load_task(make_task(cfg, preset("task1"), videos=videos, index=index))
    f = task.frames
    assert "m18" not in set(f["animal"])
    by_video = f.groupby("video").agg(label=("label", "first"), rec=("recording", "first"), trt=("treatment", "first"))
    assert (by_video.loc[by_video.rec == 1, "label"] == 0).all()
    assert set(by_video.loc[by_video.label == 1, "trt"]) == {"high"}
    assert (by_video.loc[by_video.label == 1, "rec"] == 4).all()
    assert not ((by_video.rec == 4) & (by_video.trt == "saline")).any()  # unlabelled: not in the task
    assert f["soft"].between(0, 1).all() and set(f.loc[f.label == 1, "soft"]) == {0.9}


def test_dataset_version_names_the_folder(cohort):
    cfg, videos, index = cohort
    out = make_task(cfg, preset("task1", version="7"), videos=videos, index=index)
    assert out.name == "task-7"


def test_empty_class_is_an_error(cohort):
    cfg, videos, index = cohort
    spec = TaskSpec(rules=["recording == 1 -> 0", 'treatment == "high" and recording == 4 -> 0'])
    with pytest.raises(TaskError, match="class 1 is empty"):
        make_task(cfg, spec, videos=videos, index=index)


def test_rule_matching_nothing_is_an_error(cohort):
    cfg, videos, index = cohort
    spec = TaskSpec(rules=["recording == 1 -> 0", 'treatment == "mid" -> 1'])
    with pytest.raises(RuleError, match="'treatment == \"mid\" -> 1' matches no row"):
        make_task(cfg, spec, videos=videos, index=index)


def test_duplicate_metadata_rows_are_named(cohort):
    cfg, videos, index = cohort
    doubled = pd.concat([videos, videos[videos.video == "m2_rec4"]])
    with pytest.raises(DuplicateRowsError, match=r"m2_rec4 \(2 rows\)"):
        make_task(cfg, preset("task1"), videos=doubled, index=index)
    out = make_task(cfg, preset("task1"), videos=doubled, index=index, dedupe=True)
    f = load_task(out).frames
    assert (f["video"] == "m2_rec4").sum() == 40


def test_spec_rejects_unknown_keys_and_bad_labels(tmp_path):
    with pytest.raises(ValidationError):
        TaskSpec(rules=["recording == 1 -> 0"], n_fold=3)
    with pytest.raises(ValidationError, match="0 or 1"):
        TaskSpec(rules=["recording == 1 -> 2"])
    p = tmp_path / "task.yaml"
    p.write_text(yaml.safe_dump({"rules": ["recording == 1 -> 0"], "exclude_animal": ["m18"]}))
    with pytest.raises(TaskError, match=r"(?s)task.yaml.*exclude_animal"):
        load_spec(p)


def test_spec_yaml_roundtrip(tmp_path):
    spec = preset("task1")
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    assert load_spec(p) == spec


def test_real_table_duplicates_are_reported():
    from mouse_facial_expressions.data.flat_table import read_flat_table

    with pytest.raises(DuplicateRowsError) as err:
        read_flat_table(SEED_TABLE)
    msg = str(err.value)
    for text in ("f3_rec4_4h-postinjection: 600 rows for 200 frames", "f15_rec1_preinjection: 400 rows",
                 "m4_rec4_4h-postinjection: 400 rows"):
        assert text in msg


def test_task1_on_the_real_table(tmp_path):
    cfg = Config(root=tmp_path)
    out = make_task_from_table(cfg, preset("task1"), SEED_TABLE, dedupe=True)
    task = load_task(out)
    f = task.frames
    assert "m18" not in set(f["animal"]) and f["animal"].nunique() == 19
    assert f.groupby("video").size().max() == 200  # duplicates not counted
    assert (f["label"] == f["table_label"]).all()  # the rule agrees with the original labels
    assert set(f.loc[f.label == 1, "treatment"]) == {"high"} and set(f.loc[f.label == 0, "recording"]) == {1}
    readme = (out / "README.md").read_text()
    assert "f3_rec4_4h-postinjection had 600 rows for 200 frames" in readme
    assert "Excluded animals found: ['m18']" in readme


def test_cli_task_make_reports_duplicates_and_show(tmp_path, capsys):
    from mouse_facial_expressions.cli import main

    (tmp_path / "mfe.yaml").write_text("{}\n")  # -p names a project: a folder with mfe.yaml (the defaults)
    assert main(["task", "make", "-p", str(tmp_path), "--from-table", str(SEED_TABLE)]) == 1
    assert "f3_rec4_4h-postinjection" in capsys.readouterr().err
    assert main(["task", "make", "-p", str(tmp_path), "--from-table", str(SEED_TABLE), "--dedupe",
                 "--dataset_version", "9"]) == 0
    assert (tmp_path / "tasks" / "task-9" / "folds.json").is_file()
    assert main(["task", "show", str(tmp_path / "tasks" / "task-9")]) == 0
    assert "frame_stride: 2" in capsys.readouterr().out


def test_cli_task_make_from_project_metadata_and_store(tmp_path, capsys):
    """The default path: load_video_table(cfg) from metadata CSVs + the frame store."""
    from mouse_facial_expressions.cli import main
    from mouse_facial_expressions.config import Config as _C

    labels = _C().video.recording_labels
    meta = tmp_path / "metadata"
    meta.mkdir()
    raw = ["animal,recording,camera,year,month,day,hour,minutes,seconds,start,end,discard"]
    trt = ["mouse,date_of_birth,treatment,injection_time,notes"]
    rows = []
    for i in range(6):
        animal, treatment = f"m{i + 1}", ("high" if i < 3 else "saline")
        trt.append(f"{animal},2022-01-01,{treatment},12:00,")
        for rec in (1, 4):
            raw.append(f"{animal},{rec},camA,2022,6,13,{10 + rec},0,0,0,-1,0")
            rows.append({"video": f"{animal}_rec{rec}_{labels[rec]}"})
    (meta / "raw_videos.csv").write_text("\n".join(raw) + "\n")
    (meta / "treatments.csv").write_text("\n".join(trt) + "\n")
    frame_store(tmp_path / "frames", pd.DataFrame(rows), n=30, size=8)
    (tmp_path / "mfe.yaml").write_text("{}\n")  # -p names a project: a folder with mfe.yaml (the defaults)
    assert main(["task", "make", "-p", str(tmp_path), "--preset", "task1"]) == 0
    task = load_task(tmp_path / "tasks" / "task-1")
    assert task.frames["animal"].nunique() == 6 and len(task.folds) == 3
    assert set(task.frames.loc[task.frames.label == 1, "video"]) == {f"m{i}_rec4_4h-postinjection" for i in (1, 2, 3)}


@pytest.mark.parametrize("version", ["../x", "a/b", "a\\b", ".hidden", "1/../2"])
def test_a_version_that_is_not_a_plain_name_is_rejected(cohort, version):
    cfg, videos, index = cohort
    with pytest.raises(ValidationError, match="cannot name a folder"):
        preset("task1", version=version)
    cfg.project.dataset_version = version  # the project's default version is checked too
    with pytest.raises(TaskError, match="cannot name a folder"):
        make_task(cfg, preset("task1"), videos=videos, index=index)
    assert not cfg.path("tasks").exists() and not (cfg.root / "x").exists()


def test_exclusions_that_match_no_animal_are_warned_on_the_console(cohort, tmp_path, caplog):
    cfg, videos, index = cohort
    with caplog.at_level("WARNING", logger="mouse_facial_expressions.data.tasks"):
        make_task(cfg, preset("task1", exclude_animals=["m18", "m99"]), videos=videos, index=index)
    warned = [r.getMessage() for r in caplog.records if "match no animal" in r.getMessage()]
    assert len(warned) == 1 and "m99" in warned[0] and "m18" not in warned[0]  # m18 exists and was excluded


def test_a_task_knows_when_its_frame_store_or_metadata_changed(cohort):
    from fake_cohort import frame_store as write_store

    from mouse_facial_expressions.data.tasks import stale_inputs

    cfg, videos, index = cohort
    cfg.path("metadata").mkdir(parents=True, exist_ok=True)
    (cfg.path("metadata") / "treatments.csv").write_text("mouse,date_of_birth,treatment,injection_time,notes\\n")
    out = make_task(cfg, preset("task1"), videos=videos, index=None, frames_dir=cfg.path("frames"))
    assert stale_inputs(out) == []
    first = load_task(out).frames["video"].iloc[0]
    write_store(cfg.path("frames"), videos[videos["video"] == first], n=7)  # that video re-extracted: other crops
    (cfg.path("metadata") / "treatments.csv").write_text("mouse,date_of_birth,treatment,injection_time,notes\\nm1,,high,,\\n")
    assert stale_inputs(out) == [f"video {first} changed", "metadata treatments.csv changed"]


def test_a_failed_rewrite_keeps_the_previous_task_folder(cohort, monkeypatch):
    import mouse_facial_expressions.data.task_readme as readme

    cfg, videos, index = cohort
    out = make_task(cfg, preset("task1"), videos=videos, index=index)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*a, **k):
        raise OSError("disk trouble while writing the README")

    monkeypatch.setattr(readme, "task_readme", boom)
    with pytest.raises(OSError, match="disk trouble"):
        make_task(cfg, preset("task1", seed=7), videos=videos, index=index)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # every file of the old task, unchanged
    assert [p.name for p in out.parent.iterdir()] == ["task-1"]  # no temporary folder left
