"""Drawing a side-view mouse whose face shows the five Mouse Grimace Scale action units.

Every shape is defined in *head-local* coordinates in units of the head length ``L``:
``u`` points from the head centre to the snout, ``v`` points down. :func:`to_image` maps
them into the image for a pose: mirrored so that the snout points to the image LEFT when
the animal's LEFT side faces the camera (``s = -1``) and to the RIGHT when its right side
faces the camera (``s = +1``), pitched up by ``pitch`` radians, foreshortened along ``u`` by
``yaw`` (1 = clean side view, small = head turned towards/away from the camera), scaled
by ``L`` and shifted to the head centre ``(x, y)``.

Action units (each 0..1) and how they show:
- ``orbital``: the eye's height shrinks to a slit (orbital tightening).
- ``ear``: the ear rotates back and folds (narrower), seen edge-on.
- ``nose``: a bulge rises on the top of the snout, with a lighter ridge.
- ``cheek``: a bulge swells below the eye, with a lighter rim.
- ``whisker``: whiskers bunch together and sweep back along the cheek.
"""

from __future__ import annotations

import cv2
import numpy as np

AU_NAMES = ("orbital", "ear", "nose", "cheek", "whisker")

#: Landmarks of the side facing the camera (head-local units of L).
NEAR = {"nose": (0.80, 0.115), "eye": (0.18, -0.10), "ear": (-0.30, -0.22)}
#: The same landmarks on the far side of the head (hidden behind it in a side view).
FAR = {"eye": (0.20, -0.13), "ear": (-0.20, -0.29)}

#: Half width and open half height of the eye (units of L).
EYE_W, EYE_H = 0.105, 0.08

#: Grey levels before the per-cohort lighting transform.
SHADE = {"fur": 72, "body": 64, "far_ear": 52, "ear": 86, "ear_inner": 128, "eye": 8,
         "lid": 92, "nose_tip": 118, "whisker": 40, "tail": 95, "glint": 190}

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def to_image(u, v, x, y, s, yaw, pitch, L):
    """Head-local points ``(u, v)`` -> image ``(X, Y)``; all arguments broadcast (numpy)."""
    a = -s * pitch  # raising the snout turns it up for either facing side
    uu = s * np.asarray(u, dtype=float) * yaw
    vv = np.asarray(v, dtype=float)
    return x + L * (np.cos(a) * uu - np.sin(a) * vv), y + L * (np.sin(a) * uu + np.cos(a) * vv)


def landmarks(x, y, s, yaw, pitch, L) -> dict[str, np.ndarray]:
    """True image positions of the 5 canonical landmarks, each ``(T, 2)``.

    ``s`` is +1 where the right side faces the camera, -1 for the left side (arrays of T).
    The far-side eye and ear are returned at their (hidden) projected positions.
    """
    s = np.asarray(s, dtype=float)
    out: dict[str, np.ndarray] = {}
    nx, ny = to_image(*NEAR["nose"], x, y, s, yaw, pitch, L)
    out["nose"] = np.stack([nx, ny], -1)
    for part in ("eye", "ear"):
        near = np.stack(to_image(*NEAR[part], x, y, s, yaw, pitch, L), -1)
        far = np.stack(to_image(*FAR[part], x, y, s, yaw, pitch, L), -1)
        right_near = (s > 0)[:, None] if s.ndim else s > 0
        out[f"left_{part}"] = np.where(right_near, far, near)
        out[f"right_{part}"] = np.where(right_near, near, far)
    return {k: out[k] for k in ("nose", "left_eye", "left_ear", "right_eye", "right_ear")}


_T = np.linspace(0, 2 * np.pi, 40, endpoint=False)
_COS, _SIN = np.cos(_T), np.sin(_T)


def _ellipse(cu, cv, a, b, angle=0.0):
    ca, sa = np.cos(angle), np.sin(angle)
    eu, ev = a * _COS, b * _SIN
    return cu + ca * eu - sa * ev, cv + sa * eu + ca * ev


class _Painter:
    """Draws head-local shapes for one pose onto a uint8 image (anti-aliased, sub-pixel)."""

    def __init__(self, img, x, y, s, yaw, pitch, L):
        self.img, self.args = img, (x, y, s, yaw, pitch, L)

    def pts(self, u, v):
        X, Y = to_image(u, v, *self.args)
        return np.round(np.stack([X, Y], -1) * _ONE).astype(np.int32)

    def poly(self, u, v, shade):
        cv2.fillPoly(self.img, [self.pts(u, v)], int(shade), cv2.LINE_AA, _SHIFT)

    def ellipse(self, cu, cv, a, b, shade, angle=0.0, min_half_width=0.0):
        """``min_half_width``: seen end-on (small yaw) a body part stays this thick."""
        yaw = self.args[3]
        self.poly(*_ellipse(cu, cv, max(a, min_half_width / max(yaw, 1e-3)), b, angle), shade)

    def line(self, u, v, shade, width_px=1):
        cv2.polylines(self.img, [self.pts(u, v)], False, int(shade), max(1, int(round(width_px))),
                      cv2.LINE_AA, _SHIFT)


