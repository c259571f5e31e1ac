"""Video reading and writing through PyAV (bundled FFmpeg; no shell, no ffmpeg binary).

Frames are numbered by decode order from 0, which is what DeepLabCut numbers too. Reading is
one sequential pass (about 2,000 fps for 640x480 H.264 here); a seek per frame runs at
about 30 fps, so :func:`read_frames` collects sorted indices in a single pass instead.
Writers produce a temporary file and rename it on success, so a crash never leaves a
half-written video under the final name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from mouse_facial_expressions.io.atomic import atomic_path


#: Decoding may end this many frames before the container header's frame count before the file
#: is called truncated (some muxers count a frame or two that never decode).
MAX_HEADER_SHORTFALL = 2


class VideoError(RuntimeError):
    """A video could not be opened or decoded. The message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    n_frames: int  # from the container header; 0 when the header does not say
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps if self.fps else 0.0


def _open(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise VideoError(f"{path}: cannot open video ({err})") from err
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: has no video stream")
    return container


def probe(path: str | Path) -> VideoInfo:
    """Header information of a video, without decoding it."""
    with _open(path) as container:
        s = container.streams.video[0]
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        return VideoInfo(Path(path), int(s.frames or 0), fps, s.codec_context.width, s.codec_context.height)


def frame_times(path: str | Path) -> np.ndarray:
    """Presentation time (s, from the first frame) of every frame, in frame order, read from the
    container's packets without decoding (fast). Frame ``i`` of :func:`iter_frames` is shown at
    ``frame_times(path)[i]``; for a constant frame rate that is ``i / fps``.

    Raises:
        VideoError: a packet without a timestamp, or a container that cannot be read.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        pts = []
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the flush packet at the end
                    continue
                if packet.pts is None:
                    raise VideoError(f"{path}: packet {len(pts)} has no presentation timestamp")
                pts.append(packet.pts)
        except av.error.FFmpegError as err:
            raise VideoError(f"{path}: reading packets failed after packet {len(pts)} ({err})") from err
        base = float(stream.time_base)
    t = np.sort(np.asarray(pts, dtype=np.float64)) * base
    return t - t[0] if len(t) else t


def frame_rate_varies(times: np.ndarray, tolerance: float = 0.1) -> bool:
    """True when frame intervals differ from their median by more than ``tolerance`` (a share)."""
    if len(times) < 3:
        return False
    dt = np.diff(times)
    med = float(np.median(dt))
    return med > 0 and bool(np.any(np.abs(dt - med) > tolerance * med))


def iter_frames(
    path: str | Path, start: int = 0, stop: int | None = None, gray: bool = True,
    wanted: np.ndarray | None = None,
) -> Iterator[tuple[int, np.ndarray | None]]:
    """Yield ``(index, frame)`` for frames ``start <= index < stop`` in one sequential pass.

    Frames are uint8 ``(H, W)`` when ``gray`` else ``(H, W, 3)`` RGB.
    ``wanted`` (optional bool mask over frame indices): frames it marks False (or that lie
    beyond its end) are still decoded and yielded, but as ``None``, skipping the conversion
    to numpy (a full-frame copy or range conversion), for callers that use only a few frames
    but need to walk the whole file.

    Raises:
        VideoError: when decoding fails, naming the file and the last good frame.
    """
    fmt = "gray" if gray else "rgb24"
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        i = -1
        try:
            for frame in container.decode(stream):
                i += 1
                if i < start:
                    continue
                if stop is not None and i >= stop:
                    break
                if wanted is not None and not (i < len(wanted) and wanted[i]):
                    yield i, None
                else:
                    yield i, _to_array(frame, fmt)
        except av.error.FFmpegError as err:
            raise VideoError(f"{path}: decoding failed after frame {i} ({err})") from err


_YUV_PLANAR = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray"}


# Studio-range luma (16..235) -> full-range grey (0..255), as swscale's gray output does.
_LIMITED_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255.0 / 219.0), 0, 255).astype(np.uint8)


def _to_array(frame, fmt: str) -> np.ndarray:
    """Frame -> numpy. For grey output of planar YUV the luma plane *is* the grey image:
    copying it skips a colour conversion (about 3x faster than ``to_ndarray(format="gray")``)."""
    if fmt == "gray" and frame.format.name in _YUV_PLANAR:
        plane = frame.planes[0]
        buf = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        luma = buf[: frame.height, : frame.width]
        full_range = frame.format.name.startswith("yuvj") or frame.format.name == "gray" or (
            getattr(frame, "color_range", 0) == 2)
        return luma.copy() if full_range else cv2.LUT(luma, _LIMITED_TO_FULL)
    return frame.to_ndarray(format=fmt)


def count_frames(path: str | Path) -> int:
    """Exact number of decodable frames (decodes the whole file; header counts can lie)."""
    n = 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for _ in container.decode(stream):
                n += 1
        except av.error.FFmpegError as err:
            raise VideoError(f"{path}: decoding failed after frame {n - 1} ({err})") from err
    return n


def read_frames(path: str | Path, indices: Iterable[int], gray: bool = True) -> dict[int, np.ndarray]:
    """Frames at ``indices``, read in one sequential pass (no seeking).

    Raises:
        VideoError: if the video ends before the largest requested index.
    """
    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        return {}
    out: dict[int, np.ndarray] = {}
    pos = 0
    for i, frame in iter_frames(path, start=wanted[0], stop=wanted[-1] + 1, gray=gray):
        if i == wanted[pos]:
            out[i] = frame
            pos += 1
            if pos == len(wanted):
                break
    if len(out) < len(wanted):
        raise VideoError(f"{path}: ends before frame {wanted[len(out)]} (requested up to {wanted[-1]})")
    return out


class VideoWriter:
    """Write frames to an H.264 mp4 atomically (temporary file, renamed on success).

    Args:
        path: output file.
        fps: frame rate (a float or Fraction).
        width, height: frame size in pixels; H.264 with yuv420p needs even sizes.
        gray: frames are ``(H, W)`` uint8 when True, ``(H, W, 3)`` RGB otherwise.
        crf: x264 constant rate factor (lower = better quality).
    """

    def __init__(self, path, fps, width: int, height: int, gray: bool = True, crf: int = 18,
                 codec: str = "libx264", gop: int | None = None):
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.width, self.height, self.gray = int(width), int(height), gray
        self.crf, self.codec, self.gop = crf, codec, gop
        self._atomic = None  # io.atomic.atomic_path of ``path``, open between __enter__ and __exit__
        self._container = None
        self._stream = None
        self.n_written = 0

    def __enter__(self) -> VideoWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()  # the real extension last: the muxer picks the container from it
        try:
            self._container = av.open(str(tmp), mode="w")
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        s = self._container.add_stream(self.codec, rate=self.fps)
        s.width, s.height, s.pix_fmt = self.width, self.height, "yuv420p"
        opts = {"crf": str(self.crf), "preset": "veryfast"}
        if self.gop:
            opts["g"] = str(self.gop)
        s.options = opts
        self._stream = s
        return self

    def write(self, frame: np.ndarray) -> None:
        if frame.dtype != np.uint8:
            raise ValueError(f"{self.path}: frames must be uint8, got {frame.dtype}")
        fmt = "gray" if self.gray else "rgb24"
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=fmt)
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.n_written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        # atomic_path renames the file on success. Given an error it removes the file and raises
        # DiskFullError itself for a full disk; any other error it returns for us to re-raise.
        try:
            try:
                if exc_type is None:
                    for packet in self._stream.encode():  # flush the encoder
                        self._container.mux(packet)
            finally:
                self._container.close()
        except BaseException as err:  # flushing or closing failed: no partial file stays
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._atomic.__exit__(exc_type, exc, tb)


def write_video(path, frames: Iterable[np.ndarray], fps, gray: bool = True, crf: int = 18) -> int:
    """Write an iterable of frames; returns the number written. Size comes from the first frame."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    h, w = first.shape[:2]
    with VideoWriter(path, fps, w, h, gray=gray, crf=crf) as writer:
        writer.write(first)
        for f in it:
            writer.write(f)
    return writer.n_written
