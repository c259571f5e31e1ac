"""mfe commands keep Lightning's and MLflow's INFO chatter off the terminal, even though both
reset their loggers when first imported (which happens lazily, after the CLI set levels)."""

import logging
import subprocess
import sys

from mouse_facial_expressions import _logs


def test_requiet_restores_levels_only_when_asked(monkeypatch):
    monkeypatch.setattr(_logs, "_quiet", False)
    log = logging.getLogger("lightning.pytorch")
    old = log.level
    try:
        log.setLevel(logging.INFO)
        _logs.requiet()
        assert log.level == logging.INFO  # library users keep the defaults
        _logs.quiet_third_party()
        log.setLevel(logging.INFO)  # what `import lightning.pytorch` does
        _logs.requiet()
        assert log.level == logging.WARNING
    finally:
        log.setLevel(old)


def test_training_import_keeps_lightning_quiet_after_its_own_reset():
    code = (
        "import logging\n"
        "from mouse_facial_expressions._logs import quiet_third_party\n"
        "quiet_third_party()\n"
        "import mouse_facial_expressions.training.cv\n"  # imports lightning for the first time
        "print(logging.getLogger('lightning.pytorch').getEffectiveLevel(), logging.getLogger('lightning').level)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(logging.WARNING), str(logging.WARNING)]


def test_third_party_deprecation_warnings_stay_off_the_terminal_unless_verbose():
    import warnings

    from mouse_facial_expressions._logs import quiet_third_party

    def emitted(enable: bool) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_third_party(enable)
            warnings.warn_explicit("old API", FutureWarning, "x.py", 1, module="lightning.pytorch.utilities._pytree")
            warnings.warn_explicit("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, "y.py", 1,
                                   module="lightning.pytorch.loops")
            warnings.warn_explicit("ours", FutureWarning, "z.py", 1, module="mouse_facial_expressions.training")
        quiet_third_party(False)
        return [str(w.message) for w in caught]

    assert emitted(True) == ["ours"]  # ours still reach the user
    assert len(emitted(False)) == 3
