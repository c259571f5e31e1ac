"""`mfe predict`: score new videos with a trained model, streaming each video once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mouse_facial_expressions.cli._common import add_project_arg, rename_option
from mouse_facial_expressions.cli.settings import add_config_arg, config_backed
from mouse_facial_expressions.settings import PredictConfig

DESCRIPTION = """\
Score videos with a trained model, without a frame store.

Each video is decoded once; faces are aligned and cropped on the fly with the same geometry,
frame choice (policy, target_fps, quality thresholds, runs) and settings as the frame store
the model was trained on (its store.json; else the project's extract settings), and
windows of the checkpoint's num_frames/frame_stride are scored as evaluation scores them.
MODEL is a run folder (every fold's selected checkpoint: a fold ensemble, p1 = mean over
folds) or one .ckpt file.

Writes into --out: <video>_scores.csv (video, start_time, end_time, p1 and p1_fold<k> per
ensemble member), <video>_seconds.csv (the same per second of video: the windows overlapping
each second, weighted by overlap), <video>_timecourse.png and summary.csv (one row per video:
windows, mean and median p1, fraction above 0.5, seconds scored; failed videos with their
error), COLUMNS.md (what every column means), and with --preview <video>_preview.png (a
contact sheet of the scored face crops). A run with Mouse Grimace Scale action-unit heads
(mfe train --targets au|au+class) adds au_ot, au_nb, au_cb, au_ep, au_wc (each action unit's
expected score, 0-2) and mgs (their mean) to the score tables, mean_mgs to summary.csv and an
AU panel to the time course.
Outputs are named after the video file's stem; when two videos of one call share a stem, or
summary.csv already holds a scored video of that stem from another file, the parent folder is
prefixed (day2/cam.mp4 -> day2__cam_scores.csv), so no output is replaced by another video's;
summary.csv's source column holds each video's path.
Keypoints without the landmarks that the model's alignment (the extract.alignment of the frame
store it was trained on) needs are refused before anything is decoded, and a project whose
extract.alignment differs from the model's gets a note. A video with fewer usable frames than
one window spans is reported as too short and not scored. Each window goes through a face
check (landmark distance ratios, grey-level mean and SD, sharpness against the model's
training crops): windows without a face are not scored (no_face, empty p1), and a video with
more than half of them gets no score (status failed, error "no face: ...").
A missing keypoint file or a bad video fails alone; the exit status is 1 when any failed.
Errors about keypoints name your keypoint file. A keypoint file whose name does not match its
video (DeepLabCut's <video>DLC_<scorer>.h5, SLEAP's <video>.predictions.slp, <video>.parquet)
is still used, with a warning in the log and in the printed summary: check it is the right file.