def draw_mouse(img: np.ndarray, x: float, y: float, s: int, yaw: float, pitch: float,
               body_pitch: float, L: float, aus, shade: dict | None = None,
               tail_phase: float = 0.0, body_yaw: float | None = None) -> None:
    """Draw the mouse (body, tail, head, face) into ``img`` (uint8 ``(H, W)``), in place.

    Args:
        x, y: head centre (pixels). s: +1 right side faces the camera (snout right), -1 left.
        yaw: foreshortening of the head (1 = side view). pitch: head pitch up (rad).
        body_pitch: body pitch up (rad; ~0.9 when rearing). L: head length (pixels).
        aus: the 5 action-unit intensities in ``AU_NAMES`` order, each 0..1.
        shade: grey levels overriding ``SHADE``. tail_phase: tail swing (rad).
        body_yaw: foreshortening of the body (default: follows ``yaw``, at least 0.55).
    """
    c = {**SHADE, **(shade or {})}
    orbital, ear, nose, cheek, whisker = (float(np.clip(a, 0, 1)) for a in aus)
    body_yaw = max(0.55, yaw) if body_yaw is None else body_yaw
    body = _Painter(img, x, y, s, body_yaw, body_pitch, L)
    head = _Painter(img, x, y, s, yaw, pitch, L)

    # tail, then body and neck (behind the head)
    tu = np.array([-1.85, -2.25, -2.65, -3.0, -3.3])
    tv = np.array([0.55, 0.72, 0.80, 0.72 + 0.08 * np.sin(tail_phase), 0.55 + 0.15 * np.sin(tail_phase)])
    body.line(tu, tv, c["tail"], 0.07 * L)
    body.ellipse(-1.05, 0.32, 0.95, 0.55, c["body"], angle=0.08, min_half_width=0.45)
    body.ellipse(-0.35, 0.12, 0.45, 0.38, c["body"], min_half_width=0.35)

    # far ear peeks out above the head
    th = np.deg2rad(20 + 55 * ear)
    du, dv = -np.sin(th), -np.cos(th)
    fu, fv = FAR["ear"]
    head.ellipse(fu + 0.17 * du, fv + 0.17 * dv, 0.25, 0.19 - 0.08 * ear, c["far_ear"], angle=np.arctan2(dv, du))

    # head: cranium + tapered snout + bulges
    head.ellipse(0.0, 0.0, 0.50, 0.34, c["fur"], min_half_width=0.3)
    head.ellipse(0.45, 0.04, 0.38, 0.20, c["fur"], angle=np.deg2rad(12))
    head.ellipse(0.15, 0.24, 0.22, 0.04 + 0.12 * cheek, c["fur"], angle=np.deg2rad(-8))
    head.ellipse(0.52, -0.10, 0.22, 0.03 + 0.12 * nose, c["fur"], angle=np.deg2rad(12))
    if cheek > 0.05:  # lighter rim of the swollen cheek
        t = np.linspace(0.15 * np.pi, 0.85 * np.pi, 12)
        head.line(0.15 + 0.17 * np.cos(t), 0.24 + (0.02 + 0.10 * cheek) * np.sin(t),
                  c["fur"] + 45 * cheek, max(1.0, 0.035 * L))
    if nose > 0.05:  # lighter ridge on the bulging snout
        t = np.linspace(1.15 * np.pi, 1.85 * np.pi, 12)
        ca, sa = np.cos(np.deg2rad(12)), np.sin(np.deg2rad(12))
        eu, ev = 0.18 * np.cos(t), (0.01 + 0.10 * nose) * np.sin(t)
        head.line(0.52 + ca * eu - sa * ev, -0.10 + sa * eu + ca * ev, c["fur"] + 45 * nose, max(1.0, 0.035 * L))

    # near ear: base fixed on the head, flap rotates back and folds with the ear AU
    eu0, ev0 = NEAR["ear"]
    ang = np.arctan2(dv, du)
    head.ellipse(eu0 + 0.18 * du, ev0 + 0.18 * dv, 0.27, 0.21 - 0.11 * ear, c["ear"], angle=ang)
    head.ellipse(eu0 + 0.22 * du, ev0 + 0.22 * dv, 0.18, 0.14 - 0.10 * ear, c["ear_inner"], angle=ang)

    # eye: lid ring, then the dark eye whose height closes with orbital tightening
    if yaw >= 0.5:  # turned further away, the eye is out of sight
        ecu, ecv = NEAR["eye"]
        h = EYE_H * (1.0 - 0.88 * orbital)
        head.ellipse(ecu, ecv, EYE_W + 0.03, h + 0.035, c["lid"])
        head.ellipse(ecu, ecv, EYE_W, h, c["eye"])
        if h > 0.05:
            head.ellipse(ecu + 0.06, ecv - 0.04, 0.014, 0.014, c["glint"])

    # nose tip and whiskers
    head.ellipse(NEAR["nose"][0], NEAR["nose"][1], 0.05, 0.045, c["nose_tip"])
    wu, wv = 0.64, 0.13
    base = np.deg2rad(5 + 45 * whisker)
    spread = np.deg2rad(np.array([-30, -15, 0, 15, 30])) * (1 - 0.7 * whisker)
    for k, (d, length) in enumerate(zip(spread, (0.62, 0.72, 0.78, 0.70, 0.58))):
        a = base + d
        head.line(np.array([wu, wu + length * np.cos(a)]), np.array([wv + 0.01 * k, wv + length * np.sin(a)]),
                  c["whisker"], 1)
