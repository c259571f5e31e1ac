"""``mfe predict --images``: score still images (photographs, rated frames) with a trained model.

Many Mouse Grimace Scale rating sheets rate photographs, not video frames. A still image is
scored like a window of a video whose every frame is that image:

1. keypoints: a DeepLabCut hand-label file (``CollectedData_<scorer>.h5`` or ``.csv``, old
   and new layouts, read by :func:`io.keypoints.read_pose` and mapped to the project's
   landmarks with ``keypoints.bodyparts`` by :func:`io.keypoints.to_canonical`), or a table
   (``.csv`` / ``.parquet``) with an ``image`` column and ``<L>_x, <L>_y[, <L>_likelihood]``
   per landmark (no likelihood column: 1.0 where the point is given). Rows are matched to the
   images by file name (``labeled-data/v/img0192.png`` labels ``img0192.png``), else by stem
   (``img0192`` labels ``img0192.jpg``);
2. the alignment and crop ``mfe extract`` / ``mfe predict`` give a video frame, with the
   settings of the frame store the model was trained on (:func:`inference.predict.model_settings`:
   ``crop_size``, ``out_size``, ``alignment``, ``pcutoff``, ``normalize``):
   :func:`preprocess.extract.frame_geometry` on the image's one-row keypoint table and
   :func:`preprocess.geometry.warp_crop` on the grey image. Each image is aligned on its own
   (an alignment with one fixed side and ``side: auto`` takes the side from the image's own
   snout direction). No frame is chosen: the store's quality thresholds only warn;
3. intensity normalisation (``extract.normalize``, :mod:`preprocess.normalize`): ``clahe`` per
   crop, as for video; ``video_hist`` has no video, so each image is its own "video": its
   look-up table is the one of its own crop (the PER-IMAGE table, not one pooled over the
   images of the call), so an image's score does not depend on which other images are scored
   with it. A video's table pools crops of one face under one lighting, which one crop of that
   face approximates;
4. the crop repeated ``num_frames`` times is the clip (:func:`data.augment.to_model_input`), scored
   by the fold ensemble (``p1`` = mean over members); a run with action-unit heads also gives
   the expected score of each MGS action unit and ``mgs``, their mean
   (:meth:`inference.ensemble.FoldEnsemble.predict_au`).

Checks, as for videos (:mod:`inference.checks`): keypoints without the landmarks the model's
alignment needs are refused up front (naming the model's alignment), and a project whose
``extract.alignment`` differs gets a warning; the crops of the call, taken together, get the
domain check (:func:`preprocess.domain.compare`: a log warning and the ``domain_warning``
column); each crop gets the face check (:mod:`preprocess.facecheck`): a crop without a face is
not scored (``no_face``, NaN scores).

Outputs in ``out_dir``: ``images_scores.csv`` (:func:`scores_columns`), ``COLUMNS.md`` (what its
columns hold, :func:`inference.outputs.image_column_descriptions`) and, with ``preview``,
``images_preview.png`` (a contact sheet of up to 24 crops). The agreement with raters of the
same images (``images_agreement.csv``) is computed above this layer:
:func:`report.runs.score_images` with ``ratings`` (:func:`evaluation.mgs_models.image_agreement`).
One bad image (unreadable, no keypoints,
keypoints that cannot align it) fails alone with its reason in the ``error`` column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import torch

from mouse_facial_expressions.config import Config
from mouse_facial_expressions.data.augment import to_model_input
from mouse_facial_expressions.data.predictions import AU_PREDICTION_COLUMNS, au_prediction_columns
from mouse_facial_expressions.inference import checks
from mouse_facial_expressions.inference.ensemble import FoldEnsemble, load_ensemble
from mouse_facial_expressions.inference.image_crops import (  # noqa: F401  (re-exported: part of this module's API)
    IMAGE_SUFFIXES, ImageError, _unaligned_reason, crop_image, crop_images, list_images, read_grey)
from mouse_facial_expressions.inference.image_inputs import (  # noqa: F401  (re-exported: part of this module's API)
    _canonical_images, _is_dlc_csv, keypoint_file, label_name, match_keypoints, read_image_keypoints)
from mouse_facial_expressions.inference.outputs import image_column_descriptions
from mouse_facial_expressions.inference.runtime import model_settings, resolve_device
from mouse_facial_expressions.io.atomic import write_csv, write_text
from mouse_facial_expressions.io.keypoints import landmark_names
from mouse_facial_expressions.preprocess import domain, facecheck

log = logging.getLogger(__name__)

SCORES_CSV = "images_scores.csv"
AGREEMENT_CSV = "images_agreement.csv"
PREVIEW_PNG = "images_preview.png"
COLUMNS_MD = "COLUMNS.md"
#: Crops on the preview sheet.
PREVIEW_MAX = 24


def image_clips(crops: np.ndarray, num_frames: int, image_size: int, channels: int) -> torch.Tensor:
    """Still crops ``(B, S, S)`` uint8 -> model input ``(B, T, C, H, W)`` float32: each crop
    repeated ``num_frames`` times, through :func:`data.augment.to_model_input`."""
    return torch.stack([to_model_input(torch.from_numpy(np.repeat(c[None], num_frames, axis=0)), image_size, channels)
                        for c in crops])


def score_crops(crops: np.ndarray, ens: FoldEnsemble, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-member ``p1`` ``(N, K)`` float64 and the expected AU scores ``(N, 5)`` (None without
    AU heads) of still crops ``(N, S, S)`` uint8."""
    p1 = np.empty((len(crops), len(ens)))
    au = np.empty((len(crops), 5)) if ens.has_au else None
    for a in range(0, len(crops), batch_size):
        clips = image_clips(crops[a:a + batch_size], ens.num_frames, ens.image_size, ens.channels)
        p, s = ens.predict_au(clips)  # (B, K), (B, 5) | None
        p1[a:a + len(clips)] = p
        if au is not None:
            au[a:a + len(clips)] = s
    return p1, au


