"""Keep third-party INFO chatter (Lightning banners and tips, MLflow's database set-up) off
the terminal of ``mfe`` commands.

Lightning and MLflow reset their loggers' levels when they are first imported, which ``mfe``
does lazily, after the command line has been parsed. So :func:`quiet_third_party` records the
wish and :func:`requiet` applies it again right after those imports (``training.module``,
``training.cv``, ``training.tracking``). A library user who never calls it keeps the defaults.
"""

from __future__ import annotations

import logging

THIRD_PARTY = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "mlflow", "alembic", "numexpr")
_quiet = False


def quiet_third_party(enable: bool = True) -> None:
    """Raise the third-party loggers to WARNING now and after their later imports."""
    global _quiet
    _quiet = bool(enable)
    requiet()


def requiet() -> None:
    """Apply :func:`quiet_third_party` again (a no-op unless it was asked for)."""
    if _quiet:
        for name in THIRD_PARTY:
            logging.getLogger(name).setLevel(logging.WARNING)
