"""Training recipes: the first recipe reproduces the old code, every validation window is
scored when asked, recipe settings resolve in one place.

The old code (before recipes, commit eca304b) had no recipe flags: its choices were fixed in
the code. ``OLD_CODE_CHOICES`` writes them out; ``--recipe mfe1`` must resolve to them and
train exactly as they do when given one by one as flags. Both runs happen in the same test
with the same seed, so no number recorded on another machine is compared.
"""

from __future__ import annotations

import json

import pytest
import torch

from tiny_run import tiny_params

#: What the code before recipes did, fixed (eca304b): one mild TrivialAugmentWide-like op per clip
#: (data/augment.py), the class-balanced window sampler, a N(0, 0.02) positional table and a GELU
#: head with the model's dropout (models/advanced.py), no warm-up, no BatchNorm recalibration, the
#: checkpoint with the best validation accuracy on 8 windows per validation video (training/cv.py).
OLD_CODE_CHOICES = dict(augment_policy="mild", augment_scope="clip", sampler="balanced", pos_init_std=0.02,
                        head_activation="gelu", warmup_epochs=0.0, bn_recalibrate=0, select="val_acc",
                        val_windows_per_video=8)


def _params(**kw):
    return tiny_params(**{"epochs": 3, "seed": 1, **kw})


def _train(task_dir, out, params):
    from mouse_facial_expressions.training import train_cv

    torch.set_num_threads(1)
    return train_cv(task_dir, params, out, folds=[0], progress=False, track=False)["folds"][0]


def test_first_recipe_resolves_to_the_old_code_choices():
    from mouse_facial_expressions.training.params import DEFAULT_RECIPE, make_params

    p = make_params("advanced", recipe="mfe1")
    assert {k: getattr(p, k) for k in OLD_CODE_CHOICES} == OLD_CODE_CHOICES
    assert p.head_dropout is None and p.model_config()["head_dropout"] is None  # the model's own dropout
    assert DEFAULT_RECIPE != "mfe1"  # so the flags below override a recipe that differs


@pytest.mark.slow
def test_first_recipe_flags_reproduce_the_old_code(tiny8_task, tmp_path):
    """``recipe="mfe1"`` and the default recipe with the old code's choices as explicit flags train
    the same run: the recipe adds nothing but those choices."""
    from mouse_facial_expressions.data.datasets import fold_datasets
    from mouse_facial_expressions.training.params import DEFAULT_RECIPE

    by_recipe = _train(tiny8_task, tmp_path / "recipe", _params(recipe="mfe1", run_name="mfe1"))
    by_flags = _train(tiny8_task, tmp_path / "flags", _params(recipe=DEFAULT_RECIPE, run_name="flags", **OLD_CODE_CHOICES))
    hist = [by_recipe["history"][str(e)] for e in range(3)]
    assert [by_flags["history"][str(e)] for e in range(3)] == hist  # same process, same seed: equal floats
    for key in ("best_epoch", "select", "test_acc", "n_val_windows"):
        assert by_flags[key] == by_recipe[key], key
    # the old selection: best validation accuracy, ties to the lower validation loss
    best = max(range(3), key=lambda e: (hist[e]["val_acc"], -hist[e]["val_loss"]))
    assert by_recipe["best_epoch"] == best and by_recipe["select"] == "val_acc"
    # and 8 windows of each validation video, not all of them
    eight = fold_datasets(tiny8_task, 0, num_frames=3, frame_stride=1, image_size=32, val_windows_per_video=8)["val"]
    assert by_recipe["n_val_windows"] == len(eight) < len(eight.windows["video"].unique()) * 9


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
    head = model.parts["class"].head  # the face model's classifier, read by the class part
    assert isinstance(head[1], torch.nn.ReLU) and head[2].p == 0.3
    assert model.face.pos.table.std().item() > 0.5  # N(0, 1), not N(0, 0.02)


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