# ----------------------------------------------------------------------------- the call

def image_domain(crops: np.ndarray, index: pd.DataFrame, train: dict | None, paths: list[Path], cfg) -> str:
    """The domain check (:func:`preprocess.domain.compare`) of the images' crops taken together,
    as ``mfe predict`` checks a video's: '' when inside or without a training summary."""
    if train is None or not len(crops):
        return ""
    synthetic = domain.video_is_synthetic(paths[0], cfg.root if cfg is not None else None)
    return "; ".join(domain.compare(train, domain.video_summary(crops, index), video_synthetic=synthetic))


def scores_columns(names: list[str], has_au: bool) -> list[str]:
    """Columns of ``images_scores.csv``: ``image, status, p1`` (mean over members), ``p1_<member>``
    (ensembles), ``au_ot ... au_wc, mgs`` (AU heads), ``side`` (the face side seen; right is
    mirrored), ``sharpness`` (of the crop), ``domain_warning`` (the domain check of the images'
    crops together), ``no_face``, ``no_face_reason`` (the face check of each crop), ``error``
    (why a failed image failed); ``COLUMNS.md`` beside it says so in words."""
    return (["image", "status", "p1"] + ([f"p1_{n}" for n in names] if len(names) > 1 else [])
            + (AU_PREDICTION_COLUMNS if has_au else []) + ["side", "sharpness", "domain_warning", "no_face",
                                                           "no_face_reason", "error"])


@dataclass
class ImagesReport:
    """What :func:`predict_images` did: the scores table (one row per image), the agreement
    table (or None), warnings, notes and the files written."""

    out_dir: Path
    settings: dict
    scores: pd.DataFrame
    has_au: bool
    agreement: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> pd.DataFrame:
        return self.scores[self.scores["status"] == "failed"]

    @property
    def n_scored(self) -> int:
        return int((self.scores["status"] == "done").sum())

    @property
    def ok(self) -> bool:
        return self.failed.empty

    def summary(self) -> str:
        done = self.scores[self.scores["status"] == "done"]
        line = f"images -> {self.out_dir}: {self.n_scored} scored, {len(self.failed)} failed"
        if len(done):
            line += f"; mean p1 {done['p1'].mean():.3f}"
            if done["no_face"].eq(True).any():
                line += f" ({int(done['no_face'].eq(True).sum())} without a face, not scored)"
            if self.has_au:
                line += f", mean mgs {done['mgs'].mean():.3f} (0..2)"
        lines = [line]
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  FAILED {r.error}" for r in self.failed.itertuples()]  # the error names the image
        lines += [f"  note: {n}" for n in self.notes]
        if self.agreement is not None:
            a = self.agreement
            lines.append(f"agreement with the mean rater ({int(a['n_raters'].iloc[0])} rater(s); ceiling = the raters' "
                         "mean pairwise agreement):")
            for r in a.itertuples():
                lines.append(f"  {r.target:<5} n {r.n_images:>4}  kappa {r.kappa:6.3f} [{r.kappa_low:.2f}, {r.kappa_high:.2f}]"
                             f"  r {r.r:6.3f}  ceiling kappa {r.ceiling_kappa:6.3f} r {r.ceiling_r:6.3f}")
        return "\n".join(lines)


