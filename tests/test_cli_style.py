"""One CLI style: kebab-case flags (the old snake-case spellings still parse, with a one-line notice),
no 'default: None' in help, per-model entry-point flags (the seed's snake-case spellings)."""

from __future__ import annotations

import re

import pytest

from mouse_facial_expressions.cli import build_parser
from mouse_facial_expressions.cli._common import command_tree, kebab
from mouse_facial_expressions.cli.train import build_entry_parser


@pytest.mark.parametrize("argv_a, argv_b, key, value", [
    (["train", "--learning_rate", "0.5"], ["train", "--learning-rate", "0.5"], "learning_rate", 0.5),
    (["train", "--train_batch_size=3"], ["train", "--train-batch-size=3"], "train_batch_size", 3),
    (["predict", "v.mp4", "--keypoints", "k", "--model", "m", "--window-step", "4"],
     ["predict", "v.mp4", "--keypoints", "k", "--model", "m", "--window_step", "4"], "window_step", 4),
    (["keypoints", "detect", "--dlc-config", "c.yaml"], ["keypoints", "detect", "--dlc_config", "c.yaml"], "dlc_config", None),
])
def test_both_flag_spellings_parse_to_the_same_value(argv_a, argv_b, key, value):
    a, b = build_parser().parse_args(argv_a), build_parser().parse_args(argv_b)
    assert getattr(a, key) == getattr(b, key)
    if value is not None:
        assert getattr(a, key) == value


@pytest.mark.parametrize("flag", ["--learning-rte", "--learning_rte"])
def test_a_misspelt_flag_is_still_an_error(flag, capsys):  # (--learning-rat is an abbreviation)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", flag, "0.5"])
    err = capsys.readouterr().err
    assert f"unrecognized arguments: {flag}" in err and "deprecated" not in err


def test_values_after_a_double_dash_are_left_alone():
    args, rest = build_parser().parse_known_args(["train", "--", "--learning-rate"])
    assert "--learning-rate" in rest


def _helps(parser):
    yield parser.format_help()
    if getattr(parser, "front_options", None) is not None:
        yield parser.format_help_all()
    for action in parser._actions:
        for sub in (getattr(action, "choices", None) or {}).values() if hasattr(action, "_name_parser_map") else ():
            yield from _helps(sub)


def test_help_never_says_default_none():
    for text in _helps(build_parser()):
        assert "default: None" not in text and "None means" not in text


def test_the_baseline_entry_point_lists_no_transformer_flags():
    assert "--num_layers" not in build_entry_parser("baseline").format_help()
    assert "--num_layers" not in build_entry_parser("resup").format_help()
    advanced = build_entry_parser("advanced")
    assert "--num_layers" in advanced.format_help()
    assert advanced.parse_args(["--num-layers", "2"]).num_layers == 2


# --- one spelling: kebab-case (issue 31) ---------------------------------------------------------

_SNAKE = re.compile(r"--[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+")


def test_every_command_shows_kebab_case_flags_only():
    parsers = list(command_tree(build_parser()))
    assert len(parsers) > 15  # mfe, its commands and their subcommands
    for parser in parsers:
        for action in parser._actions:
            assert not [o for o in action.option_strings if "_" in o], (parser.prog, action.option_strings)
        assert not _SNAKE.findall(parser.format_help()), parser.prog
        assert not _SNAKE.findall(parser.format_help_all()), parser.prog
        assert not [o for o in parser._option_string_actions if "_" in o], parser.prog  # no hidden alias either


def test_every_kebab_flag_takes_its_old_snake_spelling():
    for parser in command_tree(build_parser()):
        for option, action in parser._option_string_actions.items():
            if option.startswith("--") and "-" in option[2:]:
                old = "--" + option[2:].replace("-", "_")
                assert parser._other_spelling(old) == (option, option), (parser.prog, old)


@pytest.mark.parametrize("old, new", [
    (["train", "--image_size", "96", "--run_name", "r", "--no_tracking"], ["train", "--image-size", "96", "--run-name", "r", "--no-tracking"]),
    (["train", "--dataset_version=2", "--learning_rate", "1e-3"], ["train", "--dataset-version=2", "--learning-rate", "1e-3"]),
    (["task", "make", "--dataset_version", "2", "--au_ratings", "x.parquet"], ["task", "make", "--dataset-version", "2", "--au-ratings", "x.parquet"]),
    (["keypoints", "detect", "--dry_run", "--batch_size", "4"], ["keypoints", "detect", "--dry-run", "--batch-size", "4"]),
    (["synth", "out", "--rec_cue", "4:30", "--bout_fraction", "0.5"], ["synth", "out", "--rec-cue", "4:30", "--bout-fraction", "0.5"]),
])
def test_an_old_spelling_parses_the_same_with_a_one_line_notice(old, new, capsys):
    assert build_parser().parse_args(old) == build_parser().parse_args(new)
    err = capsys.readouterr().err.splitlines()
    olds = [a.partition("=")[0] for a in old if a.startswith("--") and "_" in a]
    assert err == [f"mfe: {o} is deprecated; use {kebab(o)}" for o in olds]


