"""Optional intensity normalisation of face crops (``extract.normalize``).

One implementation, used by ``mfe extract`` (on the kept crops of a video, before they are
stored) and by ``mfe predict`` (the same call inside ``preprocess.extract.crop_video``), so a
model sees crops normalised the way its frame store's were. Pure numpy/OpenCV on uint8.

- ``none`` (default): crops unchanged (byte-identical to extraction before this setting).
- ``video_hist``: ONE grey-level look-up table per video. The histogram of every kept crop of
  the video, pooled, is matched to a fixed reference: a Gaussian of mean 128 and SD 48 grey
  levels (histogram specification: level ``v`` goes to the reference quantile of ``v``'s
  mid-rank in the pooled distribution). The table is monotone, so any global lighting change of
  a whole video (gain, offset, gamma: any increasing map) is removed, while differences between
  crops of one video (a face that darkens during the recording) keep their order. A Gaussian
  rather than plain histogram equalisation (a uniform reference): equalisation stretches the
  most frequent grey levels most, i.e. the large flat regions of fur and background, amplifying
  their compression noise and banding; the Gaussian keeps a natural look, centred in the range,
  with +-2.7 SD inside 0..255 (under 1 % of pixels clipped).
- ``clahe``: OpenCV CLAHE on each crop (``clipLimit`` 2.0, a 4x4 tile grid). The grid is fixed,
  not derived from the crop's pixel size, because a crop covers the same part of the face
  whatever ``extract.out_size`` is: 4x4 tiles are 28 px at 112 px, about an eye's extent, big
  enough that a tile of flat fur is not blown up into noise (OpenCV's 8x8 default would be
  14 px tiles); clip 2.0 is OpenCV's usual moderate limit. Per crop, so local contrast is
  boosted but whole-video lighting only partly removed.

Live scoring cannot see a video's future crops; :class:`RunningHistogram` gives the
``video_hist`` table of the crops seen so far (see ``inference.streams.predict_live``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: ``extract.normalize`` choices (the first is the default).
METHODS = ("none", "video_hist", "clahe")
DEFAULT = "none"
#: ``video_hist`` reference distribution: a Gaussian of this mean and SD (grey levels).
REFERENCE_MEAN, REFERENCE_SD = 128.0, 48.0
#: ``clahe`` parameters.
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (4, 4)


def check_method(method: str | None) -> str:
    """``method`` if it is one of :data:`METHODS` (``None``: the default), else ValueError listing them."""
    if method is None:
        return DEFAULT
    if method not in METHODS:
        raise ValueError(f"unknown intensity normalisation {method!r}; choices: {', '.join(METHODS)}")
    return method


def _reference_cdf() -> np.ndarray:
    """P(reference <= level + 0.5) for levels 0..255 (the Gaussian, discretised)."""
    z = (np.arange(256) + 0.5 - REFERENCE_MEAN) / (REFERENCE_SD * math.sqrt(2.0))
    return 0.5 * (1.0 + np.array([math.erf(v) for v in z]))


_REF_CDF = _reference_cdf()


def grey_histogram(crops: np.ndarray) -> np.ndarray:
    """Counts of the grey levels 0..255 over every pixel (and channel) of ``crops``, int64 (256,)."""
    return np.bincount(np.asarray(crops, dtype=np.uint8).ravel(), minlength=256).astype(np.int64)


def lut_from_histogram(hist: np.ndarray) -> np.ndarray:
    """The ``video_hist`` look-up table (uint8 (256,), non-decreasing) for a pooled histogram.

    Level ``v`` maps to the smallest reference level whose CDF reaches ``v``'s mid-rank
    ``(CDF(v-1) + CDF(v)) / 2``; an empty histogram gives the identity.
    """
    hist = np.asarray(hist, dtype=np.float64)
    total = hist.sum()
    if total <= 0:
        return np.arange(256, dtype=np.uint8)
    cdf = np.cumsum(hist) / total
    mid = cdf - hist / (2.0 * total)
    return np.minimum(np.searchsorted(_REF_CDF, mid, side="left"), 255).astype(np.uint8)


def apply_lut(crops: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[crops]`` (uint8, same shape), through ``cv2.LUT`` (one row per crop)."""
    crops = np.ascontiguousarray(crops, dtype=np.uint8)
    if crops.size == 0:
        return crops.copy()
    flat = crops.reshape(len(crops), -1) if crops.ndim > 1 else crops.reshape(1, -1)
    return cv2.LUT(flat, np.asarray(lut, dtype=np.uint8)).reshape(crops.shape)


def video_hist(crops: np.ndarray) -> np.ndarray:
    """``video_hist`` normalisation of all crops of one video (one table for all of them)."""
    return apply_lut(crops, lut_from_histogram(grey_histogram(crops)))


def clahe(crops: np.ndarray) -> np.ndarray:
    """CLAHE on every crop: grey ``(N, H, W)`` or ``(N, H, W, 1)`` directly; ``(N, H, W, 3)`` (RGB)
    on the L channel of CIE Lab, so colours are kept."""
    crops = np.ascontiguousarray(crops, dtype=np.uint8)
    op = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    out = np.empty_like(crops)
    for i, crop in enumerate(crops):
        if crop.ndim == 2:
            out[i] = op.apply(crop)
        elif crop.shape[-1] == 1:
            out[i, ..., 0] = op.apply(np.ascontiguousarray(crop[..., 0]))
        elif crop.shape[-1] == 3:
            lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)
            lab[..., 0] = op.apply(np.ascontiguousarray(lab[..., 0]))
            out[i] = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
        else:
            raise ValueError(f"clahe: crops of shape {crops.shape}: expected (N, H, W) or (N, H, W, 1|3)")
    return out


def normalize_video(crops: np.ndarray, method: str | None = DEFAULT) -> np.ndarray:
    """Normalise the kept crops of ONE video.

    Args:
        crops: uint8 ``(N, H, W)`` or ``(N, H, W, C)``; all crops of the video (``video_hist``
            pools them into one table).
        method: one of :data:`METHODS` (``None``: ``none``).

    Returns:
        uint8, the shape of ``crops``; ``none`` returns ``crops`` itself (untouched).

    Raises:
        ValueError: an unknown method (the message lists the choices), or crops of another rank.
    """
    method = check_method(method)
    if method == "none":
        return crops
    crops = np.asarray(crops)
    if crops.ndim not in (3, 4):
        raise ValueError(f"normalize_video: crops of shape {crops.shape}: expected (N, H, W) or (N, H, W, C)")
    if crops.dtype != np.uint8:
        raise ValueError(f"normalize_video: crops must be uint8, got {crops.dtype}")
    return video_hist(crops) if method == "video_hist" else clahe(crops)


class RunningHistogram:
    """``video_hist`` for a stream: the pooled histogram of the crops added so far.

    :meth:`apply` maps crops with the table of everything added until then, so early crops of a
    stream are normalised with a table from few crops; once the stream has run a while the table
    converges to the one ``mfe predict`` computes from the whole video.
    """

    def __init__(self) -> None:
        self.hist = np.zeros(256, np.int64)
        self.n = 0

    def add(self, crop: np.ndarray) -> None:
        self.hist += grey_histogram(crop)
        self.n += 1

    def lut(self) -> np.ndarray:
        return lut_from_histogram(self.hist)

    def apply(self, crops: np.ndarray) -> np.ndarray:
        return apply_lut(crops, self.lut())
