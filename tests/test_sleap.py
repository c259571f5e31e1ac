"""SLEAP files through the optional sleap-io package (a test dependency: the ``test`` extra pins it).

The committed fixtures in ``tests/data/sleap`` (written by ``tests/data/make_sleap_fixture.py``)
check the reader on files this code did not just write; the other tests write their own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import sleap_io as sio

from mouse_facial_expressions.io.dlc import PoseFileError
from mouse_facial_expressions.io.sleap import INSTALL_HINT, read_sleap


def test_missing_sleap_io_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sleap_io", None)  # import now fails like an absent package
    path = tmp_path / "v.slp"
    path.write_bytes(b"")
    with pytest.raises(ImportError, match=r"pip install 'mouse-facial-expressions\[sleap\]'"):
        read_sleap(path)
    assert "[sleap]" in INSTALL_HINT


SLEAP = Path(__file__).parent / "data" / "sleap"
FACE = ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]


def _write_slp(path, tracks=("mouse1",), frames=(0, 2, 5)):
    skeleton = sio.Skeleton(["nose", "left_eye"])
    video = sio.Video(filename="/data/m1_rec1_preinjection.mp4", open_backend=False)
    track_objs = [sio.Track(t) for t in tracks]
    lfs = []
    for f in frames:
        insts = [
            sio.PredictedInstance.from_numpy(
                np.array([[f + 10.0 * k, 1.0], [np.nan, 3.0]]),
                skeleton=skeleton,
                point_scores=np.array([0.9, 0.8]),
                score=1.0,
                track=t,
            )
            for k, t in enumerate(track_objs)
        ]
        lfs.append(sio.LabeledFrame(video=video, frame_idx=f, instances=insts))
    labels = sio.Labels(labeled_frames=lfs, videos=[video], skeletons=[skeleton], tracks=track_objs)
    sio.save_slp(labels, str(path))
    return path


def test_read_slp_values_and_gaps(tmp_path):
    pose = read_sleap(_write_slp(tmp_path / "p.slp"))
    assert pose.bodyparts == ["nose", "left_eye"] and pose.extra["video"] == "m1_rec1_preinjection"
    np.testing.assert_array_equal(pose.frames(), np.arange(6))
    np.testing.assert_allclose(pose.xyl("nose")[2], [2.0, 1.0, 0.9], rtol=1e-6)  # .slp stores float32
    assert np.isnan(pose.xyl("nose")[1]).all()  # unlabelled frame
    assert np.isnan(pose.xyl("left_eye")[0]).all()  # x missing -> the point is missing


def test_read_slp_several_tracks_needs_individual(tmp_path):
    path = _write_slp(tmp_path / "p.slp", tracks=("a", "b"))
    with pytest.raises(PoseFileError, match=r"\['a', 'b'\]"):
        read_sleap(path)
    np.testing.assert_allclose(read_sleap(path, individual="b").xyl("nose")[0], [10.0, 1.0, 0.9], rtol=1e-6)


def test_import_keypoints_reads_slp(tmp_path):
    from mouse_facial_expressions.config import Config
    from mouse_facial_expressions.io.keypoints import import_keypoints, load_canonical

    src = _write_slp(tmp_path / "m1_rec1_preinjection.mp4.predictions.slp")
    cfg = Config(root=tmp_path, keypoints={"bodyparts": {"nose": ["nose"]}})
    (out,) = import_keypoints(cfg, sources=[src], out=tmp_path / "canon")
    assert out.name == "m1_rec1_preinjection.parquet"
    assert load_canonical(out)["nose_x"].iloc[5] == 5.0


def test_analysis_h5_is_told_apart_from_dlc_h5(tmp_path):
    from mouse_facial_expressions.io.keypoints import read_pose

    labels = sio.load_slp(str(_write_slp(tmp_path / "p.slp")), open_videos=False)
    path = tmp_path / "p.000_m1_rec1_preinjection.analysis.h5"
    sio.save_analysis_h5(labels, str(path))
    pose = read_pose(path)
    assert pose.scorer == "SLEAP" and pose.bodyparts == ["nose", "left_eye"]
    np.testing.assert_allclose(pose.xyl("nose")[5], [5.0, 1.0, 0.9], rtol=1e-6)


@pytest.mark.parametrize("name", ["m1_rec1_preinjection.mp4.predictions.slp",
                                  "labels.000_m1_rec1_preinjection.analysis.h5"])
def test_committed_sleap_files_read_with_their_values_and_gaps(name):
    """make_sleap_fixture.py: node k on frame f at (100 + 10k + f, 50 + 5k), score 0.5 + 0.1k;
    frame 2 unlabelled, right_ear missing on frame 3."""
    pose = read_sleap(SLEAP / name)
    assert pose.bodyparts == FACE and pose.individual == "mouse1" and pose.extra["video"] == "m1_rec1_preinjection"
    np.testing.assert_array_equal(pose.frames(), np.arange(5))
    for k, node in enumerate(FACE):
        x, y, score = pose.xyl(node)[4]
        assert (x, y) == (104.0 + 10 * k, 50.0 + 5 * k)
        assert score == pytest.approx(0.5 + 0.1 * k, rel=1e-6)  # stored as float32
    assert np.isnan(pose.xyl("nose")[2]).all()
    assert np.isnan(pose.xyl("right_ear")[3]).all() and pose.xyl("left_ear")[3][0] == 133.0


def test_import_keypoints_maps_the_committed_slp_to_the_canonical_face(tmp_path):
    from mouse_facial_expressions.config import CANONICAL_LANDMARKS, Config
    from mouse_facial_expressions.io.keypoints import import_keypoints, load_canonical

    cfg = Config(root=tmp_path, keypoints={"bodyparts": {n: [n] for n in FACE}})
    (out,) = import_keypoints(cfg, sources=[SLEAP / "m1_rec1_preinjection.mp4.predictions.slp"], out=tmp_path / "canon")
    assert out.name == "m1_rec1_preinjection.parquet"
    canon = load_canonical(out)
    assert {f"{n}_x" for n in CANONICAL_LANDMARKS} <= set(canon.columns)
    assert canon.set_index("frame").loc[1, "left_ear_x"] == 131.0