def predict_images(images, keypoints, model, out_dir, *, cfg: Config | None = None,
                   batch_size: int = 16, device: str = "auto", precision: str | None = None,
                   individual: str | None = None, preview: bool = False, progress: bool | None = None) -> ImagesReport:
    """Score still images with a trained model (``mfe predict --images``); one bad image fails alone.

    Args:
        images: a folder of images (:data:`IMAGE_SUFFIXES`) or a list of image files.
        keypoints: their keypoints: a DeepLabCut ``CollectedData_<scorer>.h5|.csv`` (or the
            folder holding it) or a table with an ``image`` column (:func:`read_image_keypoints`).
        model: a run folder (fold ensemble), a ``.ckpt`` file or a :class:`FoldEnsemble`.
        out_dir: output folder (created).
        cfg: project config (the bodyparts mapping; extraction settings when the model's frame
            store is unreachable).
        batch_size: images per forward pass.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        precision: ``"32"``, ``"bf16"`` or None (bf16 on a GPU, fp32 on a CPU).
        individual: multi-animal DeepLabCut files: the animal to read (default
            ``cfg.keypoints.individual``).
        preview: also write ``images_preview.png`` (up to 24 crops, spread over the images;
            captioned ``<image stem> f<k>``, ``k`` its position in the scores).
        progress: a progress bar over the images (None: only on a terminal).

    Returns:
        An :class:`ImagesReport`.

    Raises:
        ValueError: a baseline-relative or fused run, an unreadable keypoint file, or keypoints
            without a landmark the model's alignment needs.
    """
    from mouse_facial_expressions.preprocess.preview import crop_sheet

    paths = list_images(images)
    ens = model if isinstance(model, FoldEnsemble) else load_ensemble(model)
    ens.require_absolute("`mfe predict --images`")
    ens.require_face_only("`mfe predict --images`")
    dev, dtype, line = resolve_device(device, precision)
    log.info(line)
    ens.to(dev)
    ens.dtype = dtype
    settings = model_settings(ens, cfg)
    kp_path = keypoint_file(keypoints)
    table = read_image_keypoints(kp_path, cfg, individual)
    unfit = checks.alignment_fit(landmark_names(table), settings["alignment"], kp_path)
    if unfit:
        raise ValueError(unfit)
    other = checks.alignment_mismatch(settings["alignment"], cfg)
    crops, rows, warnings = crop_images(paths, table, settings, kp_path, progress)
    warnings = ([other] if other else []) + warnings
    train, note = domain.training_summary(ens.hparams)
    done = np.array([r["crop"] for r in rows if r["status"] == "done"], dtype=np.int64)
    df = pd.DataFrame(rows)
    is_done = (df["status"] == "done").to_numpy()
    index = df[is_done].reset_index(drop=True).assign(video="images")
    dom = image_domain(crops, index, train, paths, cfg)
    limits, face_note = facecheck.training_limits(train)
    no_face = facecheck.check_windows(facecheck.frame_features(crops, index),
                                      pd.DataFrame({"rows": [[i] for i in range(len(crops))]}), limits)
    if dom:
        warnings.append(f"outside the training data: {dom}")
    for w in [n for n in (note, None if note else face_note) if n] + warnings:
        log.warning(w)
    face = np.array([not r for r in no_face], bool)  # crops to score
    p1, au = score_crops(crops[face], ens, batch_size)
    p1, au = checks.expand(p1, face), checks.expand(au, face)
    df["domain_warning"] = dom
    df["no_face"], df["no_face_reason"] = None, None
    df.loc[is_done, "no_face"] = [bool(r) for r in no_face]
    df.loc[is_done, "no_face_reason"] = no_face
    df["p1"] = np.nan
    df.loc[is_done, "p1"] = p1[done].mean(axis=1)
    if len(ens) > 1:
        for j, name in enumerate(ens.names):
            df[f"p1_{name}"] = np.nan
            df.loc[is_done, f"p1_{name}"] = p1[done, j]
    if au is not None:
        for col, values in au_prediction_columns(au[done]).items():
            df[col] = np.nan
            df.loc[is_done, col] = values
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ImagesReport(out_dir, settings, df.reindex(columns=scores_columns(ens.names, ens.has_au)), ens.has_au,
                          warnings=warnings)
    report.files.append(write_csv(report.scores, out_dir / SCORES_CSV))
    report.files.append(write_text(out_dir / COLUMNS_MD, image_column_descriptions(settings["class_names"], ens.column_text,
                                                                                   ens.names)))
    if preview and len(done):
        pick = np.unique(np.linspace(0, len(done) - 1, min(PREVIEW_MAX, len(done))).round().astype(int))
        sel = df[is_done].iloc[pick]
        index = pd.DataFrame({"video": sel["image"].map(lambda n: PurePosixPath(n).stem), "row": sel["crop"].to_numpy(),
                              "frame": sel.index.to_numpy(), "side": sel["side"].to_numpy(),  # f<k>: the k-th image
                              **{c: sel[c].to_numpy() for c in ("eye_x", "eye_y", "ear_x", "ear_y", "nose_x", "nose_y")}})
        report.files.append(crop_sheet(crops, index, out_dir / PREVIEW_PNG, n=len(index)))
    return report
