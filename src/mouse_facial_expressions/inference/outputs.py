"""What ``mfe predict`` writes per video and per call: the scores table (per window and per
second of video), the time-course plot, the preview sheet, the domain check's verdict and
``summary.csv`` (rows merged across calls). A run with Mouse Grimace Scale action-unit heads
(``mfe train --targets au|au+class``) adds each AU's expected score (``au_ot`` ... ``au_wc``,
0..2) and the MGS total (``mgs``, their mean) to the tables, and an AU panel to the plot.

:func:`finish_video` turns one scored video into its files and its summary row
(:class:`VideoPrediction`); :class:`PredictReport` gathers the rows of a call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.data.predictions import au_prediction_columns, per_second
from mouse_facial_expressions.io.atomic import atomic_path, write_csv
from mouse_facial_expressions.preprocess import domain

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["video", "status", "n_windows", "mean_p1", "median_p1", "frac_positive", "seconds_scored",
                   "n_frames_kept", "video_seconds", "elapsed_s", "error", "domain_warning", "n_no_face", "source"]
#: ``summary.csv``'s extra column when the run has action-unit heads: the mean window MGS total.
AU_SUMMARY_COLUMN = "mean_mgs"


def scores_table(windows: pd.DataFrame, per_member: np.ndarray, names: list[str],
                 au: np.ndarray | None = None, no_face: list[str] | None = None) -> pd.DataFrame:
    """``video, start_time, end_time, p1`` (+ ``p1_<member>`` columns for an ensemble; + ``au_ot``
    ... ``au_wc`` and ``mgs`` when ``au``, the windows' expected AU scores ``(W, 5)``, is given;
    + ``no_face`` (bool) and ``no_face_reason`` when ``no_face``, the face check's reason per window
    ('' = a face), is given: windows without a face have NaN scores)."""
    df = windows[["video", "start_time", "end_time"]].reset_index(drop=True).copy()
    df["p1"] = per_member.mean(axis=1) if per_member.shape[1] else np.nan
    if len(names) > 1:
        for j, name in enumerate(names):
            df[f"p1_{name}"] = per_member[:, j]
    if au is not None:
        for col, values in au_prediction_columns(np.asarray(au).reshape(-1, 5)).items():
            df[col] = values
    if no_face is not None:
        df["no_face"] = [bool(r) for r in no_face]
        df["no_face_reason"] = list(no_face)
    return df


def covered_seconds(start: np.ndarray, end: np.ndarray) -> float:
    """Length of the union of the intervals ``[start, end]``."""
    total, cur_a, cur_b = 0.0, None, None
    for a, b in sorted(zip(map(float, start), map(float, end))):
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    return total + (cur_b - cur_a if cur_b is not None else 0.0)


def summarise(scores: pd.DataFrame, threshold: float = 0.5) -> dict:
    """The summary row's numbers over the scored windows (windows without a face, NaN, left out)."""
    scores = scores[scores["p1"].notna()]
    p = scores["p1"].to_numpy(float)
    return {"n_windows": len(p), "mean_p1": float(np.mean(p)) if len(p) else np.nan,
            "median_p1": float(np.median(p)) if len(p) else np.nan,
            "frac_positive": float(np.mean(p > threshold)) if len(p) else np.nan,
            "seconds_scored": covered_seconds(scores["start_time"], scores["end_time"])}


