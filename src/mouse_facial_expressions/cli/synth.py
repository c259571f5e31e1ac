"""`mfe synth OUT`: a synthetic cohort with known ground truth (a complete project folder)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from mouse_facial_expressions.cli._common import rename_option


def _csv_list(kind):
    def parse(text: str):
        try:
            return [kind(t.strip()) for t in text.split(",") if t.strip()]
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}") from err
    return parse


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(t) for t in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}") from err
    return w, h


def _rec_cue(text: str) -> tuple[tuple[int, float], ...]:
    from mouse_facial_expressions.synth.params import parse_rec_cue

    try:
        return parse_rec_cue(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected REC:GREY pairs such as 4:30 or 4:30,2:-10, got {text!r}") from err


#: Flags that map one to one onto ``SynthConfig`` fields (the rest are outputs of the command).
OPTIONS = ("mice", "treatments", "recordings", "seconds", "fps", "size", "effect_size", "label_noise",
           "cohorts", "seed", "brightness", "contrast", "zoom", "blur", "control_brightness", "rec_cue",
           "occluder_treated", "control_handling", "bout_fraction", "behaviour_effect", "physiology_effect")


def register(sub, formatter):
    from mouse_facial_expressions.synth.params import PRESETS

    p = sub.add_parser(
        "synth",
        help="generate a synthetic cohort with known ground truth",
        description="Render grey side-view videos of a freely moving mouse whose face shows the "
        "five Mouse Grimace Scale action units (orbital tightening, ear position, nose bulge, "
        "cheek bulge, whisker change) with an intensity driven by treatment x recording, and "
        "write a complete project into OUT: videos/raw/<camera>__<serial>__YYYYMMDD_HHMMSS.mp4, "
        "metadata/raw_videos.csv + treatments.csv (original schema, with trims and one discard "
        "row), keypoints/dlc/<video>DLC_<scorer>.h5|.csv (DeepLabCut layout), simulated "
        "open-field body keypoints keypoints/body/<video>DLC_<scorer>.h5|.csv and "
        "metadata/physiology.csv (temperature, weight), and the ground truth in truth/truth.parquet, "
        "truth/body.parquet and truth/physiology.csv. Options left out come from the preset.",
        formatter_class=formatter,
    )
    p.add_argument("out", type=Path, help="project folder to write (a previous synthetic cohort there is replaced)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny",
                   help="tiny: seconds of video for tests; demo: 12 mice, 2 cohorts; bench: 24 mice, 2 cohorts")
    p.add_argument("--mice", default=argparse.SUPPRESS, type=int, help="number of animals (split evenly over treatments and cohorts)")
    p.add_argument("--treatments", default=argparse.SUPPRESS, type=_csv_list(str), help="comma-separated treatments, e.g. saline,high")
    p.add_argument("--recordings", default=argparse.SUPPRESS, type=_csv_list(int), help="comma-separated recording numbers, e.g. 1,4")
    p.add_argument("--seconds", default=argparse.SUPPRESS, type=float, help="length of each raw video in seconds")
    p.add_argument("--fps", default=argparse.SUPPRESS, type=float, help="frame rate of the raw videos")
    p.add_argument("--size", default=argparse.SUPPRESS, type=_size, help="frame size WIDTHxHEIGHT, e.g. 320x240 (even numbers)")
    p.add_argument("--effect-size", default=argparse.SUPPRESS, type=float, help="latent intensity added for treated animals after injection")
    p.add_argument("--label-noise", default=argparse.SUPPRESS, type=float, help="fraction of animals whose label is flipped (0..1)")
    p.add_argument("--cohorts", default=argparse.SUPPRESS, type=int, help="recording cohorts, each with its own lighting and camera (batch effect)")
    p.add_argument("--synth-seed", dest="seed", default=argparse.SUPPRESS, type=int,
                   help="seed of the cohort generator; the same seed gives identical output (default: 0)")
    g = p.add_argument_group("benchmarks only: shifts and confounds", textwrap.fill(
        "For benchmarks of robustness, not for a lab's own data: a cohort made with these tests "
        "whether a model survives a changed camera or room, or falls for a nuisance. Shifts change every video of the cohort on top of the cohort looks (a model trained on an "
        "unshifted cohort can be tested on a shifted one). Confounds plant a nuisance that goes "
        "with the label but is not sickness (a model that learns it scores well for the wrong "
        "reason). The truth table records each per frame (shift_brightness, shift_contrast, "
        "shift_zoom, shift_blur, control_bright, cue, occluder, handled) and truth/synth.json "
        "records the settings. Left out, nothing changes: the same seed gives the same videos.", 88))
    g.add_argument("--brightness", default=argparse.SUPPRESS, type=float, metavar="GREY",
                   help="grey levels added to every pixel after the lighting, clipped to 0..255 "
                   "(+40: a brighter room, -40: a darker one)")
    g.add_argument("--contrast", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="scale the grey levels around mid grey 128 (0.6: a flat, washed-out image; "
                   "1.4: a harsh one; 1: unchanged)")
    g.add_argument("--zoom", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="multiply the mouse's size in the frame (0.85: camera further away, 1.2: closer); "
                   "the project's face crop_size grows with it")
    g.add_argument("--blur", default=argparse.SUPPRESS, type=float, metavar="SIGMA",
                   help="Gaussian blur of every frame, sigma in pixels (1.5: a camera out of focus; 0: sharp)")
    g.add_argument("--control-brightness", dest="control_brightness",
                   default=argparse.SUPPRESS, type=float, metavar="GREY",
                   help="confound: grey levels added to the control animals' videos only (a cohort "
                   "whose controls alone are brighter: brightness then predicts the label)")
    g.add_argument("--rec-cue", dest="rec_cue", default=argparse.SUPPRESS, type=_rec_cue,
                   metavar="REC:GREY",
                   help="confound: every animal's recording REC gets GREY levels added, treated or not "
                   "(4:30 = afternoon lighting at rec4; several: 4:30,2:-10). Recording time, not sickness")
    g.add_argument("--occluder-treated", dest="occluder_treated",
                   default=argparse.SUPPRESS, type=float, metavar="P",
                   help="confound: probability that a treated animal's video has the feeder bar in view "
                   "(controls keep p_occluder = 0.5); 1.0 = every treated video, so the bar predicts treatment")
    g.add_argument("--control-handling", dest="control_handling",
                   default=argparse.SUPPRESS, type=float, metavar="X",
                   help="confound: controls are handled differently; their rates of rearing, looking away "
                   "and motion blur are multiplied by 1 + X (2.0: three times as many; -0.5: half)")
    p.add_argument("--bout-fraction", dest="bout_fraction", default=argparse.SUPPRESS, type=float,
                   metavar="F", help="weak supervision: treated animals' faces are affected only during bouts "
                   "covering about F of each post-injection video (bouts of seconds to tens of seconds; outside "
                   "them the face is a control's); truth column 'bout'. Left out: affected all the time")
    m = p.add_argument_group("other modalities", textwrap.fill(
        "Besides the face videos, every trimmed video gets simulated (not rendered) open-field body "
        "keypoints in DeepLabCut layout (keypoints/body/: nose, left_ear, right_ear, body_centre, "
        "tail_base) and every animal and recording a row of metadata/physiology.csv (temperature_c, "
        "weight_g). The same latent sickness that drives the face lowers speed, rearing, body length "
        "and head movement, and temperature and weight; animals differ in activity, size and "
        "response, so neither modality is perfect alone. These flags set how informative each is: "
        "0 = the modality carries no information (the same distribution for every animal whatever "
        "its condition), 1 = default strength, 2 = twice the effect. They never change the videos.", 88))
    m.add_argument("--behaviour-effect", dest="behaviour_effect", default=argparse.SUPPRESS,
                   type=float, metavar="X", help="how strongly sickness changes the body keypoints "
                   "(0 = no information, 1 = default); truth per frame in truth/body.parquet")
    m.add_argument("--physiology-effect", dest="physiology_effect", default=argparse.SUPPRESS,
                   type=float, metavar="X", help="how strongly sickness lowers temperature and weight "
                   "(0 = no information; 1 = default: at the default effect size up to about -2 C and -8%% "
                   "for the strongest responders, nearly nothing for the weakest); "
                   "truth in truth/physiology.csv")
    p.add_argument("--sheet", action="store_true", help="also write OUT/reports/contact_sheet.png")
    p.add_argument("--raters", metavar="K", type=int, default=None,
                   help="also write a wide Mouse Grimace Scale rating sheet OUT/ratings/synthetic_raters.csv "
                   "(ot1, nb1, cb1, ep1, wc1, ot2, ...) from K simulated raters, each with its own bias and noise "
                   "on the true AU intensities, and their parameters in OUT/truth/raters.json; import it with "
                   "`mfe ratings import`")
    p.add_argument("--rating-every", dest="rating_every", metavar="S", type=float, default=3.0,
                   help="--raters: one rated frame per video every S seconds")
    p.add_argument("--dlc-project", dest="dlc_project", metavar="DIR", type=Path, default=None,
                   help="also write a labelled DeepLabCut 3 project for the synthetic face into DIR: config.yaml "
                   "(bodyparts nose, left_eye, left_ear, right_eye, right_ear; engine pytorch; video_sets = the "
                   "processed videos `mfe prepare` writes) and labeled-data/<video>/img<k>.png + "
                   "CollectedData_synth.h5|.csv labelled from the truth (hidden points left empty, as a "
                   "labeller does). Then, with the [dlc] extra: deeplabcut.create_training_dataset(DIR/config.yaml), "
                   "deeplabcut.train_network(...), `mfe prepare`, `mfe keypoints detect --dlc-config "
                   "DIR/config.yaml`, `mfe keypoints import`. A lab follows the same recipe with its own labels "
                   "(label a few dozen frames in each of 10-20 videos in DeepLabCut's GUI instead).")
    p.add_argument("--dlc-frames", dest="dlc_frames", metavar="N", type=int, default=30,
                   help="--dlc-project: labelled frames per video, spread evenly over it")
    p.add_argument("--dlc-videos", dest="dlc_videos", metavar="K", type=int, default=None,
                   help="--dlc-project: label only K of the videos (spread evenly; the rest stay unseen by "
                   "training, to measure how the model generalises); default: every video")
    rename_option(p, "--seed", "--synth-seed")
    p.set_defaults(func=run)


def run(args) -> int:
    from mouse_facial_expressions.synth import contact_sheet, generate_cohort
    from mouse_facial_expressions.synth.cohort import summary

    overrides = {k: getattr(args, k) for k in OPTIONS if hasattr(args, k)}  # unset: from the preset
    try:
        out = generate_cohort(args.out, preset=args.preset, **overrides)
    except FileExistsError as err:
        print(f"mfe synth: error: {err}", file=sys.stderr)
        return 1
    print(summary(out))
    if args.sheet:
        png = contact_sheet(out, out / "reports" / "contact_sheet.png")
        print(f"  contact sheet     {png}")
    if args.raters is not None:
        from mouse_facial_expressions.synth.raters import write_rater_sheet

        sheet, params = write_rater_sheet(out, args.raters, args.rating_every, seed=getattr(args, "seed", 0))
        print(f"  rating sheet      {sheet} ({args.raters} simulated raters; bias and noise in {params})")
    if args.dlc_project is not None:
        from mouse_facial_expressions.synth.dlc_project import write_dlc_project

        config = write_dlc_project(out, args.dlc_project, frames_per_video=args.dlc_frames, videos=args.dlc_videos)
        print(f"  DeepLabCut project {config} (labeled-data/<video>/CollectedData_synth.h5)")
    return 0
