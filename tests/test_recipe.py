"""Training recipes: the first recipe reproduces the old code, every validation window is
scored when asked, recipe settings resolve in one place.

The golden numbers below were produced by the code before recipes existed (commit eca304b),
``train_cv`` on this exact tiny cohort and task with the same parameters and seed 1, on the
project's 2-core CPU (fp32, one thread). ``recipe="mfe1"`` must give the same run.
"""

from __future__ import annotations

import json

import pytest
import torch

from tiny_run import tiny_params

OLD_CODE_SEED1 = {
    "best_epoch": 2,  # val accuracy ties epochs 0 and 2 (0.5); the lower loss wins
    "val_acc": [0.5, 0.3125, 0.5],
    "val_loss": [0.423382967710495, 0.38392147421836853, 0.39367371797561646],
    "test_acc": 0.5849056603773585,
}


def _params(**kw):
    return tiny_params(**{"epochs": 3, "seed": 1, **kw})  # the settings the golden numbers were made with


def _train(task_dir, out, params):
    from mouse_facial_expressions.training import train_cv

    torch.set_num_threads(1)
    return train_cv(task_dir, params, out, folds=[0], progress=False, track=False)["folds"][0]


@pytest.mark.slow
def test_first_recipe_flags_reproduce_the_old_code(tiny8_task, tmp_path):
    fold = _train(tiny8_task, tmp_path, _params(recipe="mfe1", run_name="mfe1"))
    hist = [fold["history"][str(e)] for e in range(3)]
    assert fold["best_epoch"] == OLD_CODE_SEED1["best_epoch"] and fold["select"] == "val_acc"
    assert [h["val_acc"] for h in hist] == pytest.approx(OLD_CODE_SEED1["val_acc"], abs=1e-6)
    assert [h["val_loss"] for h in hist] == pytest.approx(OLD_CODE_SEED1["val_loss"], rel=1e-3)
    assert fold["test_acc"] == pytest.approx(OLD_CODE_SEED1["test_acc"], abs=0.02)  # within one of 53 windows
    from mouse_facial_expressions.data.datasets import fold_datasets

    eight = fold_datasets(tiny8_task, 0, num_frames=3, frame_stride=1, image_size=32, val_windows_per_video=8)["val"]
    assert fold["n_val_windows"] == len(eight) < len(eight.windows["video"].unique()) * 9  # 8 per validation video


@pytest.mark.slow
def test_every_validation_window_is_scored_when_asked(tiny8_task, tmp_path):
    from mouse_facial_expressions.data.datasets import fold_datasets

    every = len(fold_datasets(tiny8_task, 0, num_frames=3, frame_stride=1, image_size=32, val_windows_per_video=None)["val"])
    eight = len(fold_datasets(tiny8_task, 0, num_frames=3, frame_stride=1, image_size=32, val_windows_per_video=8)["val"])
    assert every > eight
    fold = _train(tiny8_task, tmp_path, _params(epochs=1, val_windows_per_video=0, limit_batches=None, epoch_size=8, run_name="all"))
    assert fold["n_val_windows"] == every
    on_disk = json.loads((tmp_path / "runs" / "all" / "fold0" / "fold.json").read_text())
    from mouse_facial_expressions.training.params import DEFAULT_RECIPE

    assert on_disk["select_rule"] and on_disk["recipe"] == DEFAULT_RECIPE


def test_recipe_fills_what_is_not_given():
    from mouse_facial_expressions.training.params import RECIPES, make_params

    p = make_params("advanced", recipe="mfe1")
    assert {k: getattr(p, k) for k in RECIPES["mfe1"]} == RECIPES["mfe1"]
    q = make_params("advanced", recipe="mfe1", augment_scope="frame", select="last")
    assert (q.augment_scope, q.select, q.sampler) == ("frame", "last", RECIPES["mfe1"]["sampler"])
    from mouse_facial_expressions.training.params import DEFAULT_RECIPE

    assert make_params("advanced").recipe == DEFAULT_RECIPE


def test_unknown_recipe_lists_the_recipes():
    from mouse_facial_expressions.training.params import make_params

    with pytest.raises(ValueError, match="mfe1"):
        make_params("advanced", recipe="best")


def test_recipe_reaches_the_model_config():
    from mouse_facial_expressions.models import create_model
    from mouse_facial_expressions.training.params import make_params

    p = make_params("advanced", recipe="original", backbone="resnet18", d_model=64, num_heads=2, ff_dim=64, num_layers=1)
    model = create_model("advanced", **p.model_config())
    assert model.config["head_activation"] == "relu" and model.config["head_dropout"] == 0.3
    assert isinstance(model.head[1], torch.nn.ReLU) and model.head[2].p == 0.3
    assert model.pos.table.std().item() > 0.5  # N(0, 1), not N(0, 0.02)


def test_recipe_flags_parse(tmp_path):
    import argparse

    from mouse_facial_expressions.cli.train import add_train_arguments

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--recipe", "mfe1", "--augment_scope", "frame", "--select", "val_loss",
                              "--val_windows_per_video", "0", "--warmup_epochs", "0.5"])
    assert (args.recipe, args.augment_scope, args.select, args.val_windows_per_video, args.warmup_epochs) == \
        ("mfe1", "frame", "val_loss", 0, 0.5)
    with pytest.raises(SystemExit):
        parser.parse_args(["--select", "test_acc"])
