"""Load PyTorch files safely: weights only, never an arbitrary pickle.

``torch.load(weights_only=False)`` runs whatever code a pickle names. Every checkpoint and
state dict mfe reads goes through :func:`load_weights_only`, which passes
``weights_only=True`` explicitly and turns a refusal into one line that names the file and
says it will not be unpickled (torch's own message suggests ``weights_only=False``; mfe does not).

An ``mfe train`` checkpoint (Lightning's: ``hyper_parameters``, ``state_dict`` with the model's
weights under ``model.``, ``epoch``, ...) is read by :func:`read_checkpoint` -> ``(hparams,
state_dict)``, the one entry for it; :func:`checkpoint_parts` does the same for a checkpoint
dict already loaded. The model is rebuilt from those by
:func:`mouse_facial_expressions.models.registry.trained_model`.
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


#: Prefix of the model's weights in an ``mfe train`` checkpoint's ``state_dict`` (the module's ``model``).
MODEL_PREFIX = "model."


class NotACheckpointError(ValueError):
    """A readable PyTorch file that is not an ``mfe train`` checkpoint (a key is missing)."""


def checkpoint_parts(ckpt, source: str | Path = "checkpoint") -> tuple[dict, dict]:
    """``(hparams, state_dict)`` of an ``mfe train`` checkpoint dict already loaded.

    Args:
        ckpt: what :func:`load_weights_only` returned for the file.
        source: names the file in errors.

    Returns:
        ``hparams``: a copy of ``hyper_parameters`` (``model_name``, ``model_cfg``, ``data``, ...);
        ``state_dict``: the model's weights, ``model.`` prefix removed.

    Raises:
        NotACheckpointError: not a dict, no ``model_name``/``model_cfg`` in its
            ``hyper_parameters``, or no ``state_dict``.
    """
    if not isinstance(ckpt, dict):
        raise NotACheckpointError(f"{source}: not an mfe checkpoint (a {type(ckpt).__name__}, not a checkpoint dict)")
    hp = dict(ckpt.get("hyper_parameters") or {})
    if "model_name" not in hp:
        raise NotACheckpointError(f"{source}: not an mfe checkpoint (no model_name in its hyper_parameters)")
    if not isinstance(hp.get("model_cfg"), dict):
        raise NotACheckpointError(f"{source}: not an mfe checkpoint (no model_cfg in its hyper_parameters)")
    weights = ckpt.get("state_dict")
    if not isinstance(weights, dict):
        raise NotACheckpointError(f"{source}: not an mfe checkpoint (no state_dict)")
    state = {k[len(MODEL_PREFIX):]: v for k, v in weights.items() if k.startswith(MODEL_PREFIX)}
    return hp, state


def read_checkpoint(path: str | Path, map_location="cpu") -> tuple[dict, dict]:
    """``(hparams, state_dict)`` of an ``mfe train`` checkpoint file, read weights-only.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: a corrupt or truncated file, or one holding pickled objects
            (never unpickled).
        NotACheckpointError: a PyTorch file that is no ``mfe train`` checkpoint (naming the missing key).
    """
    return checkpoint_parts(load_weights_only(path, map_location), path)
