"""``mfe extract``: processed videos + canonical keypoints -> aligned, scored face crops.

Per video (:func:`extract_video`): refuse a video whose last ``mfe keypoints import`` failed
(:mod:`io.keypoint_status`), warn when its pose file is older than the video, crop it
(:func:`preprocess.crop.crop_video`: one decode pass; frames whose face centre is off the video
frame are dropped, the others carry quality flags) and write the frame store atomically.

:func:`extract_videos` runs that over a project's videos, skipping complete ones,
optionally over a process pool (``workers``) and one share of the videos (``shard``).
A video that fails is reported; the others go on.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from mouse_facial_expressions import provenance
from mouse_facial_expressions.config import Config
from mouse_facial_expressions.io import keypoint_status
from mouse_facial_expressions.io.keypoints import canonical_meta
from mouse_facial_expressions.io.video import VideoError
from mouse_facial_expressions.preprocess import alignment as alignment_mod
from mouse_facial_expressions.preprocess import domain, normalize, store
from mouse_facial_expressions.preprocess.crop import (  # noqa: F401  (the one-video API, re-exported)
    ExtractError,
    check_landmarks,
    crop_video,
    frame_geometry,
    landmark_quality,
    read_keypoints,
)

log = logging.getLogger(__name__)

#: :func:`video_status`'s reason when the video's last ``mfe keypoints import`` failed.
IMPORT_FAILED = "keypoints import failed"


@dataclass
class VideoResult:
    """Outcome of one video: ``status`` is ``done``, ``skipped`` or ``failed``."""

    video: str
    status: str
    n_stored: int = 0
    n_candidates: int = 0
    n_video_frames: int = 0
    n_keypoint_rows: int = 0
    seconds: float = 0.0
    decode_seconds: float = 0.0  # the decode + warp pass alone
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why it was (re)done: "new", "keypoints changed", ...
    quality: dict = field(default_factory=dict)  # landmark-quality counts (preprocess.crop.crop_video info)


@dataclass
class ExtractReport:
    """What :func:`extract_videos` did, one :class:`VideoResult` per video."""

    frames_dir: Path
    results: list[VideoResult] = field(default_factory=list)

    def _with(self, status: str) -> list[VideoResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[VideoResult]:
        return self._with("done")

    @property
    def skipped(self) -> list[VideoResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[VideoResult]:
        return self._with("failed")

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"extract -> {self.frames_dir}: {len(self.done)} done "
                 f"({sum(r.n_stored for r in self.done)} crops), {len(self.skipped)} skipped "
                 f"(fresh), {len(self.failed)} failed"]
        redone = {r.video: r.reasons for r in self.results if r.status != "skipped" and r.reasons and r.reasons != ["new"]}
        if redone:
            lines[0] += f"; {provenance.summarise(redone)}"
        for r in self.results:
            for w in r.warnings:
                lines.append(f"  warning: {w}")
        for r in self.failed:
            lines.append(f"  FAILED {r.video}: {r.error}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- one video

def extract_video(cfg: Config, video: str, fmt: str | None = None) -> VideoResult:
    """Extract one video into the frame store (overwrites its outputs).

    Raises:
        FileNotFoundError, ExtractError, VideoError: the video cannot be extracted.
    """
    t0 = time.perf_counter()
    video_path = cfg.path("processed_videos") / f"{video}.mp4"
    kp_path = cfg.path("keypoints") / f"{video}.parquet"
    res = VideoResult(video, "failed")
    failed = keypoint_status.import_failure(kp_path)
    if failed is not None:  # the table left (if any) was made from an earlier pose file
        raise ExtractError(keypoint_status.failure_message(kp_path, failed))
    made_from = provenance.record(_inputs(cfg, video), _settings(cfg))  # fingerprinted before reading
    kp = read_keypoints(kp_path)
    res.n_keypoint_rows = len(kp)
    crops, index, info = crop_video(video_path, kp, _settings(cfg), video, kp_path)
    res.n_candidates, res.decode_seconds = info["n_candidates"], info["decode_seconds"]
    res.n_video_frames, res.quality = info["n_video_frames"], info["quality"]
    old_pose = _pose_age_warning(cfg, kp_path, video_path)
    for w in ([old_pose] if old_pose else []) + info["warnings"]:
        res.warnings.append(w)
        log.warning(w)
    meta = {"fps": info["fps"], "n_video_frames": info["n_video_frames"], "n_keypoint_rows": len(kp), **_settings(cfg),
            "provenance": made_from}
    meta["domain"] = domain.video_summary(crops, index)  # the domain check's record (preprocess/domain.py)
    meta["synthetic"] = domain.is_synthetic_project(cfg.root)
    meta["quality"] = info["quality"]
    store.write_video_frames(cfg.path("frames"), video, crops, index, meta, png=(fmt or cfg.extract.format) == "png")
    res.status, res.n_stored = "done", len(index)
    res.seconds = time.perf_counter() - t0
    return res


def _pose_age_warning(cfg: Config, kp_path: Path, video_path: Path) -> str | None:
    """:func:`io.keypoint_status.pose_age_warning` for the pose file a canonical table was imported
    from (its ``source``; the recorded mtime when the file is gone); None in synthetic projects."""
    if domain.is_synthetic_project(cfg.root):
        return None
    try:
        meta = canonical_meta(kp_path)
    except Exception:  # unreadable metadata: read_keypoints has read the table itself
        return None
    recorded = (meta.get("provenance") or {}).get("inputs", {}).get("pose file") or {}
    if not meta.get("source") or not recorded:
        return None  # written by hand or before provenance records
    return keypoint_status.pose_age_warning(meta["source"], video_path, recorded.get("mtime_ns"))


def _settings(cfg: Config) -> dict:
    ex = cfg.extract
    return {"out_size": ex.out_size, "crop_size": ex.crop_size, "policy": ex.policy,
            "target_fps": ex.target_fps, "every_k": ex.every_k, "n_sharpest": ex.n_sharpest,
            "min_sharpness": ex.min_sharpness, "min_likelihood": ex.min_likelihood,
            "max_gap_s": ex.max_gap_s, "pcutoff": cfg.keypoints.pcutoff,
            "max_count_mismatch": ex.max_count_mismatch,
            "alignment": alignment_mod.resolve(ex.alignment).to_setting(),
            "normalize": ex.normalize}


def _inputs(cfg: Config, video: str) -> dict[str, Path]:
    """What a video's crops are made from (its provenance roles)."""
    return {"video": cfg.path("processed_videos") / f"{video}.mp4", "keypoints": cfg.path("keypoints") / f"{video}.parquet"}