def timecourse_points(scores: pd.DataFrame, windows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The points a time course draws: ``t`` (window centre), the ``p1`` columns, ``resampled``;
    windows with fewer than half their frames distinct (a short run stretched to a window) are
    dropped, and a NaN row is put into every gap longer than twice the usual window spacing,
    so the line breaks there instead of bridging time that was not scored."""
    df = scores.reset_index(drop=True).copy()
    df["t"] = (df["start_time"] + df["end_time"]).to_numpy(float) / 2
    df["resampled"] = False
    if windows is not None and len(windows) == len(df) and "rows" in windows:
        rows = windows["rows"].tolist()
        distinct = np.array([len(set(np.asarray(r).tolist())) for r in rows])
        size = np.array([len(r) for r in rows])
        df["resampled"] = windows["resampled"].to_numpy(bool) if "resampled" in windows else distinct < size
        df = df[distinct * 2 >= size].reset_index(drop=True)
    if len(df) > 2:
        dt = np.diff(df["t"].to_numpy())
        gaps = np.flatnonzero(dt > 2 * np.median(dt))
        if len(gaps):
            breaks = pd.DataFrame({"t": (df["t"].to_numpy()[gaps] + df["t"].to_numpy()[gaps + 1]) / 2})
            df = pd.concat([df, breaks], ignore_index=True).sort_values("t", kind="stable").reset_index(drop=True)
    return df


def plot_timecourse(scores: pd.DataFrame, path: Path, title: str, windows: pd.DataFrame | None = None,
                    class_name: str = "class 1") -> Path:
    """PNG of ``p1`` over time (window centres; :func:`timecourse_points`): per-fold lines faint,
    resampled windows hollow, the 0.5 line dashed, the y axis named after the class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = timecourse_points(scores, windows)
    au_cols = [c for c in scores.columns if c.startswith("au_")]
    if au_cols:  # a second panel: the action units' expected scores and the MGS total
        fig, (ax, ax_au) = plt.subplots(2, 1, figsize=(8, 5.0), dpi=100, sharex=True)
    else:
        fig, ax = plt.subplots(figsize=(8, 2.8), dpi=100)
    t = pts["t"].to_numpy(float)
    for c in [c for c in scores.columns if c.startswith("p1_")]:
        ax.plot(t, pts[c], lw=0.8, alpha=0.35, label=c[3:])
    members = any(c.startswith("p1_") for c in scores.columns)
    ax.plot(t, pts["p1"], "k-", lw=1.4, label="p1 (mean)" if members else "p1")
    res = pts["resampled"].eq(True).to_numpy()  # NaN (a gap row) is not resampled
    ax.plot(t[~res], pts["p1"].to_numpy(float)[~res], "k.", ms=4)
    if res.any():
        ax.plot(t[res], pts["p1"].to_numpy(float)[res], "o", mfc="none", mec="k", ms=4, label="resampled window")
    ax.axhline(0.5, color="grey", ls="--", lw=0.8)
    ax.set(ylim=(-0.02, 1.02), xlabel="" if au_cols else "time (s)", ylabel=f"P({class_name})", title=title)
    ax.legend(fontsize=7, loc="upper right", ncol=4)
    if au_cols:
        from mouse_facial_expressions.io.ratings import AU_NAMES

        for c in au_cols:
            ax_au.plot(t, pts[c], lw=0.9, alpha=0.8, label=AU_NAMES.get(c[3:], c[3:]))
        ax_au.plot(t, pts["mgs"], "k-", lw=1.6, label="MGS total")
        ax_au.set(ylim=(-0.04, 2.04), yticks=[0, 1, 2], xlabel="time (s)", ylabel="MGS score (0-2)")
        ax_au.legend(fontsize=7, loc="upper right", ncol=6)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return path


# ----------------------------------------------------------------------------- videos

@dataclass
class VideoPrediction:
    """Outcome of one video: ``status`` is ``done`` or ``failed``."""

    video: str
    status: str
    n_windows: int = 0
    mean_p1: float = float("nan")
    median_p1: float = float("nan")
    frac_positive: float = float("nan")
    seconds_scored: float = 0.0
    n_frames_kept: int = 0
    video_seconds: float = 0.0
    elapsed_s: float = 0.0
    decode_seconds: float = 0.0
    score_seconds: float = 0.0
    error: str | None = None
    scores_csv: Path | None = None
    timecourse_png: Path | None = None
    preview_png: Path | None = None
    warnings: list[str] = field(default_factory=list)
    domain_warning: str = ""  # why its crops lie outside the model's training data ('' = inside or unchecked)
    mean_mgs: float = float("nan")  # mean window MGS total (runs with action-unit heads only)
    seconds_csv: Path | None = None
    n_no_face: int = 0  # windows the face check marked (not scored)
    source: str = ""  # the video's absolute path (summary.csv rows are keyed by it)


@dataclass
class PredictReport:
    """What :func:`predict_videos` did, one :class:`VideoPrediction` per video."""

    out_dir: Path
    settings: dict
    results: list[VideoPrediction] = field(default_factory=list)
    video_frames_per_s: float = 0.0  # decoded video frames per wall-clock second, end to end
    wall_s: float = 0.0  # wall-clock seconds of the whole call
    notes: list[str] = field(default_factory=list)  # about the whole call (e.g. alignment settings)

    @property
    def failed(self) -> list[VideoPrediction]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary_table(self) -> pd.DataFrame:
        cols = SUMMARY_COLUMNS + ([AU_SUMMARY_COLUMN] if any(np.isfinite(r.mean_mgs) for r in self.results) else [])
        return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in self.results], columns=cols)

    def summary(self) -> str:
        done = [r for r in self.results if r.status == "done"]
        lines = [f"predict -> {self.out_dir}: {len(done)} videos scored, {len(self.failed)} failed"]
        lines += [f"  note: {n}" for n in self.notes]
        for r in done:
            mgs = f", mean MGS {r.mean_mgs:.2f} (0-2)" if np.isfinite(r.mean_mgs) else ""
            nf = f", {r.n_no_face} without a face (not scored)" if r.n_no_face else ""
            lines.append(f"  {r.video}: {r.n_windows} windows, mean p1 {r.mean_p1:.3f}, "
                         f"{100 * r.frac_positive:.0f}% > 0.5, {r.seconds_scored:.1f} s scored{mgs}{nf}")
            lines += [f"  warning: {w}" for w in r.warnings]
            lines += [f"  preview: {r.preview_png}"] if r.preview_png else []
        for r in self.failed:
            lines += [f"  FAILED {r.video}: {r.error}"] + [f"  warning: {w}" for w in r.warnings]
        return "\n".join(lines)


