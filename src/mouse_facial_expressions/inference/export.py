"""``mfe export RUN|CKPT --onnx``: a trained model (or a run's fold ensemble) as one ONNX graph.

The graph takes what the loader gives the model and returns probabilities:

- input ``clip``: ``(B, T, C, H, W)`` float32, normalised crops (``data.augment.to_model_input``:
  grey repeated to C = 3 channels, ImageNet mean/std); ``B`` is dynamic, ``T``/``H``/``W``
  are fixed at export (default: the checkpoint's ``num_frames`` and ``image_size``);
- output ``p1``: ``(B,)`` probability of class 1, the mean over the members;
- output ``p1_members``: ``(B, K)`` each member's probability (K = number of folds; 1 for a
  single checkpoint);
- output ``au`` (a run with Mouse Grimace Scale action-unit heads, ``mfe train --targets
  au|au+class``, only): ``(B, 5)`` the expected score (0..2) of each action unit, in the order of
  the metadata's ``au`` list (ot, nb, cb, ep, wc), the mean over the members; the MGS total is
  their mean.

The preprocessing settings are written into the model's metadata (``metadata_props``:
num_frames, frame_stride, image_size, channels, norm_mean, norm_std, members) so another
program can rebuild the input. :func:`check_onnx` compares onnxruntime with torch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from mouse_facial_expressions.data.augment import GREY_MEAN, GREY_STD, NORM_MEAN, NORM_STD
from mouse_facial_expressions.inference.ensemble import FoldEnsemble, load_ensemble
from mouse_facial_expressions.io.atomic import atomic_path

OPSET = 17
INSTALL_HINT = "pip install 'mouse-facial-expressions[onnx]'"


def _import(name: str, what: str):
    """``import name`` or an ImportError that names the ``[onnx]`` extra's install command."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(f"{what} needs the optional package {name}, which is not installed: {INSTALL_HINT}") from None


class EnsembleProbabilities(torch.nn.Module):
    """``(B, T, C, H, W)`` clips -> (``p1`` ``(B,)``, ``p1_members`` ``(B, K)``), plus ``au``
    ``(B, 5)`` (the members' mean expected action-unit scores) when the members have AU heads."""

    def __init__(self, models: list[torch.nn.Module]):
        super().__init__()
        self.members = torch.nn.ModuleList(models)
        self.au = all(getattr(m, "kind", None) == "au" for m in models)

    def forward(self, clip: torch.Tensor):
        if not self.au:
            probs = torch.stack([torch.softmax(m(clip), dim=-1)[:, 1] for m in self.members], dim=1)  # (B, K)
            return probs.mean(dim=1), probs
        outs = [m.scores(clip) for m in self.members]  # [(logits (B, 2), au (B, 5))]
        probs = torch.stack([torch.softmax(lg, dim=-1)[:, 1] for lg, _ in outs], dim=1)  # (B, K)
        return probs.mean(dim=1), probs, torch.stack([a for _, a in outs], dim=0).mean(dim=0)  # (B, 5)


def example_input(ens: FoldEnsemble, num_frames: int | None = None, image_size: int | None = None,
                  batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A random normalised clip batch ``(batch, T, C, S, S)`` for tracing and checks."""
    g = torch.Generator().manual_seed(seed)
    t, s = num_frames or ens.num_frames, image_size or ens.image_size
    return torch.randn(batch, t, ens.channels, s, s, generator=g)


def export_onnx(run_or_ckpt: str | Path | FoldEnsemble, out_path: str | Path, num_frames: int | None = None,
                image_size: int | None = None, opset: int = OPSET) -> Path:
    """Write the model (a run's fold ensemble or one checkpoint) as ONNX (atomic).

    Args:
        run_or_ckpt: run folder, ``.ckpt`` file or a loaded :class:`FoldEnsemble`.
        out_path: the ``.onnx`` file to write.
        num_frames, image_size: input clip length and side (default: the checkpoint's).
        opset: ONNX opset.

    Returns:
        ``out_path``.
    """
    onnx = _import("onnx", "an ONNX export")

    ens = run_or_ckpt if isinstance(run_or_ckpt, FoldEnsemble) else load_ensemble(run_or_ckpt)
    ens.require_absolute("an ONNX model of single windows")
    ens.require_face_only("an ONNX model of face windows")
    wrapper = EnsembleProbabilities(ens.models).eval()
    x = example_input(ens, num_frames, image_size)
    out_path = Path(out_path)
    outputs = ["p1", "p1_members"] + (["au"] if wrapper.au else [])
    mean, std = ((GREY_MEAN,), (GREY_STD,)) if ens.channels == 1 else (NORM_MEAN, NORM_STD)
    meta = {
        "num_frames": x.shape[1], "frame_stride": ens.frame_stride, "image_size": x.shape[-1],
        "channels": ens.channels, "norm_mean": list(ens.data.get("norm_mean") or mean),
        "norm_std": list(ens.data.get("norm_std") or std), "members": ens.names,
        "model_name": ens.hparams[0].get("model_name"), "source": str(ens.source),
    }
    if wrapper.au:
        from mouse_facial_expressions.io.ratings import AUS

        meta["au"] = list(AUS)
    with atomic_path(out_path) as tmp:
        # Grad stays enabled: under no_grad nn.TransformerEncoderLayer takes its fused fast path
        # (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants: fixed T, S
            torch.onnx.export(
                wrapper, (x,), str(tmp), input_names=["clip"], output_names=outputs,
                dynamic_axes={"clip": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
                opset_version=opset, dynamo=False,
            )
        model = onnx.load(str(tmp))
        for k, v in meta.items():
            p = model.metadata_props.add()
            p.key, p.value = f"mfe.{k}", json.dumps(v)
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
    return out_path


def check_onnx(onnx_path: str | Path, run_or_ckpt: str | Path | FoldEnsemble, atol: float = 1e-4,
               batch: int = 3, seed: int = 1) -> float:
    """Largest ``|p1_onnxruntime - p1_torch|`` over a random batch (and ``|au_onnxruntime -
    au_torch|`` for a run with action-unit heads); raises when above ``atol``.

    Raises:
        AssertionError: the difference exceeds ``atol``.
    """
    ort = _import("onnxruntime", "checking an ONNX export")

    ens = run_or_ckpt if isinstance(run_or_ckpt, FoldEnsemble) else load_ensemble(run_or_ckpt)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    shape = sess.get_inputs()[0].shape  # ['batch', T, C, S, S]
    x = example_input(ens, int(shape[1]), int(shape[-1]), batch=batch, seed=seed)
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(names, {"clip": x.numpy()})))
    ens.dtype = torch.float32
    members, au = ens.predict_au(x)
    if (au is None) != ("au" not in got):
        raise AssertionError(f"{onnx_path}: the graph {'has' if 'au' in got else 'lacks'} the action-unit output "
                             f"but the model {'has' if au is not None else 'has no'} AU heads")
    diff = max(float(np.abs(got["p1"] - members.mean(axis=1)).max()), float(np.abs(got["p1_members"] - members).max()))
    if au is not None:
        diff = max(diff, float(np.abs(got["au"] - au).max()))
    if diff > atol:
        raise AssertionError(f"{onnx_path}: onnxruntime differs from torch by {diff:.2e} (> {atol:g})")
    return diff