def video_status(cfg: Config, video: str) -> list[str]:
    """Why ``video`` must be (re)extracted: ``[]`` when its crops are fresh, else the reasons
    (``["new"]``, ``["keypoints changed"]``, ``["settings changed: crop_size 128 -> 150"]``, ...;
    :data:`IMPORT_FAILED` alone when the last keypoint import of the video failed)."""
    frames_dir = cfg.path("frames")
    if keypoint_status.import_failure(cfg.path("keypoints") / f"{video}.parquet") is not None:
        return [IMPORT_FAILED]  # extract refuses it; task make refuses crops it has from an earlier pose file
    if not store.index_path(frames_dir, video).is_file():
        return ["new"]
    if not store.is_complete(frames_dir, video):
        return ["incomplete"]
    try:
        recorded = store.video_meta(frames_dir, video).get("provenance")
    except Exception as err:  # unreadable metadata
        return [f"unreadable record ({err})"]
    if recorded and "settings" in recorded:  # stores from before extract.alignment/normalize used the defaults
        recorded["settings"].setdefault("alignment", alignment_mod.DEFAULT)
        recorded["settings"].setdefault("normalize", normalize.DEFAULT)
    return provenance.changes(recorded, _inputs(cfg, video), _settings(cfg))


def _run_one(cfg: Config, video: str, fmt: str | None, overwrite: bool) -> VideoResult:
    """Worker entry point: never raises; failures come back as a ``failed`` result.

    Fresh videos are skipped; stale ones are redone beside their old outputs, which stay in
    place until the new ones are complete (and stay when this fails)."""
    frames_dir = cfg.path("frames")
    store.clean_partial(frames_dir, video)  # stray temporary files of a killed run only
    reasons = video_status(cfg, video)
    if not reasons and not overwrite:
        return VideoResult(video, "skipped")
    reasons = reasons or ["--overwrite"]
    try:
        res = extract_video(cfg, video, fmt)
        res.reasons = reasons
        return res
    except Exception as err:  # one bad video must not stop the others
        store.clean_partial(frames_dir, video)
        expected = (ExtractError, FileNotFoundError, OSError, ValueError, VideoError)
        msg = str(err) if isinstance(err, expected) else f"{type(err).__name__}: {err}"
        log.error("%s: %s", video, msg)
        return VideoResult(video, "failed", error=msg, reasons=reasons)


