"""pandas HDF5 tables (``DataFrame.to_hdf``) read without unpickling: ``read_pandas_hdf``.

``pd.read_hdf`` goes through PyTables, which unpickles every HDF5 attribute whose bytes end in
``.`` as soon as a node's attributes are touched, and pandas stores object columns as pickled
``VLArray`` rows: a crafted ``.h5`` runs code when pandas opens it. This reader uses h5py,
which never unpickles, and reads pandas' layout itself:

- ``format="fixed"`` (pandas_type ``frame``): ``axis0*`` (columns), ``axis1*`` (rows),
  ``block<i>_items*`` and ``block<i>_values``, plain or MultiIndex (``*_level<k>`` +
  ``*_label<k>``);
- ``format="table"`` (``frame_table``, table_type ``appendable_frame``): the compound
  ``table`` dataset, its ``index`` field and ``values_block_<i>`` fields.

What pandas really keeps pickled is small: the level ``name`` of an index that has none
(``None`` -> ``b"N."``), the table format's ``non_index_axes``/``info``/``index_cols``/
``values_cols``/``values_block_<i>_kind`` (lists, tuples, dicts and strings; protocol 0), and
object-dtype arrays (a numpy array of Python objects). These go through
:class:`RestrictedUnpickler`, which builds containers and numbers and refuses every other
global: a file asking for ``os.system`` or ``builtins.open`` is refused, and nothing in it runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

def _allowed_globals() -> dict[tuple[str, str], Any]:
    """Globals a pickle in a pandas HDF5 file may name, resolved here (never imported by name).

    Containers and numbers need none; bytes in protocols 0-2 need ``_codecs.encode`` (codecs
    only convert data), and a numpy array of objects needs the numpy names, whose construction
    only allocates (its items are unpickled by the same restricted unpickler).
    """
    import codecs

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed: dict[tuple[str, str], Any] = {
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "bytearray"): bytearray,
        ("_codecs", "encode"): codecs.encode,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # written by numpy 1 / 2
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


ALLOWED_GLOBALS = _allowed_globals()
_NOT_PICKLES = (b"0", b"0.")  # PyTables' own exception: these are plain strings


class PandasHDFError(ValueError):
    """A pandas HDF5 file that cannot be read; the message names the file."""


class UnsafePickleError(PandasHDFError, pickle.UnpicklingError):
    """A pickle in the file names a global outside :data:`ALLOWED_GLOBALS`; nothing was run."""


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`ALLOWED_GLOBALS` and refuses the rest."""

    def find_class(self, module: str, name: str) -> Any:
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise UnsafePickleError(f"holds a pickled {module}.{name}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("holds a pickle with a persistent id")


def restricted_loads(data: bytes, where: str = "pickle") -> Any:
    """``pickle.loads`` through :class:`RestrictedUnpickler`.

    Args:
        data: the pickle.
        where: what holds it (``"<file>: <node>"``), for the error message.

    Raises:
        UnsafePickleError: the pickle names a global that is not allowed (nothing ran).
        pickle.UnpicklingError, and others pickle raises: not a valid pickle.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafePickleError as err:
        raise UnsafePickleError(
            f"{where} {err}; mfe does not unpickle objects from data files (a pickle can run code)"
        ) from None


# --------------------------------------------------------------------------- attributes


def _plain(node, name: str, default: Any = None) -> Any:
    """A plain (never unpickled) attribute: str for strings, a Python number, else ``default``."""
    value = node.attrs.get(name)
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (str, np.generic)):
        return value.item() if isinstance(value, np.generic) else value
    return default


def _at(node, attr: str | None = None) -> str:
    """``"<file>: <node>[: attribute 'x']"``, for messages."""
    return f"{node.file.filename}: {node.name}" + (f": attribute {attr!r}" if attr else "")


def _pickled(node, name: str, default: Any = None) -> Any:
    """An attribute PyTables stored pickled (a list, dict, tuple or ``None``)."""
    if name not in node.attrs:
        return default
    raw = node.attrs[name]
    if not isinstance(raw, (bytes, np.bytes_)):
        raise PandasHDFError(f"{_at(node, name)} is not a pickle ({type(raw).__name__})")
    return _loads(bytes(raw), _at(node, name))


def _loads(data: bytes, where: str) -> Any:
    """:func:`restricted_loads`, with a broken pickle as :class:`PandasHDFError`."""
    try:
        return restricted_loads(data, where)
    except UnsafePickleError:
        raise
    except Exception as err:  # pickle raises many types for bytes that are no pickle
        raise PandasHDFError(f"{where} is not a valid pickle ({type(err).__name__}: {err})") from None


def _maybe_pickled(node, name: str) -> Any:
    """An attribute that is either a plain string or, like PyTables' ``None``, a pickle."""
    if name not in node.attrs:
        return None
    raw = node.attrs[name]
    if isinstance(raw, (bytes, np.bytes_)):
        raw = bytes(raw)
        if raw.endswith(b".") and raw not in _NOT_PICKLES:
            try:
                return restricted_loads(raw, _at(node, name))
            except UnsafePickleError:
                raise
            except Exception:  # a string that only ends in "." (PyTables keeps it as text too)
                pass
        return raw.decode("utf-8", "replace")
    return _plain(node, name)


# --------------------------------------------------------------------------- arrays


def _decode(data: np.ndarray, encoding: str, errors: str, nan_rep: str | None) -> np.ndarray:
    """Fixed-width bytes -> object array of str; ``nan_rep`` (default ``"nan"``) -> NaN."""
    shape = data.shape
    flat = data.ravel()
    out = np.empty(len(flat), dtype=object)
    out[:] = [bytes(b).decode(encoding, errors) for b in flat]
    out[out == (nan_rep or "nan")] = np.nan
    return out.reshape(shape)


def _empty_shape(node) -> tuple[int, ...] | None:
    """Shape of a length-0 array, which pandas writes as a 1-element sentinel + attribute ``shape``."""
    shape = _maybe_pickled(node, "shape")  # a tuple, pickled by PyTables
    if shape is None:
        return None
    try:
        return tuple(int(s) for s in np.atleast_1d(shape))
    except (TypeError, ValueError):
        raise PandasHDFError(f"{_at(node, 'shape')} is not a shape ({shape!r})") from None


def _is_vlarray(node) -> bool:
    return _plain(node, "CLASS") == "VLARRAY"


def _read_array(node) -> np.ndarray:
    """A pandas fixed-format array node (what ``GenericFixed.read_array`` returns)."""
    name = _at(node)
    if _is_vlarray(node):  # object dtype: one pickled row
        if _plain(node, "PSEUDOATOM") != "object" or node.shape != (1,):
            raise PandasHDFError(f"{name}: unsupported variable-length array")
        ret = _loads(np.asarray(node[0], dtype=np.uint8).tobytes(), name)
        if not isinstance(ret, np.ndarray):
            raise PandasHDFError(f"{name}: expected an array, found {type(ret).__name__}")
    else:
        value_type = _plain(node, "value_type")
        if value_type is not None and value_type.startswith(("datetime64", "timedelta64")):
            raise PandasHDFError(f"{name}: {value_type} values are not supported")
        shape = _empty_shape(node)
        ret = node[()] if shape is None else np.empty(shape, dtype=value_type)
    return ret.T if _plain(node, "transposed", 0) else ret


def _read_index_node(node, encoding: str, errors: str) -> pd.Index:
    name = _at(node)
    for attr in ("index_class", "freq", "tz"):
        if attr in node.attrs:
            raise PandasHDFError(f"{name}: date/time indexes are not supported")
    kind = _plain(node, "kind")
    shape = _empty_shape(node)
    if _is_vlarray(node):
        data = _read_array(node)
    elif shape is not None:
        data = np.empty(shape, dtype=_plain(node, "value_type"))
    else:
        data = node[()]
    if kind in ("integer", "float", "bool"):
        index = pd.Index(np.asarray(data))
    elif kind == "string":
        index = pd.Index(_decode(np.asarray(data), encoding, errors, None))
    elif kind == "object":
        index = pd.Index(np.asarray(data), dtype=object)
    else:
        raise PandasHDFError(f"{name}: index kind {kind!r} is not supported")
    index.name = _maybe_pickled(node, "name")
    return index


def _read_index(group, key: str, encoding: str, errors: str) -> pd.Index:
    variety = _plain(group, f"{key}_variety")
    if variety == "regular":
        return _read_index_node(_child(group, key), encoding, errors)
    if variety != "multi":
        raise PandasHDFError(f"{_at(group)}/{key}: unknown index variety {variety!r}")
    levels, codes = [], []
    for i in range(int(_plain(group, f"{key}_nlevels", 0))):
        levels.append(_read_index_node(_child(group, f"{key}_level{i}"), encoding, errors))
        codes.append(_read_array(_child(group, f"{key}_label{i}")))
    try:
        return pd.MultiIndex(levels=levels, codes=codes, names=[lev.name for lev in levels], verify_integrity=True)
    except (ValueError, TypeError) as err:
        raise PandasHDFError(f"{_at(group)}/{key}: inconsistent MultiIndex ({err})") from None


def _child(group, key: str):
    if key not in group:
        raise PandasHDFError(f"{_at(group)}: node {key!r} is missing")
    return group[key]


# --------------------------------------------------------------------------- formats


def _read_fixed(group) -> pd.DataFrame:
    """pandas ``format="fixed"`` DataFrame (``BlockManagerFixed.read``)."""
    if int(_plain(group, "ndim", 2)) != 2:
        raise PandasHDFError(f"{_at(group)}: expected a 2-D table")
    enc, errors = _plain(group, "encoding", "UTF-8") or "UTF-8", _plain(group, "errors", "strict")
    columns = _read_index(group, "axis0", enc, errors)
    index = _read_index(group, "axis1", enc, errors)
    frames = []
    for i in range(int(_plain(group, "nblocks", 0))):
        items = _read_index(group, f"block{i}_items", enc, errors)
        node = _child(group, f"block{i}_values")
        values = _read_array(node)  # (n_items, n_rows)
        if values.shape != (len(items), len(index)):
            raise PandasHDFError(f"{_at(node)}: shape {values.shape}, expected {(len(items), len(index))}")
        frames.append(pd.DataFrame(values.T, columns=columns[columns.get_indexer(items)], index=index))
    if not frames:
        return pd.DataFrame(columns=columns, index=index)
    return pd.concat(frames, axis=1).reindex(columns=columns)


def _read_table(group) -> pd.DataFrame:
    """pandas ``format="table"`` DataFrame (``AppendableFrameTable.read``)."""
    table_type = _plain(group, "table_type")
    if table_type != "appendable_frame":
        raise PandasHDFError(f"{_at(group)}: table type {table_type!r} is not supported (expected appendable_frame)")
    if "meta" in group:
        raise PandasHDFError(f"{_at(group)}: categorical columns are not supported")
    table = _child(group, "table")
    tw = _at(table)
    enc, errors = _plain(group, "encoding", "UTF-8") or "UTF-8", _plain(group, "errors", "strict")
    nan_rep = _plain(group, "nan_rep")
    info = _pickled(group, "info", {}) or {}
    index_cols = _pickled(group, "index_cols", []) or []
    values_cols = _pickled(group, "values_cols", []) or []
    non_index = _pickled(group, "non_index_axes", []) or []
    if len(index_cols) != 1 or len(non_index) != 1 or table.dtype.names is None:
        raise PandasHDFError(f"{_at(group)}: expected one index column and one column axis")
    rows = table[()]

    index_name = str(index_cols[0][1])
    kind = _plain(table, f"{index_name}_kind")
    data = rows[index_name]
    if kind in ("integer", "float", "bool"):
        index = pd.Index(np.asarray(data))
    elif kind == "string":
        index = pd.Index(_decode(data, enc, errors, None))
    else:
        raise PandasHDFError(f"{tw}: index kind {kind!r} is not supported")
    index.name = (info.get(index_name) or {}).get("index_name")

    col_info = info.get(non_index[0][0]) or {}
    multi = col_info.get("type") == "MultiIndex"
    frames = []
    for col in values_cols:
        labels = _pickled(table, f"{col}_kind")
        dtype = _plain(table, f"{col}_dtype", "")
        if _maybe_pickled(table, f"{col}_meta") is not None:
            raise PandasHDFError(f"{tw}: column block {col!r} has metadata (category/str dtype); not supported")
        if col not in table.dtype.names or not isinstance(labels, list):
            raise PandasHDFError(f"{tw}: column block {col!r} is missing")
        values = np.asarray(rows[col]).reshape(len(rows), -1)  # (n_rows, n_labels)
        if dtype.startswith("bytes") or values.dtype.kind == "S":
            values = _decode(values, enc, errors, nan_rep)
        elif values.dtype.kind not in "biuf":
            raise PandasHDFError(f"{tw}: column block {col!r} of dtype {dtype!r} is not supported")
        cols = pd.MultiIndex.from_tuples(labels) if multi else pd.Index(labels)
        if values.shape[1] != len(cols):
            raise PandasHDFError(f"{tw}: column block {col!r} holds {values.shape[1]} columns, names {len(cols)}")
        frames.append(pd.DataFrame(values, columns=cols, index=index))
    df = frames[0] if len(frames) == 1 else pd.concat(frames, axis=1)
    order = list(non_index[0][1])
    target = pd.MultiIndex.from_tuples(order) if multi else pd.Index(order)
    if not target.equals(df.columns):
        df = df.reindex(columns=target)
    names = col_info.get("names")
    if names is not None:
        df.columns = df.columns.set_names(names)
    return df


_FORMATS = {"frame": _read_fixed, "frame_table": _read_table}


# --------------------------------------------------------------------------- public


def _h5py():
    try:
        import h5py
    except ImportError as err:
        raise ImportError("reading .h5 tables needs h5py: pip install h5py") from err
    return h5py


def pandas_hdf_keys(path: str | Path) -> list[str]:
    """Keys of the pandas objects in an HDF5 file (``/df_with_missing``), in file order."""
    h5py = _h5py()
    keys: list[str] = []
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, node: keys.append(f"/{name}") if isinstance(node, h5py.Group)
                         and "pandas_type" in node.attrs else None)
    except OSError as err:
        raise PandasHDFError(f"{path}: not an HDF5 file ({err})") from None
    return keys


