"""Keep third-party INFO chatter (Lightning banners and tips, MLflow's database set-up) and
third-party deprecation and tracer warnings (Lightning's ``LeafSpec``, ONNX export tracing) off
the terminal of ``mfe`` commands; ``mfe -v`` shows them all.

Lightning and MLflow reset their loggers' levels when they are first imported, which ``mfe``
does lazily, after the command line has been parsed. So :func:`quiet_third_party` records the
wish and :func:`requiet` applies it again right after those imports (``training.module``,
``training.cv``, ``training.tracking``). A library user who never calls it keeps the defaults.
"""

from __future__ import annotations

import logging
import warnings

#: Modules whose DeprecationWarning/FutureWarning are theirs to fix, not the user's.
WARNING_MODULES = r"(lightning|pytorch_lightning|torch|torchvision|mlflow|onnx|onnxruntime|sklearn|albumentations)(\.|$)"
THIRD_PARTY = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "mlflow", "alembic", "numexpr")
_quiet = False


def quiet_third_party(enable: bool = True) -> None:
    """Raise the third-party loggers to WARNING now and after their later imports."""
    global _quiet
    _quiet = bool(enable)
    if _quiet:
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, module=WARNING_MODULES)
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")  # torch's, raised from Lightning
        warnings.filterwarnings("ignore", message=r"Converting a tensor to a Python (boolean|index)")  # TracerWarning
    requiet()


def requiet() -> None:
    """Apply :func:`quiet_third_party` again (a no-op unless it was asked for)."""
    if _quiet:
        for name in THIRD_PARTY:
            logging.getLogger(name).setLevel(logging.WARNING)
