"""Load PyTorch files safely: weights only, never an arbitrary pickle.

``torch.load(weights_only=False)`` runs whatever code a pickle names. Every checkpoint and
state dict mfe reads goes through :func:`load_weights_only`, which passes
``weights_only=True`` explicitly and turns a refusal into one line that names the file and
says it will not be unpickled (torch's own message suggests ``weights_only=False``; mfe does not).
"""

from __future__ import annotations

import re
from pathlib import Path


class UnsafeCheckpointError(ValueError):
    """A file that cannot be loaded as tensors and plain containers; it is not unpickled."""


def load_weights_only(path: str | Path, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` with one-line errors naming ``path``.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file holds other pickled objects (they are not loaded), or
            it is truncated or not a PyTorch file at all.
    """
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        what = f"a pickled {found.group(1)}" if found else "pickled objects other than tensors"
        raise UnsafeCheckpointError(f"{path}: holds {what}; mfe loads weights only and will not unpickle it "
                                    "(a pickle can run code): save the state dict alone with torch.save(model.state_dict())") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnsafeCheckpointError(f"{path}: not a readable PyTorch file (truncated or corrupt?): {first}") from None
