"""``mfe export RUN|CKPT --onnx``: a trained model (or a run's fold ensemble) as one ONNX graph.

The graph takes what the loader gives the model and returns probabilities:

- input ``clip``: ``(B, T, C, H, W)`` float32, normalised crops (``data.augment.to_model_input``:
  grey repeated to C = 3 channels, ImageNet mean/std); ``B`` is dynamic, ``T``/``H``/``W``
  are fixed at export (default: the checkpoint's ``num_frames`` and ``image_size``);
- the inputs the model's parts add: ``aux`` ``(B, F)`` float32 for a fused run (``mfe train
  --modalities``): the raw behaviour / physiology features in the metadata's ``aux_columns``
  order, NaN where not measured;
- output ``p1``: ``(B,)`` probability of class 1, the mean over the members;
- output ``p1_members``: ``(B, K)`` each member's probability (K = number of folds; 1 for a
  single checkpoint);
- output ``au`` (a run with Mouse Grimace Scale action-unit heads, ``mfe train --targets
  au|au+class``, only): ``(B, 5)`` the expected score (0..2) of each action unit, in the order of
  the metadata's ``au`` list (ot, nb, cb, ep, wc), the mean over the members; the MGS total is
  their mean.

The preprocessing settings are written into the model's metadata (``metadata_props``:
num_frames, frame_stride, image_size, channels, norm_mean, norm_std, members, inputs, parts,
aux_columns) so another program can rebuild the input. A part that cannot be exported says why
(``Part.no_onnx``: a baseline-relative run). :func:`check_onnx` compares onnxruntime with torch.
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
    """``clip`` (and the inputs the parts add, e.g. a fused run's ``aux``) -> ``p1`` ``(B,)``,
    ``p1_members`` ``(B, K)`` and the members' mean of each output the parts add (e.g. ``au`` ``(B, 5)``)."""

    def __init__(self, models: list[torch.nn.Module]):
        super().__init__()
        self.members = torch.nn.ModuleList(models)
        parts = list(models[0].parts.values())
        refused = [f"{p.name}: {p.no_onnx}" for p in parts if p.no_onnx]
        if refused:
            raise ValueError("this model cannot be exported to ONNX: " + "; ".join(refused))
        self.inputs = ["clip", *(i for p in parts for i in p.onnx_inputs)]
        self.outputs = ["p1", "p1_members", *(o for p in parts for o in p.onnx_outputs)]
        self.au = "au" in self.outputs

    def forward(self, clip: torch.Tensor, *inputs: torch.Tensor):
        batch = {"clip": clip, **dict(zip(self.inputs[1:], inputs))}
        probs, extra = [], {name: [] for name in self.outputs[2:]}
        for m in self.members:
            s = m.run(batch)
            probs.append(torch.softmax(s.logits, dim=-1)[:, 1])
            outs = m.outputs(s)
            for name in extra:
                extra[name].append(outs[name])
        probs = torch.stack(probs, dim=1)  # (B, K)
        return (probs.mean(dim=1), probs, *(torch.stack(v, dim=0).mean(dim=0) for v in extra.values()))


def example_inputs(ens: FoldEnsemble, wrapper: EnsembleProbabilities, num_frames: int | None = None,
                   image_size: int | None = None, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the graph: a normalised clip batch and, per extra input, features ``(batch, F)``."""
    x = example_input(ens, num_frames, image_size, batch, seed)
    g = torch.Generator().manual_seed(seed + 1)
    width = sum(len(c) for c in ens.aux_columns.values())
    return (x, *(torch.randn(batch, width, generator=g) for _ in wrapper.inputs[1:]))


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
    wrapper = EnsembleProbabilities(ens.models).eval()
    inputs = example_inputs(ens, wrapper, num_frames, image_size)
    x = inputs[0]
    out_path = Path(out_path)
    outputs = wrapper.outputs
    mean, std = ((GREY_MEAN,), (GREY_STD,)) if ens.channels == 1 else (NORM_MEAN, NORM_STD)
    meta = {
        "num_frames": x.shape[1], "frame_stride": ens.frame_stride, "image_size": x.shape[-1],
        "channels": ens.channels, "norm_mean": list(ens.data.get("norm_mean") or mean),
        "norm_std": list(ens.data.get("norm_std") or std), "members": ens.names,
        "model_name": ens.hparams[0].get("model_name"), "source": str(ens.source), "inputs": wrapper.inputs,
        "parts": list(ens.parts),
    }
    if len(wrapper.inputs) > 1:  # a fused run: what each column of ``aux`` is
        meta["aux_columns"] = ens.aux_columns
    if wrapper.au:
        from mouse_facial_expressions.io.ratings import AUS

        meta["au"] = list(AUS)
    with atomic_path(out_path) as tmp:
        # Grad stays enabled: under no_grad nn.TransformerEncoderLayer takes its fused fast path
        # (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants: fixed T, S
            torch.onnx.export(
                wrapper, inputs, str(tmp), input_names=wrapper.inputs, output_names=outputs,
                dynamic_axes={**{i: {0: "batch"} for i in wrapper.inputs}, **{o: {0: "batch"} for o in outputs}},
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
    wrapper = EnsembleProbabilities(ens.models)
    inputs = example_inputs(ens, wrapper, int(shape[1]), int(shape[-1]), batch=batch, seed=seed)
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(names, {n: t.numpy() for n, t in zip(wrapper.inputs, inputs)})))
    ens.dtype = torch.float32
    members, outs = ens.score(dict(zip(wrapper.inputs, inputs)))
    au = outs.get("au")
    if (au is None) != ("au" not in got):
        raise AssertionError(f"{onnx_path}: the graph {'has' if 'au' in got else 'lacks'} the action-unit output "
                             f"but the model {'has' if au is not None else 'has no'} AU heads")
    diff = max(float(np.abs(got["p1"] - members.mean(axis=1)).max()), float(np.abs(got["p1_members"] - members).max()))
    if au is not None:
        diff = max(diff, float(np.abs(got["au"] - au).max()))
    if diff > atol:
        raise AssertionError(f"{onnx_path}: onnxruntime differs from torch by {diff:.2e} (> {atol:g})")
    return diff
