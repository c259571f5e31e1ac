"""Face keypoints from a lab's own DeepLabCut model: ``mfe keypoints detect``.

Runs DeepLabCut 3 (PyTorch engine, the ``[dlc]`` extra) on the processed videos and writes
its output under DLC's own names, ``<dest>/<video>DLC_<scorer>.h5`` (default ``paths.dlc``),
where ``mfe keypoints import`` reads it unchanged.

- Resumable: a video whose DLC output (``<video>DLC_*.h5``) is not older than the video is
  skipped; a newer video (re-trimmed) is redone, as is every video with ``force``.
- Atomic: DLC writes into a hidden folder beside the output (``.<video>.detect-tmp-<pid>``);
  its files are renamed into place when it returns, the ``.h5`` last, so a killed run leaves
  no file that looks complete. A redone video's previous outputs under another scorer (an
  older model) are moved to ``<dest>/superseded/``, so ``import`` finds one file per video.
- One bad video fails alone: the others are done, then :class:`DetectError` names each
  failed video with its error.

deeplabcut is imported only when a video needs it; without it the error says how to
install it (:data:`DLC_INSTALL`).

:func:`load_frame_pose` loads the same project's model for one frame at a time
(``mfe predict --live SOURCE --dlc-config PATH``: keypoints computed from the stream itself).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mouse_facial_expressions.io.keypoints import video_name

log = logging.getLogger(__name__)

DLC_INSTALL = "pip install 'mouse-facial-expressions[dlc]'"
DEVICES = ("auto", "cpu", "cuda")
#: Folder (inside the output folder) that receives the outputs a redone video replaced.
SUPERSEDED = "superseded"
_TMP = re.compile(r"^\.(?P<video>.+)\.detect-tmp-(?P<pid>\d+)$")


class DetectError(ValueError):
    """Some videos failed; the message names each video and its error."""


@dataclass(frozen=True)
class DetectJob:
    """What ``detect`` will do with one video: ``run`` it (and why) or skip it."""

    video: Path
    run: bool
    reason: str
    outputs: tuple[Path, ...] = ()


# --------------------------------------------------------------------------- planning


def dlc_config_path(cfg, dlc_config: str | Path | None = None) -> Path:
    """The DeepLabCut project's ``config.yaml``: ``dlc_config``, else ``keypoints.dlc_config``.

    A folder means its ``config.yaml``; a relative ``keypoints.dlc_config`` is relative to
    the project folder (``dlc_config`` as given: to the current folder).

    Raises:
        ValueError: neither is set.
        FileNotFoundError: the file does not exist.
    """
    if dlc_config is None:
        dlc_config = cfg.keypoints.dlc_config
        if dlc_config is None:
            raise ValueError("no DeepLabCut project: pass --dlc-config PATH/config.yaml "
                             "or set keypoints.dlc_config in mfe.yaml")
        dlc_config = Path(dlc_config) if Path(dlc_config).is_absolute() else cfg.root / dlc_config
    path = Path(dlc_config)
    if path.is_dir():
        path = path / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no DeepLabCut config.yaml there (the project folder DLC created, "
                                "with a trained model under dlc-models-pytorch/)")
    return path.resolve()


def find_videos(cfg, videos: Sequence[str | Path] | None = None) -> list[Path]:
    """The videos to run: ``videos`` (paths, or names of processed videos with or without
    ``.mp4``), else every ``*.mp4`` of ``paths.processed_videos``.

    Raises:
        FileNotFoundError: a named video does not exist, or the folder holds none.
    """
    folder = cfg.path("processed_videos")
    if not videos:
        found = sorted(p for p in folder.glob("*.mp4") if not p.name.startswith("."))
        if not found:
            raise FileNotFoundError(f"no processed videos (*.mp4) in {folder}: run `mfe prepare` first")
        return found
    out, missing = [], []
    for v in videos:
        candidates = [Path(v), folder / str(v), folder / f"{v}.mp4"]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            missing.append(str(v))
        else:
            out.append(hit.resolve())
    if missing:
        raise FileNotFoundError(f"no such video(s): {', '.join(missing)} (give paths or names of videos in {folder})")
    return list(dict.fromkeys(out))


def find_outputs(dest: Path, video: str) -> list[Path]:
    """DLC analysis files of ``video`` in ``dest``: ``<video>DLC_<scorer>[_filtered].h5``."""
    if not dest.is_dir():
        return []
    return sorted(p for p in dest.glob(f"{glob_escape(video)}DLC_*.h5")
                  if not p.name.startswith(".") and video_name(p) == video)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def plan_detect(videos: Sequence[Path], dest: Path, force: bool = False) -> list[DetectJob]:
    """Run or skip each video: skip when its DLC output exists and is not older than it."""
    jobs = []
    for video in videos:
        outs = tuple(find_outputs(dest, video.stem))
        if not outs:
            jobs.append(DetectJob(video, True, "new"))
        elif force:
            jobs.append(DetectJob(video, True, "forced", outs))
        else:
            newest = max(outs, key=lambda p: p.stat().st_mtime_ns)
            if newest.stat().st_mtime_ns >= video.stat().st_mtime_ns:
                jobs.append(DetectJob(video, False, f"fresh: {newest.name}", outs))
            else:
                jobs.append(DetectJob(video, True, f"video is newer than {newest.name}", outs))
    return jobs


def dlc_available() -> bool:
    return importlib.util.find_spec("deeplabcut") is not None


def describe_detect(cfg, dlc_config=None, videos=None, dest=None, force: bool = False) -> str:
    """``mfe keypoints detect --dry-run``: the DLC project, and which videos run or skip, and why."""
    config = dlc_config_path(cfg, dlc_config)
    dest = Path(dest) if dest is not None else cfg.path("dlc")
    jobs = plan_detect(find_videos(cfg, videos), dest, force)
    todo = sum(j.run for j in jobs)
    lines = [f"DeepLabCut project {config}",
             f"deeplabcut: {'installed' if dlc_available() else 'not installed (' + DLC_INSTALL + ')'}",
             f"detect -> {dest}: {todo} to run, {len(jobs) - todo} fresh"]
    lines += [f"  {'run ' if j.run else 'skip'} {j.video.name}: {j.reason}" for j in jobs]
    return "\n".join(lines)


# --------------------------------------------------------------------------- running


def _import_deeplabcut():
    """``deeplabcut``, imported now; a clear ImportError when it is missing or broken."""
    if not dlc_available():  # checked first: importing torchvision costs seconds
        raise ImportError(f"DeepLabCut 3 is not installed (detect runs it); install it with: {DLC_INSTALL}")
    from mouse_facial_expressions.compat import import_torchvision

    import_torchvision()  # DLC imports torchvision, whose PyPI wheel needs this beside the CPU torch
    try:
        import deeplabcut
    except ModuleNotFoundError as err:
        if err.name != "deeplabcut":
            raise ImportError(f"deeplabcut is installed but cannot be imported ({err}); "
                              f"reinstall it with: {DLC_INSTALL}") from err
        raise ImportError(f"DeepLabCut 3 is not installed (detect runs it); install it with: {DLC_INSTALL}") from None
    return deeplabcut


@dataclass
class FramePose:
    """A DeepLabCut model scoring one frame at a time: ``pose(rgb)`` -> ``(n_bodyparts, 3)``
    (x, y, likelihood in the frame's pixels) of the first individual, in ``bodyparts`` order."""

    bodyparts: list[str]
    predict: Callable  # list of RGB (H, W, 3) uint8 frames -> list of DLC result dicts
    snapshot: Path

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        (res,) = self.predict([rgb])
        pose = np.asarray(res["bodyparts"], dtype=np.float64)
        if pose.ndim == 3:  # (individuals, bodyparts, coords): the first (one animal per face camera)
            pose = pose[0]
        return pose[:, :3]


def load_frame_pose(config: str | Path, shuffle: int = 1, trainingsetindex: int = 0,
                    snapshot_index: int | str | None = None, device: str = "auto") -> FramePose:
    """The project's trained model (the snapshot ``analyze_videos`` would use) for single frames.

    Bottom-up (single-animal) models only: a top-down model needs its detector on every frame;
    run DeepLabCut-live for it and pass the CSV it grows with ``--keypoints``.

    Raises:
        ImportError: deeplabcut is missing (the message holds :data:`DLC_INSTALL`).
        FileNotFoundError: no project config, or no trained snapshot for this shuffle.
    """
    config = Path(config)
    if config.is_dir():
        config = config / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"DeepLabCut project config not found: {config}")
    _import_deeplabcut()
    from deeplabcut.pose_estimation_pytorch.apis import utils
    from deeplabcut.pose_estimation_pytorch.data import DLCLoader
    from deeplabcut.pose_estimation_pytorch.task import Task

    loader = DLCLoader(str(config), trainset_index=trainingsetindex, shuffle=shuffle)
    if loader.pose_task != Task.BOTTOM_UP:
        raise ValueError(f"{config}: shuffle {shuffle} is a {loader.pose_task.value} model, which needs its detector on "
                         "every frame; run DeepLabCut-live on the stream and pass the keypoint CSV it writes with --keypoints")
    index, _ = utils.parse_snapshot_index_for_analysis(loader.project_cfg, loader.model_cfg, snapshot_index, None)
    try:
        snapshot = utils.get_model_snapshots(index, loader.model_folder, loader.pose_task)[0]
    except (FileNotFoundError, IndexError, ValueError) as err:
        raise FileNotFoundError(f"{config}: no trained snapshot for shuffle {shuffle} under {loader.model_folder} "
                                f"({err}); train it with deeplabcut.train_network first") from err
    if device != "auto":
        loader.model_cfg["device"] = device
    runner = utils.get_pose_inference_runner(model_config=loader.model_cfg, snapshot_path=snapshot.path,
                                             max_individuals=len(loader.model_cfg["metadata"]["individuals"]),
                                             batch_size=1)
    return FramePose(list(loader.model_cfg["metadata"]["bodyparts"]), runner.inference, Path(snapshot.path))


