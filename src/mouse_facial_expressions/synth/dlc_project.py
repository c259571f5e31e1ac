"""A DeepLabCut project for the synthetic face, labelled from the ground truth.

:func:`write_dlc_project` turns a synthetic cohort (``mfe synth``) into what a lab has after
labelling frames in DeepLabCut, so the DLC step (``create_training_dataset``,
``train_network``, then ``mfe keypoints detect``) can run end to end with known answers:

- ``config.yaml``: a single-animal DeepLabCut 3 project (``engine: pytorch``) with the five
  canonical landmarks ``nose, left_eye, left_ear, right_eye, right_ear`` as bodyparts, a
  skeleton, and ``video_sets`` naming the cohort's processed videos
  (``videos/processed/<video>.mp4``, written by ``mfe prepare``) with their crop sizes;
- ``labeled-data/<video>/img<k>.png``: frame ``k`` of the processed video ``<video>`` (RGB,
  as DeepLabCut's ``extract_frames`` writes them; the number is zero-padded to the digits of
  the frame count, as DLC does);
- ``labeled-data/<video>/CollectedData_<scorer>.h5`` and ``.csv``: the labels in DLC's newer
  layout: column levels ``scorer/bodyparts/coords`` (coords ``x, y``), a 3-level row index
  ``("labeled-data", <video>, "img<k>.png")``, HDF5 key ``df_with_missing``.

Which pixels: ``truth/truth.parquet`` holds the true landmark positions in pixels of the raw
camera video, and ``mfe prepare`` copies frames without resizing (frame ``frame`` of the
processed video is raw frame ``raw_frame``). So the labels are in processed-video pixels too;
the PNGs are decoded from the raw videos at ``raw_frame`` (they exist right after
``mfe synth``; the processed videos differ only by re-encoding) and named by ``frame``, the
index DLC and ``mfe keypoints import`` use.

Hidden points: a labeller leaves points that cannot be seen empty (NaN): the far-side eye
and ear, and facing-side points that are outside the frame, under the feeder bar or turned
away. Which points are seen is what the synthetic DLC output encodes (likelihood above 0.9
exactly where seen, below 0.3 where hidden, see :mod:`~mouse_facial_expressions.synth.cohort`),
so a point is labelled where the cohort's ``keypoints/dlc/<video><SCORER>.h5`` gives it a
likelihood above 0.5, at its true position.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml

from mouse_facial_expressions.config import CANONICAL_LANDMARKS, load_config
from mouse_facial_expressions.io.atomic import atomic_path
from mouse_facial_expressions.io.dlc import read_dlc, write_dlc
from mouse_facial_expressions.io.video import read_frames
from mouse_facial_expressions.synth.cohort import MARKER, SCORER

#: Labeller name (DLC ``scorer``) and project fields of the written project.
LABELLER = "synth"
TASK = "mfeface"
DATE = "Jan1"
#: Net DLC's create_training_dataset uses unless told otherwise (resnet_50 as in DLC's template).
DEFAULT_NET = "resnet_50"
SKELETON = [["nose", "left_eye"], ["left_eye", "left_ear"], ["nose", "right_eye"], ["right_eye", "right_ear"]]
#: A synthetic DLC point counts as seen above this likelihood (seen: >= 0.92, hidden: <= 0.25).
SEEN_LIKELIHOOD = 0.5


def pick_frames(n_frames: int, k: int) -> np.ndarray:
    """``k`` frame indices spread evenly over ``0..n_frames-1`` (all of them when ``k >= n_frames``)."""
    if n_frames <= 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, n_frames - 1, min(k, n_frames)).round().astype(np.int64))


def pick_videos(videos: list[str], k: int | None) -> list[str]:
    """``k`` of the sorted ``videos`` spread evenly (all when ``k`` is None or too large)."""
    videos = sorted(videos)
    if k is None or k >= len(videos):
        return videos
    return [videos[i] for i in pick_frames(len(videos), k)]


def image_name(frame: int, n_frames: int) -> str:
    """DLC's frame file name: ``img`` + the index zero-padded to the digits of the frame count."""
    width = max(1, int(np.ceil(np.log10(max(n_frames, 2)))))
    return f"img{frame:0{width}d}.png"


def label_table(truth: pd.DataFrame, seen: pd.DataFrame, video: str, frames: np.ndarray,
                n_frames: int, scorer: str = LABELLER) -> pd.DataFrame:
    """The ``CollectedData`` table of one video (DLC's newer layout).

    Args:
        truth: the video's rows of ``truth/truth.parquet`` (``frame``, ``<L>_x``, ``<L>_y``).
        seen: bool table, one row per frame (index = frame), one column per landmark.
        video: the processed video's name (the labeled-data folder).
        frames: the frames to label.
        n_frames: the video's frame count (sets the width of the image numbers).
        scorer: the labeller.

    Returns:
        Rows ``("labeled-data", video, "img<k>.png")``, columns ``(scorer, bodypart, x|y)``,
        float64, NaN for hidden points.
    """
    rows = truth.set_index("frame").loc[frames]
    data = {}
    for name in CANONICAL_LANDMARKS:
        vis = seen.loc[frames, name].to_numpy(bool)
        data[(scorer, name, "x")] = np.where(vis, rows[f"{name}_x"].to_numpy(np.float64), np.nan)
        data[(scorer, name, "y")] = np.where(vis, rows[f"{name}_y"].to_numpy(np.float64), np.nan)
    df = pd.DataFrame(data)
    df.columns = pd.MultiIndex.from_tuples(list(data), names=["scorer", "bodyparts", "coords"])
    df.index = pd.MultiIndex.from_tuples([("labeled-data", video, image_name(int(f), n_frames)) for f in frames])
    return df


