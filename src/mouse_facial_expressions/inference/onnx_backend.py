"""ONNX Runtime scoring on the CPU: ``mfe predict --backend onnx [--quantize int8]``.

The fold ensemble is exported once (:func:`inference.export.export_onnx`: one graph, every
member, ``p1_members`` out) and cached, under a name keyed by the content hashes of the
checkpoints, the clip shape and the quantization: ``<run>/onnx/ensemble-<key>[-int8].onnx``.
Unchanged checkpoints reuse the file; a changed checkpoint gives another key, and the stale
file is removed. Writing one is logged with its path and size (100-300 MB for a full-size
run). ``paths.onnx_cache`` in the project's ``mfe.yaml`` (the project holding the run, or the
``cache_dir`` a caller passes) moves the cache to ``<onnx_cache>/<run>-<hash of the run's
path>/``: one folder per run, so two runs never share or remove each other's files. When the
folder is not writable the cache lives in ``~/.cache/mouse-facial-expressions/onnx/<run>-<hash>/``.

:class:`OnnxEnsemble` stands in for :class:`~inference.ensemble.FoldEnsemble` wherever
windows are scored (``predict`` returns the same ``(B, K)`` per-member probabilities), so
the decode, window and output code is the same for both backends.

``int8``: onnxruntime's dynamic quantization (weights int8, activations quantized per batch
at run time) of the MatMul/Gemm layers and the convolutions.

onnx and onnxruntime are the optional ``[onnx]`` extra (``pip install
'mouse-facial-expressions[onnx]'``): without them ``--backend auto`` scores with torch after a
one-line notice, and ``--backend onnx`` is an error that names the install command.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from mouse_facial_expressions.inference.ensemble import FoldEnsemble
from mouse_facial_expressions.inference.export import OPSET, export_onnx
from mouse_facial_expressions.io.atomic import atomic_path

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
QUANTIZE = ("none", "int8")
#: Version of the exported graph's outputs, part of the cache key: 2 added ``au`` for runs with
#: action-unit heads, so a file cached before that is exported again, not reused without it.
GRAPH_OUTPUTS = 2
INSTALL_HINT = "pip install 'mouse-facial-expressions[onnx]'"
MISSING = (f"onnxruntime is not installed, so --backend onnx cannot run: {INSTALL_HINT} "
           "installs it (the optional [onnx] extra), or pass --backend torch")
MISSING_ONNX = (f"onnx is not installed, so --backend onnx cannot export the model: {INSTALL_HINT} "
                "installs it (the optional [onnx] extra), or pass --backend torch")
_told_fallback = False  # the notice that auto falls back to torch is given once per process


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def onnx_available() -> bool:
    """Whether the ``[onnx]`` extra is importable here: onnx (export) and onnxruntime (scoring)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: torch.device) -> str:
    """``auto`` -> ``onnx`` on a CPU (``torch`` after a one-time notice when the ``[onnx]`` extra
    is not installed), ``torch`` on a GPU; ``onnx`` on a GPU is refused."""
    global _told_fallback
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        if device.type == "cuda":
            return "torch"
        if onnx_available():
            return "onnx"
        if not _told_fallback:
            log.warning("onnx backend: onnx/onnxruntime are not installed, so --backend auto scores with torch "
                        "(for the faster CPU backend: %s)", INSTALL_HINT)
            _told_fallback = True
        return "torch"
    if backend == "onnx" and device.type != "cpu":
        raise ValueError(f"--backend onnx runs on the CPU (onnxruntime's CPU provider); got --device {device.type}: "
                         "use --backend torch on a GPU")
    return backend


def _ort():
    try:
        import onnxruntime
    except ImportError:  # the optional [onnx] extra
        raise ImportError(MISSING) from None
    return onnxruntime


def _require_onnx() -> None:
    """Both packages of the ``[onnx]`` extra, or an ImportError naming the install command."""
    _ort()
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError(MISSING_ONNX) from None


def checkpoint_files(ens: FoldEnsemble) -> list[Path]:
    """The checkpoint files of an ensemble loaded from a run folder or a ``.ckpt``."""
    from mouse_facial_expressions.training.runs import fold_checkpoints

    src = Path(ens.source) if ens.source is not None else None
    if src is None:
        return []
    if src.is_file():
        return [src]
    return [ckpt for _, ckpt in fold_checkpoints(src)]


