"""``mfe prepare``: find each recording's raw video, cut it frame-exactly, name it by metadata.

For every non-discarded row of ``raw_videos.csv`` the raw file is found by camera and
timestamp (``<camera>__<serial>__YYYYMMDD_HHMMSS[fff].<ext>`` in ``paths.raw_videos``), cut
to ``start``..``end`` and written as ``paths.processed_videos/<animal>_rec<k>_<label>.mp4``.

Why re-encode: the original code stream-copied from the nearest keyframe before ``start``,
so the first output frame was not the frame at ``start`` and every keypoint was shifted in
time. Here the raw video is decoded sequentially from its first frame and the frames shown
from ``start`` up to ``end`` (by their presentation timestamps, read from the container; at a
constant rate that is ``round(start_s * fps) <= i < round(end_s * fps)``) are re-encoded
(H.264, same average fps), so output frame 0 *is* the raw frame shown at ``start``. A variable
frame rate is trimmed by the clock, warned about, and recorded in the sidecar.

Colour: output is grey by default (``video.gray``): the lab cameras are mono, H.264 stores
them as YUV anyway, and keypoints/extract work on grey. Set ``video.gray: false`` to keep RGB.

Safety: every row is checked before anything is written (duplicates, missing or ambiguous
raw files; one error lists every offending row). Outputs appear atomically; after the rename
a sidecar ``<video>.prepare.json`` records what the video was made from (the raw file's size,
modification time and content hash, the trims, the encoder settings) and the output's own
fingerprint, and marks the video complete. A rerun skips fresh videos and redoes stale ones
(raw file replaced, trims changed), saying why; the old video stays until the new one is
complete. A raw video that cannot be decoded fails alone; the others are still written.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import av
import numpy as np
import pandas as pd
from tqdm import tqdm

from mouse_facial_expressions import provenance
from mouse_facial_expressions.io.atomic import write_json
from mouse_facial_expressions.io.metadata import MetadataError, load_video_table
from mouse_facial_expressions.io.video import (MAX_HEADER_SHORTFALL, VideoError, VideoWriter, frame_rate_varies,
                                               frame_times, iter_frames, probe)
from mouse_facial_expressions.preprocess.raw_files import (  # re-exported: RawFile, parse_raw_name, VIDEO_SUFFIXES
    VIDEO_SUFFIXES,
    RawFile,
    index_raw_videos,
    match_raw_video,
    parse_raw_name,
)
from mouse_facial_expressions.provenance import same_file

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".prepare.json"


class PrepareError(MetadataError):
    """The plan cannot be made (missing or ambiguous raw videos, clashing rows)."""


@dataclass(frozen=True)
class PlanItem:
    """One video to write: metadata row -> raw file -> output."""

    row: int  # line in raw_videos.csv (header = line 1)
    video: str
    animal: str
    recording: int
    camera: str
    timestamp: datetime
    raw: Path
    output: Path
    start_s: float
    end_s: float  # NaN = to the end

    @property
    def sidecar(self) -> Path:
        return self.output.with_name(self.output.stem + SIDECAR_SUFFIX)

    def frames(self, fps: float) -> tuple[int, int | None]:
        """``(start, stop)`` raw frame indices for ``fps`` (``stop`` exclusive, None = end)."""
        stop = None if math.isnan(self.end_s) else int(round(self.end_s * fps))
        return int(round(self.start_s * fps)), stop

    def frames_at(self, times: np.ndarray, fps: float) -> tuple[int, int | None]:
        """``(start, stop)`` from the frames' presentation times (s): the first frame shown at
        ``start_s`` (within half an average frame) up to the first shown at ``end_s``. For a
        constant frame rate this is :meth:`frames`; for a variable one it follows the clock."""
        half = 0.5 / fps if fps > 0 else 0.0
        start = int(np.searchsorted(times, self.start_s - half - 1e-9, side="left"))
        stop = None if math.isnan(self.end_s) else int(np.searchsorted(times, self.end_s - half - 1e-9, side="left"))
        return start, stop


@dataclass
class PrepareReport:
    """What :func:`prepare_videos` did. ``failed`` maps video -> reason."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # rows left out by skip_missing
    redone: dict[str, list[str]] = field(default_factory=dict)  # video -> why it was stale

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"prepare: {len(self.written)} written, {len(self.skipped)} skipped "
                 f"(complete already), {len(self.failed)} failed"]
        if self.missing:
            lines[0] += f", {len(self.missing)} skipped (raw video missing)"
        if self.redone:
            lines[0] += f"; {provenance.summarise(self.redone)}"
        lines += [f"  FAILED {video}: {reason}" for video, reason in self.failed.items()]
        lines += [f"  SKIPPED {m}" for m in self.missing]
        return "\n".join(lines)


