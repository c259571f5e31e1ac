"""Where a live stream's keypoints come from: a CSV that grows, or a pose model on each frame.

:class:`GrowingKeypoints` reads the rows another program (DeepLabCut-live) keeps appending to a
keypoint CSV; :class:`ModelKeypoints` computes each kept frame's keypoints from the frame. Both
give :func:`~mouse_facial_expressions.inference.streams.predict_live` one canonical row per
frame. Apart from the scoring loop because each is a keypoint reader with its own file format or
model, testable without a stream or a scoring model.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd


class GrowingKeypoints:
    """Rows of a keypoint CSV that another program (e.g. DeepLabCut-live) keeps appending to.

    Two layouts: the canonical one (header ``frame,nose_x,nose_y,nose_likelihood,...``) and
    DeepLabCut's (3 header lines ``scorer`` / ``bodyparts`` / ``coords``, then the frame index
    and x, y, likelihood per bodypart), mapped to landmarks with ``bodyparts`` (landmark ->
    DLC bodyparts, averaged, as ``keypoints.bodyparts`` in ``mfe.yaml``). Only complete lines
    (ending in a newline) are read, so a half-written line waits for the next poll.
    """

    def __init__(self, path: str | Path, bodyparts: dict[str, list[str]] | None = None):
        from mouse_facial_expressions.config import CANONICAL_LANDMARKS

        self.path = Path(path)
        self.bodyparts = bodyparts or {lm: [lm] for lm in CANONICAL_LANDMARKS}
        self.landmarks = list(self.bodyparts)
        self._pos = 0
        self._header: list[str] | None = None
        self._cols: dict[str, tuple] | None = None
        self.rows: dict[int, dict] = {}
        self.max_frame = -1  # the last frame the file has reached
        self.last_growth = time.monotonic()

    def _parse_header(self, lines: list[str]) -> int:
        """Consume header lines; returns how many were used (0: need more)."""
        first = lines[0].rstrip("\n").split(",")
        if first[0].strip() == "frame":
            self._cols = {"frame": 0}
            idx = {name.strip(): j for j, name in enumerate(first)}
            self._cols.update({f"{lm}_{c}": (idx[f"{lm}_{c}"],) for lm in self.landmarks for c in ("x", "y", "likelihood")})
            return 1
        if first[0].strip() != "scorer":
            raise ValueError(f"{self.path}: line 1 is neither a canonical header (frame,...) nor DeepLabCut's (scorer,...)")
        if len(lines) < 3:
            return 0
        parts = lines[1].rstrip("\n").split(",")
        coords = lines[2].rstrip("\n").split(",")
        where = {(parts[j].strip(), coords[j].strip()): j for j in range(1, len(parts))}
        self._cols = {"frame": 0}
        for lm, bps in self.bodyparts.items():
            if lm not in self.landmarks:
                continue
            for c in ("x", "y", "likelihood"):
                try:
                    self._cols[f"{lm}_{c}"] = tuple(where[(bp, c)] for bp in bps)
                except KeyError:
                    raise ValueError(f"{self.path}: bodyparts {bps} (landmark {lm}) not in the header; it has "
                                     f"{sorted({p for p, _ in where})}") from None
        return 3

    def poll(self) -> int:
        """Read what was appended since the last call; returns the number of new rows."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0
        if size <= self._pos:
            return 0
        with open(self.path, encoding="utf-8") as fh:
            fh.seek(self._pos)
            chunk = fh.read(size - self._pos)
        complete = chunk[: chunk.rfind("\n") + 1]
        if not complete:
            return 0
        lines = complete.splitlines(keepends=True)
        used = 0
        if self._cols is None:
            used = self._parse_header(lines)
            if used == 0:
                return 0
        new = 0
        for line in lines[used:]:
            cells = line.rstrip("\n").split(",")
            if not line.strip():
                continue
            row = {"frame": int(float(cells[0]))}
            for key, js in self._cols.items():
                if key == "frame":
                    continue
                vals = [float(cells[j]) if j < len(cells) and cells[j].strip() not in ("", "nan", "NaN") else np.nan for j in js]
                row[key] = min(vals) if key.endswith("_likelihood") else float(np.mean(vals))
            self.rows[row["frame"]] = row
            self.max_frame = max(self.max_frame, row["frame"])
            new += 1
        self._pos += len(complete.encode("utf-8"))
        if new:
            self.last_growth = time.monotonic()
        return new

    def row(self, frame: int) -> pd.DataFrame:
        """The canonical one-row table of ``frame`` (NaN where the file has no row for it)."""
        r = self.rows.pop(frame, None) or {"frame": frame}
        cols = ["frame"] + [f"{lm}_{c}" for lm in self.landmarks for c in ("x", "y", "likelihood")]
        return pd.DataFrame([{c: r.get(c, np.nan) for c in cols}])


class ModelKeypoints:
    """Keypoints computed from the stream's own frames by a pose model, one kept frame at a time.

    ``pose`` maps an RGB frame to ``(n_bodyparts, 3)`` (x, y, likelihood), its rows named by
    ``pose.bodyparts`` (:class:`preprocess.detect.FramePose`: a DeepLabCut project's model).
    Each pose becomes a canonical row with ``io.keypoints.to_canonical`` and ``bodyparts``
    (landmark -> the model's bodyparts, as ``keypoints.bodyparts`` in ``mfe.yaml``), the
    mapping ``mfe keypoints import`` applies to the same model's files; a bodypart the model
    lacks is an error here, before the stream opens. Only frames on the ``target_fps`` grid
    are run through the model.
    """

    def __init__(self, pose, bodyparts: dict[str, list[str]] | None = None):
        from mouse_facial_expressions.config import CANONICAL_LANDMARKS
        from mouse_facial_expressions.io.dlc import COORDS

        self.pose = pose
        self.bodyparts = bodyparts or {lm: [lm] for lm in CANONICAL_LANDMARKS}
        self._columns = pd.MultiIndex.from_product([list(pose.bodyparts), COORDS])
        self._source = Path(str(getattr(pose, "snapshot", "pose model")))
        self._canonical(0, np.full((len(pose.bodyparts), 3), np.nan))  # checks the mapping now

    def _canonical(self, frame: int, xyl: np.ndarray) -> pd.DataFrame:
        from mouse_facial_expressions.io.dlc import Pose
        from mouse_facial_expressions.io.keypoints import to_canonical

        data = pd.DataFrame(np.asarray(xyl, dtype=np.float64).reshape(1, -1), index=[frame], columns=self._columns)
        return to_canonical(Pose(data, self._source), self.bodyparts, extras=False)

    def row(self, frame: int, rgb: np.ndarray) -> pd.DataFrame:
        """The canonical one-row table of ``frame`` from the model's pose of ``rgb``."""
        return self._canonical(frame, self.pose(rgb))
