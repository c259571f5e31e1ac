"""Provenance: what each stage's output was made from, and whether it is still fresh.

Every stage stores a record with its output (a sidecar or the output's own metadata)::

    {"inputs": {"<role>": <fingerprint>, ...}, "settings": {...}}

A file's fingerprint is its size, modification time and a quick content hash (SHA-256 of the
size, the first and the last MiB). On a rerun a stage compares the record with its inputs the
way ``make`` would, but by content: :func:`changes` lists what differs ("keypoints changed",
"settings changed: crop_size 128 -> 150"); an empty list means fresh. When a file's size and
modification time are those recorded, its hash is not recomputed; a file that was only
touched or copied (same content) stays fresh.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

#: Bytes read from each end of a file for its quick hash.
CHUNK = 1 << 20


def quick_hash(path: str | Path) -> str:
    """SHA-256 (first 16 hex digits) of the file's size, first MiB and last MiB."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(CHUNK))
        if size > CHUNK:
            fh.seek(max(CHUNK, size - CHUNK))
            h.update(fh.read(CHUNK))
    return h.hexdigest()[:16]


def fingerprint(path: str | Path) -> dict:
    """``{"name", "size", "mtime_ns", "hash"}`` of a file."""
    path = Path(path)
    st = path.stat()
    return {"name": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "hash": quick_hash(path)}


def same_file(recorded: Mapping | None, path: str | Path) -> bool:
    """True when ``path`` still has the content ``recorded`` describes (size + mtime shortcut, else hash)."""
    if not recorded:
        return False
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != recorded.get("size"):
        return False
    if st.st_mtime_ns == recorded.get("mtime_ns"):
        return True
    return quick_hash(path) == recorded.get("hash")


def record(inputs: Mapping[str, str | Path], settings: Mapping[str, Any] | None = None) -> dict:
    """A provenance record for an output made from ``inputs`` (role -> file) with ``settings``."""
    return {"inputs": {role: fingerprint(p) for role, p in inputs.items()},
            "settings": json.loads(json.dumps(dict(settings or {}), default=str))}


def _short(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def changes(old: Mapping | None, inputs: Mapping[str, str | Path], settings: Mapping[str, Any] | None = None) -> list[str]:
    """Why an output with record ``old`` is stale for ``inputs`` and ``settings`` ([] = fresh).

    Reasons read like ``"keypoints changed"``, ``"video missing"``, ``"settings changed:
    crop_size 128 -> 150"``, ``"no provenance record"``.
    """
    if not old or "inputs" not in old:
        return ["no provenance record"]
    reasons = []
    for role, path in inputs.items():
        if not Path(path).is_file():
            reasons.append(f"{role} missing")
        elif not same_file(old["inputs"].get(role), path):
            reasons.append(f"{role} changed")
    new = json.loads(json.dumps(dict(settings or {}), default=str))
    was = old.get("settings", {})
    diff = [f"{k} {_short(was.get(k))} -> {_short(new.get(k))}" for k in sorted(set(was) | set(new)) if was.get(k) != new.get(k)]
    if diff:
        reasons.append("settings changed: " + ", ".join(diff))
    return reasons


def summarise(stale: Mapping[str, list[str]]) -> str:
    """``{"v1": ["keypoints changed"], "v2": [...]}`` -> ``"3 redone: keypoints changed (2), video changed (1)"``."""
    counts: dict[str, int] = {}
    for reasons in stale.values():
        for r in reasons:
            key = r.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
    parts = ", ".join(f"{k} ({n})" if n > 1 or len(stale) > 1 else k for k, n in counts.items())
    return f"{len(stale)} redone: {parts}" if stale else "0 redone"