def describe_status(cfg: Config, videos: list[str] | None = None, shard=None, overwrite: bool = False) -> str:
    """``mfe extract --dry-run``: what would be skipped (fresh) or (re)done, and why."""
    names = list_videos(cfg, videos, shard)
    lines, todo = [], 0
    for v in names:
        reasons = video_status(cfg, v)
        if reasons or overwrite:
            todo += 1
            lines.append(f"  extract {v}: {', '.join(reasons or ['--overwrite'])}")
        else:
            lines.append(f"  skip    {v}: fresh")
    return f"extract -> {cfg.path('frames')}: {todo} to do, {len(names) - todo} fresh\n" + "\n".join(lines)


# ----------------------------------------------------------------------------- many videos

def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``."""
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise ValueError(f"shard must look like i/n (e.g. 0/4), got {shard!r}") from None
    else:
        i, n = shard
    if not 0 <= i < n:
        raise ValueError(f"shard {i}/{n}: need 0 <= i < n")
    return i, n


def list_videos(cfg: Config, videos: list[str] | None = None, shard=None) -> list[str]:
    """Sorted video names to extract (``<processed_videos>/*.mp4`` stems), one shard of them.

    Shard ``i/n`` takes the videos whose position in the sorted list ``% n == i``.
    """
    src = cfg.path("processed_videos")
    if videos is None:
        names = sorted(p.stem for p in src.glob("*.mp4") if not p.name.startswith("."))
        if not names:
            raise FileNotFoundError(f"{src}: no processed videos (*.mp4); run `mfe prepare` first")
    else:
        names = sorted({Path(v).stem if str(v).endswith(".mp4") else str(v) for v in videos})
    sh = parse_shard(shard)
    if sh is not None:
        names = [v for k, v in enumerate(names) if k % sh[1] == sh[0]]
    return names


def _check_store_settings(cfg: Config, names: list[str]) -> None:
    """Changed store-wide settings (crop size, output size, policy, rate) redo every video; that
    must happen in one call, or the store would mix crops of two settings."""
    frames_dir = cfg.path("frames")
    old = store.read_store_json(frames_dir)
    complete = store.complete_videos(frames_dir)
    if not old or not complete:
        return
    old.setdefault("normalize", normalize.DEFAULT)  # stores from before extract.normalize: none
    new = _settings(cfg)
    diff = [f"{k}: {old[k]!r} -> {new[k]!r}" for k in store.STORE_SETTINGS if k in old and old[k] != new[k]]
    left_out = sorted(set(complete) - set(names))
    if diff and left_out:
        raise ValueError(f"{frames_dir / store.STORE_JSON}: the store was written with other settings "
                         f"({'; '.join(diff)}); every video must be re-extracted together, but this call leaves out "
                         f"{', '.join(left_out[:5])}{' ...' if len(left_out) > 5 else ''} (run without --shard/--videos, "
                         "or use another paths.frames)")


def extract_videos(
    cfg: Config,
    videos: list[str] | None = None,
    workers: int = 1,
    shard: str | tuple[int, int] | None = None,
    fmt: str | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> ExtractReport:
    """Extract every (or the named) processed video of a project into the frame store.

    Args:
        cfg: project configuration (``extract`` section, ``keypoints.pcutoff``, paths).
        videos: video names (stems); default every ``<processed_videos>/*.mp4``.
        workers: processes (one video per task); 1 runs in this process.
        shard: ``"i/n"``: only the videos whose sorted position ``% n == i``.
        fmt: ``"npy"`` or ``"png"`` (also writes ``<video>/frameNNNNN.png``); default the config.
        overwrite: re-extract fresh videos too (stale ones are always redone: see
            :func:`video_status`).
        progress: show a progress bar (``None``: only on a terminal).

    Returns:
        An :class:`ExtractReport`; failed videos are listed there, not raised.
    """
    if fmt not in (None, "npy", "png"):
        raise ValueError(f"format must be npy or png, got {fmt!r}")
    names = list_videos(cfg, videos, shard)
    frames_dir = cfg.path("frames")
    _check_store_settings(cfg, names)
    report = ExtractReport(frames_dir)
    bar = tqdm(total=len(names), desc="extract", unit="video", disable=None if progress is None else not progress)
    if workers <= 1 or len(names) <= 1:
        for v in names:
            bar.set_postfix_str(v)
            report.results.append(_run_one(cfg, v, fmt, overwrite))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_run_one, cfg, v, fmt, overwrite): v for v in names}
            for fut in as_completed(futures):
                try:
                    report.results.append(fut.result())
                except Exception as err:  # a worker died (e.g. killed for memory)
                    report.results.append(VideoResult(futures[fut], "failed", error=f"worker died: {err}"))
                bar.update()
        report.results.sort(key=lambda r: r.video)
    bar.close()
    if store.complete_videos(frames_dir):
        store.write_store_json(frames_dir, _settings(cfg))
    return report