# --------------------------------------------------------------------------- the plan
def plan_prepare(cfg, table: pd.DataFrame | None = None, skip_missing: bool = False,
                 missing: list[str] | None = None) -> list[PlanItem]:
    """Match every non-discarded metadata row to its raw file, checking all rows first.

    Args:
        cfg: project :class:`~mouse_facial_expressions.config.Config`.
        table: the video table (default: :func:`~mouse_facial_expressions.io.metadata.load_video_table`).
        skip_missing: leave out rows whose raw video is missing (appended to ``missing``)
            instead of stopping; ambiguous and overlapping rows still stop the run.
        missing: a list that receives one line per skipped row.

    Raises:
        MetadataError: invalid metadata (see ``video_table``).
        PrepareError: listing every row whose raw video is missing or ambiguous, and rows
            whose trims of one raw file overlap.
    """
    table = load_video_table(cfg) if table is None else table
    raw_dir, out_dir = cfg.path("raw_videos"), cfg.path("processed_videos")
    files = index_raw_videos(raw_dir)
    tol = cfg.video.match_tolerance_s
    plan, problems = [], []
    for row, r in table.iterrows():
        ts = pd.Timestamp(r["timestamp"]).to_pydatetime()
        what = f"row {row} ({r['animal']}, recording {r['recording']}, {r['camera']}, {ts:%Y-%m-%d %H:%M:%S})"
        match, candidates = match_raw_video(files, r["camera"], ts, tol)
        if match is None and not candidates:
            text = (f"missing raw video for {what}, looked in {raw_dir} for "
                    f"{r['camera']}__<serial>__{ts:%Y%m%d_%H%M%S}.mp4 (+/- {tol:g} s)")
            if skip_missing:
                if missing is not None:
                    missing.append(f"{r['video']}: {text}")
            else:
                problems.append(text)
            continue
        if match is None:
            names = ", ".join(str(c.path.relative_to(raw_dir)) for c in candidates)
            problems.append(f"ambiguous raw video for {what}: {names}")
            continue
        if match.time != ts:
            log.info("row %s: using %s (%+.0f s from the metadata time)", row, match.path.name,
                     (match.time - ts).total_seconds())
        plan.append(PlanItem(int(row), r["video"], r["animal"], int(r["recording"]), r["camera"], ts,
                             match.path, out_dir / f"{r['video']}.mp4", float(r["start_s"]),
                             float(r["end_s"])))
    by_raw: dict[Path, list[PlanItem]] = {}
    for item in plan:
        by_raw.setdefault(item.raw, []).append(item)
    for raw, items in by_raw.items():
        items.sort(key=lambda it: it.start_s)
        for a, b in zip(items, items[1:]):
            if math.isnan(a.end_s) or a.end_s > b.start_s:
                problems.append(f"rows {a.row} and {b.row} ({a.video}, {b.video}) both use {raw.name} "
                                "with overlapping trims")
    if problems:
        hint = ""
        if any(p.startswith("missing raw video") for p in problems):
            hint = ("\n  (a recording that was never made or is lost: set discard=1 on its row of raw_videos.csv, "
                    "or run with --skip-missing to prepare the others and list what was skipped)")
        raise PrepareError(f"{table.attrs.get('raw_videos', 'raw_videos.csv')}: {len(problems)} "
                           "problem(s), nothing was written:\n  " + "\n  ".join(problems) + hint)
    return plan


# --------------------------------------------------------------------------- cutting
#: Columns of :func:`raw_sources`.
SOURCE_COLUMNS = ["raw", "video", "start_s", "end_s", "fps", "start_frame"]