Still images (photographs, as many Mouse Grimace Scale rating sheets rate):
--images FOLDER|FILE ... instead of VIDEO|DIR. Each image needs its keypoints in --keypoints: a
DeepLabCut hand-label file (labeled-data/<video>/CollectedData_<scorer>.h5 or .csv, or that
folder; bodyparts mapped with keypoints.bodyparts of mfe.yaml) or a .csv/.parquet with an image
column (the file name) and <landmark>_x, <landmark>_y[, <landmark>_likelihood] columns; rows are
matched to images by file name. Each image is aligned and cropped as a video frame would be
(the model's frame-store settings); its crop repeated num_frames times is the clip. Writes
OUT/images_scores.csv (image, status, p1, p1_<fold> per ensemble member, au_ot ... au_wc and
mgs for a run with action-unit heads, side, sharpness, domain_warning (the domain check of the
images' crops together, as for a video; also logged), no_face and no_face_reason (the face
check of each crop; no score without a face), error) and OUT/COLUMNS.md, with --preview
OUT/images_preview.png, and with --ratings OUT/images_agreement.csv (per AU and the MGS total:
n_images, weighted kappa, Pearson r and RMSE against the mean rater, and the raters' own mean
pairwise agreement as the ceiling). An image without keypoints, or whose keypoints cannot
align it, fails alone with its reason in the error column.
"""


def resolve_model(model: Path, args: argparse.Namespace) -> Path:
    """MODEL as given, else a run name under the project's models/runs folder."""
    if model.exists():
        return model
    if getattr(args, "project", None) is not None or Path("mfe.yaml").is_file():
        from mouse_facial_expressions.cli._common import project_config

        models = project_config(args).path("models")
        for cand in (models / "runs" / model, models / model):
            if cand.exists():
                return cand
    raise FileNotFoundError(f"model not found: {model} (a run folder or a .ckpt file)")


def register(sub, formatter):
    p = sub.add_parser("predict", help="score new videos or still images with a trained model (no frame store needed)",
                       description=DESCRIPTION, formatter_class=formatter,
                       epilog="examples:\n  mfe predict videos/ --keypoints dlc/ --model models/runs/advanced-resnet18-1a2b3c4d\n"
                       "  mfe predict --images photos/ --keypoints photos/CollectedData_me.h5 --model RUN "
                       "--ratings ratings/sheet.parquet")
    what = p.add_mutually_exclusive_group()
    what.add_argument("videos", type=Path, nargs="?", default=None, metavar="VIDEO|DIR", help="a video file or a folder of videos")
    what.add_argument("--images", type=Path, nargs="+", default=None, metavar="FOLDER|FILE",
                      help="score still images instead: a folder of images (png, jpg, jpeg, tif, bmp) or image files. "
                      "--keypoints is then their hand labels (DeepLabCut CollectedData_<scorer>.h5|.csv, or its "
                      "labeled-data folder) or a .csv/.parquet with an image column and <landmark>_x, _y[, _likelihood] "
                      "columns, matched to the images by file name. Writes OUT/images_scores.csv (see above)")
    what.add_argument("--live", default=None, metavar="SOURCE",
                   help="score a live source as it plays instead: a camera index (0 = /dev/video0) or an RTSP/HTTP URL "
                   "that PyAV opens (a file works too). --keypoints is then a CSV that grows alongside (DeepLabCut-live "
                   "layout, or the canonical frame,<L>_x,<L>_y,<L>_likelihood); one row per window is written to "
                   "OUT/<source>_live_scores.csv as soon as the window is complete. Stops at the end of the stream, "
                   "on Ctrl-C, or when the keypoints stop. With --dlc-config instead of --keypoints, a DeepLabCut "
                   "model computes the keypoints from the stream's frames")
    p.add_argument("--keypoints", type=Path, default=None, metavar="FILE|DIR",
                   help="keypoints of the video (canonical .parquet or a DeepLabCut/SLEAP file), or a folder of them "
                        "matched to videos by name (<video>.parquet, <video>DLC_<scorer>.h5, ...); with --images, the "
                        "images' keypoint file")
    live = p.add_argument_group("live keypoints from a DeepLabCut model (--live only; the [dlc] extra)")
    live.add_argument("--dlc-config", dest="dlc_config", type=Path, default=None, metavar="PATH",
                      help="a trained DeepLabCut 3 project (its config.yaml or folder): its model computes the "
                      "keypoints of each kept frame of the --live stream (the snapshot `mfe keypoints detect` would "
                      "use; bottom-up models; bodyparts mapped with keypoints.bodyparts of mfe.yaml), instead of a "
                      "--keypoints file that DeepLabCut-live grows")
    live.add_argument("--dlc-shuffle", dest="dlc_shuffle", type=int, default=1, metavar="K",
                      help="the DeepLabCut shuffle to load")
    p.add_argument("--ratings", type=Path, default=None, metavar="PARQUET",
                   help="--images only: a ratings table from `mfe ratings import` that rates some of the images (items "
                   "matched by file name, with or without extension); writes OUT/images_agreement.csv when the run "
                   "has action-unit heads (mfe train --targets au|au+class)")
    p.add_argument("--individual", default=None, metavar="NAME",
                   help="multi-animal DeepLabCut/SLEAP keypoint files: the animal to score (a DLC individual or a "
                   "SLEAP track; the error for a multi-animal file lists them). Default: keypoints.individual in "
                   "mfe.yaml. Not with --live")
    p.add_argument("--preview", action="store_true",
                   help="also write OUT/<video>_preview.png per video: a contact sheet of up to 24 of the aligned face "
                   "crops it scored (spread over the video, eye/ear/nose drawn), to check by eye what the model saw "
                   "(with --images: OUT/images_preview.png). Not with --live")
    f = p.add_argument_group("fused runs (mfe train --modalities)")
    f.add_argument("--modalities", default=None, metavar="LIST",
                   help="score with these of the run's modalities, e.g. face,behaviour when a cohort has no physiology "
                   "(default: all of the run's; a missing input is an error that says which flag gives it)")
    f.add_argument("--body", type=Path, default=None, metavar="FILE|DIR",
                   help="behaviour: body keypoints of the same videos (DeepLabCut or SLEAP, matched by video name, "
                   "mapped with the project's behaviour.bodyparts)")
    f.add_argument("--physiology", type=Path, default=None, metavar="CSV",
                   help="physiology: animal, recording, one column per measure; a video's animal and recording come from "
                   "its name, <animal>_rec<k>_... (mfe prepare's names)")
    p.add_argument("--model", type=Path, metavar="RUN|CKPT",
                   help="run folder (fold ensemble) or one .ckpt; a bare run name is looked up in the project's models/runs "
                   "(required, as a flag or predict.model)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <project reports>/predict, else ./predictions)")
    p.add_argument("--window-step", type=int, default=None, metavar="N",
                   help="kept frames between window starts (default: the window span = non-overlapping windows, as evaluation)")
    p.add_argument("--decode-workers", dest="workers", type=int, default=0, metavar="N",
                   help="decode/align/crop processes, each on its own videos; their crops reach the model through shared "
                   "memory and one model scores windows of all videos in shared batches (0: decode in this process). "
                   "Scores are the same either way")
    p.add_argument("--batch-size", type=int, default=None,
                   help="windows (--images: images) per forward pass (default: 16 on a CPU, what fills a GPU; 16 for images)")
    p.add_argument("--precision", choices=("32", "bf16", "16"), default=None,
                   help="fp32 or bf16 autocast (default: bf16 on a GPU, fp32 on a CPU; bf16 is fast on CPUs with AVX512-BF16/AMX); "
                   "16 (fp16, a training precision) is refused with a message: scoring runs 32 or bf16")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="where the model runs (auto: CUDA when "
                   "available; without a GPU it says so in one line; mps: Apple GPUs)")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                   help="what runs the model: onnx (onnxruntime; the fold ensemble is exported once and cached in "
                   "<run>/onnx/, keyed by the checkpoints' hashes) or torch; auto: onnx on a CPU, torch on a GPU. "
                   "Both give the same scores to 1e-4")
    p.add_argument("--quantize", choices=("none", "int8"), default="none",
                   help="onnx only: int8 weights (onnxruntime dynamic quantization); scores move by up to ~0.01 "
                   "(docs/guide/cpu-scoring.md)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for the model (default: every core this process may use)")
    add_project_arg(p)
    add_config_arg(p, "predict")
    rename_option(p, "--workers", "--decode-workers")
    config_backed(p, PredictConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.cli.settings import resolve_args
    from mouse_facial_expressions.config import Config
    from mouse_facial_expressions.inference.predict import predict_videos

    cfg = None
    if args.project is not None or Path("mfe.yaml").is_file():
        from mouse_facial_expressions.cli._common import project_config

        cfg = project_config(args)
    resolve_args(args, "predict", cfg if cfg is not None else Config())
    if args.model is None:
        raise ValueError("--model RUN|CKPT is required (or model: in the predict: section of mfe.yaml / --config)")
    out = args.out or (cfg.path("reports") / "predict" if cfg is not None else Path("predictions"))
    if args.precision == "16":  # one --precision vocabulary with mfe train, but scoring autocasts to bf16 only
        raise ValueError("--precision 16 (fp16) is not available for scoring; use --precision bf16 or 32")
    if args.dlc_config is not None and args.live is None:
        raise ValueError("--dlc-config is for --live (keypoints computed as the stream plays); for recorded videos run "
                         "`mfe keypoints detect --dlc-config PATH` once and pass the folder with --keypoints")
    if args.keypoints is None and args.dlc_config is None:
        raise ValueError("--keypoints FILE|DIR is required" + (" (or --dlc-config PATH with --live)" if args.live else ""))
    if args.keypoints is not None and args.dlc_config is not None:
        raise ValueError("give --keypoints (a file DeepLabCut-live grows) or --dlc-config (a model run here), not both")
    if args.images is not None:
        return run_images(args, cfg, out)
    if args.ratings is not None:
        raise ValueError("--ratings is for --images (rated still images); score rated videos with `mfe evaluate`")
    if args.live is not None:
        if args.individual is not None or args.preview or args.body or args.physiology or args.modalities:
            raise ValueError("--individual, --preview, --modalities, --body and --physiology are for video files, not --live")
        return run_live(args, cfg, out)
    if args.videos is None:
        raise ValueError("give VIDEO|DIR, --images FOLDER|FILE ..., or --live SOURCE")
    report = predict_videos(args.videos, args.keypoints, resolve_model(args.model, args), out, cfg=cfg,
                            window_step=args.window_step, batch_size=args.batch_size, progress=None,
                            precision=args.precision, device=args.device, workers=args.workers,
                            individual=args.individual, preview=args.preview, backend=args.backend,
                            quantize=args.quantize, threads=args.threads, modalities=args.modalities,
                            body=args.body, physiology=args.physiology)
    print(report.summary())
    seconds = sum(r.video_seconds for r in report.results if r.status == "done")
    if seconds and report.wall_s:
        print(f"rate: {seconds:.0f} s of video in {report.wall_s:.1f} s ({seconds / report.wall_s:.1f}x real time, "
              f"{report.video_frames_per_s:.0f} video frames/s end to end)")
    print(f"summary: {out / 'summary.csv'}")
    if not report.ok:
        print(f"mfe predict: {len(report.failed)} video(s) failed (see summary.csv)", file=sys.stderr)
        return 1
    return 0


def run_live(args: argparse.Namespace, cfg, out: Path) -> int:
    """``--live SOURCE``: one source, scored window by window as it plays."""
    from mouse_facial_expressions.config import Config
    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.onnx_backend import scoring_ensemble
    from mouse_facial_expressions.inference.predict import model_settings, resolve_device
    from mouse_facial_expressions.inference.streams import predict_live

    dev, dtype, line = resolve_device(args.device, args.precision)
    print(line)
    ens = load_ensemble(resolve_model(args.model, args))
    if ens.modalities != ("face",):
        raise ValueError(f"{ens.source}: a fused run ({', '.join(ens.modalities)}) needs its other inputs per video; "
                         "--live scores face-only runs (score the recorded videos with mfe predict VIDEO|DIR --body ...)")
    ens.require_absolute("`mfe predict` on videos")
    ens = ens.to(dev)
    ens.dtype = dtype
    ens, backend_line = scoring_ensemble(ens, args.backend, dev, args.quantize, args.threads)
    print(backend_line)
    cfg = cfg or Config()
    name = "camera" + args.live if args.live.isdigit() else Path(args.live.split("?")[0]).stem or "stream"
    out_csv = out / f"{name}_live_scores.csv"
    keypoints = args.keypoints
    if args.dlc_config is not None:
        from mouse_facial_expressions.inference.streams import ModelKeypoints
        from mouse_facial_expressions.preprocess.detect import load_frame_pose

        pose = load_frame_pose(args.dlc_config, shuffle=args.dlc_shuffle, device="cuda" if dev.type == "cuda" else "cpu")
        keypoints = ModelKeypoints(pose, cfg.keypoints.bodyparts)
        print(f"keypoints: DeepLabCut model {pose.snapshot} on each kept frame")
    print(f"scoring {args.live} live -> {out_csv} (Ctrl-C stops)")
    rep = predict_live(args.live, keypoints, ens, out_csv, model_settings(ens, cfg), bodyparts=cfg.keypoints.bodyparts,
                       window_step=args.window_step, name=name)
    print(f"{rep.n_windows} windows from {rep.n_frames} frames ({rep.n_kept} kept); stopped: {rep.stopped_by}")
    return 0


def run_images(args: argparse.Namespace, cfg, out: Path) -> int:
    """``--images FOLDER|FILE ...``: score still images (``inference.images``)."""
    from mouse_facial_expressions.report.runs import score_images

    video_only = {"--window-step": args.window_step is not None, "--decode-workers": bool(args.workers),
                  "--backend": args.backend != "auto", "--quantize": args.quantize != "none",
                  "--modalities": args.modalities is not None, "--body": args.body is not None,
                  "--physiology": args.physiology is not None}
    given = [flag for flag, on in video_only.items() if on]
    if given:
        raise ValueError(f"{', '.join(given)}: for videos, not --images (images score with torch, face-only runs)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    images = args.images[0] if len(args.images) == 1 and args.images[0].is_dir() else args.images
    report = score_images(images, args.keypoints, resolve_model(args.model, args), out, cfg=cfg, ratings=args.ratings,
                            batch_size=args.batch_size or 16, device=args.device, precision=args.precision,
                            individual=args.individual, preview=args.preview)
    print(report.summary())
    for path in report.files:
        print(f"written: {path}")
    if not report.ok:
        print(f"mfe predict: {len(report.failed)} image(s) failed (see the error column of images_scores.csv)",
              file=sys.stderr)
        return 1
    return 0
