import subprocess
import sys

from mouse_facial_expressions.cli import COMMANDS, main


def test_torchvision_models_work_through_the_compat_module():
    from mouse_facial_expressions.compat import import_torchvision

    tv = import_torchvision()
    import torch

    out = tv.models.resnet18(num_classes=2)(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 2)
    from torchvision.transforms import v2

    assert v2.TrivialAugmentWide()(torch.zeros(3, 8, 8, dtype=torch.uint8)).shape == (3, 8, 8)


def test_every_subcommand_has_help(capsys):
    for name in COMMANDS:
        try:
            main([name, "--help"])
        except SystemExit as e:
            assert e.code == 0, name
        assert "usage: mfe" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    r = subprocess.run([sys.executable, "-m", "mouse_facial_expressions", "--version"],
                       capture_output=True, text=True, check=True)
    assert r.stdout.startswith("mfe ")


def test_init_command_creates_a_project(tmp_path, capsys):
    assert main(["init", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "mfe.yaml").is_file()
    assert main(["init", str(tmp_path / "p")]) == 1  # exists: clear error, no traceback
    assert "exists already" in capsys.readouterr().err
