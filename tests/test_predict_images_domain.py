"""``mfe predict --images`` gets the checks of videos (issue 29): the domain check (a log warning,
a ``domain_warning`` column), the face check (``no_face``), ``COLUMNS.md`` beside
``images_scores.csv``, and keypoints the model's alignment cannot use refused up front."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from mouse_facial_expressions.inference.images import SCORES_CSV, predict_images

torch.set_num_threads(1)
pytestmark = pytest.mark.slow

LABELS = "CollectedData_synth.h5"
FACEMAP = Path(__file__).parent / "data" / "facemap_headfixed" / "labeled-data" / "cam1_G7c1_1"


@pytest.fixture(scope="module")
def images(tiny_cohort, tmp_path_factory) -> Path:
    """labeled-data/<video> of a DeepLabCut project of synth tiny (8 labelled frames). Read-only."""
    from mouse_facial_expressions.synth.dlc_project import write_dlc_project

    out = tmp_path_factory.mktemp("dlc") / "dlc"
    write_dlc_project(tiny_cohort, out, frames_per_video=8, videos=1)
    (folder,) = sorted((out / "labeled-data").iterdir())
    return folder


def test_synthetic_stills_pass_both_checks_and_get_columns_md(images, run, tmp_path):
    report = predict_images(images, images / LABELS, run.run_dir, tmp_path, cfg=run.cfg)
    scores = pd.read_csv(tmp_path / SCORES_CSV, keep_default_na=False)
    done = scores[scores["status"] == "done"]
    assert len(done) > 0 and (done["domain_warning"] == "").all()
    assert (done["no_face"] == "False").all() and (done["p1"] != "").all()
    text = (tmp_path / "COLUMNS.md").read_text()
    for col in scores.columns:
        assert f"`{col}`" in text or col.startswith("p1_fold"), col
    assert "Class 1 is **" in text and tmp_path / "COLUMNS.md" in report.files


def test_stills_outside_the_training_data_get_a_warning_and_a_column(images, run, tmp_path, caplog):
    real = tmp_path / "real"  # the same stills, outside any synthetic project: "real" images
    shutil.copytree(images, real)
    with caplog.at_level(logging.WARNING, logger="mouse_facial_expressions.inference.images"):
        report = predict_images(real, real / LABELS, run.run_dir, tmp_path / "out")
    scores = pd.read_csv(tmp_path / "out" / SCORES_CSV)
    done = scores[scores["status"] == "done"]
    assert done["domain_warning"].str.startswith("synthetic model, real video").all()
    assert "outside the training data: synthetic model" in caplog.text
    assert any(w.startswith("outside the training data") for w in report.warnings)


def test_head_fixed_stills_with_a_dlc_face_model_are_refused_naming_its_alignment(run, tmp_path):
    from mouse_facial_expressions.config import Config

    cfg = Config.model_validate({"keypoints": {"bodyparts": {"eye": ["eye_top", "eye_front", "eye_bottom", "eye_back"],
                                                             "nose": ["nose_tip"]}},
                                 "extract": {"alignment": "headfixed_eye_nose"}})
    with pytest.raises(ValueError) as err:
        predict_images(FACEMAP, FACEMAP / "CollectedData_AVS.h5", run.run_dir, tmp_path, cfg=cfg)
    text = str(err.value)
    assert "trained on crops aligned with extract.alignment 'dlc_face'" in text
    assert "a model for this rig must be trained on crops from it" in text
    assert "map them in keypoints.bodyparts" not in text and not (tmp_path / SCORES_CSV).exists()
