"""Run folders record paths relative to themselves, so a copied project uses its own files
(training/runs.py, training/cv.py); run names are one folder name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.config import load_config
from mouse_facial_expressions.io.checkpoint import load_weights_only
from mouse_facial_expressions.project import init_project
from mouse_facial_expressions.training.runs import (check_run_name, fold_checkpoints, record_path, resolve_recorded,
                                                    run_task_dir)

VIDEO = "m3_rec4_4h-postinjection"


# --------------------------------------------------------------------------- recording and resolving paths

def test_a_checkpoint_is_recorded_relative_to_the_run_folder(tmp_path):
    run = tmp_path / "models" / "runs" / "r"
    ckpt = tmp_path / "models" / "checkpoints_advanced" / "r" / "advanced-fold0.ckpt"
    assert record_path(ckpt, run) == "../../checkpoints_advanced/r/advanced-fold0.ckpt"
    assert record_path(run / "fold0" / "last.ckpt", run) == "fold0/last.ckpt"
    assert resolve_recorded("../../checkpoints_advanced/r/advanced-fold0.ckpt", run) == ckpt
    # outside the project it names: absolute
    assert record_path(tmp_path / "other" / "x.ckpt", run, within=tmp_path / "models") == str(tmp_path / "other" / "x.ckpt")


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(path.as_posix())
    return path


def test_an_absolute_path_of_another_project_is_rerooted_to_this_ones_file(tmp_path):
    tail = Path("models") / "checkpoints_advanced" / "r" / "a.ckpt"
    original = _touch(tmp_path / "lab" / "project" / tail)
    copy = _touch(tmp_path / "backup" / "project" / tail)
    run = tmp_path / "backup" / "project" / "models" / "runs" / "r"
    roots = [run, run.parent.parent]
    assert resolve_recorded(original, run, roots) == copy  # the original exists, but the copy has its own
    assert resolve_recorded(copy, run, roots) == copy  # inside this project: as recorded
    gone = Path("/gone/lab/project") / tail
    assert resolve_recorded(gone, run, roots) == copy
    copy.unlink()
    assert resolve_recorded(original, run, roots) == original  # no file of its own: the recorded one


@pytest.mark.parametrize("name", ["../../../escaped_run", "a/b", "a\\b", "..", ".hidden", "", " x", "x/.."])
def test_a_run_name_that_is_not_one_folder_name_is_refused(name):
    with pytest.raises(ValueError, match="run name"):
        check_run_name(name)


@pytest.mark.parametrize("name", ["tiny", "advanced-resnet18-1a2b3c4d", "run_2.1"])
def test_plain_run_names_pass(name):
    assert check_run_name(name) == name


def test_train_cv_refuses_an_escaping_run_name_before_writing(tmp_path):
    from tiny_run import tiny_params

    from mouse_facial_expressions.training import train_cv

    models = tmp_path / "a" / "b" / "models"
    with pytest.raises(ValueError, match="run name '../../../escaped_run'"):
        train_cv(tmp_path / "task", tiny_params(run_name="../../../escaped_run"), models, track=False, progress=False)
    assert list(tmp_path.rglob("*")) == []  # not even models/ was made


def test_mfe_train_refuses_an_escaping_run_name(tmp_path, capsys):
    init_project(tmp_path / "proj")
    code = main(["train", "-p", str(tmp_path / "proj"), "--run_name", "../../../escaped_run"])
    assert code == 1
    assert "run name '../../../escaped_run' cannot name a run folder" in capsys.readouterr().err
    assert not list(tmp_path.rglob("escaped_run")) and not list((tmp_path / "proj" / "models").iterdir())


# --------------------------------------------------------------------------- a trained run and its copy

def test_a_run_records_its_paths_relative_to_its_folder(run):
    for fold_json in sorted(run.run_dir.glob("fold*/fold.json")):
        recorded = json.loads(fold_json.read_text())["best_checkpoint"]
        assert not Path(recorded).is_absolute()  # fold{k}/last.ckpt here (no validation animals), else ../../checkpoints_*/
        assert (run.run_dir / recorded).is_file() and run.project in (run.run_dir / recorded).resolve().parents
    summary = (run.run_dir / "summary.json").read_text()
    assert str(run.project) not in summary and json.loads(summary)["predictions"] == "predictions.csv"
    params = json.loads((run.run_dir / "params.json").read_text())
    assert params["task_dir"] == "../../../tasks/task-1"
    assert run_task_dir(run.run_dir) == run.task_dir
    # the dicts train_cv returns still hold absolute paths
    assert Path(run.summary["folds"][0]["best_checkpoint"]).is_absolute() and Path(run.summary["run_dir"]).is_absolute()


def _copy_project(run, dest: Path) -> Path:
    shutil.copytree(run.project, dest, ignore=shutil.ignore_patterns("onnx", "raw"))  # the run's caches, camera files
    return dest


def _perturb(project: Path) -> None:
    """"Retrain" a project: change the class-1 row of the class head in every checkpoint file
    under its models folder (found by name, not through the code under test; plain dicts saved
    with torch.save)."""
    files = sorted((project / "models").rglob("*.ckpt"))
    assert files
    for ckpt in files:
        state = load_weights_only(ckpt)
        name = [k for k, v in state["state_dict"].items() if "head" in k and v.dtype.is_floating_point and v.ndim == 2][-1]
        state["state_dict"][name][1] += 0.5  # (2, D): the class-1 logit moves, so p1 does
        torch.save(state, ckpt)


def _clips(ens) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, ens.num_frames, ens.channels, ens.image_size, ens.image_size, generator=g)


def test_a_copied_project_scores_with_its_own_weights(run, tmp_path):
    from mouse_facial_expressions.inference.ensemble import load_ensemble

    copy = _copy_project(run, tmp_path / "copy" / "project")
    copy_run = copy / "models" / "runs" / "tiny"
    for _, ckpt in fold_checkpoints(copy_run):
        assert copy in ckpt.parents  # the copy's own checkpoints, not the original's
    original = load_ensemble(run.run_dir)
    clips = _clips(original)
    np.testing.assert_array_equal(load_ensemble(copy_run).predict(clips), original.predict(clips))
    assert Path(load_ensemble(copy_run).data["task_dir"]) == copy / "tasks" / "task-1"

    _perturb(copy)
    changed = load_ensemble(copy_run).predict(clips)
    assert np.abs(changed - original.predict(clips)).min() > 1e-4  # every member scores with the copy's weights
    np.testing.assert_array_equal(load_ensemble(run.run_dir).predict(clips), original.predict(clips))


def test_mfe_predict_in_a_copied_project_uses_the_copys_weights(run, tmp_path):
    from mouse_facial_expressions.inference.predict import predict_videos

    copy = _copy_project(run, tmp_path / "copy" / "project")
    cfg = load_config(copy)

    def scores(run_dir: Path, out: Path) -> pd.DataFrame:
        rep = predict_videos(cfg.path("processed_videos") / f"{VIDEO}.mp4", cfg.path("keypoints") / f"{VIDEO}.parquet",
                             run_dir, out, cfg=cfg, progress=False, backend="torch")
        assert rep.ok, rep.summary()
        return pd.read_csv(out / f"{VIDEO}_scores.csv")

    before = scores(run.run_dir, tmp_path / "original")
    copy_run = copy / "models" / "runs" / "tiny"
    pd.testing.assert_frame_equal(scores(copy_run, tmp_path / "same"), before)
    _perturb(copy)
    after = scores(copy_run, tmp_path / "changed")
    assert len(after) == len(before) and not np.allclose(after["p1"], before["p1"], atol=1e-4)


def test_an_old_run_with_absolute_paths_loads_the_copys_own_files(run, tmp_path):
    """Runs written before relative paths: fold.json, summary.json and params.json name the
    original project's files; a copy (or a moved project) reads its own."""
    from mouse_facial_expressions.inference.ensemble import load_ensemble

    copy = _copy_project(run, tmp_path / "copy" / "project")
    copy_run = copy / "models" / "runs" / "tiny"
    originals = dict(fold_checkpoints(run.run_dir))
    own = {k: copy / p.relative_to(run.project) for k, p in originals.items()}  # the same files in the copy
    for k, fold_json in enumerate(sorted(copy_run.glob("fold*/fold.json"))):
        rec = json.loads(fold_json.read_text())
        rec["best_checkpoint"] = str(originals[k])  # as old runs wrote it: the original, which exists
        fold_json.write_text(json.dumps(rec))
    params = json.loads((copy_run / "params.json").read_text())
    params["task_dir"] = str(run.task_dir)
    (copy_run / "params.json").write_text(json.dumps(params))
    assert dict(fold_checkpoints(copy_run)) == own
    assert run_task_dir(copy_run) == copy / "tasks" / "task-1"

    # a project that moved from a place that is gone, recorded in summary.json only
    summary = json.loads((copy_run / "summary.json").read_text())
    for rec in summary["folds"]:
        rec["best_checkpoint"] = str(Path("/gone/lab/project") / own[rec["fold"]].relative_to(copy))
    (copy_run / "summary.json").write_text(json.dumps(summary))
    for fold_json in copy_run.glob("fold*/fold.json"):
        fold_json.unlink()
    assert dict(fold_checkpoints(copy_run)) == own

    _perturb(copy)
    clips = _clips(load_ensemble(run.run_dir))
    assert np.abs(load_ensemble(copy_run).predict(clips) - load_ensemble(run.run_dir).predict(clips)).min() > 1e-4


def test_a_task_records_its_frame_store_relative_and_an_old_absolute_one_is_rerooted(run, tmp_path):
    from mouse_facial_expressions.data.tasks import load_spec, task_frames_dir

    copy = tmp_path / "copy"
    shutil.copytree(run.project, copy)
    task = copy / "tasks" / "task-1"
    assert not Path(load_spec(task / "task.yaml").frames_dir).is_absolute()
    assert task_frames_dir(task) == copy / "frames"
    # a task written before: the original project's absolute frame store, which still exists
    text = (task / "task.yaml").read_text()
    spec = yaml.safe_load(text)
    spec["frames_dir"] = str(run.project / "frames")
    (task / "task.yaml").write_text(yaml.safe_dump(spec))
    assert (run.project / "frames").is_dir()
    assert task_frames_dir(task) == copy / "frames"  # the copy's own crops win
