"""One typed configuration for a project, loaded from ``mfe.yaml``.

Every default lives here and, for the sections of the commands (``train``, ``predict``,
``evaluate``, ``finetune``, ``task``), in ``settings.py``. Unknown keys are errors that name the
key (``extra="forbid"``). Paths are relative to the project root (the folder holding
``mfe.yaml``) unless absolute.

The original code read its folders from environment variables (``MFE_RAW_CSV_FOLDER`` ...),
optionally through a ``.env`` file. They still work: when set, they fill the matching
settings, and a value written in ``mfe.yaml`` wins over them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from mouse_facial_expressions.settings import ConfigError, _format_validation_error  # noqa: F401 (re-exported)
from mouse_facial_expressions.settings import EvaluateConfig, FinetuneConfig, PredictConfig, Section, TaskMakeConfig, TrainConfig

CONFIG_NAME = "mfe.yaml"

#: Environment variable -> (section, key) it fills.
ENV_VARS: dict[str, tuple[str, str]] = {
    "MFE_RAW_CSV_FOLDER": ("paths", "metadata"),
    "MFE_RAW_VIDEO_FOLDER": ("paths", "raw_videos"),
    "MFE_PROCESSED_VIDEO_FOLDER": ("paths", "processed_videos"),
    "MFE_DLC_FACIAL_LABELS_FOLDER": ("paths", "dlc"),
    "MFE_EXTRACTED_FRAMES_FOLDER": ("paths", "frames"),
    "MFE_TASKS": ("paths", "tasks"),
    "MFE_VERSION": ("project", "dataset_version"),
}

#: Canonical face landmarks that alignment uses (the original DLC face model).
CANONICAL_LANDMARKS = ("nose", "left_eye", "left_ear", "right_eye", "right_ear")
#: Canonical body landmarks of ``behaviour.bodyparts`` (``mfe behaviour import``; the features use
#: nose, body_centre and tail_base).
BODY_LANDMARKS = ("nose", "left_ear", "right_ear", "body_centre", "tail_base")
#: Named ``extract.alignment`` presets (defined in ``preprocess/alignment.py``; the first is the default).
ALIGNMENT_PRESETS = ("dlc_face", "headfixed_eye_nose")
#: ``extract.normalize`` choices (defined in ``preprocess/normalize.py``; the first is the default).
NORMALIZE_METHODS = ("none", "video_hist", "clahe")


_Section = Section  # unknown keys are errors; an empty sub-section header is its defaults


class ProjectConfig(_Section):
    name: str = Field("mfe-project", description="The project's name (shown in reports).")
    dataset_version: str = Field("1", description="Task folders are ``task-<dataset_version>`` (the original ``--dataset_version``).")


class MetadataConfig(_Section):
    encoding: str = Field("utf-8", description="Text encoding of raw_videos.csv and treatments.csv (e.g. latin-1 or cp1252 for files saved by Excel on Windows).")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown text encoding {v!r} (e.g. utf-8, latin-1, cp1252)") from None
        return v


class PathsConfig(_Section):
    metadata: Path = Field(Path("metadata"), description="raw_videos.csv and treatments.csv.")
    raw_videos: Path = Field(Path("videos/raw"), description="Camera files <camera>__<serial>__YYYYMMDD_HHMMSS.mp4.")
    processed_videos: Path = Field(Path("videos/processed"), description="Trimmed videos <animal>_rec<k>_<label>.mp4.")
    dlc: Path = Field(Path("keypoints/dlc"), description="DeepLabCut (or SLEAP) output per processed video.")
    keypoints: Path = Field(Path("keypoints/canonical"), description="One canonical keypoint parquet per video.")
    body_dlc: Path = Field(Path("keypoints/body"), description="DLC/SLEAP body-part files <video>DLC_<scorer>.h5|.csv (mfe behaviour import).")
    behaviour: Path = Field(Path("behaviour"), description="Canonical body tables behaviour/<video>.parquet.")
    frames: Path = Field(Path("frames"), description="Frame store: <video>.npy + <video>.parquet.")
    tasks: Path = Field(Path("tasks"), description="Task folders task-<version>/.")
    models: Path = Field(Path("models"), description="checkpoints*/, runs/, mlruns.db.")
    reports: Path = Field(Path("reports"), description="Reports, previews and mfe predict's default output.")
    onnx_cache: Path | None = Field(None, description="Where mfe predict keeps the ONNX export of a run's fold ensemble (the CPU backend; one file of about 100-300 MB per run and quantization, made on first use and reused): null = inside the run folder (<run>/onnx/); a folder (relative to the project) holds one subfolder per run.")


class VideoConfig(_Section):
    recording_labels: dict[int, str] = Field(
        description="Recording number -> label in processed video names <animal>_rec<k>_<label>.mp4.",
        default_factory=lambda: {
            0: "acclimation",
            1: "preinjection",
            2: "1h-postinjection",
            3: "2h-postinjection",
            4: "4h-postinjection",
        }
    )
    codec: str = Field("libx264", description="Encoder of trimmed videos (PyAV, H.264).")
    crf: int = Field(18, ge=0, le=51, description="H.264 constant rate factor (0-51, lower is better quality).")
    gray: bool = Field(True, description="Write processed videos in grey (the lab cameras are mono; keypoints and extract use grey). False keeps RGB for colour sources.")
    match_tolerance_s: float = Field(2.0, ge=0, description="A raw file whose name time is this many seconds off the metadata time still matches, if it is the only one.")


class KeypointsConfig(_Section):
    bodyparts: dict[str, list[str]] = Field(
        description="Canonical landmark -> the user's bodypart names; several names are averaged "
        "(e.g. the eye centre from eye_top/eye_front/eye_bottom/eye_back).",
        default_factory=lambda: {name: [name] for name in CANONICAL_LANDMARKS}
    )
    pcutoff: float = Field(0.6, ge=0.0, le=1.0, description="A landmark counts as seen when its likelihood exceeds this (the original used 0.6).")
    individual: str | None = Field(None, description="Multi-animal DLC files: which individual to read.")
    dlc_config: Path | None = Field(None, description="DeepLabCut project (its config.yaml) that `mfe keypoints detect` runs on the processed videos; relative to the project folder.")


class BehaviourConfig(_Section):
    """Body keypoints and physiology (mfe behaviour import; preprocess/behaviour.py, io/physiology.py)."""

    bodyparts: dict[str, list[str]] = Field(
        description="Canonical body landmark -> the body-part names of your DLC/SLEAP body files; several names are "
        "averaged. The features use nose, body_centre and tail_base (speed and immobility from body_centre, "
        "elongation from nose and tail_base, rearing and head movement from nose relative to body_centre).",
        default_factory=lambda: {name: [name] for name in BODY_LANDMARKS}
    )
    pcutoff: float = Field(0.6, ge=0.0, le=1.0, description="A body point counts as seen when its likelihood exceeds this; others are ignored by the features.")
    individual: str | None = Field(None, description="Multi-animal body files: which individual (DLC) or track (SLEAP) to read.")
    immobile_speed: float = Field(20.0, ge=0.0, description="A frame counts as immobile when the body-centre speed is below this, in pixels per second of the body keypoints (also when pixels_per_cm is set); 20 px/s is about 2 cm/s at 10 px/cm.")
    pixels_per_cm: float | None = Field(None, gt=0, description="Pixels per cm of the body keypoints (e.g. the open-field side in px over its side in cm); when set, speed, distance, elongation and head-movement variance are in cm (cm/s, cm^2) instead of pixels.")
    physiology_baseline_recording: int | None = Field(1, description="Physiology (metadata/physiology.csv) is expressed as the change from this recording of the same animal (an animal without it: from the mean of all animals' baseline values); null: raw values.")


class AlignmentConfig(_Section):
    """Custom alignment landmarks (``extract.alignment``); see ``preprocess/alignment.py``."""

    axis: list[str | list[str]] = Field(description="[front, back] landmarks of the face axis (snout first); a list is the mean of several. '{side}' in a name stands for left/right, e.g. '{side}_eye'.")
    centre: list[str | list[str]] = Field(description="Landmarks (or lists of them) whose mean is the crop centre.")
    required: list[str] | None = Field(None, description="Landmarks that must be seen for a frame to be used (default: all of axis and centre).")
    side: Literal["auto", "left", "right"] = Field("auto", description="auto: with '{side}' names the side whose landmarks are all seen, per frame; without, the direction the snout points in most frames of a video. left/right: fixed.")

    @field_validator("axis")
    @classmethod
    def _two_ends(cls, v: list) -> list:
        if len(v) != 2:
            raise ValueError(f"axis needs exactly two items [front, back], got {len(v)}")
        return v


class ExtractConfig(_Section):
    alignment: str | AlignmentConfig = Field("dlc_face", description="Which landmarks align the face: a preset (dlc_face: eye -> ear of the visible side, the original; headfixed_eye_nose: one fixed side, nose -> eye, for rigs without ears) or {axis, centre, required, side}.")
    policy: Literal["temporal", "seed"] = Field("temporal", description="``temporal`` keeps every good side portrait at ``target_fps`` with timestamps; ``seed`` reproduces the original: every ``every_k``-th frame, the ``n_sharpest`` per video.")
    crop_size: int = Field(300, gt=0, description="Side of the square cut around the face in source pixels (original: 2 x 150 px).")
    out_size: int = Field(112, gt=0, description="Side of the stored crop in pixels.")
    target_fps: float = Field(10.0, gt=0, description="temporal policy: kept frames per second.")
    every_k: int = Field(10, gt=0, description="seed policy: every k-th frame is a candidate.")
    n_sharpest: int = Field(200, gt=0, description="seed policy: the sharpest candidates kept per video.")
    min_sharpness: float = Field(0.0, description="temporal policy: minimum sharpness (variance of the Laplacian).")
    min_likelihood: float = Field(0.6, description="temporal policy: minimum keypoint likelihood of a kept frame.")
    max_count_mismatch: int = Field(5, ge=0, description="Keypoint rows may differ from the video's frame count by at most this many frames.")
    max_gap_s: float = Field(0.5, gt=0, description="A run of kept frames breaks at a gap longer than this many seconds.")
    format: Literal["npy", "png"] = Field("npy", description="Frame store format; png also writes frames/<video>/frameNNNNN.png (--format).")
    normalize: Literal["none", "video_hist", "clahe"] = Field("none", description="Intensity normalisation of the stored crops: none (the original); video_hist (one grey-level table per video matching the histogram of all its kept crops to a Gaussian of mean 128, SD 48: removes whole-video lighting, keeps changes within a video); clahe (OpenCV CLAHE per crop, clip 2.0, 4x4 tiles). mfe predict applies the model's store's setting.")

    workers: int = Field(1, ge=1, description="mfe extract: processes working on different videos at once (--decode-workers).")
    shard: str | None = Field(None, description="mfe extract: only videos whose position in the sorted list % N == I, as 'I/N' (null: all).")
    preview: str | None = Field(None, description="mfe extract: afterwards write a contact sheet of crops to this PNG ('': reports/extract_preview.png; null: none).")
    overwrite: bool = Field(False, description="mfe extract: re-extract fresh videos too (stale ones are always redone).")

    @field_validator("alignment")
    @classmethod
    def _known_preset(cls, v):
        if isinstance(v, str) and v not in ALIGNMENT_PRESETS:
            raise ValueError(f"unknown preset {v!r}; presets: {', '.join(ALIGNMENT_PRESETS)} (or a mapping with axis, centre, required, side)")
        return v


class RatingsConfig(_Section):
    """Mouse Grimace Scale rating sheets (``mfe ratings import``, ``io/ratings.py``)."""

    pattern: str | None = Field(None, description="Regex over a sheet's item (image file name) with named groups video, animal, minute, second, frame, e.g. '(?P<video>MVI_\\d+)_(?P<animal>LE\\d+)_.*_min_(?P<minute>\\d+)_sec_(?P<second>\\d+)'; None: items keep video/time from video,frame columns or stay still images.")

    @field_validator("pattern")
    @classmethod
    def _valid_regex(cls, v: str | None) -> str | None:
        import re

        if v is not None:
            try:
                re.compile(v)
            except re.error as err:
                raise ValueError(f"not a valid regular expression: {err}") from None
        return v


class Config(_Section):
    project: ProjectConfig = Field(default_factory=ProjectConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    metadata: MetadataConfig = Field(default_factory=MetadataConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    keypoints: KeypointsConfig = Field(default_factory=KeypointsConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    predict: PredictConfig = Field(default_factory=PredictConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    task: TaskMakeConfig = Field(default_factory=TaskMakeConfig)
    ratings: RatingsConfig = Field(default_factory=RatingsConfig)
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig)

    root: Path = Field(default=Path("."), exclude=True, description="Folder the relative paths are resolved against (not part of the YAML).")

    def path(self, name: str) -> Path:
        """Absolute path of a ``paths`` entry, e.g. ``cfg.path("frames")``.

        Raises:
            ConfigError: an optional entry (``onnx_cache``) that is not set.
        """
        value = getattr(self.paths, name)
        if value is None:
            raise ConfigError(f"paths.{name} is not set (mfe.yaml)")
        p = Path(value)
        return p if p.is_absolute() else (self.root / p).resolve()

    @field_validator("root")
    @classmethod
    def _abs_root(cls, v: Path) -> Path:
        return Path(v).resolve()


def _env_values(environ: dict[str, str] | None = None, dotenv: Path | None = None) -> dict:
    """Settings from ``MFE_*`` environment variables (and a ``.env`` file, lower priority)."""
    values: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        from dotenv import dotenv_values

        values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    out: dict[str, dict[str, str]] = {}
    for var, (section, key) in ENV_VARS.items():
        if values.get(var):
            out.setdefault(section, {})[key] = values[var]
    return out


def load_config(
    path: str | Path | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Load a project's configuration.

    Args:
        path: ``mfe.yaml`` or the project folder holding it. ``None`` looks in the current
            folder; with no file there (or a folder that does not exist), defaults and
            environment variables are used, relative to that folder. The CLI's ``-p`` refuses
            a folder without ``mfe.yaml`` (:func:`project_file`).
        environ: environment to read ``MFE_*`` variables from (default ``os.environ``).

    Raises:
        ConfigError: on unknown keys or invalid values, naming the file and the key.
    """
    p = Path(path) if path is not None else Path.cwd()
    if p.is_dir() or (not p.exists() and p.suffix.lower() not in (".yaml", ".yml")):
        p = p / CONFIG_NAME  # a project folder (one that does not exist: its defaults, rooted there)
    root = p.parent
    data: dict = {}
    if p.is_file():
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML: {err}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of sections, got {type(data).__name__}")
    elif path is not None and Path(path).suffix in (".yaml", ".yml"):
        raise ConfigError(f"{p}: no such configuration file")
    merged: dict = {}
    for section, vals in _env_values(environ, root / ".env").items():
        merged.setdefault(section, {}).update(vals)
    for section, vals in data.items():  # the file wins over the environment
        if isinstance(vals, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **vals}
        else:
            merged[section] = vals
    try:
        return Config(root=root, **merged)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, str(p))) from err