def project_config(out: Path, video_sets: dict[str, tuple[int, int]], frames_per_video: int,
                   pcutoff: float, net_type: str = DEFAULT_NET) -> str:
    """``config.yaml`` text of a single-animal DLC 3 project, laid out like DLC's own template."""
    def block(comment: str, values: dict) -> str:
        return f"\n# {comment}\n" + yaml.safe_dump(values, sort_keys=False, default_flow_style=False)

    sets = {str(path): {"crop": f"0, {w}, 0, {h}"} for path, (w, h) in video_sets.items()}
    return "".join([
        block("Project definitions (do not edit)", {"Task": TASK, "scorer": LABELLER, "date": DATE,
                                                    "multianimalproject": False, "identity": None}),
        block("Project path (change when moving around)", {"project_path": str(out.resolve())}),
        block("Default DeepLabCut engine to use for shuffle creation (either pytorch or tensorflow)",
              {"engine": "pytorch"}),
        block("Annotation data set configuration (and individual video cropping parameters)",
              {"video_sets": sets, "bodyparts": list(CANONICAL_LANDMARKS)}),
        block("Fraction of video to start/stop when extracting frames for labeling/refinement",
              {"start": 0, "stop": 1, "numframes2pick": frames_per_video}),
        block("Plotting configuration", {"skeleton": SKELETON, "skeleton_color": "black", "pcutoff": pcutoff,
                                         "dotsize": 4, "alphavalue": 0.7, "colormap": "rainbow"}),
        block("Training,Evaluation and Analysis configuration",
              {"TrainingFraction": [0.95], "iteration": 0, "default_net_type": net_type,
               "default_augmenter": "default", "snapshotindex": -1, "detector_snapshotindex": -1,
               "batch_size": 8, "detector_batch_size": 1}),
        block("Cropping Parameters (for analysis and outlier frame detection)",
              {"cropping": False, "x1": 0, "x2": 640, "y1": 277, "y2": 624}),
        block("Refinement configuration (parameters from annotation dataset configuration also relevant in this stage)",
              {"corner2move2": [50, 50], "move2corner": True}),
    ])


def _seen(cohort_cfg, video: str) -> pd.DataFrame:
    """Which landmarks are visible in each frame, from the cohort's synthetic DLC output."""
    path = cohort_cfg.path("dlc") / f"{video}{SCORER}.h5"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the synthetic DLC output of {video} is missing (it tells which points "
                                "are visible); regenerate the cohort with `mfe synth`")
    pose = read_dlc(path)
    return pd.DataFrame({name: pose.xyl(name)[:, 2] > SEEN_LIKELIHOOD for name in CANONICAL_LANDMARKS},
                        index=pose.frames())


def write_dlc_project(cohort: str | Path, out: str | Path, frames_per_video: int = 30,
                      videos: int | None = None, net_type: str = DEFAULT_NET) -> Path:
    """Write a labelled DeepLabCut project for a synthetic cohort (see the module docstring).

    Args:
        cohort: a complete synthetic project (``mfe synth``).
        out: the DLC project folder (created; labels and frames of the same videos are replaced).
        frames_per_video: labelled frames per video, spread evenly over it.
        videos: label only this many of the cohort's videos (spread evenly over the sorted
            names; the others stay unseen by training, to measure how a model generalises).
            ``None``: every video. ``video_sets`` lists the labelled videos.
        net_type: ``default_net_type`` of the project.

    Returns:
        The path of ``config.yaml``.

    Raises:
        FileNotFoundError: ``cohort`` is no complete synthetic cohort.
    """
    cohort, out = Path(cohort), Path(out)
    marker = cohort / "truth" / MARKER
    if not marker.is_file() or not json.loads(marker.read_text()).get("complete"):
        raise FileNotFoundError(f"{cohort}: no complete synthetic cohort (truth/{MARKER}); run `mfe synth` first")
    if frames_per_video < 1:
        raise ValueError(f"frames_per_video={frames_per_video}: label at least one frame per video")
    cfg = load_config(cohort)
    truth = pd.read_parquet(cohort / "truth" / "truth.parquet")
    chosen = pick_videos(list(truth.video.unique()), videos)
    video_sets: dict[str, tuple[int, int]] = {}
    for video in chosen:
        rows = truth[truth.video == video].sort_values("frame")
        n = len(rows)
        frames = pick_frames(n, frames_per_video)
        raw = cfg.path("raw_videos") / str(rows.raw_video.iloc[0])
        raw_index = rows.set_index("frame").loc[frames, "raw_frame"].to_numpy(np.int64)
        images = read_frames(raw, raw_index, gray=True)
        folder = out / "labeled-data" / video
        folder.mkdir(parents=True, exist_ok=True)
        for f, r in zip(frames, raw_index):
            rgb = cv2.cvtColor(images[int(r)], cv2.COLOR_GRAY2BGR)  # DLC's frames are colour images
            with atomic_path(folder / image_name(int(f), n)) as tmp:
                if not cv2.imwrite(str(tmp), rgb):
                    raise OSError(f"{folder / image_name(int(f), n)}: could not write the PNG")
        labels = label_table(rows, _seen(cfg, video), video, frames, n)
        stem = folder / f"CollectedData_{LABELLER}"
        write_dlc(stem.with_suffix(".csv"), labels)
        write_dlc(stem.with_suffix(".h5"), labels, h5_format="fixed")  # as DLC writes CollectedData
        h, w = images[int(raw_index[0])].shape[:2]
        video_sets[str(cfg.path("processed_videos") / f"{video}.mp4")] = (w - w % 2, h - h % 2)
    config = out / "config.yaml"
    text = project_config(out, video_sets, frames_per_video, cfg.keypoints.pcutoff, net_type)
    with atomic_path(config) as tmp:
        tmp.write_text(text)
    return config
