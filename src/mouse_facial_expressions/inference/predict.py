"""``mfe predict``: score new videos with a trained model, no frame store needed.

Per video:

1. keypoints: a canonical parquet, or any DeepLabCut/SLEAP file converted with the project's
   ``keypoints.bodyparts`` mapping;
2. the SAME frame choice and crops as ``mfe extract``: :func:`preprocess.extract.frame_geometry`,
   :func:`preprocess.select.candidates` / ``final_choice`` / ``split_runs``,
   :func:`preprocess.geometry.warp_crop` and :func:`preprocess.quality.crop_quality`, with the
   settings of the frame store the model was trained on (see :func:`model_settings`),
   intensity normalisation (``extract.normalize``) included: ``video_hist`` pools all kept
   crops of the video, as extraction does;
3. ONE sequential decode pass (``iter_frames``) that warps only the candidate frames;
4. windows exactly as training/evaluation form them (:func:`data.sequences.make_windows`
   with the checkpoint's ``num_frames``/``frame_stride`` and the task's ``max_gap_s``/
   ``short_runs``), every ``window_step`` kept frames (default: the window span, i.e. the
   non-overlapping windows evaluation scores);
5. clips through :func:`data.augment.to_model_input` (as the loader does) and the model
   (a fold ensemble: ``p1`` = mean over folds), in batches; on a CPU through onnxruntime by
   default (``inference.onnx_backend``).

Checks (:mod:`inference.checks`): keypoints without the landmarks the model's alignment needs
are refused up front (the message names the model's alignment; a project whose
``extract.alignment`` differs from the model's gets a note); a video with fewer kept frames than
one window spans is not scored (``failed``, "too short"); each window's crops go through the face
check (:mod:`preprocess.facecheck`): windows without a face are not scored (NaN scores,
``no_face``), and a video with more than half of them gets no score (``failed``, "no face").

Outputs in ``out_dir``: ``<video>_scores.csv`` (video, start_time, end_time, p1 and one
``p1_<fold>`` column per ensemble member; a run with action-unit heads adds ``au_ot`` ...
``au_wc`` and ``mgs``; ``no_face``, ``no_face_reason``), ``<video>_seconds.csv`` (the same per second of video),
``<video>_timecourse.png``, ``summary.csv``
(one row per video, failures included) and, with ``preview``, ``<video>_preview.png`` (a
contact sheet of the scored crops); what they hold is written by ``inference.outputs``.
``<video>`` is the file stem, prefixed with the parent folder (``day2__cam``) when two videos of
the call share a stem or ``summary.csv`` already holds the stem for another file
(:func:`inference.checks.output_names`); ``summary.csv`` rows carry the file's path (``source``).

Memory: the kept crops of one video are held (``out_size``\\ :sup:`2` bytes each, 12.5 kB
at 112 px: about 340 MB for an hour at 7.5 fps) because the ``seed`` policy chooses frames
only after every candidate was scored.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.data.augment import to_model_input
from mouse_facial_expressions.data.sequences import make_windows, window_span
from mouse_facial_expressions.inference import checks
from mouse_facial_expressions.inference.decode import load_keypoints  # noqa: F401  (re-exported: part of this module's API)
from mouse_facial_expressions.inference.ensemble import FoldEnsemble, load_ensemble
from mouse_facial_expressions.inference.onnx_backend import OnnxEnsemble, scoring_ensemble
from mouse_facial_expressions.inference.outputs import (SUMMARY_COLUMNS, PredictReport, VideoPrediction,  # noqa: F401
                                                        column_descriptions, domain_warning, finish_video, merge_summary,
                                                        write_preview)
from mouse_facial_expressions.inference.runtime import (  # noqa: F401  (re-exported: part of this module's API)
    EXTRACT_KEYS, _task_settings, model_settings, resolve_device)
from mouse_facial_expressions.io.atomic import write_csv, write_text
from mouse_facial_expressions.io.keypoints import VIDEO_SUFFIXES, find_pose_files, video_name
from mouse_facial_expressions.preprocess import domain, facecheck
from mouse_facial_expressions.preprocess.alignment import resolve as resolve_alignment

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- inputs

def windows_for(frames: pd.DataFrame, s: dict, window_step: int | None = None) -> pd.DataFrame:
    """Windows over one video's kept frames, as :func:`data.sequences.make_windows` forms them."""
    step = window_step or window_span(s["num_frames"], s["frame_stride"])
    return make_windows(frames, s["num_frames"], s["frame_stride"], s["window_max_gap_s"], s["short_runs"], step=step)


