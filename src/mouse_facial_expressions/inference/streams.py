"""Many videos at once: one batched model fed by decode workers, and live streams.

``inference.decode.decoded_videos`` decodes, aligns and crops videos in this process or in
worker processes (crops in shared memory). :class:`WindowScorer` collects the windows of every
decoded video and scores them in batches that span videos, on the model's device (pinned
host memory and non-blocking copies on CUDA). Per window the result does not depend on the
mode: the same crops, the same ``to_model_input``, the same model.

:func:`predict_live` scores one live source (a camera or an RTSP/HTTP URL that PyAV opens,
or a file) while a keypoint CSV grows beside it, or with a pose model computing each kept
frame's keypoints from the frame itself (:class:`ModelKeypoints`), writing each window's score
as soon as the window is complete.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mouse_facial_expressions.data.augment import to_model_input
from mouse_facial_expressions.inference.ensemble import FoldEnsemble
# GrowingKeypoints and ModelKeypoints stay importable from here (re-exported; they were defined here).
from mouse_facial_expressions.inference.live_keypoints import GrowingKeypoints, ModelKeypoints

log = logging.getLogger(__name__)


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
    whose every window now has a score, as ``(key, per_member (W, K), au)``: ``au`` is the
    windows' expected action-unit scores ``(W, 5)`` for a run with AU heads, else None.
    """

    def __init__(self, ens: FoldEnsemble, batch_size: int):
        self.ens = ens
        self.batch_size = int(batch_size)
        self.pin = ens.device.type == "cuda"
        self._queue: list[tuple[object, int, np.ndarray]] = []  # (key, window index, rows)
        self._crops: dict[object, np.ndarray] = {}
        self._aux: dict[object, np.ndarray] = {}
        self._left: dict[object, int] = {}
        self._out: dict[object, np.ndarray] = {}
        self._au: dict[object, np.ndarray] = {}
        self.has_au = bool(getattr(ens, "has_au", False))
        self.frames_scored = 0

    def add(self, key, crops: np.ndarray, windows: pd.DataFrame, aux: np.ndarray | None = None) -> None:
        """Queue a video's windows; ``aux``: a fused run's ``(W, F)`` features of those windows."""
        rows = windows["rows"].tolist() if len(windows) else []
        if aux is not None:
            self._aux[key] = np.asarray(aux, dtype=np.float32)
        self._crops[key] = crops
        self._left[key] = len(rows)
        self._out[key] = np.empty((len(rows), len(self.ens)))
        if self.has_au:
            self._au[key] = np.empty((len(rows), 5))
        self._queue += [(key, i, np.asarray(r, dtype=np.int64)) for i, r in enumerate(rows)]

    def run(self, final: bool = False) -> list[tuple[object, np.ndarray]]:
        while len(self._queue) >= self.batch_size or (final and self._queue):
            batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size:]
            clips = torch.stack([
                to_model_input(torch.from_numpy(np.ascontiguousarray(self._crops[k][rows])), self.ens.image_size, self.ens.channels)
                for k, _, rows in batch])  # (B, T, C, H, W)
            if self.pin:
                clips = clips.pin_memory()  # predict() copies it with non_blocking=True
            aux = None
            if self._aux:
                aux = torch.from_numpy(np.stack([self._aux[k][i] for k, i, _ in batch]))  # (B, F)
            if self.has_au:  # (B, K), (B, 5)
                p, au = self.ens.predict_au(clips)
            else:
                p, au = (self.ens.predict(clips, aux=aux) if aux is not None else self.ens.predict(clips)), None
            self.frames_scored += int(clips.shape[0] * clips.shape[1])
            for j, ((k, i, _), row) in enumerate(zip(batch, p)):
                self._out[k][i] = row
                if au is not None:
                    self._au[k][i] = au[j]
                self._left[k] -= 1
        done = [k for k, n in self._left.items() if n == 0]
        out = []
        for k in done:
            out.append((k, self._out.pop(k), self._au.pop(k, None)))
            del self._left[k], self._crops[k]
            self._aux.pop(k, None)
        return out


# ----------------------------------------------------------------------------- live streams


def on_time_grid(i: int, fps: float, target_fps: float) -> bool:
    """Whether frame ``i`` is on ``select.time_grid`` (computed for one frame, for streams)."""
    if target_fps >= fps:
        return True
    step = fps / target_fps
    j = int(round(i / step))
    return any(int(np.floor(k * step + 0.5)) == i for k in (j - 1, j, j + 1) if k >= 0)


