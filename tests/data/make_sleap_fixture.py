"""Write the SLEAP fixtures in tests/data/sleap/ (needs sleap-io 0.9.5, the `test` extra).

    .venv/bin/python tests/data/make_sleap_fixture.py

One video (``m1_rec1_preinjection.mp4``, not included), one track ``mouse1``, the five face nodes
of a SLEAP face skeleton, predicted instances on frames 0, 1, 3 and 4 (frame 2 unlabelled), with
hand-made values that tests/test_sleap.py checks:

- node ``k`` (in ``NODES`` order) on frame ``f``: x = 100 + 10 k + f, y = 50 + 5 k,
  point score 0.5 + 0.1 k;
- on frame 3, ``right_ear`` is missing (NaN).

Files: ``m1_rec1_preinjection.mp4.predictions.slp`` (what ``sleap-track`` writes) and
``labels.000_m1_rec1_preinjection.analysis.h5`` (SLEAP's analysis export of the same labels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sleap_io as sio

NODES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
FRAMES = [0, 1, 3, 4]
OUT = Path(__file__).resolve().parent / "sleap"


def points(frame: int) -> tuple[np.ndarray, np.ndarray]:
    """``(xy (N, 2), scores (N,))`` of the instance on ``frame``."""
    k = np.arange(len(NODES), dtype=float)
    xy = np.stack([100 + 10 * k + frame, 50 + 5 * k], axis=1)
    if frame == 3:
        xy[NODES.index("right_ear")] = np.nan
    return xy, 0.5 + 0.1 * k


def main() -> None:
    OUT.mkdir(exist_ok=True)
    skeleton = sio.Skeleton(list(NODES))  # (sio.Skeleton turns the list it is given into Node objects)
    video = sio.Video(filename="/data/m1_rec1_preinjection.mp4", open_backend=False)
    track = sio.Track("mouse1")
    frames = []
    for f in FRAMES:
        xy, scores = points(f)
        inst = sio.PredictedInstance.from_numpy(xy, skeleton=skeleton, point_scores=scores, score=1.0, track=track)
        frames.append(sio.LabeledFrame(video=video, frame_idx=f, instances=[inst]))
    labels = sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=[track])
    sio.save_slp(labels, str(OUT / "m1_rec1_preinjection.mp4.predictions.slp"))
    sio.save_analysis_h5(labels, str(OUT / "labels.000_m1_rec1_preinjection.analysis.h5"))


if __name__ == "__main__":
    main()
