"""A model put together from parts: :class:`PartsNet`, its spec, and checkpoints from before the parts.

A model's spec is the face model's name and keyword arguments (``models.registry``) and its
parts, name -> options (``model_cfg["parts"]`` in a checkpoint)::

    PartsNet("advanced", {"backbone": "resnet18", ...}, {"face": {}, "class": {}, "au": {}})

The parts run in stage order (``base.STAGES``) over one :class:`~.base.State` per batch; the loss
is the weighted sum of the parts' losses. :func:`parts_from_params` turns ``mfe train``'s
parameters into parts (each part reads its own options), and :func:`legacy_spec` /
:func:`legacy_state_dict` read checkpoints written before the parts existed, when the same
capabilities were wrapper classes (``AUHeads``, ``AttentionMIL``, ``FusionNet``, ``relative=True``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from mouse_facial_expressions.models.parts.base import LossSettings, State, part_classes


class PartsNet(nn.Module):
    """A face model (or none) and the parts around it.

    Args:
        face_name: a registered face model (``advanced``, ``baseline``, ``resup``); used when the
            spec has the ``face`` part.
        face_cfg: its keyword arguments.
        parts: part name -> options.

    ``config`` is ``face_cfg`` plus ``parts`` (each part's options as built), so
    ``create_model(face_name, **net.config)`` rebuilds the model.
    """

    def __init__(self, face_name: str, face_cfg: dict, parts: dict[str, dict]):
        super().__init__()
        classes = part_classes()
        check_parts(face_name, parts)
        self.face_name, self.face_cfg, self.face_dim = face_name, dict(face_cfg), None
        self.parts_built: dict = {}
        for name, cls in classes.items():
            if name in parts:
                part = self.parts_built[name] = cls(self, **parts[name])
                self.face_dim = getattr(part, "width", None) or self.face_dim  # the embedding's, for later parts
        self.parts = nn.ModuleDict(self.parts_built)
        del self.parts_built
        if "face" in self.parts:
            self.parts["face"].take_head()  # the face's own class head, unless a part took it: read by none
        self.config = {**self.face_cfg, "parts": {n: dict(p.options) for n, p in self.parts.items()}}

    @property
    def face(self) -> nn.Module | None:
        """The face model (``models.registry``), or None for a model without the face."""
        return self.parts["face"].net if "face" in self.parts else None

    @property
    def modalities(self) -> tuple[str, ...]:
        """The inputs the model scores: the face, and the tabular modalities of a fusion part."""
        fusion = self.parts["fusion"] if "fusion" in self.parts else None
        return tuple(fusion.modalities) if fusion is not None else ("face",)

    def run(self, batch: dict, settings: LossSettings | None = None) -> State:
        """Every part over ``batch`` (``clip`` normalised, plus the parts' fields)."""
        s = State(batch=dict(batch), settings=settings)
        parts = list(self.parts.values())
        for part in parts:
            part.before(s)
        for part in parts:
            part(s)
        for part in parts:
            part.after(s)
        return s

    def loss(self, batch: dict, settings: LossSettings) -> tuple[torch.Tensor, torch.Tensor]:
        """``(the weighted sum of the parts' losses, class logits (B, 2))``."""
        s = self.run(batch, settings)
        total = None
        for part in self.parts.values():
            term = part.loss(s, settings)
            if term is not None:
                term = term * part.weight if part.weight != 1.0 else term
                total = term if total is None else total + term
        return total, s.logits

    def forward(self, clip: torch.Tensor, **fields) -> torch.Tensor:
        """Class logits ``(B, 2)`` of normalised clips (and the parts' other fields)."""
        return self.run({"clip": clip, **fields}).logits

    def encode(self, clip: torch.Tensor) -> State:
        """The face part alone over ``clip`` (what BatchNorm recalibration runs): a State with ``face_z`` or ``logits``."""
        s = State(batch={"clip": clip})
        if "face" in self.parts:
            self.parts["face"](s)
        return s

    def outputs(self, s: State) -> dict[str, torch.Tensor]:
        """Every part's per-window outputs beyond ``p1``."""
        out = {}
        for part in self.parts.values():
            out.update(part.outputs(s))
        return out

    def columns(self, outputs: dict) -> dict:
        """Output arrays -> prediction-table columns, part by part."""
        cols = {}
        for part in self.parts.values():
            cols.update(part.to_columns(outputs))
        return cols

    @property
    def column_text(self) -> dict[str, str]:
        """Output column -> its description (``COLUMNS.md``), part by part."""
        return {k: v for part in self.parts.values() for k, v in part.columns.items()}

    def param_groups(self, lr: float):
        """Optimiser groups: the parts' own (e.g. fusion's faster tabular encoders), the rest at ``lr``."""
        groups = [g for part in self.parts.values() for g in part.param_groups(lr)]
        if not groups:
            return self.parameters()
        own = {id(p) for g in groups for p in g["params"]}
        return [{"params": [p for p in self.parameters() if id(p) not in own], "lr": lr}, *groups]


def check_parts(face_name: str, parts: dict[str, dict]) -> None:
    """Raise ValueError for unknown parts or parts that cannot work together (each part says why)."""
    classes = part_classes()
    unknown = sorted(set(parts) - set(classes))
    if unknown:
        raise ValueError(f"unknown model part(s) {unknown}; registered parts: {', '.join(classes)}")
    face = face_name if "face" in parts else None
    for name, options in parts.items():
        classes[name].check(options, parts, face)


def parts_from_params(p) -> dict[str, dict]:
    """The parts ``mfe train`` parameters ``p`` ask for: each part reads its own options."""
    parts = {}
    for name, cls in part_classes().items():
        options = cls.from_params(p)
        if options is not None:
            parts[name] = options
    return parts


def params_of_parts(parts: dict[str, dict]) -> dict:
    """The training parameters that ask for these parts (``Part.to_params``; None: not given)."""
    classes, values = part_classes(), {}
    for name, options in parts.items():
        values.update(classes[name].to_params(options, parts))
    return values


def legacy_spec(model_cfg: dict) -> tuple[dict, dict[str, dict]]:
    """``(face_cfg, parts)`` of a pre-parts checkpoint's ``model_cfg`` (face keyword arguments plus
    the wrappers' settings, which each part pops for itself)."""
    cfg, parts = dict(model_cfg), {}
    for name, cls in part_classes().items():
        options = cls.from_legacy(cfg)
        if options is not None:
            parts[name] = options
    return cfg, parts


def legacy_state_dict(state: dict, parts: dict[str, dict], face_embeds: bool) -> dict:
    """A pre-parts state dict's keys as :class:`PartsNet` names them.

    A wrapper's own top-level names go to their part (``au_heads.*`` -> ``parts.au.heads.*``); the
    face model's keys (``face.*`` inside a wrapper, top-level otherwise) go to ``parts.face.net``,
    except an embedding model's class head, which the class part owns."""
    classes = part_classes()
    claimed = {old: f"parts.{n}.{new}" for n in parts for old, new in classes[n].legacy_keys.items()}
    wrapped = bool(claimed)
    out = {}
    for key, value in state.items():
        top, _, rest = key.partition(".")
        if top in claimed:
            out[f"{claimed[top]}.{rest}" if rest else claimed[top]] = value
            continue
        face_key = key[len("face."):] if wrapped and key.startswith("face.") else key
        if face_embeds and face_key.startswith("head.") and "class" in parts:
            out["parts.class." + face_key] = value
        else:
            out["parts.face.net." + face_key] = value
    return out


def build_net(face_name: str, model_cfg: dict) -> tuple[PartsNet, bool]:
    """``(model, legacy)``: the model of a checkpoint's ``model_name`` / ``model_cfg``; ``legacy``:
    the config predates the parts (its state dict needs :func:`legacy_state_dict`)."""
    cfg = dict(model_cfg)
    if "parts" in cfg:
        parts = cfg.pop("parts")
        return PartsNet(face_name, cfg, parts), False
    face_cfg, parts = legacy_spec(cfg)
    return PartsNet(face_name, face_cfg, parts), True


class BoundPart:
    """A part class with its options: the dataset hooks ``data.datasets.fold_datasets`` calls."""

    def __init__(self, name: str, options: dict):
        self.name, self.options, self.cls = name, dict(options), part_classes()[name]

    def select_frames(self, ctx, role: str, frames):
        return self.cls.select_frames(self.options, ctx, role, frames)

    def dataset_fields(self, ctx, role: str, windows) -> dict:
        return self.cls.dataset_fields(self.options, ctx, role, windows)

    def score_fields(self, ctx, windows) -> dict:
        return self.cls.score_fields(self.options, ctx, windows)


def bound_parts(parts: dict[str, dict]) -> list[BoundPart]:
    """The parts of a spec (name -> options) in the order they run, bound to their options."""
    return [BoundPart(name, parts[name]) for name in part_classes() if name in parts]
