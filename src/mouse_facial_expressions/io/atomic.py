"""Atomic outputs: write beside the target, rename onto it only when complete.

A stage that fails (an error, Ctrl-C, a full disk) leaves the previous output in place and no
temporary file behind. A full disk is reported as such, naming the file:
:class:`DiskFullError` (an ``OSError`` with ``errno.ENOSPC``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping


class DiskFullError(OSError):
    """No space left while writing an output; the message names the file."""


def is_disk_full(err: BaseException) -> bool:
    """True for ENOSPC from Python, pyarrow or FFmpeg (PyAV), and NumPy's short write
    ("N requested and M written", which carries no errno)."""
    if getattr(err, "errno", None) == errno.ENOSPC:
        return True
    text = str(err)
    return "No space left on device" in text or "ENOSPC" in text or (
        isinstance(err, OSError) and " requested and " in text and " written" in text)


def tmp_path(path: str | Path) -> Path:
    """Hidden temporary name beside ``path``; keeps the suffix (muxers and parquet read it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def disk_full(path: str | Path, err: BaseException) -> DiskFullError:
    """The error to raise for ``err`` (ENOSPC) while writing ``path``."""
    return DiskFullError(errno.ENOSPC, f"disk full while writing {path} (free some space, then rerun: "
                                       f"finished outputs are kept; the partial file was removed)")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the block completes.

    On any exception the temporary file (or folder) is removed and ``path`` is untouched; a
    full disk becomes :class:`DiskFullError` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():  # replacing a folder: move the old one aside first
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException as err:
        _remove(tmp)
        if is_disk_full(err) and not isinstance(err, DiskFullError):
            raise disk_full(path, err) from err
        raise


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | Path, data: Mapping | list, indent: int = 2) -> Path:
    return write_text(path, json.dumps(data, indent=indent, default=str) + "\n")


def write_csv(df, path: str | Path, **kw) -> Path:
    """``df.to_csv(path, index=False)`` atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, **kw)
    return Path(path)


def write_parquet(df, path: str | Path) -> Path:
    """``df.to_parquet(path, index=False)`` atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)
