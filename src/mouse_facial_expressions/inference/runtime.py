"""A trained model at run time: the settings its inputs are made with, and its device.

:func:`model_settings` gives the extraction and window settings that reproduce the crops and
windows a model was trained and tested on (from its task's frame store, else the project's
config); :func:`resolve_device` the device and precision it scores with. Apart from
:mod:`~mouse_facial_expressions.inference.predict` because every way of scoring (videos, still
images, live streams, another cohort's task) starts from them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.data.task_files import TaskFiles
from mouse_facial_expressions.inference.ensemble import FoldEnsemble
from mouse_facial_expressions.preprocess import store
from mouse_facial_expressions.preprocess.alignment import resolve as resolve_alignment

#: The logger of ``inference.predict``, where these functions were: log lines keep their name.
log = logging.getLogger("mouse_facial_expressions.inference.predict")

#: Extraction settings predict needs (the keys of ``store.json``).
EXTRACT_KEYS = ("out_size", "crop_size", "policy", "target_fps", "every_k", "n_sharpest", "min_sharpness",
                "min_likelihood", "max_gap_s", "pcutoff", "alignment", "normalize")


# ----------------------------------------------------------------------------- settings

def _task_settings(task_dir: Path) -> tuple[dict, Path | None]:
    """(window settings and class names, frame store folder) of the task a model was trained on."""
    from mouse_facial_expressions.data.tasks import load_spec
    from mouse_facial_expressions.training.domain import task_frames_dir

    spec = load_spec(task_dir / TaskFiles.SPEC)
    return ({"window_max_gap_s": spec.max_gap_s, "short_runs": spec.short_runs, "class_names": list(spec.class_names)},
            task_frames_dir(task_dir))


def model_settings(ens: FoldEnsemble, cfg: Config | None = None) -> dict:
    """Extraction + window settings that reproduce what the model was trained and tested on.

    Order: the frame store the model's task was made from (its ``store.json``: out_size,
    crop_size, policy, target_fps, thresholds, pcutoff, alignment, normalize: so the crops
    :func:`preprocess.extract.crop_video` makes are normalised as the store's were; a store
    written before ``normalize`` existed means ``none``), else ``cfg.extract`` /
    ``cfg.keypoints.pcutoff`` (``cfg`` default: :class:`Config` defaults). Windows: the
    checkpoint's ``num_frames``/``frame_stride``, the task's ``max_gap_s``/``short_runs``
    (default 0.5 s / resample). ``source`` says where the extraction settings came from.
    """
    cfg = cfg or Config()
    s = {k: getattr(cfg.extract, k) for k in EXTRACT_KEYS if k != "pcutoff"}
    s["pcutoff"] = cfg.keypoints.pcutoff
    s["max_count_mismatch"] = cfg.extract.max_count_mismatch
    s["alignment"] = resolve_alignment(cfg.extract.alignment).to_setting()  # as store.json records it
    s.update(window_max_gap_s=0.5, short_runs="resample", source="config", class_names=["class 0", "class 1"])
    task_dir = ens.data.get("task_dir")
    if task_dir and (Path(task_dir) / TaskFiles.SPEC).is_file():
        win, fdir = _task_settings(Path(task_dir))
        s.update(win)
        stored = store.read_store_json(fdir) if fdir is not None else None
        if stored:
            s.update({k: stored[k] for k in EXTRACT_KEYS if k in stored})
            if "alignment" not in stored:  # written before extract.alignment existed: the original's
                s["alignment"] = "dlc_face"
            if "normalize" not in stored:  # written before extract.normalize existed: raw crops
                s["normalize"] = "none"
            s["source"] = str(fdir / store.STORE_JSON)
    if s["source"] == "config" and task_dir:
        log.warning("the model's frame store is not reachable (task %s): using the project's extract settings", task_dir)
    s.update(num_frames=ens.num_frames, frame_stride=ens.frame_stride, image_size=ens.image_size,
             channels=ens.channels)
    return s


def resolve_device(device: str = "auto", precision: str | None = None) -> tuple[torch.device, torch.dtype, str]:
    """``(device, autocast dtype, one line saying so)``: ``auto`` is CUDA when available; the
    precision defaults to bf16 on a GPU and fp32 on a CPU (``"32"`` / ``"bf16"`` force one)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        gpu_note = "" if device == "cuda" else "no GPU found: scoring on the CPU"
    else:
        gpu_note = ""
    dev = torch.device(device)
    if precision in (None, "auto"):
        precision = "bf16" if dev.type == "cuda" else "32"
    dtype = torch.bfloat16 if "bf16" in str(precision) else torch.float32
    line = gpu_note or f"scoring on {dev.type.upper() if dev.type == 'cuda' else dev.type}"
    return dev, dtype, f"{line} ({'bf16' if dtype == torch.bfloat16 else 'fp32'}, {torch.get_num_threads()} CPU threads)"