# ----------------------------------------------------------------------------- scoring

def clip_batches(windows: pd.DataFrame, ens, batch_size: int = 16, crops=None, crops_of=None):
    """``(start, clips)`` for the rows of ``windows`` in batches: model input ``(B, T, C, H, W)``.

    ``crops``: ``(N, S, S)`` uint8 crops (array or memmap) indexed by the windows' ``rows``; or
    None with ``crops_of(video) -> array`` (several videos)."""
    rows = windows["rows"].tolist()
    videos = windows["video"].astype(str).tolist()
    for a in range(0, len(windows), batch_size):
        clips = []
        for i in range(a, min(a + batch_size, len(windows))):
            arr = crops if crops_of is None else crops_of(videos[i])
            frames = torch.from_numpy(np.ascontiguousarray(arr[np.asarray(rows[i], dtype=np.int64)]))  # (T, S, S)
            clips.append(to_model_input(frames, ens.image_size, ens.channels))  # (T, C, H, W)
        yield a, torch.stack(clips)


def score_windows(crops, windows: pd.DataFrame, ens: FoldEnsemble, batch_size: int = 16,
                  crops_of=None) -> np.ndarray:
    """Per-member ``p1`` of every window.

    Args:
        crops: ``(N, S, S)`` uint8 crops (array or memmap) indexed by the windows' ``rows``;
            or None with ``crops_of(video) -> array`` (several videos).
        windows: window table (``rows``: ``num_frames`` row indices each).
        ens: the models.

    Returns:
        ``(W, K)`` float64.
    """
    return score_windows_au(crops, windows, ens, batch_size, crops_of)[0]