def raw_sources(processed_dir: str | Path) -> pd.DataFrame:
    """Which raw camera file each processed video was cut from, and where: one row per
    complete processed video (its ``<video>.prepare.json``): ``raw`` (the raw file's name),
    ``video``, ``start_s``/``end_s`` (the cut, seconds of the raw file; a cut to the file's end
    ends ``n_frames / fps`` after its start), ``fps`` and
    ``start_frame`` (the raw frame that is the video's frame 0). Sidecars that cannot be read
    are skipped; a folder without any gives an empty table."""
    rows = []
    for side in sorted(Path(processed_dir).glob(f"*{SIDECAR_SUFFIX}")):
        try:
            meta = json.loads(side.read_text())
            start, fps = float(meta["start_s"]), float(meta["fps"])
            end = meta.get("end_s")  # None: cut to the raw file's end, n_frames long
            end = float(end) if end is not None else start + int(meta["n_frames"]) / fps if meta.get("n_frames") else math.inf
            rows.append({"raw": str(meta["source"]), "video": str(meta["video"]), "start_s": start, "end_s": end,
                         "fps": fps, "start_frame": int(meta["start_frame"])})
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.debug("%s: not read (%s)", side, err)
    return pd.DataFrame(rows, columns=SOURCE_COLUMNS)


def _read_sidecar(item: PlanItem) -> dict | None:
    try:
        return json.loads(item.sidecar.read_text())
    except (OSError, ValueError):
        return None


def _settings(item: PlanItem, gray: bool, crf: int, codec: str) -> dict:
    """What the output depends on besides the raw file (its provenance settings)."""
    return {"start_s": item.start_s, "end_s": None if math.isnan(item.end_s) else item.end_s,
            "gray": gray, "crf": crf, "codec": codec}


def output_reasons(item: PlanItem, gray: bool = True, crf: int = 18, codec: str = "libx264") -> list[str]:
    """Why ``item``'s output must be (re)written: ``[]`` when fresh, else the reasons
    (``["new"]``, ``["raw video changed"]``, ``["settings changed: start_s 1.3 -> 1.5"]``, ...)."""
    if not item.output.is_file():
        return ["new"]
    meta = _read_sidecar(item)
    if meta is None:
        return ["no record (interrupted run?)"]
    if "output" in meta:
        if not same_file(meta["output"], item.output):
            return ["output differs from its record (interrupted run?)"]
    else:  # records written before provenance: the frame count must still match
        try:
            if probe(item.output).n_frames not in (0, meta.get("n_frames")):
                return ["output differs from its record (interrupted run?)"]
        except (VideoError, OSError):
            return ["output unreadable"]
    return provenance.changes(meta.get("provenance"), {"raw video": item.raw}, _settings(item, gray, crf, codec))


def output_status(item: PlanItem, gray: bool = True, crf: int = 18, codec: str = "libx264") -> str:
    """``"missing"``, ``"complete"`` (fresh) or ``"stale"`` (see :func:`output_reasons`)."""
    reasons = output_reasons(item, gray, crf, codec)
    return "complete" if not reasons else "missing" if reasons == ["new"] else "stale"


def cut_video(item: PlanItem, gray: bool = True, crf: int = 18, codec: str = "libx264") -> dict:
    """Decode ``item.raw`` from its first frame and re-encode the trimmed range to ``item.output``.

    Returns:
        The sidecar record (also written to ``item.sidecar`` after the video is in place).

    Raises:
        VideoError: the raw video cannot be decoded, is shorter than its header says, or has
            no frame in the trim range. No partial output is left behind (when redoing a
            video, the previous output stays, without its record, so it is redone next run).
    """
    made_from = provenance.record({"raw video": item.raw}, _settings(item, gray, crf, codec))  # before reading it
    info = probe(item.raw)
    if info.fps <= 0:
        raise VideoError(f"{item.raw}: frame rate unknown, cannot convert trims to frames")
    times = frame_times(item.raw)
    variable = frame_rate_varies(times)
    if variable:
        dt = np.diff(times)
        log.warning("%s: variable frame rate (%.1f to %.1f fps, %.2f on average): trimmed by timestamps; the "
                    "output is written at the average rate", item.raw.name, 1 / dt.max(), 1 / dt.min(), info.fps)
    start, stop = item.frames_at(times, info.fps)
    width, height = info.width - info.width % 2, info.height - info.height % 2  # H.264 4:2:0
    last = -1
    with VideoWriter(item.output, info.fps, width, height, gray=gray, crf=crf, codec=codec) as writer:
        for last, frame in iter_frames(item.raw, start=start, stop=stop, gray=gray):
            writer.write(frame[:height, :width])
        if writer.n_written == 0:
            raise VideoError(f"{item.raw}: no frames in the trim range (start frame {start}, "
                             f"the video has {info.n_frames or 'an unknown number of'} frames)")
        expected_end = info.n_frames if stop is None else min(stop, info.n_frames or stop)
        if info.n_frames and last + 1 < expected_end - MAX_HEADER_SHORTFALL:
            raise VideoError(f"{item.raw}: decoding stopped after frame {last} but the file "
                             f"has {info.n_frames} frames (truncated or corrupt?)")
    if stop is not None and last + 1 < stop:
        log.warning("%s: end %.3f s (frame %d) is past the end of %s (last frame %d); kept to the end",
                    item.video, item.end_s, stop, item.raw.name, last)
    record = {
        "video": item.video, "row": item.row, "source": item.raw.name,
        "source_bytes": item.raw.stat().st_size, "start_s": item.start_s,
        "end_s": None if math.isnan(item.end_s) else item.end_s, "fps": info.fps,
        "start_frame": start, "end_frame": last + 1, "n_frames": writer.n_written,
        "width": width, "height": height, "gray": gray, "variable_frame_rate": variable,
        "start_time_s": float(times[start]) if start < len(times) else None,
        "provenance": made_from, "output": provenance.fingerprint(item.output),
    }
    write_json(item.sidecar, record)  # written last: marks the video complete (a stale record no longer matches "output")
    return record


