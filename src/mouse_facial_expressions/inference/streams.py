"""Many videos at once: decode workers feeding one batched model, and live streams.

:func:`decoded_videos` decodes, aligns and crops videos either in this process
(``workers=0``) or in ``workers`` processes, each on its own videos. A worker puts a video's
uint8 crops in a shared-memory block and sends back only its name, shape and the small index
table, so crops are never pickled. :class:`WindowScorer` collects the windows of every
decoded video and scores them in batches that span videos, on the model's device (pinned
host memory and non-blocking copies on CUDA). Per window the result does not depend on the
mode: the same crops, the same ``to_model_input``, the same model.

:func:`predict_live` scores one live source (a camera or an RTSP/HTTP URL that PyAV opens,
or a file) while a keypoint CSV grows beside it, writing each window's score as soon as the
window is complete.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context, shared_memory
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import torch

from mouse_facial_expressions.data.augment import to_model_input
from mouse_facial_expressions.inference.ensemble import FoldEnsemble

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One video to decode: its path and keypoint source (or the error that stops it)."""

    video: Path
    keypoints: Path | None
    error: str | None = None


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
    """Keypoints + one decode/align/crop pass (``preprocess.extract.crop_video``)."""
    from mouse_facial_expressions.inference.predict import load_keypoints
    from mouse_facial_expressions.preprocess.extract import crop_video

    if job.error:
        raise FileNotFoundError(job.error)
    kp = load_keypoints(job.keypoints, cfg)
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


def default_batch_size(device: torch.device) -> int:
    """Windows per forward pass: 16 on a CPU; on a GPU as many as fit a quarter of its free
    memory at about 2 MB per window of 10 frames at 112 px (bf16 activations), 16 to 512."""
    if device.type != "cuda":
        return 16
    free, _ = torch.cuda.mem_get_info(device)
    return int(np.clip(free // 4 // (2 << 20), 16, 512))


class WindowScorer:
    """Score the windows of several videos in shared batches.

    :meth:`add` queues one video's windows (its crops stay referenced until they are scored);
    :meth:`run` scores full batches (``final=True``: everything left) and returns the videos
    whose every window now has a score, as ``(key, per_member (W, K))``.
    """

    def __init__(self, ens: FoldEnsemble, batch_size: int):
        self.ens = ens
        self.batch_size = int(batch_size)
        self.pin = ens.device.type == "cuda"
        self._queue: list[tuple[object, int, np.ndarray]] = []  # (key, window index, rows)
        self._crops: dict[object, np.ndarray] = {}
        self._left: dict[object, int] = {}
        self._out: dict[object, np.ndarray] = {}
        self.frames_scored = 0

    def add(self, key, crops: np.ndarray, windows: pd.DataFrame) -> None:
        rows = windows["rows"].tolist() if len(windows) else []
        self._crops[key] = crops
        self._left[key] = len(rows)
        self._out[key] = np.empty((len(rows), len(self.ens)))
        self._queue += [(key, i, np.asarray(r, dtype=np.int64)) for i, r in enumerate(rows)]

    def run(self, final: bool = False) -> list[tuple[object, np.ndarray]]:
        while len(self._queue) >= self.batch_size or (final and self._queue):
            batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size:]
            clips = torch.stack([
                to_model_input(torch.from_numpy(np.ascontiguousarray(self._crops[k][rows])), self.ens.image_size, self.ens.channels)
                for k, _, rows in batch])  # (B, T, C, H, W)
            if self.pin:
                clips = clips.pin_memory()  # predict() copies it with non_blocking=True
            p = self.ens.predict(clips)  # (B, K)
            self.frames_scored += int(clips.shape[0] * clips.shape[1])
            for (k, i, _), row in zip(batch, p):
                self._out[k][i] = row
                self._left[k] -= 1
        done = [k for k, n in self._left.items() if n == 0]
        out = []
        for k in done:
            out.append((k, self._out.pop(k)))
            del self._left[k], self._crops[k]
        return out