def project_file(path: str | Path) -> Path:
    """The ``mfe.yaml`` of a project named explicitly (``mfe <command> -p PATH``): the folder's,
    or ``PATH`` itself when it names a ``.yaml`` file.

    Raises:
        ConfigError: naming the folder when it holds no ``mfe.yaml`` (or does not exist), and
            saying how to make one.
    """
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml") and not p.is_dir():
        if not p.is_file():
            raise ConfigError(f"{p}: no such configuration file")
        return p
    if (p / CONFIG_NAME).is_file():
        return p / CONFIG_NAME
    why = "no such folder" if not p.exists() else "not a folder" if not p.is_dir() else f"no {CONFIG_NAME}"
    raise ConfigError(f"{p}: not an mfe project ({why}); create one with `mfe init {p}`")


def config_to_yaml(cfg: Config) -> str:
    """YAML of every setting (paths as strings), for ``mfe init`` and run records."""
    return yaml.safe_dump(cfg.model_dump(mode="json", exclude={"root"}), sort_keys=False)


_HEADER = """\
# mouse-facial-expressions project configuration (`mfe init` writes it from the configuration model).
# Every key is listed with its default, commented out: uncomment a key to change it. A key written
# here always counts, also when it equals the default; `mfe config show COMMAND` prints the values
# a command will use and where each comes from. Precedence: a flag, then --config FILE, then this
# file, then the defaults. Paths are relative to this file's folder. Unknown keys are errors.
# MFE_RAW_CSV_FOLDER, MFE_RAW_VIDEO_FOLDER, MFE_PROCESSED_VIDEO_FOLDER,
# MFE_DLC_FACIAL_LABELS_FOLDER, MFE_EXTRACTED_FRAMES_FOLDER, MFE_TASKS and MFE_VERSION
# fill the matching settings when set; a value written here wins over them.
"""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _commented_section(model: BaseModel, indent: str) -> list[str]:
    """The keys of one section (and its sub-sections, as nested headers), see :func:`commented_yaml`."""
    import json

    lines = []
    defaults = type(model)().model_dump(mode="json")
    data = model.model_dump(mode="json")
    for name, field in type(model).model_fields.items():
        if field.description:
            lines.append(f"{indent}# {_one_line(field.description)}")
        value = getattr(model, name)
        if isinstance(value, BaseModel) and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            lines.append(f"{indent}{name}:")  # a header with every key commented out is the defaults
            lines += _commented_section(value, indent + "  ")
            continue
        keep = (name in model.model_fields_set and value is not None) or data[name] != defaults.get(name)
        lines.append(f"{indent}{'' if keep else '# '}{name}: {json.dumps(data[name])}")
    return lines


def commented_yaml(cfg: Config) -> str:
    """``mfe.yaml`` for ``cfg``: every section and key of the model, each key with a one-line
    description. Keys at their default are commented out (so an untouched file changes nothing:
    a key written always counts); keys set in ``cfg`` (written, or different from the default)
    are written."""
    lines = [_HEADER]
    for section, model in cfg:
        if section == "root":
            continue
        doc = (type(model).__doc__ or "").strip().splitlines()
        lines.append(f"{section}:" + (f"  # {doc[0]}" if doc else ""))
        lines += _commented_section(model, "  ")
        lines.append("")
    return "\n".join(lines)