def finish_video(name: str, frames: pd.DataFrame, info: dict, windows: pd.DataFrame, per_member: np.ndarray,
                 names: list[str], out_dir: Path, class_name: str = "class 1",
                 au: np.ndarray | None = None, no_face: list[str] | None = None,
                 no_score: str | None = None) -> VideoPrediction:
    """One scored video's outputs: ``<video>_scores.csv`` (per window), ``<video>_seconds.csv``
    (per second, :func:`per_second`), ``<video>_timecourse.png`` and its summary row; ``au``:
    the windows' expected action-unit scores ``(W, 5)`` of a run with AU heads; ``no_face``: the
    face check's reason per window ('' = a face; those windows have NaN rows in ``per_member``);
    ``no_score``: why the video gets no score at all (status ``failed``, every score NaN)."""
    if no_score:
        per_member = np.full_like(np.asarray(per_member, float), np.nan)
        au = None if au is None else np.full_like(np.asarray(au, float), np.nan)
    scores = scores_table(windows.assign(video=name), per_member, names, au, no_face)
    res = VideoPrediction(name, "failed" if no_score else "done", n_frames_kept=len(frames),
                          video_seconds=info["video_seconds"], decode_seconds=info["decode_seconds"],
                          warnings=list(info["warnings"]), error=no_score, **summarise(scores))
    res.n_no_face = sum(bool(r) for r in no_face or [])
    if au is not None and scores["mgs"].notna().any():
        res.mean_mgs = float(scores["mgs"].mean())
    if not len(windows):
        res.warnings.append(f"{name}: no window to score ({len(frames)} usable frames kept)")
    res.scores_csv = write_csv(scores, out_dir / f"{name}_scores.csv")
    res.seconds_csv = write_csv(per_second(scores[scores["p1"].notna()]), out_dir / f"{name}_seconds.csv")
    res.timecourse_png = plot_timecourse(scores, out_dir / f"{name}_timecourse.png", name, windows, class_name)
    return res


