"""`mfe extract --help` describes how faces are aligned: every preset and the keys of a custom set."""

from __future__ import annotations

import pytest

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.config import AlignmentConfig
from mouse_facial_expressions.preprocess.alignment import DEFAULT, PRESETS


def _help(capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["extract", "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_extract_help_names_every_alignment_preset_and_the_default(capsys):
    text = _help(capsys)
    assert "extract.alignment" in text
    for name in PRESETS:
        assert name in text, name
    assert f"{DEFAULT} (default)" in text


def test_extract_help_lists_the_keys_of_a_custom_alignment(capsys):
    text = _help(capsys)
    for key in AlignmentConfig.model_fields:
        assert f"  {key}: " in text, key