def read_pandas_hdf(path: str | Path, key: str | None = None) -> pd.DataFrame:
    """A DataFrame written by ``DataFrame.to_hdf`` (fixed or table format), never unpickled.

    Args:
        path: the ``.h5`` file.
        key: the pandas key (``"df_with_missing"``); ``None`` reads the only or first one.

    Returns:
        The DataFrame, equal to what ``pd.read_hdf`` returns for the layouts in the module
        docstring.

    Raises:
        UnsafePickleError: a pickle in the file names a global outside ``ALLOWED_GLOBALS``
            (it is not run); the message names the file and the node.
        PandasHDFError: not HDF5, no pandas table, or a layout this reader does not handle.
    """
    h5py = _h5py()
    path = Path(path)
    keys = pandas_hdf_keys(path)
    if not keys:
        raise PandasHDFError(f"{path}: HDF5 file holds no pandas table")
    key = keys[0] if key is None else "/" + key.strip("/")
    if key not in keys:
        raise PandasHDFError(f"{path}: no pandas table {key!r} (the file has {keys})")
    where = f"{path}: {key}"
    try:
        with h5py.File(path, "r") as f:
            group = f[key]
            pandas_type = _plain(group, "pandas_type")
            reader = _FORMATS.get(pandas_type)
            if reader is None:
                raise PandasHDFError(f"{where}: pandas type {pandas_type!r} is not supported (expected a DataFrame)")
            return reader(group)
    except PandasHDFError:
        raise
    except (OSError, RuntimeError, LookupError, ValueError, TypeError, AttributeError) as err:  # damaged/foreign
        raise PandasHDFError(f"{where}: unreadable pandas table ({type(err).__name__}: {err})") from None
