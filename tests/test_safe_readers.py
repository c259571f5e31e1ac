"""Data files are read without unpickling: a crafted DeepLabCut ``.h5`` runs no code.

pandas reads ``.h5`` through PyTables, which unpickles attributes and object arrays; mfe reads
them with :mod:`mouse_facial_expressions.io.pandas_hdf` instead. Benign files must read exactly
as ``pd.read_hdf`` reads them; hostile ones must be refused, by name, with nothing run.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.io.dlc import PoseFileError, read_dlc
from mouse_facial_expressions.io.pandas_hdf import (
    PandasHDFError,
    UnsafePickleError,
    read_pandas_hdf,
    restricted_loads,
)
from mouse_facial_expressions.project import init_project

REAL = Path(__file__).parent / "data"
REAL_H5 = sorted(REAL.glob("*/labeled-data/*/CollectedData_*.h5"))
BODYPARTS = ("nose", "left_eye", "left_ear", "right_eye", "right_ear")


class _Payload:
    """Unpickling this creates ``marker``: stands in for any code a pickle can run."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _dlc_frame(n=4, individuals=None, coords=("x", "y", "likelihood"), index=None) -> pd.DataFrame:
    """A DLC table: columns scorer/[individuals/]bodyparts/coords, fixed values with NaNs."""
    ids = [None] if individuals is None else list(individuals)
    tuples = [("DLC_s", *((i,) if i else ()), bp, c) for i in ids for bp in BODYPARTS[:2] for c in coords]
    names = ["scorer", *(["individuals"] if individuals else []), "bodyparts", "coords"]
    values = np.arange(n * len(tuples), dtype=np.float64).reshape(n, len(tuples)) / 7.0
    values[1:2, 0] = np.nan
    return pd.DataFrame(values, columns=pd.MultiIndex.from_tuples(tuples, names=names), index=index)


def _images(n=4) -> list[str]:
    return [f"labeled-data/m1/img{k:04d}.png" for k in range(n)]


LAYOUTS = {
    "analysis": lambda: _dlc_frame(),
    "multi_animal": lambda: _dlc_frame(individuals=("mouse1", "single")),
    "labels_old": lambda: _dlc_frame(coords=("x", "y"), index=_images()),
    "labels_new": lambda: _dlc_frame(coords=("x", "y"), index=pd.MultiIndex.from_tuples(
        [tuple(p.split("/")) for p in _images()])),
    "mixed_blocks": lambda: _dlc_frame().astype({("DLC_s", "nose", "likelihood"): np.int64}),
    "object_values": lambda: _dlc_frame().astype(object),
    "no_rows": lambda: _dlc_frame(n=0),
}
# Table format holds neither a row MultiIndex with MultiIndex columns nor object values, and
# pandas writes no table for an empty frame.
CASES = [(name, fmt) for name in LAYOUTS for fmt in ("fixed", "table")
         if not (fmt == "table" and name in ("labels_new", "object_values", "no_rows"))]


@pytest.mark.parametrize(("layout", "fmt"), CASES)
def test_reader_equals_pandas_on_benign_files(tmp_path, layout, fmt):
    path = tmp_path / f"{layout}.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' PerformanceWarning for object blocks
        LAYOUTS[layout]().to_hdf(path, key="df_with_missing", format=fmt, mode="w")
    pd.testing.assert_frame_equal(read_pandas_hdf(path), pd.read_hdf(path, "df_with_missing"))


@pytest.mark.parametrize("path", REAL_H5, ids=lambda p: p.parent.parent.parent.name)
def test_reader_equals_pandas_on_real_dlc_labels(path):
    """Real CollectedData files: the old layout (table format, pandas 0.15, Python 2 pickles)
    and the new one (fixed format, 3-level row index)."""
    pd.testing.assert_frame_equal(read_pandas_hdf(path), pd.read_hdf(path))


def test_reader_picks_the_key_and_names_missing_ones(tmp_path):
    path = tmp_path / "two.h5"
    _dlc_frame().to_hdf(path, key="a", format="table", mode="w")
    _dlc_frame(n=2).to_hdf(path, key="df_with_missing", format="fixed", mode="a")
    assert len(read_pandas_hdf(path, "df_with_missing")) == 2
    with pytest.raises(PandasHDFError, match="no pandas table '/b'") as err:
        read_pandas_hdf(path, "b")
    assert str(path) in str(err.value)


def test_restricted_unpickler_reads_plain_values():
    value = [(1, ["a", ("b", "c")]), {"names": ["x", None], "type": "MultiIndex"}, 2.5, True, b"raw"]
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        assert restricted_loads(pickle.dumps(value, protocol)) == value
    arr = np.array([[1.5, np.nan], ["a", None]], dtype=object)
    out = restricted_loads(pickle.dumps(arr))
    assert out.dtype == object and out[0, 0] == 1.5 and out[1, 0] == "a" and out[1, 1] is None


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_restricted_unpickler_refuses_code(tmp_path, protocol):
    marker = tmp_path / "ran"
    data = pickle.dumps([1, np.array([_Payload(marker)], dtype=object)], protocol)
    refused = r"x.h5: node holds a pickled (io|builtins)\.open; mfe does not unpickle"
    with pytest.raises(UnsafePickleError, match=refused):  # even inside an allowed numpy array
        restricted_loads(data, "x.h5: node")
    assert not marker.exists()


