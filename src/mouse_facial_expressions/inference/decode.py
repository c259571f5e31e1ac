"""Decode, align and crop videos for scoring, in this process or in worker processes.

Torch-free on purpose: spawned decode workers import only this module (and the io and
preprocess stages), so a pool starts in a fraction of a second instead of importing torch.

:func:`decoded_videos` yields each video's uint8 crops with its kept frames: decoded here
(``workers=0``) or by ``workers`` processes, each on its own videos. A worker puts the crops
in a shared-memory block and sends back only its name, shape and the small index table, so
crops are never pickled; the consumer reads them in place and calls :meth:`Decoded.release`.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context, shared_memory
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.io.keypoints import read_pose, to_canonical
from mouse_facial_expressions.preprocess.extract import read_keypoints


def load_keypoints(path: str | Path, cfg: Config | None = None, individual: str | None = None) -> pd.DataFrame:
    """Canonical keypoint table, one row per frame, from a canonical parquet or a DLC/SLEAP file.

    Pose files are converted with ``cfg.keypoints.bodyparts`` (and ``individual``, default
    ``cfg.keypoints.individual``: which animal of a multi-animal file); both go through
    :func:`preprocess.extract.read_keypoints`, as extraction reads them. Errors name ``path``.
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return read_keypoints(path)
    cfg = cfg or Config()
    individual = individual if individual is not None else cfg.keypoints.individual
    # checked in memory, so every error names the user's file
    return read_keypoints(to_canonical(read_pose(path, individual), cfg.keypoints.bodyparts), where=path)


@dataclass
class Job:
    """One video to decode: its path and keypoint source (or the error that stops it)."""

    video: Path
    keypoints: Path | None
    error: str | None = None
    individual: str | None = None  # multi-animal pose files: which animal (None: the config's)


@dataclass
class Decoded:
    """A decoded video: crops ``(N, S, S)`` uint8, its kept frames and decode info, or the error."""

    video: Path
    crops: np.ndarray | None = None
    frames: pd.DataFrame | None = None
    info: dict = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    _shm: shared_memory.SharedMemory | None = None

    def release(self) -> None:
        """Drop the crops (and unlink their shared-memory block)."""
        self.crops = None
        if self._shm is not None:
            self._shm.close()
            self._shm.unlink()
            self._shm = None


def decode_job(job: Job, settings: dict, cfg) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Keypoints + one decode/align/crop pass (``preprocess.extract.crop_video``), which also
    normalises the video's kept crops as ``settings["normalize"]`` says (``video_hist``: one
    table from all of them, as ``mfe extract`` does)."""
    from mouse_facial_expressions.preprocess.extract import crop_video

    if job.error:
        raise FileNotFoundError(job.error)
    kp = load_keypoints(job.keypoints, cfg, job.individual)
    return crop_video(job.video, kp, settings, job.video.stem, kp_path=job.keypoints)


def _decode_to_shm(job: Job, settings: dict, cfg) -> dict:
    """Worker entry point: decode one video; crops go to shared memory. Never raises."""
    t0 = time.perf_counter()
    try:
        crops, frames, info = decode_job(job, settings, cfg)
    except Exception as err:  # one bad video fails alone
        return {"error": f"{type(err).__name__}: {err}", "seconds": time.perf_counter() - t0}
    shm = shared_memory.SharedMemory(create=True, size=max(1, crops.nbytes))
    np.ndarray(crops.shape, np.uint8, buffer=shm.buf)[...] = crops
    name = shm.name
    shm.close()  # the scoring process attaches, reads and unlinks it
    return {"shm": name, "shape": crops.shape, "frames": frames, "info": info, "seconds": time.perf_counter() - t0}


def _attach(job: Job, out: dict) -> Decoded:
    if "error" in out:
        return Decoded(job.video, error=out["error"], seconds=out["seconds"])
    shm = shared_memory.SharedMemory(name=out["shm"])
    crops = np.ndarray(tuple(out["shape"]), np.uint8, buffer=shm.buf)
    return Decoded(job.video, crops, out["frames"], out["info"], seconds=out["seconds"], _shm=shm)


def decoded_videos(jobs: Iterable[Job], settings: dict, cfg=None, workers: int = 0) -> Iterator[Decoded]:
    """Yield each job's :class:`Decoded` (in this process with ``workers=0``, else as workers
    finish). The consumer calls :meth:`Decoded.release` when done with the crops.

    A worker process that dies (killed, out of memory) fails only the videos it held; the
    pool is rebuilt for the rest.
    """
    jobs = list(jobs)
    if workers <= 0:
        for job in jobs:
            t0 = time.perf_counter()
            try:
                crops, frames, info = decode_job(job, settings, cfg)
                yield Decoded(job.video, crops, frames, info, seconds=time.perf_counter() - t0)
            except Exception as err:  # one bad video fails alone
                yield Decoded(job.video, error=f"{type(err).__name__}: {err}", seconds=time.perf_counter() - t0)
        return
    todo = list(jobs)
    while todo:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_decode_to_shm, job, settings, cfg): job for job in todo}
            todo = []
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    out = fut.result()
                except BrokenProcessPool:  # a worker died: retry the others in a new pool
                    todo.append(job)
                    continue
                except Exception as err:
                    out = {"error": f"{type(err).__name__}: {err}", "seconds": 0.0}
                yield _attach(job, out)
        if todo:
            first, todo = todo[0], todo[1:]  # the dead worker's video is not retried forever
            yield Decoded(first.video, error="the decode worker died on this video (killed or out of memory?)")


