"""A synthetic cohort taken through the pipeline's data stages, resumable: :func:`build_cohort`.

``mfe synth OUT --preset P --synth-seed S [options]`` -> (``--raters K`` -> ``mfe ratings import``)
-> ``mfe prepare`` -> ``mfe keypoints import`` -> (``mfe behaviour import``) -> ``mfe extract``
-> ``mfe task make --preset T``, each step the library function its command calls (as
``pipeline.run_pipeline`` does), for the benchmarks and notebooks that need a labelled cohort.

Resuming needs no marker of its own. A task folder that ``make_task`` finished holds
``provenance.json`` (the fingerprints of the frame-store indexes, metadata and ratings it was
made from); the cohort is reused when that record is fresh (``data.tasks.stale_inputs``), the
task's ``task.yaml`` is the spec asked for, ``truth/synth.json`` records the synth settings asked
for and, with raters, ``truth/raters.json`` records the raters asked for. Otherwise the stages
run: the cohort is generated again only when its synth settings differ (or it is incomplete);
prepare, keypoint import and extract redo only what their own provenance records call stale.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: Where ``mfe synth --raters`` writes the rating sheet and where ``mfe ratings import`` puts its table.
RATINGS_SHEET = Path("ratings") / "synthetic_raters.csv"
RATINGS_TABLE = "ratings/synthetic_raters.parquet"


@dataclass(frozen=True)
class CohortSpec:
    """What :func:`build_cohort` makes.

    Attributes:
        preset: ``mfe synth --preset`` (``tiny``, ``demo``, ``bench``).
        seed: ``mfe synth --synth-seed``.
        synth: further ``SynthConfig`` overrides, as ``mfe synth`` flags give them: ``mice``,
            ``effect_size``, shifts and confounds (``brightness``, ``rec_cue``, ...),
            ``bout_fraction``, ``behaviour_effect``, ``physiology_effect`` (physiology is always
            written to ``metadata/physiology.csv``; a fused run reads it from there).
        task_preset: ``mfe task make --preset`` (``task1``, ``task1_table``).
        task: ``TaskSpec`` overrides (``n_folds``, ``version``, ``num_frames``, ``frame_stride``).
        raters: ``mfe synth --raters K``: K simulated raters' MGS sheet, imported and used as the
            task's AU targets (``mfe task make --au-ratings``); None: no AU targets.
        rating_every: ``mfe synth --rating-every`` (seconds between rated frames of a video).
        au_tolerance: ``mfe task make --au-tolerance`` (seconds).
        behaviour: also ``mfe behaviour import`` (the body keypoints a fused run reads).
        extract: ``extract`` settings that differ from the project's ``mfe.yaml``, e.g. the crop
            of another cohort (``crop_size``, ``out_size``) or ``normalize: video_hist``.
        frames: frame-store folder (``paths.frames``) when not the project's, so that stores of
            several extract settings live side by side.
        workers: decode workers of ``mfe extract``.
    """

    preset: str = "tiny"
    seed: int = 0
    synth: dict = field(default_factory=dict)
    task_preset: str = "task1"
    task: dict = field(default_factory=dict)
    raters: int | None = None
    rating_every: float = 3.0
    au_tolerance: float = 0.5
    behaviour: bool = False
    extract: dict = field(default_factory=dict)
    frames: str | None = None
    workers: int = 1

    def task_spec(self):
        """The resolved ``TaskSpec`` (AU targets from the raters' table when ``raters`` is set)."""
        from mouse_facial_expressions.data.tasks import preset

        extra = dict(self.task)
        if self.raters is not None:
            from mouse_facial_expressions.data.au_targets import AUTargetSpec

            extra["au"] = AUTargetSpec(ratings=RATINGS_TABLE, tolerance_s=self.au_tolerance)
        return preset(self.task_preset, **extra)


#: The smallest cohort every benchmark's ``--smoke`` run can use (one for all, so that a test
#: builds it once): 6 tiny mice with bouts, raters, body keypoints and physiology, 2 folds of
#: 3-frame windows, task1_table (every video labelled).
SMOKE = CohortSpec(preset="tiny", seed=0, synth={"mice": 6, "bout_fraction": 0.3}, task_preset="task1_table",
                   task={"n_folds": 2, "num_frames": 3, "frame_stride": 1}, raters=2, rating_every=1.0, behaviour=True)


def project_config(project: str | Path, spec: CohortSpec):
    """The project's ``Config`` with ``spec.extract`` and ``spec.frames`` applied (in memory)."""
    from mouse_facial_expressions.config import load_config

    cfg = load_config(project)
    for key, value in spec.extract.items():
        setattr(cfg.extract, key, value)
    if spec.frames:
        cfg.paths.frames = spec.frames
    return cfg


def task_dir(project: str | Path, spec: CohortSpec) -> Path:
    """The folder ``build_cohort(project, spec)`` writes the task to."""
    cfg = project_config(project, spec)
    return cfg.path("tasks") / f"task-{spec.task_spec().version or cfg.project.dataset_version}"


def synth_matches(project: Path, spec: CohortSpec) -> bool:
    """True when ``project`` holds a complete cohort made with ``spec``'s synth settings."""
    from mouse_facial_expressions.synth.params import make_config

    marker = project / "truth" / "synth.json"
    if not marker.is_file():
        return False
    info = json.loads(marker.read_text())
    wanted = json.loads(json.dumps(make_config(spec.preset, seed=spec.seed, **spec.synth).to_dict()))
    return bool(info.get("complete")) and info.get("preset") == spec.preset and info.get("config") == wanted


def _raters_match(project: Path, spec: CohortSpec) -> bool:
    path = project / "truth" / "raters.json"
    if spec.raters is None:
        return True
    if not path.is_file():
        return False
    info = json.loads(path.read_text())
    return (len(info.get("raters", [])) == spec.raters and info.get("every_s") == spec.rating_every
            and info.get("seed") == spec.seed)


def _task_matches(folder: Path, spec: CohortSpec) -> bool:
    """True when ``folder`` is a finished task (fresh provenance) of ``spec``'s task spec."""
    from mouse_facial_expressions.data.task_files import TaskFiles
    from mouse_facial_expressions.data.tasks import load_spec, stale_inputs

    if not (folder / TaskFiles.PROVENANCE).is_file() or stale_inputs(folder):
        return False
    made = load_spec(folder / TaskFiles.SPEC).model_dump(exclude={"frames_dir", "frames_dir_made"})
    return made == spec.task_spec().model_copy(update={"version": made["version"]}).model_dump(
        exclude={"frames_dir", "frames_dir_made"})


def is_built(project: str | Path, spec: CohortSpec) -> bool:
    """True when :func:`build_cohort` would reuse ``project`` as it is."""
    project = Path(project)
    return (synth_matches(project, spec) and _raters_match(project, spec)
            and _task_matches(task_dir(project, spec), spec))


def build_cohort(project: str | Path, spec: CohortSpec | None = None) -> Path:
    """Make (or reuse) the synthetic cohort ``spec`` in ``project``; return its task folder.

    The stages are those of ``mfe synth`` -> ``prepare`` -> ``keypoints import`` -> ``extract``
    -> ``task make`` (module docstring); a finished cohort is reused as it is.

    Raises:
        RuntimeError: a stage failed for some video (its report is in the message).
    """
    from mouse_facial_expressions.data.tasks import make_task
    from mouse_facial_expressions.io.keypoints import import_keypoints
    from mouse_facial_expressions.preprocess.alignment import import_check
    from mouse_facial_expressions.preprocess.extract import extract_videos
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.synth.cohort import generate_cohort

    spec = spec or CohortSpec()
    project = Path(project)
    if is_built(project, spec):
        log.info("%s: cohort reused (its task's provenance is fresh)", project)
        return task_dir(project, spec)
    t0 = time.perf_counter()
    if not synth_matches(project, spec):
        generate_cohort(project, preset=spec.preset, seed=spec.seed, **spec.synth)
    if spec.raters is not None and not _raters_match(project, spec):
        from mouse_facial_expressions.io.ratings import import_ratings
        from mouse_facial_expressions.synth.raters import write_rater_sheet

        sheet, _ = write_rater_sheet(project, spec.raters, spec.rating_every, seed=spec.seed)
        import_ratings(sheet, project)
    cfg = project_config(project, spec)
    rep = prepare_videos(cfg, progress=False)
    if not rep.ok:
        raise RuntimeError(f"{project}: prepare failed:\n{rep.summary()}")
    import_keypoints(cfg, check=import_check(cfg))
    if spec.behaviour:
        from mouse_facial_expressions.io.behaviour import import_behaviour

        import_behaviour(cfg)
    rep = extract_videos(cfg, workers=spec.workers, progress=False)
    if not rep.ok:
        raise RuntimeError(f"{project}: extract failed:\n{rep.summary()}")
    out = Path(make_task(cfg, spec.task_spec(), frames_dir=cfg.path("frames")))
    log.info("%s: cohort built in %.0f s", project, time.perf_counter() - t0)
    return out
