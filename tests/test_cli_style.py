"""One CLI style: both flag spellings, no 'default: None' in help, per-model entry-point flags."""

from __future__ import annotations

import pytest

from mouse_facial_expressions.cli import build_parser
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


def test_a_misspelt_flag_is_still_an_error(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--learning-rat", "0.5"])
    assert "unrecognized arguments: --learning-rat" in capsys.readouterr().err


def test_values_after_a_double_dash_are_left_alone():
    args, rest = build_parser().parse_known_args(["train", "--", "--learning-rate"])
    assert "--learning-rate" in rest


def _helps(parser):
    yield parser.format_help()
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