def write_preview(crops: np.ndarray, frames: pd.DataFrame, windows: pd.DataFrame, path: Path) -> Path | None:
    """``--preview``: a contact sheet (:func:`preprocess.preview.crop_sheet`) of the crops the
    windows scored, spread over the video; None when no window was scored."""
    from mouse_facial_expressions.preprocess.preview import crop_sheet

    used = np.unique(np.concatenate([np.asarray(r, dtype=np.int64) for r in windows["rows"]])) if len(windows) else []
    scored = frames[frames["row"].isin(used)]
    return crop_sheet(crops, scored, path) if len(scored) else None


def domain_warning(video: Path, crops: np.ndarray, frames: pd.DataFrame, train: dict | None, cfg: Config | None,
                   warnings: list[str], name: str | None = None) -> str:
    """The domain check of one scored video: why its crops lie outside the training summary
    ``train`` ('' when inside, or without a summary); logged and added to ``warnings``."""
    if train is None:
        return ""
    synthetic = domain.video_is_synthetic(video, cfg.root if cfg is not None else None)
    reasons = domain.compare(train, domain.video_summary(crops, frames), video_synthetic=synthetic)
    if reasons:
        text = "; ".join(reasons)
        log.warning("%s lies outside the model's training data: %s", name or video.stem, text)
        warnings.append(f"outside the training data: {text}")
    return "; ".join(reasons)



def part_column_lines(columns: dict[str, str] | None) -> str:
    """``COLUMNS.md`` lines of the columns a model's parts add (``FoldEnsemble.column_text``)."""
    return "".join(f"- `{name}`: {text}.\n" for name, text in (columns or {}).items())


FACE_TEXT = """- `no_face`: True when the window's crops do not look like the faces the model was trained on
  (the face check, `preprocess/facecheck.py`): the ratios of the crop's landmark distances
  (nose-eye and nose-ear over eye-ear) or its grey-level mean, grey-level SD or sharpness lie
  outside the training crops' range, widened. Such a window is not scored: its score columns are
  empty (NaN), and it counts in no summary number.
- `no_face_reason`: which quantity lay outside, its value and the limits (empty for a face).
  Both columns are absent when the model carries no summary of its training crops (trained
  before mfe recorded one): then nothing is checked.
"""


def _header(class_names, what: str) -> str:
    neg, pos = (str(n) for n in class_names)
    return f"""# Columns of the files `{what}` wrote here

Class 1 is **{pos}**; class 0 is **{neg}** (the model's task).
"""


def column_descriptions(class_names, threshold: float = 0.5, columns: dict[str, str] | None = None) -> str:
    """``COLUMNS.md``: what each column of ``<video>_scores.csv``, ``<video>_seconds.csv`` and
    ``summary.csv`` holds, in the task's class names (a CSV header cannot say what ``p1`` is the
    probability of); ``columns``: the columns the model's parts add, with their descriptions."""
    neg, pos = (str(n) for n in class_names)
    au = "mgs" in (columns or {})
    au_text = part_column_lines(columns)
    au_summary = "- `mean_mgs`: the mean window MGS total (0 to 2).\n" if au else ""
    return f"""{_header(class_names, "mfe predict")}
## `<video>_scores.csv` (one row per window; `<video>` is the video's file name without its
extension, prefixed with its folder, `day2__cam`, when another video of the same name was
scored into this folder)
- `video`: the video's file name without its extension.
- `start_time`, `end_time`: the window's first and last kept frame, seconds from the video's start.
- `p1`: the probability that the window shows **{pos}** rather than **{neg}**, the mean over
  the run's fold models. Read it as a ranking unless the run's report says the scores are calibrated.
- `p1_fold<k>`: the same from fold model k alone (their spread shows how much the folds agree).
{au_text}{FACE_TEXT}
## `<video>_seconds.csv` (one row per second of video that a window covers)
- `second`: the second `[second, second + 1)` from the video's start.
- `coverage`: seconds of window time inside that second, summed over the windows that overlap it.
- the score columns of `<video>_scores.csv` (`p1`{"".join(f", `{c}`" for c in columns or {})}), averaged over
  those windows, each weighted by how much of the second it covers.

## `summary.csv` (one row per video, merged across calls)
- `status`: done or failed (`error` says why: e.g. a video too short for one window, or one in
  which more than half of the windows have no face, which gets no score).
- `n_windows`: windows scored; `seconds_scored`: seconds of video they cover.
- `n_no_face`: windows not scored because the face check found no face in them (`no_face`).
- `source`: the video file's absolute path (a row is replaced only by a later call on the same file).
- `mean_p1`, `median_p1`: the mean and median window `p1` (probability of **{pos}**).
- `frac_positive`: the share of windows with `p1` above {threshold:g}, i.e. called **{pos}**.
- `n_frames_kept`: frames kept for scoring (side portraits of good quality); `video_seconds`: the video's length.
- `elapsed_s`: seconds this video took.
- `domain_warning`: why the video's crops lie outside the model's training data (empty: inside, or not checked).
{au_summary}"""