def test_the_notice_comes_once_per_flag(capsys):
    args = build_parser().parse_args(["train", "--folds", "0", "--image_size", "64", "--image_size=80"])
    assert args.image_size == 80
    assert capsys.readouterr().err == "mfe: --image_size is deprecated; use --image-size\n"


def test_abbreviations_of_either_spelling(capsys):
    parse = build_parser().parse_args
    assert parse(["train", "--learning_r", "0.5"]).learning_rate == 0.5  # snake prefix: expanded, with the notice
    assert "use --learning-rate" in capsys.readouterr().err
    assert parse(["train", "--learning-r", "0.5"]).learning_rate == 0.5
    assert parse(["keypoints", "detect", "--dry"]).dry_run  # once registered in both spellings: was ambiguous
    assert capsys.readouterr().err == ""
    with pytest.raises(SystemExit):
        parse(["train", "--weak_", "1"])
    err = capsys.readouterr().err
    assert "ambiguous option: --weak-" in err and "deprecated" not in err


@pytest.mark.parametrize("model", ["baseline", "advanced", "resup"])
def test_the_seed_entry_points_keep_their_snake_flags_silently(model, capsys):
    import importlib

    module = importlib.import_module(f"mouse_facial_expressions.models.train_task1_{model}_model")
    parser = module.build_parser()
    seed = ["--epochs", "30", "--learning_rate", "1e-4", "--num_frames", "15", "--frame_stride", "2",
            "--train_batch_size", "16", "--use_soft_labels", "True", "--dataset_version", "1.0"]
    args = parser.parse_args(seed)
    assert (args.learning_rate, args.num_frames, args.train_batch_size, args.use_soft_labels) == (1e-4, 15, 16, True)
    assert parser.parse_args([kebab(a) for a in seed]) == args  # the new spelling too
    assert capsys.readouterr().err == ""  # the seed's spellings are these commands' documented interface
    assert "--learning_rate" in parser.format_help() and "--learning-rate" not in parser.format_help()
    mfe = build_parser().parse_args(["train", "--model", model] + [kebab(a) for a in seed])
    assert {k: v for k, v in vars(mfe).items() if k in vars(args)} == vars(args)


# --- one name per idea across commands (issue 31 item 2) ------------------------------------------

_PREDICT = ["predict", "v.mp4", "--keypoints", "k", "--model", "m"]
_FINETUNE = ["finetune", "--from", "r", "--task", "t"]


@pytest.mark.parametrize("old, new, key, value, notice", [
    (["train", "--accelerator", "gpu"], ["train", "--device", "cuda"], "accelerator", "gpu", "--accelerator is deprecated; use --device"),
    (["train", "--accelerator=cpu"], ["train", "--device=cpu"], "accelerator", "cpu", "--accelerator is deprecated; use --device"),
    (["train", "--workers", "3"], ["train", "--loader-workers", "3"], "workers", 3, "--workers is deprecated; use --loader-workers"),
    (["train", "--seed", "7"], ["train", "--train-seed", "7"], "seed", 7, "--seed is deprecated; use --train-seed"),
    (_FINETUNE + ["--workers", "1"], _FINETUNE + ["--loader-workers", "1"], "workers", 1, "--workers is deprecated; use --loader-workers"),
    (["extract", "--workers", "2"], ["extract", "--decode-workers", "2"], "workers", 2, "--workers is deprecated; use --decode-workers"),
    (_PREDICT + ["--workers", "4"], _PREDICT + ["--decode-workers", "4"], "workers", 4, "--workers is deprecated; use --decode-workers"),
    (["synth", "out", "--seed", "5"], ["synth", "out", "--synth-seed", "5"], "seed", 5, "--seed is deprecated; use --synth-seed"),
    (["evaluate", "run", "--seed", "3"], ["evaluate", "run", "--bootstrap-seed", "3"], "seed", 3, "--seed is deprecated; use --bootstrap-seed"),
    (["compare", "a", "b", "--seed", "3"], ["compare", "a", "b", "--bootstrap-seed", "3"], "seed", 3, "--seed is deprecated; use --bootstrap-seed"),
])
def test_a_renamed_flag_and_its_old_name_give_the_same_value_and_the_notice(old, new, key, value, notice, capsys):
    a = build_parser().parse_args(new)
    assert capsys.readouterr().err == ""
    b = build_parser().parse_args(old)
    assert capsys.readouterr().err == f"mfe: {notice}\n"
    assert a == b and getattr(a, key) == value


def test_the_notice_for_a_renamed_flag_comes_once(capsys):
    assert build_parser().parse_args(["train", "--seed", "1", "--seed", "2"]).seed == 2
    assert capsys.readouterr().err == "mfe: --seed is deprecated; use --train-seed\n"


_RENAMED = {"train": ("--accelerator", "--workers", "--seed"), "finetune": ("--workers",), "extract": ("--workers",),
            "predict": ("--workers",), "synth": ("--seed",), "evaluate": ("--seed",), "compare": ("--seed",)}
