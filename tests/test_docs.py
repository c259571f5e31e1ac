"""The documentation site (issue 31): generated reference pages are fresh, every command's help
renders, and ``mkdocs build --strict`` succeeds (mkdocs is in the [test] extra)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mouse_facial_expressions.cli import build_parser
from mouse_facial_expressions.cli import docs as gen

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
STALE = "is stale: run `make docs-ref` (python -m mouse_facial_expressions.cli.docs --write)"


def _committed(name: str) -> str:
    path = REFERENCE / name
    assert path.is_file(), f"{path} is missing: run `make docs-ref` (python -m mouse_facial_expressions.cli.docs --write)"
    return path.read_text(encoding="utf-8")


def test_cli_reference_is_fresh():
    assert _committed("cli.md") == gen.cli_reference(), f"docs/reference/cli.md {STALE}"


def test_configuration_reference_is_fresh():
    assert _committed("configuration.md") == gen.config_reference(), f"docs/reference/configuration.md {STALE}"


def test_cli_reference_covers_every_command_and_visible_option():
    text = gen.cli_reference()
    import argparse

    for path, parser in gen.command_parsers():
        assert f" {parser.prog}\n" in text, parser.prog
        for action in parser._actions:
            if action.help is argparse.SUPPRESS:
                for flag in action.option_strings:
                    for cell in (f"`{flag} ", f"`{flag}`", f"<code>{flag} ", f"<code>{flag}</code>"):
                        assert cell not in text, f"hidden {flag} of {parser.prog} documented"
            elif action.option_strings and not isinstance(action, argparse._HelpAction):
                flag = action.option_strings[0]
                assert f"`{flag}" in text or f"<code>{flag}" in text, f"{flag} of {parser.prog}"


def test_configuration_reference_covers_every_key():
    from mouse_facial_expressions.config import Config

    text = gen.config_reference()
    for section, field in Config.model_fields.items():
        if field.exclude:
            continue
        assert f"\n## {section}\n" in text
        for key in field.annotation.model_fields:
            assert f"| `{key}` |" in text, f"{section}.{key}"


def test_reference_is_deterministic(monkeypatch):
    """No terminal width, no current folder in the output."""
    first = gen.cli_reference(), gen.config_reference()
    monkeypatch.setenv("COLUMNS", "37")
    monkeypatch.chdir(ROOT / "docs")
    assert (gen.cli_reference(), gen.config_reference()) == first
    assert str(ROOT) not in first[0] + first[1]


@pytest.mark.parametrize("path", [p for p, _ in gen.command_parsers()], ids=lambda p: " ".join(["mfe", *p]))
def test_every_command_help_renders(path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*path, "--help"])
    assert exit_.value.code == 0
    assert out.getvalue().startswith("usage: " + " ".join(["mfe", *path]))


def test_check_command_names_stale_pages(tmp_path, capsys):
    assert gen.main(["--out", str(tmp_path)]) == 1
    assert "cli.md is stale" in capsys.readouterr().err
    assert gen.main(["--write", "--out", str(tmp_path)]) == 0
    assert gen.main(["--out", str(tmp_path)]) == 0


def test_mkdocs_build_strict(tmp_path):
    """The site builds with --strict: every nav page exists, no broken link or anchor."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()


def test_hidden_options_are_left_out_and_text_is_escaped():
    import argparse

    parser = argparse.ArgumentParser(prog="toy", description="writes <out>/a_b.csv, see `x | y`")
    parser.add_argument("--shown", default=3, metavar="A|B", help="kept (%(default)s)")
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    sub = parser.add_subparsers()
    sub.add_parser("visible", help="a command")
    text = "\n".join(gen._command_section(parser, "", 2, root=True))
    assert "--secret" not in text
    assert "<code>--shown A&#124;B</code> | `3` | kept (3) |" in text
    assert "writes &lt;out&gt;/a\\_b.csv, see <code>x &#124; y</code>" in text
    assert "## toy visible" in text