def image_column_descriptions(class_names, columns: dict[str, str] | None = None, names=()) -> str:
    """``COLUMNS.md`` beside ``images_scores.csv`` (``mfe predict --images``): its columns, in the
    task's class names; ``columns``: the columns the model's parts add; ``names``: the ensemble's
    members (``p1_<member>``)."""
    neg, pos = (str(n) for n in class_names)
    members = f"- `p1_<member>` ({', '.join(f'`p1_{n}`' for n in names)}): the same from each fold model alone.\n" \
        if len(names) > 1 else ""
    return f"""{_header(class_names, "mfe predict --images")}
## `images_scores.csv` (one row per image)
- `image`: the image's file name.
- `status`: done or failed (`error` says why).
- `p1`: the probability that the image shows **{pos}** rather than **{neg}**, the mean over the
  run's fold models (the crop repeated as a clip). Read it as a ranking unless the run's report says
  the scores are calibrated.
{members}{part_column_lines(columns)}- `side`: the side of the face seen (left or right; right crops are mirrored).
- `sharpness`: the crop's sharpness (variance of the Laplacian).
- `domain_warning`: why the images' crops, taken together, lie outside the model's training data (the
  domain check of `mfe predict` for videos: synthetic vs real, grey-level histogram, face size,
  sharpness, keypoint likelihood); empty: inside, or not checked. The same for every image of a call.
- `no_face`: True when the image's crop does not look like the faces the model was trained on (ratios
  of its landmark distances, grey-level mean or SD, or sharpness outside the training crops' range,
  widened); its scores are then empty (NaN).
- `no_face_reason`: which quantity lay outside, its value and the limits (empty for a face).
- `error`: why a failed image failed.
"""


def merge_summary(path: Path, new: pd.DataFrame) -> pd.DataFrame:
    """``summary.csv`` after this call: rows of ``new`` replace earlier rows of the same video (same
    name or same ``source`` file), other videos' rows stay (a rerun of only the failed videos
    completes the summary)."""
    if not path.is_file():
        return new
    try:
        old = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        log.warning("%s: unreadable (%s); it is replaced by this call's videos only", path, err)
        return new
    if "video" not in old.columns:
        log.warning("%s: no 'video' column; it is replaced by this call's videos only", path)
        return new
    drop = old["video"].astype(str).isin(set(new["video"].astype(str)))
    if "source" in old.columns and "source" in new.columns:  # the same file under another name
        drop |= old["source"].astype(str).isin(set(new["source"].dropna().astype(str)) - {""})
    old = old[~drop]
    merged = pd.concat([old.reindex(columns=new.columns), new], ignore_index=True) if len(old) else new
    return merged.sort_values("video", kind="stable").reset_index(drop=True)
