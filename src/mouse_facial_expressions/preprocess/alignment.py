"""Which landmarks align a face: named presets and custom landmark sets (``extract.alignment``).

An :class:`Alignment` says, in landmark names of the canonical keypoint table:

- ``axis``: ``(front, back)``; after alignment it points along +x (snout left);
- ``centre``: items whose mean is the crop centre;
- ``required``: the landmarks that must be seen (likelihood above ``keypoints.pcutoff``, finite
  coordinates) for a frame to be used;
- ``side``: ``auto``, ``left`` or ``right``.

Each item is a landmark name or a list of names (their mean). A name may contain ``{side}``,
which stands for ``left`` or ``right``: the DLC face model has ``left_eye`` and
``right_eye``, and the visible side decides which one is used. Then

- ``side: auto`` picks, per frame, the one side whose required landmarks are all seen (frames
  with both or neither are not side portraits: the original's rule);
- ``side: left|right`` always uses that side.

A set without ``{side}`` (a head-fixed rig that sees one side) has one side per video:
``left|right`` as given, or with ``auto`` the direction the snout points in most usable
frames (snout left = the left side of the face). Right-side frames are mirrored, so every
crop looks like a left-facing face (``preprocess.geometry``).

Presets:

- ``dlc_face`` (default, the original): axis eye -> ear of the visible side, centre the mean
  of nose, eye and ear, all three required.
- ``headfixed_eye_nose``: one fixed side, axis nose -> eye, centre the mean of eye and nose;
  for facemap-style labels map ``eye`` to the eye contour points and ``nose`` to the nose
  tip in ``keypoints.bodyparts``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.preprocess import geometry

SIDE_TOKEN = "{side}"
SIDES = ("auto", "left", "right")


@dataclass(frozen=True)
class Alignment:
    """Landmarks that align a face; see the module docstring."""

    name: str
    axis: tuple[tuple[str, ...], tuple[str, ...]]
    centre: tuple[tuple[str, ...], ...]
    required: tuple[str, ...]
    side: str = "auto"

    @property
    def per_frame_side(self) -> bool:
        """The names have ``{side}``: each frame's visible side picks its landmarks."""
        return any(SIDE_TOKEN in n for n in self.names())

    def names(self) -> list[str]:
        """Every landmark name the alignment uses (with ``{side}`` unresolved), in order."""
        out: list[str] = []
        for item in (*self.axis, *self.centre, tuple(self.required)):
            out += [n for n in item if n not in out]
        return out

    def landmarks(self) -> list[str]:
        """The canonical landmarks the keypoint table must have (``{side}`` resolved for the
        sides this alignment can use)."""
        sides = ["left", "right"] if self.side == "auto" else [self.side]
        out: list[str] = []
        for n in self.names():
            for s in (sides if SIDE_TOKEN in n else [None]):
                name = n.replace(SIDE_TOKEN, s) if s else n
                if name not in out:
                    out.append(name)
        return out

    def roles(self) -> list[str]:
        """Names with the side removed (``{side}_eye`` -> ``eye``): the crop-space landmarks the
        frame store keeps per frame."""
        return [role_name(n) for n in self.names()]

    def to_setting(self) -> str | dict:
        """The JSON value recorded in provenance and ``store.json``."""
        if self.name in PRESETS:
            return self.name
        return {"axis": [list(a) for a in self.axis], "centre": [list(c) for c in self.centre],
                "required": list(self.required), "side": self.side}


def role_name(name: str) -> str:
    return name.replace(SIDE_TOKEN + "_", "").replace("_" + SIDE_TOKEN, "").replace(SIDE_TOKEN, "")


def _item(spec) -> tuple[str, ...]:
    if isinstance(spec, str):
        return (spec,)
    names = tuple(str(n) for n in spec)
    if not names:
        raise ValueError("an alignment item is an empty list of landmarks")
    return names


def make_alignment(axis: Sequence, centre: Sequence, required: Sequence[str] | None = None, side: str = "auto",
                   name: str = "custom") -> Alignment:
    """A custom :class:`Alignment`; ``required`` defaults to every landmark of axis and centre."""
    if len(axis) != 2:
        raise ValueError(f"extract.alignment.axis must be [front, back], got {list(axis)!r}")
    if not centre:
        raise ValueError("extract.alignment.centre needs at least one landmark")
    if side not in SIDES:
        raise ValueError(f"extract.alignment.side must be one of {SIDES}, got {side!r}")
    ax = (_item(axis[0]), _item(axis[1]))
    cen = tuple(_item(c) for c in centre)
    if required is None:
        req: list[str] = []
        for item in (*ax, *cen):
            req += [n for n in item if n not in req]
    else:
        req = [str(n) for n in required]
    return Alignment(name, ax, cen, tuple(req), side)


