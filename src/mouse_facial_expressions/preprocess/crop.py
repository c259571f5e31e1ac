"""One video: processed video + canonical keypoints -> aligned, scored face crops and their index.

:func:`crop_video` is the one decode/align/crop loop: ``mfe extract`` stores what it returns
(:mod:`preprocess.extract`) and ``mfe predict`` scores it on the fly, so both see identical crops.

1. read the canonical keypoint table and the video header; reconcile their frame counts;
2. compute the geometry of every frame at once (visible side, alignment matrix, crop-space
   landmarks), the landmark quality of every frame (:mod:`preprocess.quality`: frames whose face
   centre is off the video frame are dropped, the others flagged) and the candidate frames of the
   selection policy;
3. decode the video in ONE sequential pass and warp only the candidates (one
   ``cv2.warpAffine`` each), scoring sharpness and intensity;
4. choose the stored frames, split them into runs and normalise their intensity
   (``extract.normalize``, :mod:`preprocess.normalize`; ``none`` by default).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.io.keypoints import landmark_names, load_canonical, validate_canonical
from mouse_facial_expressions.io.video import MAX_HEADER_SHORTFALL, VideoError, iter_frames, probe
from mouse_facial_expressions.preprocess import alignment as alignment_mod
from mouse_facial_expressions.preprocess import geometry, normalize, quality, select
from mouse_facial_expressions.preprocess.quality import crop_quality


class ExtractError(ValueError):
    """A video cannot be extracted; the message names the file and the problem."""


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
    xy, lik = _landmark_arrays(kp)
    return alignment_mod.frame_geometry(alignment_mod.resolve(alignment), xy, lik, pcutoff, crop_size, out_size)


def _landmark_arrays(kp: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Landmark -> ``(N, 2)`` coordinates and landmark -> ``(N,)`` likelihoods of a canonical table."""
    names = landmark_names(kp)
    return ({lm: kp[[f"{lm}_x", f"{lm}_y"]].to_numpy(float) for lm in names},
            {lm: kp[f"{lm}_likelihood"].to_numpy(float) for lm in names})


def landmark_quality(kp: pd.DataFrame, geo: dict[str, np.ndarray], alignment, *, width: int, height: int,
                     crop_size: float, out_size: int, likelihood_cutoff: float) -> dict[str, np.ndarray]:
    """Per frame, whether its keypoints can give a face (:mod:`preprocess.quality`).

    Args:
        kp: the canonical keypoints the geometry ``geo`` (:func:`frame_geometry`) was made from.
        alignment: ``extract.alignment``.
        width, height: the video frame's size in pixels.
        crop_size, out_size: ``extract.crop_size`` and ``extract.out_size``.
        likelihood_cutoff: ``flag_low_likelihood`` below this.

    Returns:
        ``(N,)`` bool arrays: ``centre_off_frame`` (the crop centre lies outside the video frame:
        the crop would only repeat the frame's border) and the index flags
        :data:`preprocess.quality.FLAG_COLUMNS`; all False where the frame has no side.
    """
    xy, _ = _landmark_arrays(kp)
    used = alignment_mod.used_points(alignment_mod.resolve(alignment), xy, geo["side"])
    crop_pts = geometry.transform_points(geo["matrix"], used["required"])  # (N, R, 2)
    face = geo["side"] != geometry.NO_SIDE
    out = {
        "centre_off_frame": quality.outside_frame(used["centre"], width, height),
        "flag_off_frame": quality.outside_frame(used["required"], width, height),
        "flag_low_likelihood": quality.below_cutoff(geo["min_likelihood"], likelihood_cutoff),
        "flag_geometry": quality.implausible_geometry(used["required"], used["front"], used["back"], crop_pts,
                                                      crop_size=crop_size, out_size=out_size,
                                                      mirror=geo["side"] == geometry.RIGHT, snout=used.get("snout")),
    }
    return {k: v & face for k, v in out.items()}


def _quality_warnings(video: str, q: dict, width: int, height: int, cutoff: float) -> list[str]:
    out = []
    if q["centre_off_frame"]:
        out.append(f"{video}: the face centre of {q['centre_off_frame']} of the {q['face_frames']} frames with a face "
                   f"lies off the {width}x{height} video frame (keypoints that do not belong to this video: shifted, "
                   "or made for another video?); those frames are not stored")
    n_flag = q["flagged"]
    if n_flag:
        out.append(f"{video}: {n_flag} of the {q['stored']} stored crops are flagged ({q['flag_off_frame']} with a "
                   f"landmark off the frame, {q['flag_low_likelihood']} with a likelihood below {cutoff:g}, "
                   f"{q['flag_geometry']} with an implausible face geometry); mfe task make leaves them out")
    return out


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
        s: settings as :func:`preprocess.extract._settings` gives them (policy, crop/out size, thresholds, pcutoff,
            max_count_mismatch, alignment, normalize: absent means ``none``).
        video: name for the ``video`` column (default: the file stem).
        kp_path: keypoint file named in count-mismatch messages.

    Returns:
        ``(crops (N, S, S) uint8, index, info)``: ``index`` has the frame-store columns
        (ARCHITECTURE.md), the quality flags (:data:`preprocess.quality.FLAG_COLUMNS`) last;
        ``info`` has fps, n_video_frames, n_candidates, decode_seconds, ``quality`` (counts: frames
        with a face, those dropped for a face centre off the frame, stored and flagged crops, and
        the thresholds) and warnings (one per video naming those counts).
        Frames whose face centre lies off the video frame are never candidates.
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
    cutoff = max(s["pcutoff"], s["min_likelihood"])
    flags = landmark_quality(kp.iloc[:n], geo, s.get("alignment"), width=info.width, height=info.height,
                             crop_size=s["crop_size"], out_size=s["out_size"], likelihood_cutoff=cutoff)
    off = geo["usable"] & flags["centre_off_frame"]  # blank crops (the frame's border): never stored
    usable = geo["usable"] & ~off
    cand = select.candidates(s["policy"], usable, info.fps, target_fps=s["target_fps"], every_k=s["every_k"])
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
    for c in quality.FLAG_COLUMNS:
        index[c] = flags[c][rows]
    q = {"face_frames": int(geo["usable"].sum()), "centre_off_frame": int(off.sum()), "stored": len(rows),
         "flagged": int(quality.flagged(index).sum()), **{c: int(index[c].sum()) for c in quality.FLAG_COLUMNS},
         "likelihood_cutoff": cutoff, "min_separation": quality.MIN_SEPARATION,
         "max_axis_tilt_deg": quality.MAX_AXIS_TILT_DEG}
    info_out = {"fps": info.fps, "n_video_frames": n_decoded, "video_seconds": n_decoded / info.fps,
                "n_candidates": n_cand, "decode_seconds": decode_seconds, "quality": q,
                "warnings": ([warning] if warning else []) + _quality_warnings(video, q, info.width, info.height, cutoff)}
    kept = normalize.normalize_video(np.ascontiguousarray(crops[keep]), s.get("normalize"))
    return kept, index, info_out
