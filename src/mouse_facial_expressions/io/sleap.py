"""SLEAP pose files (``.slp``, analysis ``.h5``) through the optional ``sleap-io`` package.

``pip install 'mouse-facial-expressions[sleap]'`` installs it. :func:`read_sleap` returns the
same :class:`~mouse_facial_expressions.io.dlc.Pose` as the DeepLabCut reader: one row per
frame from 0 to the last labelled frame (frames without an instance are NaN), per node
``x, y, likelihood`` where the likelihood is SLEAP's point score (1.0 for user labels).

Nothing here unpickles: sleap-io reads ``.slp`` and analysis ``.h5`` with h5py (arrays, JSON
strings; skeletons in jsonpickle form are parsed as JSON, no class is imported).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.io.dlc import COORDS, Pose, PoseFileError

INSTALL_HINT = "pip install 'mouse-facial-expressions[sleap]'"


def _sleap_io():
    try:
        import sleap_io
    except ImportError as err:
        raise ImportError(f"reading SLEAP files needs the optional package sleap-io: {INSTALL_HINT}") from err
    return sleap_io


def is_sleap_analysis_h5(path: str | Path) -> bool:
    """Whether an HDF5 file is a SLEAP analysis export (datasets ``tracks``, ``node_names``).

    Looks with h5py, never PyTables: PyTables unpickles a node's attributes when it opens the
    node, so probing a crafted file with it could run code.
    """
    try:
        import h5py
    except ImportError:  # without h5py neither sleap-io nor the .h5 reader works
        return False
    try:
        with h5py.File(path, "r") as f:
            return isinstance(f.get("tracks"), h5py.Dataset) and isinstance(f.get("node_names"), h5py.Dataset)
    except OSError:  # not HDF5 at all: not SLEAP either
        return False


def _video_stem(filename) -> str | None:
    if isinstance(filename, (list, tuple)):  # image sequences: the folder names the video
        return Path(str(filename[0])).parent.name if filename else None
    return Path(str(filename)).stem if filename else None


def read_sleap(path: str | Path, individual: str | None = None) -> Pose:
    """Read a SLEAP ``.slp`` or analysis ``.h5`` file of one video.

    Args:
        path: the file.
        individual: track name to read when the file has several tracks.

    Raises:
        ImportError: sleap-io is not installed (with the pip command that installs it).
        PoseFileError: several videos, an unknown track, or several tracks and no
            ``individual`` (naming the file and the tracks).
    """
    sio = _sleap_io()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".slp":
            labels = sio.load_slp(str(path), open_videos=False)
        else:
            labels = sio.load_analysis_h5(str(path))
    except Exception as err:
        raise PoseFileError(f"{path}: cannot read SLEAP file ({type(err).__name__}: {err})") from err
    if len(labels.videos) != 1:
        names = [_video_stem(v.filename) for v in labels.videos]
        raise PoseFileError(f"{path}: expected one video, the file has {len(names)}: {names}")
    tracks = [t.name for t in labels.tracks]
    arr = labels.numpy(video=0, untracked=not tracks, return_confidence=True)  # (F, T, N, 3)
    picked = None
    if tracks:
        if individual is None and len(tracks) > 1:
            raise PoseFileError(
                f"{path}: several tracks {tracks}; pick one with --individual NAME "
                f"(or keypoints.individual in mfe.yaml)"
            )
        picked = individual if individual is not None else tracks[0]
        if picked not in tracks:
            raise PoseFileError(f"{path}: no track {picked!r}; the file has {tracks}")
        arr = arr[:, tracks.index(picked)]  # (F, N, 3)
    else:
        if arr.shape[1] > 1:
            raise PoseFileError(f"{path}: frames with several untracked instances; track them in SLEAP first")
        arr = arr[:, 0] if arr.shape[1] else np.full((arr.shape[0], arr.shape[2], 3), np.nan)
    nodes = list(labels.skeletons[0].node_names)
    arr = np.asarray(arr, dtype=np.float64).copy()
    missing = np.isnan(arr[..., 0]) | np.isnan(arr[..., 1])  # (F, N)
    arr[missing] = np.nan
    columns = pd.MultiIndex.from_product([nodes, list(COORDS)], names=["bodyparts", "coords"])
    data = pd.DataFrame(arr.reshape(len(arr), -1), columns=columns)
    data.index = pd.RangeIndex(len(arr), name="frame").astype(np.int64)
    return Pose(
        data=data,
        source=path,
        scorer="SLEAP",
        individual=picked,
        individuals=tuple(tracks),
        has_likelihood=True,
        extra={"video": _video_stem(labels.videos[0].filename)},
    )


def sleap_tracks(path: str | Path) -> list[str]:
    """Track names in a SLEAP ``.slp`` or analysis ``.h5`` file."""
    sio = _sleap_io()
    path = Path(path)
    if path.suffix.lower() == ".slp":
        labels = sio.load_slp(str(path), open_videos=False)
    else:
        labels = sio.load_analysis_h5(str(path))
    return [t.name for t in labels.tracks]