PRESETS: dict[str, Alignment] = {
    "dlc_face": make_alignment(("{side}_eye", "{side}_ear"), ["nose", "{side}_eye", "{side}_ear"], name="dlc_face"),
    "headfixed_eye_nose": make_alignment(("nose", "eye"), ["eye", "nose"], name="headfixed_eye_nose"),
}
DEFAULT = "dlc_face"


def resolve(value: str | Mapping | Alignment | None) -> Alignment:
    """An :class:`Alignment` from a preset name, a custom mapping (``axis``, ``centre``,
    optional ``required`` and ``side``) or ``None`` (the default preset)."""
    if value is None:
        return PRESETS[DEFAULT]
    if isinstance(value, Alignment):
        return value
    if isinstance(value, str):
        if value not in PRESETS:
            raise ValueError(f"unknown extract.alignment preset {value!r}; presets: {', '.join(PRESETS)} "
                             "(or give axis/centre/required/side)")
        return PRESETS[value]
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    value = dict(value)
    return make_alignment(value["axis"], value["centre"], value.get("required"), value.get("side") or "auto")


def missing_landmarks(alignment: Alignment, have: Sequence[str]) -> list[str]:
    """Landmarks the alignment needs that ``have`` lacks."""
    return [n for n in alignment.landmarks() if n not in set(have)]


# ----------------------------------------------------------------------------- per frame

def _seen(xy: Mapping[str, np.ndarray], lik: Mapping[str, np.ndarray], name: str, pcutoff: float) -> np.ndarray:
    p = np.asarray(lik[name], float)
    finite = np.isfinite(np.asarray(xy[name], float)).all(axis=1)
    with np.errstate(invalid="ignore"):
        return finite & (p > pcutoff)


def _point(xy: Mapping[str, np.ndarray], item: Sequence[str], side: str | None) -> np.ndarray:
    names = [n.replace(SIDE_TOKEN, side) if side else n for n in item]
    return np.mean([np.asarray(xy[n], float) for n in names], axis=0)


def _picked(xy: Mapping[str, np.ndarray], item: Sequence[str], side: np.ndarray) -> np.ndarray:
    """``(N, 2)``: the mean of ``item`` per frame, ``{side}`` resolved with each frame's side."""
    if not any(SIDE_TOKEN in x for x in item):
        return _point(xy, item, None)
    return np.where((np.asarray(side) == geometry.RIGHT)[:, None], _point(xy, item, "right"), _point(xy, item, "left"))


def used_points(alignment: Alignment, xy: Mapping[str, np.ndarray], side: np.ndarray) -> dict[str, np.ndarray]:
    """Source coordinates of what aligns each frame (``side`` from :func:`frame_geometry`).

    Returns:
        ``front``, ``back``, ``centre`` ``(N, 2)``; ``required`` ``(N, R, 2)`` the required
        landmarks of the visible side; ``snout`` ``(N, 2)`` the nose when the alignment requires it
        off its axis (``dlc_face``), else absent. NaN where the frame has no side.
    """
    none = (np.asarray(side) == geometry.NO_SIDE)[:, None]
    out = {"front": _picked(xy, alignment.axis[0], side), "back": _picked(xy, alignment.axis[1], side),
           "centre": np.mean([_picked(xy, c, side) for c in alignment.centre], axis=0)}
    out["required"] = np.stack([_picked(xy, (r,), side) for r in alignment.required], axis=1)  # (N, R, 2)
    if "nose" in alignment.required and "nose" not in (*alignment.axis[0], *alignment.axis[1]):
        out["snout"] = _picked(xy, ("nose",), side)
    return {k: np.where(none[:, :, None] if v.ndim == 3 else none, np.nan, v) for k, v in out.items()}