def cache_key(ens: FoldEnsemble, quantize: str = "none") -> str | None:
    """16 hex digits from the checkpoints' content hashes, the clip shape, opset and quantization
    (None for an ensemble built in memory: nothing to key it by)."""
    from mouse_facial_expressions.provenance import fingerprint

    files = checkpoint_files(ens)
    if not files:
        return None
    payload = {"members": [fingerprint(f)["hash"] for f in files], "num_frames": ens.num_frames,
               "image_size": ens.image_size, "channels": ens.channels, "opset": OPSET, "quantize": quantize,
               "outputs": GRAPH_OUTPUTS}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def run_identity(ens: FoldEnsemble) -> str:
    """``<run or checkpoint name>-<8 hex digits of its absolute path>``: the folder of one run's
    files in a shared cache (two runs, or two copies of a project, never share one)."""
    src = Path(os.path.abspath(ens.source))
    return f"{src.stem if src.is_file() else src.name}-{hashlib.sha256(str(src).encode()).hexdigest()[:8]}"


def onnx_cache_dir(cfg) -> Path | None:
    """``paths.onnx_cache`` of a project's :class:`~config.Config` as an absolute folder (relative:
    under the project root); None when it is not set (the cache lives in the run folder)."""
    return cfg.path("onnx_cache") if cfg is not None and cfg.paths.onnx_cache is not None else None


def project_cache_dir(ens: FoldEnsemble) -> Path | None:
    """:func:`onnx_cache_dir` of the project holding the run (the first ``mfe.yaml`` in the four
    folders above it: ``<project>/models/runs/<run>``, ``<project>/models/checkpoints*/<run>/<file>``)."""
    from mouse_facial_expressions.config import CONFIG_NAME, ConfigError, load_config

    src = Path(os.path.abspath(ens.source))
    for folder in list(src.parents)[:4]:
        if (folder / CONFIG_NAME).is_file():
            try:
                return onnx_cache_dir(load_config(folder / CONFIG_NAME))
            except ConfigError as err:
                log.warning("onnx cache: %s; keeping the export in the run folder", err)
                return None
    return None


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
        return True
    except OSError:
        return False


def _cache_dir(ens: FoldEnsemble, cache_dir: str | Path | None = None) -> Path:
    """Where ``ens``'s exports live: ``cache_dir`` (else the run's project's ``paths.onnx_cache``)
    ``/<run identity>``, else ``<run>/onnx``; the user cache when that is not writable."""
    root = Path(cache_dir) if cache_dir is not None else project_cache_dir(ens)
    if root is not None:
        here = root / run_identity(ens)
    else:
        src = Path(ens.source)
        here = (src.parent if src.is_file() else src) / "onnx"
    if _writable(here):
        return here
    user = Path.home() / ".cache" / "mouse-facial-expressions" / "onnx" / run_identity(ens)
    log.warning("onnx cache: %s is not writable; using %s", here, user)
    user.mkdir(parents=True, exist_ok=True)
    return user


class _DropRecords(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quantize_int8(fp32: Path, out: Path) -> Path:
    """Dynamic int8 quantization of an fp32 ONNX model (atomic write)."""
    _ort()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    hint = _DropRecords("Please consider to run pre-processing")  # onnxruntime's advice on the root logger
    logging.getLogger().addFilter(hint)
    try:
        with atomic_path(out) as tmp:
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().removeFilter(hint)
    return out


def exported_model(ens: FoldEnsemble, quantize: str = "none", cache_dir: str | Path | None = None) -> tuple[Path, bool]:
    """The cached ONNX file of ``ens`` (written when missing, which is logged with its size):
    ``(path, reused)``. ``cache_dir``: the cache folder (a project's ``paths.onnx_cache``,
    :func:`onnx_cache_dir`); default: the run's project's setting, else the run folder."""
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}, got {quantize!r}")
    key = cache_key(ens, quantize)
    if key is None:  # no files to key by: a private temporary export
        folder = Path(tempfile.mkdtemp(prefix="mfe-onnx-"))
        path = folder / "ensemble.onnx"
    else:
        folder = _cache_dir(ens, cache_dir)
        path = folder / f"ensemble-{key}{'-int8' if quantize == 'int8' else ''}.onnx"
        if path.is_file():
            return path, True
        for old in folder.glob("ensemble-*.onnx"):  # another set of checkpoints, same quantization: stale
            if old.stem.endswith("-int8") == (quantize == "int8"):
                old.unlink(missing_ok=True)
    ens.dtype = torch.float32
    if quantize == "int8":
        with tempfile.TemporaryDirectory(prefix="mfe-onnx-") as tmp:
            quantize_int8(export_onnx(ens, Path(tmp) / "fp32.onnx"), path)
    else:
        export_onnx(ens, path)
    if key is not None:
        log.info("onnx backend: wrote %s (%.1f MB), the fold ensemble exported for onnxruntime; reused until a "
                 "checkpoint changes (paths.onnx_cache in mfe.yaml keeps these files elsewhere)", path, _mb(path))
    return path, False


