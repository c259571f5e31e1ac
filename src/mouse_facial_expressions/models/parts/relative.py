"""Baseline-relative scoring: a window against the same animal's baseline (``mfe train --baseline-recording K``).

The class head classifies ``embed(window) - ref``, never the window's embedding alone. ``ref``
is, in training, the embedding of one of the same animal's windows of recording ``K`` (a fresh
draw each time, from the animal's own split: the dataset field ``ref_clip``), embedded in the
same backbone pass as the windows so BatchNorm's batch statistics are the same for each; when
scoring, the mean embedding of all of the animal's baseline windows (:meth:`Reference.score_context`),
the expectation of the training references, so the head sees the same quantity with less noise.

Why a difference rather than attention to the baseline, or a concatenation: what a new cohort
changes (lighting, contrast, camera, the animal's own face) shifts a window and its baseline
alike, and a difference cancels any shift shared by the two to first order, while a
concatenation or cross-attention lets the head read the absolute embedding again and learn the
recording conditions back. The difference also keeps the head's size and costs one extra
backbone pass per training window (scoring against each baseline window and averaging the
probabilities gave the same calls on the demo cohort as the mean reference).

Only forward pairs (a later window against a baseline window) are trained on. Reversed pairs
(``embed(baseline) - embed(later)``, labelled 0) were tried: on the clean demo cohort they raised
in-cohort animal accuracy (0.583/0.750 -> 0.750/0.750 over two training seeds), but with a
recording-time cue (every recording 4 brighter by 60 grey levels) the model then called all 6
control animals' recording 4 sick, against none without them: reversed pairs let the head
separate pairs by the direction of any shift between recordings, the cue's included.

Windows: recording ``K``'s windows are not scored (against their own mean they would be "no
change" by construction); in training they stay as "no change" items only when the other
recordings hold one class (with a warning): ``select_frames``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from mouse_facial_expressions.models.parts.base import Part, State, register_part

log = logging.getLogger(__name__)


def mean_by_animal(animals, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """animal -> the mean of its rows of ``z`` ``(W, D)`` (``animals``: one name per row)."""
    animals = np.asarray(animals).astype(str)
    return {a: z[torch.from_numpy(np.flatnonzero(animals == a)).to(z.device)].mean(0) for a in np.unique(animals)}


@register_part
class Reference(Part):
    """``z <- z - ref``: each window against its animal's baseline embedding."""

    name = "relative"
    stage = "reference"
    fields = ("ref_clip",)
    no_onnx = ("a baseline-relative model scores a window against each animal's mean baseline embedding, which "
               "the graph of single windows cannot hold; score with the torch backend (mfe predict / evaluate --task)")

    def __init__(self, net, **options):
        super().__init__(net, **options)
        self.references: dict[str, torch.Tensor] = {}  # animal -> (D,), set by score_context

    @classmethod
    def from_params(cls, p) -> dict | None:
        return None if p.baseline_recording is None else {"recording": int(p.baseline_recording)}

    @classmethod
    def to_params(cls, options: dict, spec: dict) -> dict:
        return {"baseline_recording": options.get("recording")}

    @classmethod
    def from_legacy(cls, model_cfg: dict) -> dict | None:
        return {} if model_cfg.pop("relative", False) else None

    @classmethod
    def checkpoint_data(cls, options: dict) -> dict:
        return {"baseline_recording": int(options["recording"])}  # what zero-shot scoring splits the windows by

    @classmethod
    def check(cls, options: dict, spec: dict, face: str | None) -> None:
        if face != "advanced":
            raise ValueError(f"--baseline-recording: baseline-relative scoring compares window embeddings, which the "
                             f"{face or 'face-less'} model does not have; use --model advanced with the face")

    def before(self, s: State) -> None:
        """Training and the E-step: the items' reference clips join the windows' backbone pass."""
        ref = s.batch.get("ref_clip")
        if ref is not None:
            s.batch["clip"] = torch.cat([s.batch["clip"], ref])

    def forward(self, s: State) -> None:
        ref = s.batch.get("ref_clip")
        if ref is not None:
            z, zr = s.z.split(len(ref))
        else:
            z, zr = s.z, self._animal_refs(s.batch.get("animal")).to(s.z.dtype)
        s.z, s.face_z = z - zr.to(z.dtype), z

    def after(self, s: State) -> None:
        """Give the batch its own clips back (the references joined them in :meth:`before`)."""
        ref = s.batch.get("ref_clip")
        if ref is not None:
            s.batch["clip"] = s.batch["clip"][: len(s.batch["clip"]) - len(ref)]

    def _animal_refs(self, animals) -> torch.Tensor:
        if animals is None:
            raise ValueError("this is a baseline-relative model (trained with --baseline-recording): it scores a window "
                             "against its animal's baseline windows, so it needs each window's animal and those baselines")
        lacking = sorted({str(a) for a in animals} - set(self.references))
        if lacking:
            raise ValueError(f"animal(s) {', '.join(lacking)} have no baseline window to score against: a baseline-relative "
                             "run scores each window against its animal's baseline recording, which must be among the inputs")
        return torch.stack([self.references[str(a)] for a in animals])

    @torch.no_grad()
    def score_context(self, net, batches) -> None:
        """Each animal's reference: the mean face embedding of its baseline windows (``batches``)."""
        animals, zs = [], []
        for batch in batches:
            s = State(batch=dict(batch))
            net.parts["face"](s)
            zs.append(s.face_z.float())
            animals += [str(a) for a in batch["animal"]]
        self.references = mean_by_animal(animals, torch.cat(zs)) if zs else {}

    # --- dataset ------------------------------------------------------------------------------
    @classmethod
    def select_frames(cls, options: dict, ctx, role: str, frames):
        """The other recordings' frames; recording K's windows become the role's references."""
        k = int(options.get("recording") or ctx.settings["baseline_recording"])  # runs from before the parts: their data
        if "recording" not in frames.columns:
            raise ValueError(f"{ctx.task_dir}: --baseline-recording needs a 'recording' column in frames.parquet; this task has none")
        from mouse_facial_expressions.data.datasets import baseline_frames

        is_base = baseline_frames(frames, k)
        base = ctx.windows(frames[is_base], role)
        lacking = sorted(set(frames["animal"].astype(str)) - set(base["animal"].astype(str)))
        if lacking:
            raise ValueError(f"{ctx.task_dir}: fold {ctx.fold} {role} animal(s) {', '.join(lacking)} have no window of recording "
                             f"{k}, their baseline: exclude them from the task, or choose another --baseline-recording")
        ctx.references[role] = base
        if role == "test":  # scored against: each test animal's mean baseline embedding
            ctx.context[role] = base
        import pandas as pd

        labels = set(pd.to_numeric(frames.loc[~is_base, "label"], errors="coerce").dropna().astype(int))
        if role != "train" or {0, 1} <= labels:
            return frames[~is_base]
        log.warning("%s: fold %d: the training animals' recordings other than %d hold one class only, so the baseline "
                    "windows themselves are the 'no change' examples; such a pair often comes from one video, and the model "
                    "can learn 'another video = change'. Label control animals' later recordings (e.g. --preset "
                    "task1_table) for a reliable baseline-relative model", ctx.task_dir, ctx.fold, k)
        return frames

    @classmethod
    def dataset_fields(cls, options: dict, ctx, role: str, windows) -> dict:
        """Training and validation items carry ``ref_clip`` (the test pass scores against the
        animals' mean baseline embedding instead: ``select_frames`` made them its context)."""
        from mouse_facial_expressions.data.fields import ReferenceField

        return {} if role == "test" else {"ref_clip": ReferenceField(ctx.references[role], windows)}
