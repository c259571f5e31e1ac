"""The seed's module entry points and `mfe train` accept the seed README's commands."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.models import train_task1_advanced_model, train_task1_baseline_model, train_task1_resup_model
from mouse_facial_expressions.training import make_params

# Copied from seed/ADVANCED_MODEL_README.md (comments removed).
README_COMMANDS = [
    "python -m mouse_facial_expressions.models.train_task1_advanced_model",
    """python -m mouse_facial_expressions.models.train_task1_advanced_model \\
    --epochs 30 \\
    --learning_rate 1e-4 \\
    --num_frames 15 \\
    --frame_stride 2 \\
    --train_batch_size 16 \\
    --use_soft_labels True""",
    """python -m mouse_facial_expressions.models.train_task1_baseline_model \\
    --epochs 10 \\
    --learning_rate 1e-2""",
    """python -m mouse_facial_expressions.models.train_task1_advanced_model \\
    --num_frames 20 \\
    --frame_stride 1 \\
    --train_batch_size 8""",
    """python -m mouse_facial_expressions.models.train_task1_advanced_model \\
    --num_frames 5 \\
    --frame_stride 3 \\
    --train_batch_size 32""",
]
MODULES = {
    "mouse_facial_expressions.models.train_task1_advanced_model": train_task1_advanced_model,
    "mouse_facial_expressions.models.train_task1_baseline_model": train_task1_baseline_model,
    "mouse_facial_expressions.models.train_task1_resup_model": train_task1_resup_model,
}


def _parse(command: str):
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[:2] == ["python", "-m"]
    return MODULES[argv[2]].build_parser().parse_args(argv[3:])


@pytest.mark.parametrize("command", README_COMMANDS)
def test_readme_commands_parse(command):
    args = _parse(command)
    argv = shlex.split(command.replace("\\\n", " "))[3:]
    flags = {a[2:]: v for a, v in zip(argv, argv[1:] + [""]) if a.startswith("--")}
    for flag, value in flags.items():  # every flag the README shows reaches the parsed arguments
        got = getattr(args, flag)
        assert str(got) == value or got == type(got)(value), (flag, got, value)


def test_readme_values_reach_the_parameters():
    args = _parse(README_COMMANDS[1])
    p = make_params("advanced", **vars(args))
    assert (p.epochs, p.learning_rate, p.num_frames, p.frame_stride, p.train_batch_size, p.use_soft_labels) == (30, 1e-4, 15, 2, 16, True)
    assert p.optimizer == "adamw" and p.test_batch_size == 32 and p.seed == 97531  # seed defaults


def test_baseline_defaults_are_the_seeds():
    p = make_params("baseline", **vars(_parse(README_COMMANDS[2])))
    assert (p.optimizer, p.learning_rate, p.momentum, p.train_batch_size, p.label_smoothing) == ("sgd", 1e-2, 0.9, 20, 0.1)


def test_resup_defaults_are_the_originals():
    args = train_task1_resup_model.build_parser().parse_args(["--accelerator", "cpu"])
    p = make_params("resup", **vars(args))
    assert (p.dropout, p.label_smoothing, p.accelerator) == (0.5, 0.2, "cpu")
    assert p.model_config()["dropout"] == 0.5


@pytest.mark.parametrize("text,value", [("True", True), ("False", False), ("false", False), ("1", True)])
def test_use_soft_labels_parses_bool_strings(text, value):
    args = train_task1_advanced_model.build_parser().parse_args(["--use_soft_labels", text])
    assert args.use_soft_labels is value


def test_use_soft_labels_rejects_other_words():
    with pytest.raises(SystemExit):
        train_task1_advanced_model.build_parser().parse_args(["--use_soft_labels", "maybe"])


def test_folds_flag_takes_a_comma_list():
    assert train_task1_advanced_model.build_parser().parse_args(["--folds", "0,2"]).folds == [0, 2]


def test_mfe_train_takes_every_flag_of_the_brief():
    from mouse_facial_expressions.cli import build_parser

    argv = ("train --model resup --backbone resnet18 --pretrained none --image_size 64 --num_layers 2 "
            "--num_heads 4 --ff_dim 256 --devices 2 --strategy ddp --num_nodes 1 --precision 32-true "
            "--max_time 00:01:00:00 --out o --epoch_size 64 --workers 0 --tracking_uri sqlite:///x.db "
            "--limit_batches 2 --momentum 0.8 --dropout 0.4 --accelerator cpu --folds 1")
    args = build_parser().parse_args(argv.split())
    assert (args.model, args.devices, args.limit_batches, args.folds) == ("resup", 2, 2, [1])


def test_missing_task_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "mfe.yaml").write_text("")
    code = main(["train", "-p", str(tmp_path), "--dataset_version", "9"])
    assert code == 1
    assert "task-9" in capsys.readouterr().err


def test_module_entry_point_runs_as_a_script(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mouse_facial_expressions.models.train_task1_resup_model", "--help"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "--dropout" in r.stdout and "--accelerator" in r.stdout


def test_mfe_yaml_changes_apply_but_written_out_defaults_do_not(tmp_path):
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.project import init_project

    init_project(tmp_path)  # writes every train key, commented out, with its default
    text = (tmp_path / "mfe.yaml").read_text()
    train = text.index("\ntrain:")
    text = text[:train] + text[train:].replace("  # epochs: null", "  epochs: 7", 1)  # a lab uncomments one key
    (tmp_path / "mfe.yaml").write_text(text)
    p = make_params("baseline", load_config(tmp_path).train)
    assert p.epochs == 7  # changed in mfe.yaml
    assert p.learning_rate == 1e-2 and p.num_frames is None  # seed default / the task's, not the file's
