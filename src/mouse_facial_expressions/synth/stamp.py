"""Frame stamps: each synthetic frame carries its own index as a binary code.

The code is a row of ``bits`` square cells (white = 1, black = 0) with a white guard cell at
each end, drawn in a corner away from the mouse. Cells are large (default 8 px) so that the
code survives H.264 compression; decoding thresholds each cell's mean. Prepare and extract
use it to check frame-exact alignment.
"""

from __future__ import annotations

import numpy as np

BITS = 16
CELL = 8
MARGIN = 4


def stamp_box(bits: int = BITS, cell: int = CELL, margin: int = MARGIN) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` of the stamp area (top-left corner)."""
    return margin, margin + cell, margin, margin + (bits + 2) * cell


def draw_stamp(frame: np.ndarray, index: int, bits: int = BITS, cell: int = CELL,
               margin: int = MARGIN) -> np.ndarray:
    """Draw ``index`` into the top-left corner of a grey ``(H, W)`` uint8 frame, in place."""
    if not 0 <= index < 2**bits:
        raise ValueError(f"frame index {index} does not fit in {bits} bits")
    y0, y1, x0, _ = stamp_box(bits, cell, margin)
    code = [1] + [(index >> (bits - 1 - b)) & 1 for b in range(bits)] + [1]
    for k, bit in enumerate(code):
        frame[y0:y1, x0 + k * cell: x0 + (k + 1) * cell] = 255 if bit else 0
    return frame


def read_stamp(frame: np.ndarray, bits: int = BITS, cell: int = CELL, margin: int = MARGIN) -> int:
    """Decode the index drawn by :func:`draw_stamp`; -1 if the guard cells are missing."""
    y0, y1, x0, _ = stamp_box(bits, cell, margin)
    pad = max(1, cell // 4)  # ignore cell borders, where compression smears
    means = [
        float(frame[y0 + pad: y1 - pad, x0 + k * cell + pad: x0 + (k + 1) * cell - pad].mean())
        for k in range(bits + 2)
    ]
    code = [m > 127 for m in means]
    if not (code[0] and code[-1]):
        return -1
    value = 0
    for bit in code[1:-1]:
        value = (value << 1) | int(bit)
    return value