def _mb(path: Path) -> float:
    return path.stat().st_size / 1e6


class OnnxEnsemble:
    """An ensemble scored by onnxruntime on the CPU; otherwise the :class:`FoldEnsemble` it wraps.

    Attributes other than :meth:`predict`, :meth:`to` and :attr:`device` (``num_frames``,
    ``names``, ``hparams``, ``data``, ...) are the wrapped ensemble's.
    """

    def __init__(self, ens: FoldEnsemble, path: str | Path, threads: int | None = None):
        ort = _ort()
        self.ens = ens
        self.path = Path(path)
        self.threads = int(threads or available_cores())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])

    def __getattr__(self, name):  # only called for attributes this wrapper does not have
        return getattr(self.__dict__["ens"], name)

    def __len__(self) -> int:
        return len(self.ens)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def to(self, device) -> OnnxEnsemble:
        return self

    def predict(self, clips: torch.Tensor) -> np.ndarray:
        """Per-member ``p1`` ``(B, K)`` float64 of ``(B, T, C, H, W)`` normalised clips."""
        x = np.ascontiguousarray(clips.detach().cpu().numpy(), dtype=np.float32)
        (members,) = self.session.run(["p1_members"], {"clip": x})
        return members.astype(np.float64)

    def predict_au(self, clips: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`FoldEnsemble.predict_au`: per-member ``p1`` ``(B, K)`` and the expected
        action-unit scores ``(B, 5)`` (None without AU heads), in one run of the graph."""
        if not self.has_au:
            return self.predict(clips), None
        x = np.ascontiguousarray(clips.detach().cpu().numpy(), dtype=np.float32)
        members, au = self.session.run(["p1_members", "au"], {"clip": x})
        return members.astype(np.float64), au.astype(np.float64)

    def p1(self, clips: torch.Tensor) -> np.ndarray:
        return self.predict(clips).mean(axis=1)


def onnx_ensemble(ens: FoldEnsemble, quantize: str = "none", threads: int | None = None,
                  cache_dir: str | Path | None = None) -> OnnxEnsemble:
    """``ens`` exported (or taken from the cache, :func:`exported_model`) and loaded in onnxruntime;
    says which in the log."""
    _require_onnx()  # a clear error before any export work
    path, reused = exported_model(ens, quantize, cache_dir)
    if reused:  # a new export was logged when it was written
        log.info("onnx backend: reusing %s (%s, %.1f MB)", path, "int8" if quantize == "int8" else "fp32", _mb(path))
    return OnnxEnsemble(ens, path, threads)


def scoring_ensemble(ens: FoldEnsemble, backend: str, device: torch.device, quantize: str = "none",
                     threads: int | None = None, cache_dir: str | Path | None = None) -> tuple[FoldEnsemble | OnnxEnsemble, str]:
    """The scorer ``mfe predict`` uses and one line saying which: ``backend`` ``auto`` is
    onnxruntime on a CPU (torch without the ``[onnx]`` extra) and torch on a GPU; ``threads``
    sets either backend's CPU threads; ``cache_dir``: where the ONNX export is kept
    (:func:`exported_model`)."""
    backend = resolve_backend(backend, device)
    if quantize != "none" and backend != "onnx":
        raise ValueError(f"--quantize {quantize} needs the onnx backend (got --backend {backend})")
    if backend == "onnx":
        scorer = onnx_ensemble(ens, quantize, threads, cache_dir)
        return scorer, f"backend onnxruntime ({'int8' if quantize == 'int8' else 'fp32'}, {scorer.threads} threads)"
    if threads:
        torch.set_num_threads(int(threads))
    return ens, f"backend torch ({torch.get_num_threads()} CPU threads)" if device.type == "cpu" else "backend torch"