def prepare_videos(cfg, overwrite: bool = False, progress: bool = True, skip_missing: bool = False) -> PrepareReport:
    """Cut and rename every non-discarded raw video of the project (``mfe prepare``).

    Args:
        cfg: project configuration (paths.metadata, paths.raw_videos, paths.processed_videos,
            video.*).
        overwrite: rewrite fresh outputs too (stale ones are always redone, see :func:`output_reasons`).
        progress: show a progress bar over videos (hidden when not a terminal).
        skip_missing: prepare the others when raw videos are missing (listed in ``report.missing``).

    Returns:
        :class:`PrepareReport` listing written, skipped and failed videos.

    Raises:
        MetadataError / PrepareError: before anything is written, listing every bad row.
    """
    report = PrepareReport()
    plan = plan_prepare(cfg, skip_missing=skip_missing, missing=report.missing)
    v = cfg.video
    for item in tqdm(plan, desc="prepare", unit="video", disable=None if progress else True):
        reasons = output_reasons(item, v.gray, v.crf, v.codec)
        if not reasons and not overwrite:
            report.skipped.append(item.video)
            continue
        try:
            cut_video(item, gray=v.gray, crf=v.crf, codec=v.codec)
        except (VideoError, av.error.FFmpegError, OSError) as err:
            log.error("%s (row %s): %s", item.video, item.row, err)
            report.failed[item.video] = f"row {item.row}, {item.raw.name}: {err}"
            continue
        report.written.append(item.video)
        if reasons and reasons != ["new"]:
            report.redone[item.video] = reasons
    return report


def describe_plan(cfg, overwrite: bool = False, skip_missing: bool = False) -> str:
    """The plan in words (``mfe prepare --dry-run``): row -> raw file -> output, trims in frames."""
    missing: list[str] = []
    plan = plan_prepare(cfg, skip_missing=skip_missing, missing=missing)
    lines = [f"{len(plan)} video(s) from {cfg.path('raw_videos')} -> {cfg.path('processed_videos')}"]
    lines += [f"SKIP (raw video missing) {m}" for m in missing]
    for item in plan:
        try:
            fps = probe(item.raw).fps
            times = frame_times(item.raw)
            start, stop = item.frames_at(times, fps)
            rate = "variable frame rate, " if frame_rate_varies(times) else ""
            trim = f"frames {start}..{'end' if stop is None else stop - 1} at {rate}{fps:g} fps"
        except (VideoError, OSError) as err:
            trim = f"UNREADABLE ({err})"
        v = cfg.video
        reasons = output_reasons(item, v.gray, v.crf, v.codec)
        action = "write" if reasons == ["new"] else f"redo ({', '.join(reasons)})" if reasons else "skip (fresh)"
        if overwrite and not reasons:
            action = "overwrite"
        lines.append(f"row {item.row}: {item.raw.name} -> {item.output.name}  [{trim}]  {action}")
    return "\n".join(lines)


__all__ = [
    "PlanItem", "PrepareError", "PrepareReport", "RawFile", "cut_video", "describe_plan",
    "index_raw_videos", "match_raw_video", "output_reasons", "output_status", "parse_raw_name", "plan_prepare",
    "prepare_videos",
]
