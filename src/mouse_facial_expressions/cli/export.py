"""`mfe export RUN|CKPT --onnx`: a trained model (or a run's fold ensemble) as ONNX."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mouse_facial_expressions.cli._common import add_project_arg

DESCRIPTION = """\
Export a trained model as one ONNX graph and check that onnxruntime scores it like torch.

RUN|CKPT: a run folder (every fold's selected checkpoint; the graph averages them) or one
.ckpt. Input `clip` (batch, T, C, S, S) float32 normalised crops (as the training loader
gives them); outputs `p1` (batch,) = mean P(class 1) and `p1_members` (batch, K). The
preprocessing settings (num_frames, frame_stride, image_size, channels, normalisation) are
stored in the model's metadata_props as mfe.*. After writing, a random batch is scored by
onnxruntime and torch; the export fails if they differ by more than --atol.
"""


def register(sub, formatter):
    p = sub.add_parser("export", help="export a trained model / fold ensemble to ONNX", description=DESCRIPTION,
                       formatter_class=formatter, epilog="example: mfe export models/runs/advanced-resnet18-1a2b3c4d --onnx")
    p.add_argument("model", type=Path, metavar="RUN|CKPT", help="run folder or .ckpt (a bare run name is looked up in the project's models/runs)")
    p.add_argument("--onnx", action="store_true", required=True, help="write ONNX (the only format for now)")
    p.add_argument("--out", type=Path, default=None, help="output file (default: RUN/model.onnx, or CKPT with .onnx)")
    p.add_argument("--num-frames", type=int, default=None, help="clip length of the graph input (default: the checkpoint's)")
    p.add_argument("--image-size", type=int, default=None, help="crop side of the graph input (default: the checkpoint's)")
    p.add_argument("--atol", type=float, default=1e-4, help="largest allowed |onnxruntime - torch| difference of p1")
    add_project_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mouse_facial_expressions.cli.predict import resolve_model
    from mouse_facial_expressions.inference.export import check_onnx, export_onnx

    src = resolve_model(args.model, args)
    out = args.out or (src / "model.onnx" if src.is_dir() else src.with_suffix(".onnx"))
    path = export_onnx(src, out, num_frames=args.num_frames, image_size=args.image_size)
    try:
        diff = check_onnx(path, src, atol=args.atol)
    except AssertionError as err:
        print(f"mfe export: {err}", file=sys.stderr)
        return 1
    print(f"onnx: {path} (onnxruntime vs torch: max |diff| {diff:.1e})")
    return 0