_NEW = {"train": ("--device", "--loader-workers", "--train-seed"), "finetune": ("--loader-workers",),
        "extract": ("--decode-workers",), "predict": ("--decode-workers", "--device"), "synth": ("--synth-seed",),
        "evaluate": ("--bootstrap-seed",), "compare": ("--bootstrap-seed",)}


@pytest.mark.parametrize("command", sorted(_RENAMED))
def test_help_shows_only_the_new_names(command):
    parser = {p.prog.split()[-1]: p for p in command_tree(build_parser())}[command]
    text = parser.format_help_all()
    options = set(re.findall(r"--[a-z][a-z0-9-]*", text))
    assert not options & set(_RENAMED[command]), (command, options & set(_RENAMED[command]))
    assert set(_NEW[command]) <= options
    assert not set(_RENAMED[command]) & set(parser._option_string_actions)


@pytest.mark.parametrize("device, lightning", [("auto", "auto"), ("cpu", "cpu"), ("cuda", "gpu"), ("mps", "mps")])
def test_train_and_predict_take_the_same_devices(device, lightning, capsys):
    assert build_parser().parse_args(["train", "--device", device]).accelerator == lightning
    assert build_parser().parse_args(_PREDICT + ["--device", device]).device == device
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("precision, lightning", [("32", "32-true"), ("bf16", "bf16-mixed"), ("16", "16-mixed")])
def test_train_and_predict_take_the_same_precisions(precision, lightning, capsys):
    assert build_parser().parse_args(["train", "--precision", precision]).precision == lightning
    assert build_parser().parse_args(_FINETUNE + ["--precision", precision]).precision == lightning
    assert build_parser().parse_args(_PREDICT + ["--precision", precision]).precision == precision
    assert build_parser().parse_args(["train", "--precision", lightning]).precision == lightning  # Lightning's: silently
    assert capsys.readouterr().err == ""


def test_a_device_outside_the_list_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--device", "tpu"])
    assert "expected auto, cpu, cuda or mps" in capsys.readouterr().err


def test_predict_refuses_fp16_with_one_line(tmp_path, capsys):
    from mouse_facial_expressions.cli import main

    code = main(["predict", str(tmp_path / "v.mp4"), "--keypoints", "k", "--model", "m", "--out", str(tmp_path / "o"),
                 "--precision", "16"])
    assert code == 1 and "--precision 16 (fp16) is not available for scoring" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["baseline", "advanced", "resup"])
def test_the_seed_entry_points_keep_accelerator_seed_and_workers_silently(model, capsys):
    parser = build_entry_parser(model)
    args = parser.parse_args(["--accelerator", "gpu", "--seed", "3", "--workers", "2"])
    assert (args.accelerator, args.seed, args.workers) == ("gpu", 3, 2)
    assert capsys.readouterr().err == ""
    text = parser.format_help()
    assert "--accelerator" in text and "--seed" in text and "--workers" in text
    assert "--device " not in text and "--train-seed" not in text and "--loader-workers" not in text


# --- fewer knobs in front (issue 31 item 3) -------------------------------------------------------

_FRONT = {"--model", "--backbone", "--image-size", "--epochs", "--targets", "--modalities", "--weak", "--device",
          "--run-name", "--dataset-version", "--folds", "--project", "--config", "--pretrained", "--help-all"}


def _train_parser():
    return {p.prog: p for p in command_tree(build_parser())}["mfe train"]


def test_train_help_shows_what_a_lab_sets_and_help_all_the_rest():
    parser = _train_parser()
    front = set(re.findall(r"--[a-z][a-z0-9-]*[a-z0-9]", parser.format_help()))  # (a flag wrapped at its "-": its start)
    every = set(re.findall(r"--[a-z][a-z0-9-]*[a-z0-9]", parser.format_help_all()))
    assert _FRONT <= front and front <= _FRONT | {"--help", "--weak-every", "--weak-fraction", "--weak-bag",
                                                  "--au-ratings", "--recipe"}  # --x named in front helps' text
    assert {"--sampler", "--d-model", "--learning-rate", "--loader-workers", "--recipe", "--pos-init-std"} <= every
    assert "recipe:" not in parser.format_help() and "recipe:" in parser.format_help_all()  # a hidden group's heading


def test_help_all_prints_every_option_and_exits(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", "--help-all"])
    assert exit_.value.code == 0 and "--num-layers" in capsys.readouterr().out


def test_hidden_train_options_still_parse():
    args = build_parser().parse_args(["train", "--sampler", "uniform", "--d-model", "256"])
    assert (args.sampler, args.d_model) == ("uniform", 256)


def test_synth_groups_its_confound_flags_under_a_benchmarks_heading():
    synth = {p.prog: p for p in command_tree(build_parser())}["mfe synth"]
    group = next(g for g in synth._action_groups if any(a.dest == "control_brightness" for a in g._group_actions))
    assert "benchmark" in group.title.lower()
    assert {a.dest for a in group._group_actions} >= {"brightness", "contrast", "zoom", "blur", "rec_cue", "occluder_treated"}
