"""DeepLabCut pose files: ``read_dlc`` and ``write_dlc``.

Layouts read, as ``.h5`` (pandas HDF5, key ``df_with_missing``) or ``.csv``:

- analysis output ``<video>DLC_<scorer>.h5``: integer frame index, column levels
  ``scorer/bodyparts/coords`` with coords ``x, y, likelihood``;
- hand labels ``labeled-data/<video>/CollectedData_<name>.h5``, older layout: one index
  column holding the image path (``labeled-data/m4s1/img0000.png``), coords ``x, y`` only;
- hand labels, newer layout (DLC >= 2.2): a 3-level row index
  ``(labeled-data, <video>, imgNNNN.png)``;
- multi-animal files: a fourth column level ``individuals`` (``scorer/individuals/
  bodyparts/coords``); ``individual=`` picks one. Unique bodyparts (individual ``single``)
  are added to the picked individual.

``.h5`` files are read with :func:`~mouse_facial_expressions.io.pandas_hdf.read_pandas_hdf`,
never with ``pd.read_hdf``: PyTables unpickles what a file holds, so a crafted ``.h5`` could
run code; this reader refuses any pickle that names a Python object.

Every reader returns a :class:`Pose`: per bodypart ``x, y, likelihood`` (float64). Files
without a likelihood get 1.0 where x and y are present. A point whose x or y is missing is
NaN in all three values.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.io.atomic import atomic_path
from mouse_facial_expressions.io.pandas_hdf import PandasHDFError, pandas_hdf_keys, read_pandas_hdf

#: Column level names of DLC tables, single- and multi-animal.
SINGLE_LEVELS = ("scorer", "bodyparts", "coords")
MULTI_LEVELS = ("scorer", "individuals", "bodyparts", "coords")
COORDS = ("x", "y", "likelihood")
#: Key DeepLabCut writes its HDF5 tables under.
H5_KEY = "df_with_missing"
#: Individual that holds a multi-animal project's unique (scene) bodyparts.
UNIQUE_INDIVIDUAL = "single"

_IMAGE_NUMBER = re.compile(r"(\d+)\D*$")


class PoseFileError(ValueError):
    """A pose file that cannot be read; the message names the file (and row)."""


@dataclass
class Pose:
    """Keypoints of one animal from one pose file.

    Attributes:
        data: one row per labelled frame or image; columns a 2-level MultiIndex
            ``(bodypart, coord)`` with coords ``x, y, likelihood`` (float64). The index holds
            the row labels: frame numbers (int) or image paths (str, ``/``-joined).
        source: the file it was read from.
        scorer: DLC scorer (network or labeller name).
        individual: the individual read from a multi-animal file, else ``None``.
        individuals: every individual in the file (empty for single-animal files).
        has_likelihood: whether the file held likelihoods (False for hand labels).
        extra: reader-specific facts (SLEAP: ``video``, the stem of the video it labels).
    """

    data: pd.DataFrame
    source: Path
    scorer: str = ""
    individual: str | None = None
    individuals: tuple[str, ...] = ()
    has_likelihood: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def bodyparts(self) -> list[str]:
        return list(dict.fromkeys(self.data.columns.get_level_values(0)))

    def __len__(self) -> int:
        return len(self.data)

    def frames(self) -> np.ndarray:
        """Frame number of every row, int64 ``(n_rows,)``.

        Integer row labels are frame numbers. Image paths give the number in the image's
        file name (DLC extracts frame ``k`` as ``img<k>.png``).

        Raises:
            PoseFileError: if an image name holds no number (naming the row).
        """
        index = self.data.index
        if pd.api.types.is_integer_dtype(index.dtype):
            return np.asarray(index, dtype=np.int64)
        out = np.empty(len(index), dtype=np.int64)
        for i, label in enumerate(index):
            stem = str(label).replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
            m = _IMAGE_NUMBER.search(stem)
            if m is None:
                raise PoseFileError(f"{self.source}: row {i} ({label!r}): no frame number in the image name")
            out[i] = int(m.group(1))
        return out

    def xyl(self, bodypart: str) -> np.ndarray:
        """``(n_rows, 3)`` float64 array of x, y, likelihood of one bodypart."""
        return self.data[bodypart][list(COORDS)].to_numpy(dtype=np.float64)


# --------------------------------------------------------------------------- reading


def _csv_layout(path: Path) -> tuple[int, int]:
    """(header rows, index columns) of a DLC CSV, from its first rows."""
    with open(path, newline="") as f:
        rows = [row for _, row in zip(range(6), csv.reader(f))]
    n_header = 0
    for row in rows:
        if row and row[0].strip() in MULTI_LEVELS:
            n_header += 1
        else:
            break
    if n_header < 3 or not rows[0] or rows[0][0].strip() != "scorer":
        raise PoseFileError(
            f"{path}: not a DeepLabCut CSV (expected header rows scorer/[individuals/]bodyparts/coords, "
            f"found {[r[:1] for r in rows[:4]]})"
        )
    first = rows[0]
    n_index = 1
    while n_index < len(first) and first[n_index].strip() == "":
        n_index += 1
    return n_header, n_index


def _read_csv(path: Path) -> pd.DataFrame:
    n_header, n_index = _csv_layout(path)
    try:
        df = pd.read_csv(
            path, header=list(range(n_header)), index_col=list(range(n_index)), float_precision="round_trip"
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise PoseFileError(f"{path}: cannot parse DeepLabCut CSV: {err}") from err
    if n_index > 1:  # newer layout: ('labeled-data', video, image) -> one path string
        df.index = ["/".join(str(p) for p in t) for t in df.index]
    return df


def _read_h5(path: Path) -> pd.DataFrame:
    """The table of a DLC ``.h5``, read without unpickling (see :mod:`.pandas_hdf`)."""
    try:
        keys = pandas_hdf_keys(path)
        df = read_pandas_hdf(path, H5_KEY if f"/{H5_KEY}" in keys else None)
    except PandasHDFError as err:  # UnsafePickleError too: its message says nothing ran
        raise PoseFileError(str(err)) from None
    if isinstance(df.index, pd.MultiIndex):
        df.index = ["/".join(str(p) for p in t) for t in df.index]
    return df


_READERS = {".h5": _read_h5, ".hdf5": _read_h5, ".csv": _read_csv}


def read_dlc_table(path: str | Path) -> pd.DataFrame:
    """A DLC file as the raw table, columns named ``scorer/[individuals/]bodyparts/coords``.

    Raises:
        PoseFileError: if the file is not a DLC table (naming the file).
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise PoseFileError(f"{path}: unknown DeepLabCut file type (expected one of {sorted(_READERS)})")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    df = reader(path)
    if not isinstance(df.columns, pd.MultiIndex) or df.columns.nlevels not in (3, 4):
        raise PoseFileError(f"{path}: expected 3 or 4 column levels (scorer/[individuals/]bodyparts/coords)")
    df.columns = df.columns.set_names(list(SINGLE_LEVELS if df.columns.nlevels == 3 else MULTI_LEVELS))
    coords = set(df.columns.get_level_values("coords"))
    if not {"x", "y"} <= coords:
        raise PoseFileError(f"{path}: coords level holds {sorted(coords)}, expected x, y[, likelihood]")
    return _as_float(df, path)