def score_windows_au(crops, windows: pd.DataFrame, ens: FoldEnsemble, batch_size: int = 16,
                     crops_of=None) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`score_windows` plus the windows' expected action-unit scores ``(W, 5)`` of a run
    with AU heads (``FoldEnsemble.predict_au``; None without them), in the same pass."""
    out = np.empty((len(windows), len(ens)))
    au = np.empty((len(windows), 5)) if getattr(ens, "has_au", False) else None
    for a, clips in clip_batches(windows, ens, batch_size, crops, crops_of):
        if au is None:
            out[a:a + len(clips)] = ens.predict(clips)  # (B, T, C, H, W) -> (B, K)
        else:
            out[a:a + len(clips)], au[a:a + len(clips)] = ens.predict_au(clips)  # (B, K), (B, 5)
    return out, au


def _list_videos(videos) -> list[Path]:
    if isinstance(videos, (str, Path)):
        p = Path(videos)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES and not q.name.startswith("."))
            if not found:
                raise FileNotFoundError(f"{p}: no videos ({', '.join(VIDEO_SUFFIXES)})")
            return found
        return [p]
    return [Path(v) for v in videos]


def _keypoint_files(keypoints) -> dict[str, Path] | Path:
    """A single file, or {video name: file} for a folder (canonical parquets and pose files)."""
    p = Path(keypoints)
    if p.is_file():
        return p
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such keypoint file or folder")
    found = dict(find_pose_files([p]))
    found.update({q.stem: q for q in sorted(p.glob("*.parquet")) if not q.name.startswith(".")})
    return found


def predict_videos(videos, keypoints, model, out_dir, *, cfg: Config | None = None, window_step: int | None = None,
                   batch_size: int | None = None, progress: bool | None = True, precision: str | None = None,
                   device: str = "auto", workers: int = 0, individual: str | None = None,
                   preview: bool = False, backend: str = "auto", quantize: str = "none",
                   threads: int | None = None, modalities=None, body=None, physiology=None) -> PredictReport:
    """Score videos with a trained model (``mfe predict``); one bad video fails alone.

    Args:
        videos: a video file, a folder of videos, or a list of files.
        keypoints: a keypoint file (one video) or a folder holding ``<video>.parquet`` canonical
            tables or DLC/SLEAP files (matched to videos by :func:`io.keypoints.video_name`).
        model: a run folder (fold ensemble), a ``.ckpt`` file, a :class:`FoldEnsemble`, or an
            :class:`~inference.onnx_backend.OnnxEnsemble` (scored as it is).
        out_dir: output folder (created).
        cfg: project config (keypoint mapping; extraction settings when the model's frame
            store is unreachable).
        window_step: kept frames between window starts (default: the window span).
        batch_size: windows per forward pass (default: 16 on a CPU, what fills a GPU).
        progress: progress bar over videos, with frames/s (None: only on a terminal).
        precision: ``"32"``, ``"bf16"`` or None (bf16 on a GPU, fp32 on a CPU).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        workers: decode/align/crop processes, each on its own videos; their crops reach
            this process through shared memory and one model scores the windows of every
            video in shared batches (``inference.streams``). 0: decode here, one video
            after the other. The scores are the same either way.
        individual: multi-animal DLC/SLEAP files: the animal to read (default
            ``cfg.keypoints.individual``).
        preview: also write ``<video>_preview.png``, a contact sheet of the scored crops.
        backend: ``"auto"`` (onnxruntime on a CPU, torch on a GPU), ``"torch"`` or ``"onnx"``
            (``inference.onnx_backend``: the ensemble exported once and cached beside the run).
        quantize: ``"none"`` or ``"int8"`` (onnx backend only).
        threads: CPU threads of the model (default: the cores available to onnxruntime,
            torch's own default for torch).
        modalities, body, physiology: a fused run's (``mfe train --modalities``) modalities to
            score with (default: all of the run's), its body keypoint files and its
            physiology.csv (:mod:`inference.modalities`); fused runs score with torch.

    A keypoint file whose name (:func:`io.keypoints.video_name`) is not the video's is used,
    with a warning in the log and in the report.

    Returns:
        A :class:`PredictReport`; ``summary.csv`` in ``out_dir`` lists every video scored
        there, by this call and earlier ones (:func:`merge_summary`).
    """
    from mouse_facial_expressions.inference.decode import Job, decoded_videos
    from mouse_facial_expressions.inference.streams import WindowScorer, default_batch_size

    from mouse_facial_expressions.inference.modalities import resolve_inputs, window_features

    dev, dtype, line = resolve_device(device, precision)
    paths = _list_videos(videos)
    inputs = None
    if isinstance(model, OnnxEnsemble):  # already exported and loaded (benchmarks, notebooks)
        ens, backend_line = model, f"backend onnxruntime ({model.path.name}, {model.threads} threads)"
    else:
        ens = model if isinstance(model, FoldEnsemble) else load_ensemble(model)
        ens.require_absolute("`mfe predict` on videos")
        inputs = resolve_inputs(ens, paths, cfg, modalities, body, physiology)  # a fused run's other inputs
        ens.to(dev)
        ens.dtype = dtype
        if inputs is not None:
            if backend == "onnx":
                raise ValueError("a fused run (mfe train --modalities) scores with --backend torch")
            ens.use(inputs.use)
            backend = "torch"
            log.info(inputs.line())
        ens, backend_line = scoring_ensemble(ens, backend, dev, quantize, threads)
    log.info("%s; %s", line, backend_line)
    settings = model_settings(ens, cfg)
    train_domain, note = domain.training_summary(ens.hparams)  # the domain check (preprocess/domain.py)
    if note:
        log.warning(note)
    limits, face_note = facecheck.training_limits(train_domain)  # the face check (preprocess/facecheck.py)
    if face_note and not note:  # without any summary the domain check's note says it already
        log.warning(face_note)
    if inputs is not None:
        settings["modalities"] = inputs.line()
    kp_files = _keypoint_files(keypoints)
    if isinstance(kp_files, Path) and len(paths) > 1:
        raise ValueError(f"{keypoints}: one keypoint file for {len(paths)} videos; pass a folder of keypoint files")
    out_dir = Path(out_dir)
    names = checks.output_names(paths, checks.previous_sources(out_dir / "summary.csv"))
    jobs, mismatch, unfit = [], {}, []
    for vp in paths:
        kp = kp_files if isinstance(kp_files, Path) else kp_files.get(vp.stem) or kp_files.get(video_name(vp))
        error = (f"{vp.name}: no keypoint file for video {vp.stem!r} in {keypoints}" if kp is None
                 else f"{vp}: no such video" if not vp.is_file() else None)
        if kp is not None and error is None:
            have = checks.keypoint_landmarks(kp, cfg or Config(), resolve_alignment(settings["alignment"]).landmarks(),
                                             individual)
            error = checks.alignment_fit(have, settings["alignment"], kp)
            unfit += [error] if error else []
        if kp is not None and video_name(kp) not in (vp.stem, video_name(vp)):
            mismatch[vp] = (f"{vp.name}: the keypoint file {kp} is named for video {video_name(kp)!r}, not "
                            f"{vp.stem!r}; check that it belongs to this video")
            log.warning(mismatch[vp])
        jobs.append(Job(vp, kp, error, individual))
    if unfit and len(unfit) == len(jobs):  # no video could be aligned as the model's crops were
        raise ValueError(unfit[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    report = PredictReport(out_dir, settings)
    if (other := checks.alignment_mismatch(settings["alignment"], cfg)) is not None:
        log.warning(other)
        report.notes.append(other)
    scorer = WindowScorer(ens, batch_size or default_batch_size(dev))
    results: dict[Path, VideoPrediction] = {}
    pending: dict[Path, tuple] = {}
    t_start, frames_decoded = time.perf_counter(), 0
    bar = tqdm(total=len(jobs), desc="predict", unit="video", disable=None if progress is None else not progress)

    def finish(ready) -> None:
        for vp, per_member, au in ready:
            dec, windows, t0, no_face, keep, verdict = pending.pop(vp)
            name = names[vp]
            try:
                res = finish_video(name, dec.frames, dec.info, windows, checks.expand(per_member, keep), ens.names,
                                   out_dir, settings["class_names"][1], checks.expand(au, keep),
                                   no_face if limits else None, verdict)
                res.domain_warning = domain_warning(vp, dec.crops, dec.frames, train_domain, cfg, res.warnings, name)
                if verdict:
                    log.error("%s: %s", name, verdict)
                if preview:
                    res.preview_png = write_preview(dec.crops, dec.frames, windows[keep], out_dir / f"{name}_preview.png")
            except Exception as err:  # e.g. the disk filled while writing its outputs
                log.error("%s: %s", vp, err)
                res = VideoPrediction(name, "failed", error=f"{type(err).__name__}: {err}")
            finally:
                dec.release()
            res.elapsed_s = time.perf_counter() - t0
            res.source = checks.source_key(vp)
            results[vp] = res
            bar.update()

    def fail(dec, error: str) -> None:
        log.error("%s: %s", dec.video, error)
        results[dec.video] = VideoPrediction(names[dec.video], "failed", error=error, elapsed_s=dec.seconds,
                                             source=checks.source_key(dec.video))
        dec.release()
        bar.update()

    try:
        for dec in decoded_videos(jobs, settings, cfg, workers):
            t0 = time.perf_counter() - dec.seconds
            if dec.error:
                fail(dec, dec.error)
                continue
            frames_decoded += int(dec.info.get("n_video_frames", 0))
            if (short := checks.too_short(len(dec.frames), settings)) is not None:
                fail(dec, short)
                continue
            windows = windows_for(dec.frames, settings, window_step)
            aux = None
            if inputs is not None:
                try:
                    aux = window_features(inputs, dec.video.stem, windows, float(dec.info["fps"]))
                except (OSError, ValueError, KeyError) as err:  # this video's body file or physiology row
                    fail(dec, str(err))
                    continue
            no_face = facecheck.check_windows(facecheck.frame_features(dec.crops, dec.frames), windows, limits)
            verdict = facecheck.video_verdict(no_face)
            keep = np.array([not r and not verdict for r in no_face], bool)  # windows to score
            pending[dec.video] = (dec, windows, t0, no_face, keep, verdict)
            scorer.add(dec.video, dec.crops, windows[keep], None if aux is None else np.asarray(aux)[keep])
            finish(scorer.run())
            bar.set_postfix_str(f"{frames_decoded / max(time.perf_counter() - t_start, 1e-9):.0f} video frames/s")
        finish(scorer.run(final=True))
    finally:
        for dec, _, _ in pending.values():  # interrupted: no shared memory left behind
            dec.release()
        bar.close()
    for vp, warning in mismatch.items():
        if vp in results:
            results[vp].warnings.insert(0, warning)
    report.results = [results[vp] for vp in paths if vp in results]
    report.wall_s = time.perf_counter() - t_start
    report.video_frames_per_s = frames_decoded / max(report.wall_s, 1e-9)
    write_csv(merge_summary(out_dir / "summary.csv", report.summary_table()), out_dir / "summary.csv")
    columns = column_descriptions(settings["class_names"], columns=getattr(ens, "column_text", None))
    if inputs is not None:
        columns += f"\nThe model is a fused run: {inputs.line()}.\n"
    write_text(out_dir / "COLUMNS.md", columns)
    return report