def frame_geometry(alignment: Alignment, xy: Mapping[str, np.ndarray], lik: Mapping[str, np.ndarray],
                   pcutoff: float, crop_size: float, out_size: int) -> dict[str, np.ndarray]:
    """Side, usability, alignment matrix and crop-space landmarks of every frame (vectorised).

    Args:
        alignment: which landmarks align the face.
        xy: landmark -> ``(N, 2)`` source coordinates (NaN = not labelled); every landmark of
            the keypoint table (extra ones are mapped into the crop too).
        lik: landmark -> ``(N,)`` likelihoods.
        pcutoff: a landmark counts as seen above this likelihood.
        crop_size, out_size: source square side and crop side (``geometry.align_matrices``).

    Returns:
        ``side`` (N,) int8, ``usable`` (N,) bool, ``matrix`` (N, 2, 3), ``min_likelihood`` (N,)
        over the required landmarks, ``axis_px`` (N,) the axis length in source pixels (the
        face size), and ``(N, 2)`` crop coordinates per role (``eye``, ``ear``, ... with the
        side removed) and per landmark that the alignment does not use.
    """
    n = len(next(iter(xy.values())))
    names = {side: [r.replace(SIDE_TOKEN, side) for r in alignment.required] for side in ("left", "right")}
    if alignment.per_frame_side:
        codes = {"left": geometry.LEFT, "right": geometry.RIGHT}
        seen = {s: np.all([_seen(xy, lik, r, pcutoff) for r in names[s]], axis=0) for s in names}
        if alignment.side == "auto":
            side = np.full(n, geometry.NO_SIDE, np.int8)
            side[seen["left"] & ~seen["right"]] = geometry.LEFT
            side[seen["right"] & ~seen["left"]] = geometry.RIGHT
        else:
            side = np.where(seen[alignment.side], codes[alignment.side], geometry.NO_SIDE).astype(np.int8)
    else:
        ok = np.all([_seen(xy, lik, r, pcutoff) for r in alignment.required], axis=0)
        front = _point(xy, alignment.axis[0], None)
        back = _point(xy, alignment.axis[1], None)
        if alignment.side == "auto":
            # one side per video: the snout (front) points left of the back in most usable frames
            dx = (back - front)[ok, 0]
            code = geometry.RIGHT if dx.size and np.mean(dx < 0) > 0.5 else geometry.LEFT
        else:
            code = geometry.LEFT if alignment.side == "left" else geometry.RIGHT
        side = np.where(ok, code, geometry.NO_SIDE).astype(np.int8)

    def picked(item):  # (N, 2) per frame, the visible side's landmarks
        return _picked(xy, item, side)

    front, back = picked(alignment.axis[0]), picked(alignment.axis[1])
    centre = np.mean([picked(c) for c in alignment.centre], axis=0)
    none = side == geometry.NO_SIDE
    for arr in (front, back, centre):
        arr[none] = np.nan
    m = geometry.align_matrices(front, back, centre, crop_size, out_size, mirror=side == geometry.RIGHT)
    lik_used = np.stack([np.where(side == geometry.RIGHT, np.asarray(lik[r.replace(SIDE_TOKEN, "right")], float),
                                  np.asarray(lik[r.replace(SIDE_TOKEN, "left")], float))
                         for r in alignment.required], axis=1)  # (N, R)
    min_lik = np.where(none, np.nan, lik_used.min(axis=1))
    usable = ~none & np.isfinite(m).all(axis=(1, 2))
    out = {"side": side, "usable": usable, "matrix": m, "min_likelihood": min_lik,
           "axis_px": np.where(none, np.nan, np.hypot(*(back - front).T))}
    for name in alignment.names():
        out[role_name(name)] = geometry.transform_points(m, picked((name,)))
    used = set(alignment.landmarks())
    for name, pts in xy.items():
        if name not in used and role_name(name) not in out:
            out[name] = geometry.transform_points(m, np.asarray(pts, float))
    return out


# ----------------------------------------------------------------------------- at import

def import_check(cfg) -> Callable[[pd.DataFrame, Path], None]:
    """The check ``mfe keypoints import`` runs on each new canonical table.

    Raises at once (before any file is read) when ``keypoints.bodyparts`` lacks a landmark that
    ``extract.alignment`` needs; the returned callable raises for a table in which no frame can
    be aligned, with how often each needed landmark is seen, so a partial mapping is found at
    import and not at ``mfe predict``.
    """
    align = resolve(cfg.extract.alignment)
    missing = missing_landmarks(align, list(cfg.keypoints.bodyparts))
    if missing:
        example = "eye: [eye_top, eye_front, eye_bottom, eye_back], nose: [nose_tip]" if align.name == "headfixed_eye_nose" \
            else ", ".join(f"{m}: [<your bodypart>]" for m in missing)
        raise ValueError(
            f"extract.alignment {align.name!r} needs landmarks {missing}, which keypoints.bodyparts does not define "
            f"(it maps {list(cfg.keypoints.bodyparts)}). Map them to your bodyparts in mfe.yaml, e.g. "
            f"keypoints.bodyparts: {{{example}}}")
    pcutoff = cfg.keypoints.pcutoff

    def check(table: pd.DataFrame, src: Path) -> None:
        if not len(table):
            return
        from mouse_facial_expressions.io.keypoints import landmark_names

        names = landmark_names(table)
        xy = {n: table[[f"{n}_x", f"{n}_y"]].to_numpy(float) for n in names}
        lik = {n: table[f"{n}_likelihood"].to_numpy(float) for n in names}
        geo = frame_geometry(align, xy, lik, pcutoff, 1.0, 8)
        if geo["usable"].any():
            return
        seen = ", ".join(f"{n} {int(_seen(xy, lik, n, pcutoff).sum())}/{len(table)}" for n in align.landmarks())
        raise ValueError(f"{src}: no frame can be aligned with extract.alignment {align.name!r}: frames in which "
                         f"each landmark it needs is seen (likelihood > keypoints.pcutoff={pcutoff:g}): {seen}")

    return check