def _open_source(source: str):
    import av

    if str(source).isdigit():  # a camera index
        return av.open(f"/dev/video{source}", format="v4l2")
    return av.open(str(source), options={"rtsp_transport": "tcp"} if str(source).startswith("rtsp") else None)


@dataclass
class LiveReport:
    """What :func:`predict_live` did."""

    out_csv: Path
    n_frames: int = 0
    n_kept: int = 0
    n_windows: int = 0
    stopped_by: str = "end of stream"


def predict_live(source: str, keypoints: str | Path | ModelKeypoints, ens: FoldEnsemble, out_csv: str | Path,
                 settings: dict, *,
                 bodyparts: dict | None = None, window_step: int | None = None, keypoint_timeout_s: float = 10.0,
                 poll_s: float = 0.02, name: str | None = None) -> LiveReport:
    """Score a live source as it plays; one CSV row per window as soon as the window is complete.

    Frames are kept as ``mfe extract`` keeps them with the ``temporal`` policy (side portraits
    on the ``target_fps`` time grid that pass the quality thresholds), windows are formed as
    ``data.sequences.make_windows`` forms them (runs split at gaps longer than the task's
    ``max_gap_s``; a run shorter than a window gives one resampled window when it ends), so a
    file scored live gives the windows ``mfe predict`` gives it. Each row is flushed at once.

    Intensity normalisation (the store's ``extract.normalize``, ``settings["normalize"]``):
    ``clahe`` works per crop, as offline. ``video_hist`` cannot see the rest of the stream: each
    window's crops are mapped with the table of EVERY crop kept so far
    (:class:`preprocess.normalize.RunningHistogram`), so the first windows of a stream are
    normalised from few crops and may score differently from ``mfe predict``; the table
    converges to the whole video's as the stream goes on (a window that completes with the
    last kept crop gets exactly the offline table).

    The face check (:mod:`preprocess.facecheck`) marks each window as offline: a window without a
    face is written with ``no_face`` True and empty scores, without running the model.

    Args:
        source: a camera index (``0`` -> ``/dev/video0``), an RTSP/HTTP URL or a file.
        keypoints: the growing keypoint CSV (see :class:`GrowingKeypoints`), or a
            :class:`ModelKeypoints` that computes each kept frame's keypoints from the frame.
        settings: ``inference.predict.model_settings`` of the ensemble.
        keypoint_timeout_s: stop when frame ``i``'s keypoints have not appeared and the file
            has not grown for this long.

    Returns:
        A :class:`LiveReport`; stops at the end of the stream, on Ctrl-C, or when the keypoints stop.
    """
    from mouse_facial_expressions.data.sequences import window_span
    from mouse_facial_expressions.io.video import _to_array
    from mouse_facial_expressions.preprocess import domain, facecheck, geometry
    from mouse_facial_expressions.preprocess import normalize as norm
    from mouse_facial_expressions.preprocess.extract import frame_geometry
    from mouse_facial_expressions.preprocess.quality import crop_quality

    if settings.get("policy", "temporal") != "temporal":
        raise ValueError(f"live scoring keeps frames as the 'temporal' policy does; the model's store used {settings['policy']!r}")
    method = norm.check_method(settings.get("normalize"))
    running = norm.RunningHistogram() if method == "video_hist" else None  # the table of the crops seen so far
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    name = name or Path(str(source)).stem
    model_kp = keypoints if isinstance(keypoints, ModelKeypoints) else None
    kp = None if model_kp is not None else GrowingKeypoints(keypoints, bodyparts)
    T, stride = int(settings["num_frames"]), int(settings["frame_stride"])
    span = window_span(T, stride)
    step = window_step or span
    size = int(settings["out_size"])
    report = LiveReport(out_csv)
    cols = ["video", "start_time", "end_time", "p1"] + ([f"p1_{n}" for n in ens.names] if len(ens) > 1 else [])
    has_au = bool(getattr(ens, "has_au", False))
    if has_au:  # a run with action-unit heads: each AU's expected score and the MGS total, per window
        from mouse_facial_expressions.data.predictions import AU_PREDICTION_COLUMNS

        cols += AU_PREDICTION_COLUMNS
    limits, _ = facecheck.training_limits(domain.training_summary(getattr(ens, "hparams", []))[0])
    cols += ["no_face", "no_face_reason"] if limits else []
    seg: list[tuple] = []  # kept frames of the current run not yet behind a window: (time, crop, index row)
    next_start = 0  # index into seg of the next window's first frame
    windowed = False  # the current run reached a full window (it is not a short run)
    max_gap = min(float(settings["max_gap_s"]), float(settings.get("window_max_gap_s", settings["max_gap_s"])))

    with open(out_csv, "w", encoding="utf-8") as out, _open_source(source) as container:
        out.write(",".join(cols) + "\n")
        out.flush()

        def emit(rows: np.ndarray) -> None:
            crops = np.stack([seg[r][1] for r in rows])
            if running is not None:
                crops = running.apply(crops)
            why = ""
            if limits:  # the face check, on the window's distinct crops as offline
                u, first = np.unique(rows, return_index=True)
                feats = facecheck.frame_features(crops[first], pd.DataFrame([seg[r][2] for r in u]))
                why = facecheck.check_windows(feats, pd.DataFrame({"rows": [list(range(len(u)))]}), limits)[0]
            if why:
                p, au = np.full(len(ens), np.nan), (np.full((1, 5), np.nan) if has_au else None)
            else:
                clip = to_model_input(torch.from_numpy(crops), ens.image_size, ens.channels)
                p, au = ens.predict_au(clip[None]) if has_au else (ens.predict(clip[None]), None)
                p = p[0]  # (K,)
            vals = [name, f"{seg[rows[0]][0]:.6f}", f"{seg[rows[-1]][0]:.6f}", f"{p.mean():.8f}"]
            vals += [f"{v:.8f}" for v in p] if len(ens) > 1 else []
            vals += [f"{v:.6f}" for v in (*au[0], au[0].mean())] if au is not None else []
            vals += [str(bool(why)), why.replace(",", ";")] if limits else []
            out.write(",".join(vals) + "\n")
            out.flush()
            report.n_windows += 1

        def close_run() -> None:
            nonlocal seg, next_start, windowed
            if seg and not windowed and settings.get("short_runs", "resample") == "resample":
                emit(np.round(np.linspace(0, len(seg) - 1, T)).astype(np.int64))  # as make_windows resamples
            seg, next_start, windowed = [], 0, False

        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 30.0
        try:
            for i, frame in enumerate(container.decode(stream)):
                report.n_frames = i + 1
                while kp is not None and i not in kp.rows and kp.max_frame < i:  # wait for this frame's keypoints
                    if kp.poll() == 0 and i not in kp.rows and kp.max_frame < i:
                        if time.monotonic() - kp.last_growth > keypoint_timeout_s:
                            report.stopped_by = f"no keypoints for frame {i} within {keypoint_timeout_s:g} s"
                            raise StopIteration
                        time.sleep(poll_s)
                t = i / fps
                if not on_time_grid(i, fps, settings["target_fps"]):
                    if kp is not None:
                        kp.rows.pop(i, None)
                    continue
                row = kp.row(i) if kp is not None else model_kp.row(i, frame.to_ndarray(format="rgb24"))
                geo = frame_geometry(row, settings["pcutoff"], settings["crop_size"], size, settings.get("alignment"))
                if not geo["usable"][0]:
                    continue
                crop = geometry.warp_crop(_to_array(frame, "gray"), geo["matrix"][0], size)
                sharp, _ = crop_quality(crop)
                lik = geo["min_likelihood"][0]
                if not (sharp >= settings["min_sharpness"] and lik >= settings["min_likelihood"]):
                    continue
                if seg and t - seg[-1][0] > max_gap + 1e-9:
                    close_run()  # a gap ends the run, as split_runs / make_windows do
                if running is not None:
                    running.add(crop)
                elif method == "clahe":
                    crop = norm.clahe(crop[None])[0]
                seg.append((t, crop, {"sharpness": sharp, **{f"{r}_{c}": float(geo[r][0][j]) for r in ("eye", "ear", "nose")
                                                               if r in geo for j, c in enumerate("xy")}}))
                report.n_kept += 1
                while len(seg) - next_start >= span:
                    emit(next_start + np.arange(T) * stride)
                    next_start += step
                    windowed = True
                if windowed and next_start:  # frames before the next window are no longer needed
                    drop = min(next_start, len(seg) - 1)
                    seg, next_start = seg[drop:], next_start - drop
        except StopIteration:
            pass
        except KeyboardInterrupt:
            report.stopped_by = "Ctrl-C"
        close_run()
    return report
