"""`mfe extract`: align, crop and score faces into the frame store."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from mouse_facial_expressions.cli._common import add_project_arg, project_config, rename_option
from mouse_facial_expressions.cli.settings import add_config_arg, config_backed, resolve_args
from mouse_facial_expressions.config import ALIGNMENT_PRESETS, AlignmentConfig, ExtractConfig


def _description() -> str:
    """The command's help, with the alignment presets and the keys of a custom set taken from
    the config (``ExtractConfig.alignment``), so a new preset shows up here by itself."""
    what = (
        "For every processed video (videos/processed/<video>.mp4) with a canonical keypoint table "
        "(keypoints/canonical/<video>.parquet): keep the frames where the alignment's landmarks are "
        "seen (above keypoints.pcutoff; with dlc_face, side portraits: exactly one side's nose, eye "
        "and ear), rotate so the alignment's axis is horizontal with the snout left, crop "
        "extract.crop_size px around its centre, resize to extract.out_size, mirror right-facing "
        "frames, score sharpness and intensity, and write frames/<video>.npy + <video>.parquet "
        "(+ store.json). Each video records what it was made from (its keypoint table, its processed "
        "video, every extract setting): a rerun skips fresh videos and redoes stale ones (e.g. "
        "keypoints re-imported, video re-trimmed, settings changed) and says why; new outputs replace "
        "old ones only when complete. A video that fails does not stop the others; the exit code is 1 "
        "if any failed."
    )
    field = ExtractConfig.model_fields["alignment"]
    presets = ", ".join(f"{name} (default)" if name == field.default else name for name in ALIGNMENT_PRESETS)
    align = (f"Alignment (extract.alignment in mfe.yaml). {field.description} Presets: {presets}. "
             "A custom set is a mapping with these keys:")
    keys = [textwrap.fill(f"{key}: {f.description}", 78, initial_indent="  ", subsequent_indent="    ")
            for key, f in AlignmentConfig.model_fields.items()]
    example = ("e.g. in mfe.yaml:\n  extract:\n    alignment:\n      axis: [nose, '{side}_eye']\n"
               "      centre: [nose, '{side}_eye', '{side}_ear']\n      side: auto")
    return "\n\n".join([textwrap.fill(what, 78), textwrap.fill(align, 78), "\n".join(keys), example])


def register(sub, formatter):
    p = sub.add_parser(
        "extract",
        help="align + crop faces, score quality -> frame store",
        description=_description(),
        formatter_class=formatter,
    )
    add_project_arg(p)
    p.add_argument("--policy", choices=["temporal", "seed"], default=None,
                   help="frame selection: 'temporal' keeps every good frame at extract.target_fps in "
                   "time order (runs for windows); 'seed' reproduces the original (every "
                   "extract.every_k-th frame, the extract.n_sharpest sharpest). Default: extract.policy")
    p.add_argument("--decode-workers", dest="workers", type=int, default=1, metavar="N",
                   help="processes working on different videos at once")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="process only videos whose position in the sorted list %% N == I "
                   "(spread one extraction over a job array)")
    p.add_argument("--format", choices=["npy", "png"], default=None,
                   help="'png' also writes the original layout frames/<video>/frameNNNNN.png. "
                   "Default: extract.format")
    p.add_argument("--preview", nargs="?", const="", default=None, metavar="PNG",
                   help="afterwards write a contact sheet of crops with landmarks "
                   "(default file: reports/extract_preview.png)")
    p.add_argument("--overwrite", action="store_true",
                   help="re-extract fresh videos too (stale ones are always redone)")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="list which videos are fresh and which would be (re)done, and why; write nothing")
    p.add_argument("videos", nargs="*", metavar="VIDEO",
                   help="only these videos (names without .mp4); default: all processed videos")
    add_config_arg(p, "extract")
    rename_option(p, "--workers", "--decode-workers")
    config_backed(p, ExtractConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    from mouse_facial_expressions.preprocess.extract import describe_status, extract_videos
    from mouse_facial_expressions.preprocess.preview import contact_sheet

    cfg = project_config(args)
    resolve_args(args, "extract", cfg)
    cfg.extract.policy, cfg.extract.format = args.policy, args.format
    if args.dry_run:
        print(describe_status(cfg, videos=args.videos or None, shard=args.shard, overwrite=args.overwrite))
        return 0
    report = extract_videos(cfg, videos=args.videos or None, workers=args.workers, shard=args.shard,
                            fmt=args.format, overwrite=args.overwrite)
    print(report.summary())
    if args.preview is not None and (report.done or report.skipped):
        out = Path(args.preview) if args.preview else cfg.path("reports") / "extract_preview.png"
        print(f"preview: {contact_sheet(report.frames_dir, out)}")
    if not report.ok:
        print(f"mfe extract: {len(report.failed)} video(s) failed", file=sys.stderr)
        return 1
    return 0