def _as_float(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    try:
        return df.astype(np.float64)
    except (ValueError, TypeError):
        for j, col in enumerate(df.columns):
            values = pd.to_numeric(df.iloc[:, j], errors="coerce")
            bad = values.isna() & df.iloc[:, j].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise PoseFileError(
                    f"{path}: row {row} ({df.index[row]!r}), column {col}: "
                    f"not a number: {df.iloc[row, j]!r}"
                ) from None
        raise


def individuals_of(df: pd.DataFrame) -> list[str]:
    """Individuals of a raw multi-animal table (``[]`` for single-animal tables)."""
    if "individuals" not in df.columns.names:
        return []
    return list(dict.fromkeys(df.columns.get_level_values("individuals")))


def _select_individual(df: pd.DataFrame, individual: str | None, path: Path) -> tuple[pd.DataFrame, str]:
    """The 3-level (scorer, bodyparts, coords) table of one individual of a multi-animal table."""
    everyone = individuals_of(df)
    animals = [i for i in everyone if i != UNIQUE_INDIVIDUAL]
    if individual is None:
        if len(animals) != 1:
            raise PoseFileError(
                f"{path}: multi-animal file with individuals {animals}; pick one with "
                f"--individual NAME (or keypoints.individual in mfe.yaml)"
            )
        individual = animals[0]
    if individual not in everyone:
        raise PoseFileError(f"{path}: no individual {individual!r}; the file has {animals}")
    parts = df.xs(individual, axis=1, level="individuals", drop_level=True)
    if individual != UNIQUE_INDIVIDUAL and UNIQUE_INDIVIDUAL in everyone:
        unique = df.xs(UNIQUE_INDIVIDUAL, axis=1, level="individuals", drop_level=True)
        taken = set(parts.columns.get_level_values("bodyparts"))
        keep = [c for c in unique.columns if c[1] not in taken]
        parts = pd.concat([parts, unique[keep]], axis=1)
    return parts, individual


def pose_from_table(df: pd.DataFrame, path: Path, individual: str | None = None) -> Pose:
    """A :class:`Pose` from a raw DLC table (see :func:`read_dlc_table`)."""
    everyone = individuals_of(df)
    picked = None
    if everyone:
        df, picked = _select_individual(df, individual, path)
    scorer = str(df.columns.get_level_values("scorer")[0])
    df = df.droplevel("scorer", axis=1)
    bodyparts = list(dict.fromkeys(df.columns.get_level_values("bodyparts")))
    has_likelihood = "likelihood" in set(df.columns.get_level_values("coords"))
    n = len(df)
    cols: dict[tuple[str, str], np.ndarray] = {}
    for bp in bodyparts:
        part = df[bp]
        x = part["x"].to_numpy(np.float64).reshape(n, -1)[:, 0]
        y = part["y"].to_numpy(np.float64).reshape(n, -1)[:, 0]
        if "likelihood" in part.columns:
            lik = part["likelihood"].to_numpy(np.float64).reshape(n, -1)[:, 0].copy()
        else:
            lik = np.ones(n, dtype=np.float64)
        missing = np.isnan(x) | np.isnan(y)
        x, y = np.where(missing, np.nan, x), np.where(missing, np.nan, y)
        lik[missing] = np.nan
        cols[(bp, "x")], cols[(bp, "y")], cols[(bp, "likelihood")] = x, y, lik
    data = pd.DataFrame(cols, index=df.index)
    data.columns = pd.MultiIndex.from_tuples(list(cols), names=["bodyparts", "coords"])
    data.index.name = "frame" if pd.api.types.is_integer_dtype(data.index.dtype) else "image"
    return Pose(
        data=data,
        source=path,
        scorer=scorer,
        individual=picked,
        individuals=tuple(everyone),
        has_likelihood=has_likelihood,
    )


def read_dlc(path: str | Path, individual: str | None = None) -> Pose:
    """Read a DeepLabCut ``.h5`` or ``.csv`` file (any layout in the module docstring).

    Args:
        path: the file.
        individual: which individual to read from a multi-animal file. Ignored for
            single-animal files. ``None`` with several individuals is an error.

    Raises:
        PoseFileError: unreadable file or unknown individual (naming the file and the
            individuals available).
    """
    path = Path(path)
    return pose_from_table(read_dlc_table(path), path, individual)


# --------------------------------------------------------------------------- writing


#: HDF5 layouts DeepLabCut writes: ``table`` for analysis output (``analyze_videos``), ``fixed``
#: for hand labels (``CollectedData_<scorer>.h5``, written by its labelling GUI).
H5_FORMATS = ("table", "fixed")


def dlc_frame(data: pd.DataFrame | Pose, scorer: str = "DLC_mfe") -> pd.DataFrame:
    """The table DeepLabCut writes: columns ``scorer/[individuals/]bodyparts/coords``, float64.

    Args:
        data: a :class:`Pose` (its own scorer wins), a table with columns ``(bodypart, coord)``
            or ``(individual, bodypart, coord)``, or a DLC table whose first column level is
            named ``scorer`` (kept as it is). The index becomes the row labels: frame numbers,
            image paths, or DLC's newer 3-level ``(labeled-data, <video>, img<k>.png)``.
        scorer: value of the ``scorer`` column level (unless ``data`` carries one).
    """
    if isinstance(data, Pose):
        scorer = data.scorer or scorer
        data = data.data
    if not isinstance(data.columns, pd.MultiIndex):
        raise ValueError("write_dlc: columns must be (bodypart, coord) or (individual, bodypart, coord)")
    if data.columns.names[0] == "scorer" and data.columns.nlevels in (3, 4):
        columns = data.columns
    elif data.columns.nlevels in (2, 3):
        columns = pd.MultiIndex.from_tuples([(scorer, *c) for c in data.columns])
    else:
        raise ValueError("write_dlc: columns must be (bodypart, coord) or (individual, bodypart, coord)")
    levels = SINGLE_LEVELS if columns.nlevels == 3 else MULTI_LEVELS
    df = pd.DataFrame(data.to_numpy(np.float64), index=data.index, columns=columns.set_names(list(levels)))
    df.index = df.index.set_names([None] * df.index.nlevels)
    return df


def write_dlc(path: str | Path, data: pd.DataFrame | Pose, scorer: str = "DLC_mfe", h5_format: str = "table") -> Path:
    """Write keypoints as a DeepLabCut file (``.h5`` or ``.csv``), atomically.

    Every DLC-layout file mfe writes goes through here: analysis output (what
    ``deeplabcut.analyze_videos`` writes: integer frame index, coords ``x, y, likelihood``,
    HDF5 key ``df_with_missing`` in ``table`` format) and hand labels (``CollectedData``:
    image rows, coords ``x, y``, ``h5_format="fixed"`` as DLC's labelling GUI writes them),
    single- or multi-animal. The table is :func:`dlc_frame`'s.

    Args:
        path: output file; the suffix picks the format.
        data: see :func:`dlc_frame`.
        scorer: value of the ``scorer`` column level (unless ``data`` carries one).
        h5_format: pandas HDF5 format of an ``.h5`` file (:data:`H5_FORMATS`).

    Raises:
        ValueError: an unknown suffix or format, or columns that are no DLC layout.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise ValueError(f"{path}: unknown DeepLabCut file type (expected one of {sorted(_READERS)})")
    if h5_format not in H5_FORMATS:
        raise ValueError(f"write_dlc: h5_format {h5_format!r} (expected one of {H5_FORMATS})")
    df = dlc_frame(data, scorer)
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp)
        else:
            df.to_hdf(tmp, key=H5_KEY, format=h5_format, mode="w")
    return path
