"""The main job end to end: ``mfe demo`` (and ``make demo``).

synthetic cohort -> prepare -> keypoints import -> extract -> task -> train -> evaluate.
Each step calls the same library function as its ``mfe`` command, so this file doubles as
a recipe for running a lab's own project (skip the first step, point ``project`` at it).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from mouse_facial_expressions.data.task_files import TaskFiles

log = logging.getLogger(__name__)


@dataclass
class DemoSettings:
    preset: str = "demo"
    model: str = "advanced"
    backbone: str = "resnet18"
    image_size: int = 64
    epochs: int = 4
    num_frames: int = 8
    frame_stride: int = 1
    seed: int = 0
    n_folds: int = 3  # asked for; the task may get fewer (data.folds.make_folds)
    extra_train: dict = field(default_factory=dict)


def _step(name: str, timings: dict):
    class _Timer:
        def __enter__(self):
            print(f"\n== {name}", flush=True)
            self.t0 = time.perf_counter()

        def __exit__(self, *exc):
            timings[name] = round(time.perf_counter() - self.t0, 1)
            if exc[0] is None:
                print(f"   {name}: {timings[name]} s", flush=True)

    return _Timer()


def run_demo(out: str | Path, settings: DemoSettings | None = None) -> dict:
    """Run every pipeline stage on a synthetic cohort in ``out``; returns the headline results."""
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.synth import contact_sheet, generate_cohort

    s = settings or DemoSettings()
    out = Path(out)
    timings: dict[str, float] = {}
    results: dict = {"project": str(out.resolve()), "timings_s": timings}

    with _step("synth: generate a synthetic cohort", timings):
        generate_cohort(out, preset=s.preset, seed=s.seed)
        sheet = contact_sheet(out, out / "reports" / "synth_contact_sheet.png")
        results["contact_sheet"] = str(sheet)
        print(f"   contact sheet: {sheet}")
    cfg = load_config(out)
    results.update(_later_stages(cfg, s, timings))
    (out / "reports").mkdir(parents=True, exist_ok=True)
    (out / "reports" / "demo_summary.json").write_text(json.dumps(results, indent=2, default=str))
    return results


def run_pipeline(cfg, s: DemoSettings, timings: dict | None = None) -> dict:
    """prepare -> keypoints -> extract -> task -> train -> evaluate on an existing project.

    The same calls a lab makes on its own project (``mfe prepare``, ``mfe keypoints import``,
    ``mfe extract``, ``mfe task make --preset task1``, ``mfe train``, ``mfe evaluate``).
    """
    from mouse_facial_expressions.data.folds import read_folds
    from mouse_facial_expressions.data.tasks import make_task, preset
    from mouse_facial_expressions.evaluation.evaluate import headline
    from mouse_facial_expressions.report.runs import report_run
    from mouse_facial_expressions.io.keypoints import import_keypoints
    from mouse_facial_expressions.preprocess.alignment import import_check
    from mouse_facial_expressions.preprocess.extract import extract_videos
    from mouse_facial_expressions.preprocess.prepare import prepare_videos
    from mouse_facial_expressions.training.cv import train_cv
    from mouse_facial_expressions.training.params import make_params

    timings = {} if timings is None else timings
    out: dict = {}
    with _step("prepare: trim + rename raw videos (frame-exact)", timings):
        rep = prepare_videos(cfg)
        print("   " + rep.summary().replace("\n", "\n   "))
        if not rep.ok:
            raise RuntimeError(f"prepare failed for {len(rep.failed)} videos")
    with _step("keypoints: DeepLabCut files -> canonical tables", timings):
        written = import_keypoints(cfg, check=import_check(cfg))
        print(f"   {len(written)} keypoint tables in {cfg.path('keypoints')}")
    with _step("extract: align + crop faces -> frame store", timings):
        rep = extract_videos(cfg, workers=1)
        print("   " + rep.summary().replace("\n", "\n   "))
        if not rep.ok:
            raise RuntimeError(f"extract failed for {len(rep.failed)} videos")
    with _step("task: task1 preset (rec1 -> 0, high dose at rec4 -> 1), folds by animal", timings):
        task_dir = make_task(cfg, preset("task1", n_folds=s.n_folds, num_frames=s.num_frames, frame_stride=s.frame_stride))
        n_folds = len(read_folds(task_dir / TaskFiles.FOLDS))  # fewer than asked when a class has few animals
        out["task"] = str(task_dir)
        print(f"   {task_dir} (README.md describes it), {n_folds} folds by animal")
    with _step(f"train: {s.model} ({s.backbone}, {s.image_size} px), {n_folds}-fold CV by animal", timings):
        params = make_params(
            s.model, backbone=s.backbone, image_size=s.image_size, epochs=s.epochs,
            num_frames=s.num_frames, frame_stride=s.frame_stride, seed=s.seed, **s.extra_train,
        )
        summary = train_cv(task_dir, params, cfg.path("models"))
        out["run"] = summary.get("run_dir")
    with _step("evaluate: metrics with 95% CIs over animals, batch-effect check, HTML report", timings):
        results = report_run(out["run"])
        out["report"] = results["paths"]["report"]
        out["headline"] = headline(results)
    return out


def _later_stages(cfg, s: DemoSettings, timings: dict) -> dict:
    results = run_pipeline(cfg, s, timings)
    print("\n== headline (synthetic cohort; 95% CIs resample animals)")
    print(results["headline"])
    print(f"\nHTML report: {results['report']}")
    print("timings (s): " + ", ".join(f"{k.split(':')[0]} {v}" for k, v in timings.items()))
    return results