def load_analyze() -> Callable:
    """``deeplabcut.analyze_videos``, imported now.

    Raises:
        ImportError: deeplabcut is missing (the message holds :data:`DLC_INSTALL`) or broken.
    """
    return _import_deeplabcut().analyze_videos


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_tmp(dest: Path) -> list[Path]:
    """Remove temporary folders that a killed run left in ``dest`` (their process is gone)."""
    removed = []
    if dest.is_dir():
        for p in dest.iterdir():
            m = _TMP.match(p.name)
            if m and p.is_dir() and (int(m["pid"]) == os.getpid() or not _pid_alive(int(m["pid"]))):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def run_one(analyze: Callable, config: Path, video: Path, dest: Path, options: dict) -> Path:
    """Run DLC on one video into a temporary folder, then move its files into ``dest``.

    Returns:
        The ``.h5`` written for the video.

    Raises:
        RuntimeError: DLC returned without writing ``<video>DLC_<scorer>.h5``.
        Whatever ``analyze`` raised; ``dest`` is unchanged then.
    """
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".{video.stem}.detect-tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        analyze(str(config), [str(video)], destfolder=str(tmp), **options)
        written = sorted(p for p in tmp.iterdir() if p.is_file())
        h5 = [p for p in written if p.suffix == ".h5" and video_name(p) == video.stem]
        if not h5:
            raise RuntimeError(f"DeepLabCut wrote no {video.stem}DLC_<scorer>.h5 "
                               f"(it wrote: {', '.join(p.name for p in written) or 'nothing'})")
        previous = [p for p in dest.iterdir() if p.is_file() and p.name.startswith(f"{video.stem}DLC_")
                    and video_name(p) == video.stem and not (tmp / p.name).exists()]
        for p in sorted(written, key=lambda p: p.suffix == ".h5"):  # the .h5 marks the video done: last
            os.replace(p, dest / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if previous:  # outputs of another model: keep them, but out of import's way
        (dest / SUPERSEDED).mkdir(exist_ok=True)
        for p in previous:
            os.replace(p, dest / SUPERSEDED / p.name)
        log.info("%s: moved %d previous output file(s) to %s", video.stem, len(previous), dest / SUPERSEDED)
    return dest / h5[0].name


def detect_keypoints(
    cfg,
    dlc_config: str | Path | None = None,
    videos: Sequence[str | Path] | None = None,
    dest: str | Path | None = None,
    shuffle: int = 1,
    trainingsetindex: int = 0,
    snapshot_index: int | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    save_as_csv: bool = False,
    force: bool = False,
    analyze: Callable | None = None,
) -> list[Path]:
    """Run a trained DeepLabCut model on the processed videos (see the module docstring).

    Args:
        cfg: the project configuration (folders, ``keypoints.dlc_config``).
        dlc_config: the DLC project's ``config.yaml`` (default ``keypoints.dlc_config``).
        videos: paths or names of processed videos (default: every ``*.mp4`` of
            ``paths.processed_videos``).
        dest: output folder (default ``paths.dlc``).
        shuffle, trainingsetindex: which of the DLC project's models (as DLC names them).
        snapshot_index: which snapshot of it (DLC's ``snapshot_index``; ``None``: the
            project's ``snapshotindex``, -1 = the last).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        batch_size: frames per forward pass (``None``: the project's ``batch_size``).
        save_as_csv: also write DLC's ``.csv`` beside each ``.h5``.
        force: rerun videos whose output is fresh.
        analyze: stands in for ``deeplabcut.analyze_videos`` (tests, other DLC builds).

    Returns:
        The ``.h5`` of every video (written now or fresh).

    Raises:
        ValueError, FileNotFoundError: no DLC project, no videos (before anything runs).
        ImportError: deeplabcut is not installed (naming the pip command).
        DetectError: after the other videos are done, naming each video that failed and why.
    """
    from tqdm import tqdm

    if device not in DEVICES:
        raise ValueError(f"device {device!r}: choose one of {', '.join(DEVICES)}")
    config = dlc_config_path(cfg, dlc_config)
    dest = Path(dest) if dest is not None else cfg.path("dlc")
    jobs = plan_detect(find_videos(cfg, videos), dest, force)
    todo = [j for j in jobs if j.run]
    outputs = [max(j.outputs, key=lambda p: p.stat().st_mtime_ns) for j in jobs if not j.run]
    if todo:
        analyze = analyze or load_analyze()
        remove_stale_tmp(dest)
    options = {"shuffle": shuffle, "trainingsetindex": trainingsetindex, "device": device,
               "batch_size": batch_size, "save_as_csv": save_as_csv}
    if snapshot_index is not None:
        options["snapshot_index"] = snapshot_index
    failures = []
    for job in tqdm(todo, desc="detect", unit="video", disable=None):
        try:
            outputs.append(run_one(analyze, config, job.video, dest, options))
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - one bad video fails alone, reported below
            failures.append(f"  {job.video.name}: {type(err).__name__}: {err}")
    log.info("detect: %d run, %d fresh, %d failed -> %s", len(todo) - len(failures), len(jobs) - len(todo),
             len(failures), dest)
    if failures:
        raise DetectError(f"{len(failures)} of {len(todo)} videos failed (the others are done; rerun to retry):\n"
                          + "\n".join(failures))
    return sorted(outputs)
