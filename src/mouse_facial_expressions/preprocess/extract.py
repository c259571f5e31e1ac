"""``mfe extract``: processed videos + canonical keypoints -> aligned, scored face crops.

Per video (:func:`extract_video`):

1. read the canonical keypoint table and the video header; reconcile their frame counts;
2. compute the geometry of every frame at once (visible side, alignment matrix, crop-space
   landmarks) and the candidate frames of the selection policy;
3. decode the video in ONE sequential pass and warp only the candidates (one
   ``cv2.warpAffine`` each), scoring sharpness and intensity;
4. choose the stored frames, split them into runs, normalise their intensity
   (``extract.normalize``, :mod:`preprocess.normalize`; ``none`` by default) and write the
   frame store atomically.

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

import numpy as np
import pandas as pd
from tqdm import tqdm

from mouse_facial_expressions import provenance
from mouse_facial_expressions.config import Config
from mouse_facial_expressions.io.keypoints import landmark_names, load_canonical, validate_canonical
from mouse_facial_expressions.io.video import MAX_HEADER_SHORTFALL, VideoError, iter_frames, probe
from mouse_facial_expressions.preprocess import alignment as alignment_mod
from mouse_facial_expressions.preprocess import domain, geometry, normalize, select, store
from mouse_facial_expressions.preprocess.quality import crop_quality

log = logging.getLogger(__name__)


class ExtractError(ValueError):
    """A video cannot be extracted; the message names the file and the problem."""


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


# ----------------------------------------------------------------------------- inputs

def read_keypoints(path: str | Path | pd.DataFrame, where: str | Path | None = None) -> pd.DataFrame:
    """Canonical keypoint table, one row per frame ``0..n-1`` (missing frames become NaN rows).

    Read with :func:`mouse_facial_expressions.io.keypoints.load_canonical` (which checks the
    columns and that frames strictly increase); ``path`` may also be a canonical table already
    in memory, checked the same way, with ``where`` naming it in errors (the user's pose file).
    Every landmark is kept; :func:`crop_video` checks that the alignment's are there.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed table, naming the file.
    """
    if isinstance(path, pd.DataFrame):
        where = Path(where) if where is not None else Path("keypoint table")
        df = validate_canonical(path.reset_index(drop=True), str(where))
    else:
        where = Path(path)
        df = load_canonical(where)
    if len(df) and df["frame"].iloc[0] < 0:
        raise ExtractError(f"{where}: negative frame number {int(df['frame'].iloc[0])}")
    n = int(df["frame"].iloc[-1]) + 1 if len(df) else 0
    return df.set_index("frame").reindex(np.arange(n)).rename_axis("frame").reset_index()


def check_landmarks(kp: pd.DataFrame, alignment, where: str | Path) -> None:
    """Raise :class:`ExtractError` naming ``where`` when ``kp`` lacks a landmark ``alignment`` needs."""
    align = alignment_mod.resolve(alignment)
    missing = alignment_mod.missing_landmarks(align, landmark_names(kp))
    if missing:
        raise ExtractError(f"{where}: keypoint table lacks landmarks {missing} that extract.alignment "
                           f"{align.name!r} needs; it has {landmark_names(kp)} (map them in keypoints.bodyparts)")


def frame_geometry(kp: pd.DataFrame, pcutoff: float, crop_size: float, out_size: int,
                   alignment=None) -> dict[str, np.ndarray]:
    """Per-frame side, usability, alignment matrix and crop-space landmarks (vectorised).

    A frame is usable when the landmarks ``alignment`` requires (default ``dlc_face``: nose,
    eye and ear of exactly one side) are above ``pcutoff`` and have finite coordinates (NaN
    keypoints -> unusable); see :mod:`preprocess.alignment`.

    Returns:
        dict with ``side`` (N,) int8, ``usable`` (N,) bool, ``matrix`` (N, 2, 3),
        ``min_likelihood`` (N,), ``axis_px`` (N,), and (N, 2) crop coordinates per landmark
        (``eye``/``ear``/``nose`` for ``dlc_face``, with the side removed).
    """
    names = landmark_names(kp)
    xy = {lm: kp[[f"{lm}_x", f"{lm}_y"]].to_numpy(float) for lm in names}
    lik = {lm: kp[f"{lm}_likelihood"].to_numpy(float) for lm in names}
    return alignment_mod.frame_geometry(alignment_mod.resolve(alignment), xy, lik, pcutoff, crop_size, out_size)


def _check_counts(video_path: Path, kp_path: Path, n_video: int, n_kp: int, max_mismatch: int) -> str | None:
    diff = abs(n_video - n_kp)
    if diff > max_mismatch:
        raise ExtractError(
            f"{video_path.name}: the video has {n_video} frames but {kp_path} has {n_kp} keypoint rows "
            f"(difference {diff} > extract.max_count_mismatch={max_mismatch})")
    if diff:
        return (f"{video_path.name}: {n_video} video frames vs {n_kp} keypoint rows; "
                f"using the common range 0..{min(n_video, n_kp) - 1}")
    return None


# ----------------------------------------------------------------------------- one video

def crop_video(video_path: str | Path, kp: pd.DataFrame, s: dict, video: str | None = None,
               kp_path: str | Path | None = None) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Decode a video once and return the crops and index rows the frame store keeps.

    Shared by ``mfe extract`` (which stores the result) and ``mfe predict`` (which scores it
    on the fly), so both see bit-identical crops for the same frames.

    Args:
        video_path: the processed video.
        kp: canonical keypoints (:func:`read_keypoints`), one row per frame.
        s: settings as :func:`_settings` gives them (policy, crop/out size, thresholds, pcutoff,
            max_count_mismatch, alignment, normalize: absent means ``none``).
        video: name for the ``video`` column (default: the file stem).
        kp_path: keypoint file named in count-mismatch messages.

    Returns:
        ``(crops (N, S, S) uint8, index, info)``: ``index`` has the frame-store columns
        (ARCHITECTURE.md); ``info`` has fps, n_video_frames, n_candidates, decode_seconds, warnings.
        The crops are normalised with ``s["normalize"]`` over the kept crops of this video
        (:func:`preprocess.normalize.normalize_video`); sharpness and intensity, which choose
        the frames, are measured on the crops before normalisation.

    Raises:
        ExtractError: no frame rate, or keypoint rows and video frames differ by more than
            ``max_count_mismatch`` (the message names both counts).
    """
    video_path = Path(video_path)
    video = video or video_path.stem
    kp_name = Path(kp_path) if kp_path is not None else Path(f"{video}.parquet")
    info = probe(video_path)
    if info.fps <= 0:
        raise ExtractError(f"{video_path}: the header gives no frame rate")
    n_header = info.n_frames or len(kp)  # no header count: the decode pass checks it below
    warning = _check_counts(video_path, kp_name, n_header, len(kp), s["max_count_mismatch"])
    n = min(n_header, len(kp))
    check_landmarks(kp, s.get("alignment"), kp_name)

    geo = frame_geometry(kp.iloc[:n], s["pcutoff"], s["crop_size"], s["out_size"], s.get("alignment"))
    cand = select.candidates(s["policy"], geo["usable"], info.fps, target_fps=s["target_fps"], every_k=s["every_k"])
    n_cand = len(cand)

    # One sequential decode pass; warp only the candidates.
    size = int(s["out_size"])
    crops = np.empty((len(cand), size, size), np.uint8)
    sharp = np.full(len(cand), np.nan)
    inten = np.full(len(cand), np.nan)
    mats = geo["matrix"]
    wanted = np.zeros(n, bool)
    wanted[cand] = True
    k, n_decoded = 0, 0
    t_loop = time.perf_counter()
    # Decode to the end (the true frame count); only candidates are converted and warped.
    for i, frame in iter_frames(video_path, wanted=wanted):
        n_decoded = i + 1
        if frame is not None:
            crops[k] = geometry.warp_crop(frame, mats[i], size)
            sharp[k], inten[k] = crop_quality(crops[k])
            k += 1
    decode_seconds = time.perf_counter() - t_loop
    if info.n_frames and n_decoded < info.n_frames - MAX_HEADER_SHORTFALL:
        # A video problem, not a keypoint problem: say so before comparing with the keypoints.
        raise VideoError(f"{video_path}: decoding stopped after {n_decoded} of the {info.n_frames} frames its header "
                         "announces: the file is truncated or corrupt (rerun `mfe prepare --overwrite` for it, or "
                         "check the raw video)")
    if n_decoded != n_header or k < len(cand):
        # The header lied (or the file is cut short): check again against the decoded count.
        warning = _check_counts(video_path, kp_name, n_decoded, len(kp), s["max_count_mismatch"])
        if k < len(cand):
            # candidates beyond the end of the video: drop them
            cand, crops, sharp, inten = cand[:k], crops[:k], sharp[:k], inten[:k]

    keep = select.final_choice(s["policy"], sharp, geo["min_likelihood"][cand], n_keep=s["n_sharpest"],
                               min_sharpness=s["min_sharpness"], min_likelihood=s["min_likelihood"])
    rows = cand[keep]
    times = rows / info.fps
    index = pd.DataFrame({
        "video": video,
        "row": np.arange(len(rows), dtype=np.int64),
        "frame": rows.astype(np.int64),
        "time": times,
        "side": np.array([geometry.SIDE_NAMES[int(v)] for v in geo["side"][rows]], dtype=object),
        "sharpness": sharp[keep],
        "intensity": inten[keep],
        "min_likelihood": geo["min_likelihood"][rows],
        "run": select.split_runs(times, s["max_gap_s"]),
    })
    index["axis_px"] = geo["axis_px"][rows]
    points = [k for k, v in geo.items() if isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[1] == 2]
    for name in dict.fromkeys(["eye", "ear", "nose", *points]):  # the store's fixed columns first
        pts = geo[name][rows] if name in geo else np.full((len(rows), 2), np.nan)
        index[f"{name}_x"], index[f"{name}_y"] = pts[:, 0], pts[:, 1]
    info_out = {"fps": info.fps, "n_video_frames": n_decoded, "video_seconds": n_decoded / info.fps,
                "n_candidates": n_cand, "decode_seconds": decode_seconds,
                "warnings": [warning] if warning else []}
    kept = normalize.normalize_video(np.ascontiguousarray(crops[keep]), s.get("normalize"))
    return kept, index, info_out


def extract_video(cfg: Config, video: str, fmt: str | None = None) -> VideoResult:
    """Extract one video into the frame store (overwrites its outputs).

    Raises:
        FileNotFoundError, ExtractError, VideoError: the video cannot be extracted.
    """
    t0 = time.perf_counter()
    video_path = cfg.path("processed_videos") / f"{video}.mp4"
    kp_path = cfg.path("keypoints") / f"{video}.parquet"
    res = VideoResult(video, "failed")
    made_from = provenance.record(_inputs(cfg, video), _settings(cfg))  # fingerprinted before reading
    kp = read_keypoints(kp_path)
    res.n_keypoint_rows = len(kp)
    crops, index, info = crop_video(video_path, kp, _settings(cfg), video, kp_path)
    res.n_candidates, res.decode_seconds = info["n_candidates"], info["decode_seconds"]
    res.n_video_frames = info["n_video_frames"]
    for w in info["warnings"]:
        res.warnings.append(w)
        log.warning(w)
    meta = {"fps": info["fps"], "n_video_frames": info["n_video_frames"], "n_keypoint_rows": len(kp), **_settings(cfg),
            "provenance": made_from}
    meta["domain"] = domain.video_summary(crops, index)  # the domain check's record (preprocess/domain.py)
    meta["synthetic"] = domain.is_synthetic_project(cfg.root)
    store.write_video_frames(cfg.path("frames"), video, crops, index, meta, png=(fmt or cfg.extract.format) == "png")
    res.status, res.n_stored = "done", len(index)
    res.seconds = time.perf_counter() - t0
    return res


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
    (``["new"]``, ``["keypoints changed"]``, ``["settings changed: crop_size 128 -> 150"]``, ...)."""
    frames_dir = cfg.path("frames")
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