# --------------------------------------------------------------------------- crafted files


def _crafted(tmp_path: Path, where: str, name: str = "m1_rec1_preinjectionDLC_s.h5") -> tuple[Path, Path]:
    """A DLC analysis .h5 whose pickled ``where`` (a node or an attribute) would create a marker."""
    path, marker = tmp_path / name, tmp_path / "payload-ran"
    frame = pd.concat({"DLC_s": _face(5)}, axis=1, names=["scorer"])
    payload = pickle.dumps(_Payload(marker), protocol=0)
    if where == "object node":  # fixed format keeps object columns as one pickled VLArray row
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame.astype(object).to_hdf(path, key="df_with_missing", format="fixed", mode="w")
        with h5py.File(path, "a") as f:
            f["df_with_missing/block0_values"][0] = np.frombuffer(payload, dtype=np.uint8)
    else:
        frame.to_hdf(path, key="df_with_missing", format="table" if where == "table attribute" else "fixed", mode="w")
        with h5py.File(path, "a") as f:
            node = f["df_with_missing"] if where == "table attribute" else f["df_with_missing/axis1"]
            node.attrs["non_index_axes" if where == "table attribute" else "name"] = np.bytes_(payload)
    return path, marker


def _face(n: int) -> pd.DataFrame:
    cols = pd.MultiIndex.from_product([list(BODYPARTS), ["x", "y", "likelihood"]], names=["bodyparts", "coords"])
    return pd.DataFrame(np.linspace(0.1, 0.9, n * len(cols)).reshape(n, -1) * 100, columns=cols)


WHERE = ["object node", "table attribute", "index name attribute"]


@pytest.mark.parametrize("where", WHERE)
def test_crafted_file_runs_code_in_pandas_but_not_here(tmp_path, where):
    path, marker = _crafted(tmp_path, where)
    with pytest.raises(PoseFileError, match="holds a pickled (io|builtins).open") as err:
        read_dlc(path)
    assert str(err.value).startswith(str(path)) and not marker.exists()
    try:  # the same file through pandas runs the payload: the file really is hostile
        pd.read_hdf(path)
    except Exception:
        pass
    assert marker.exists()


def test_sleap_probe_unpickles_no_attribute(tmp_path):
    """Telling SLEAP from DLC files must not unpickle either (PyTables would, on open)."""
    from mouse_facial_expressions.io.sleap import is_sleap_analysis_h5

    path, marker = tmp_path / "v.analysis.h5", tmp_path / "payload-ran"
    with h5py.File(path, "w") as f:
        f["tracks"], f["node_names"] = np.zeros((1, 2, 3, 4)), np.array([b"nose", b"ear"])
        for node in (f, f["tracks"]):
            node.attrs["title"] = np.bytes_(pickle.dumps(_Payload(marker), protocol=0))
    assert is_sleap_analysis_h5(path) and not marker.exists()


def test_not_hdf5_names_the_file(tmp_path):
    path = tmp_path / "vDLC_s.h5"
    path.write_text("scorer,DLC\n")
    with pytest.raises(PoseFileError, match="not an HDF5 file") as err:
        read_dlc(path)
    assert str(err.value).startswith(str(path))


def _assert_refused(code: int, err: str, path: Path, marker: Path) -> None:
    assert code != 0
    assert not marker.exists(), "the pickle ran"
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if str(path) in ln]
    assert lines and "pickled" in lines[0] and len(lines[0]) < 400, err


@pytest.mark.parametrize("where", WHERE)
def test_keypoints_import_refuses_crafted_file(tmp_path, capsys, where):
    cfg = init_project(tmp_path / "proj")
    path, marker = _crafted(cfg.path("dlc"), where)
    code = main(["keypoints", "import", "-p", str(cfg.root)])
    _assert_refused(code, capsys.readouterr().err, path, marker)
    assert not list(cfg.path("keypoints").glob("*.parquet"))


@pytest.mark.parametrize("where", WHERE)
def test_keypoints_info_refuses_crafted_file(tmp_path, capsys, where):
    path, marker = _crafted(tmp_path, where)
    code = main(["keypoints", "info", str(path)])
    _assert_refused(code, capsys.readouterr().err, path, marker)


@pytest.mark.slow
def test_predict_refuses_crafted_keypoints(run, tmp_path, capsys):
    from mouse_facial_expressions.training.runs import fold_checkpoints

    video = run.cfg.path("processed_videos") / "m1_rec1_preinjection.mp4"
    path, marker = _crafted(tmp_path, "object node")
    ckpt = dict(fold_checkpoints(run.run_dir))[0]
    code = main(["predict", str(video), "--keypoints", str(path), "--model", str(ckpt), "--out", str(tmp_path / "out")])
    assert code != 0 and not marker.exists()
    assert "Traceback" not in capsys.readouterr().err
    error = pd.read_csv(tmp_path / "out" / "summary.csv")["error"].iloc[0]
    assert str(path) in error and "pickled" in error and len(error) < 400
