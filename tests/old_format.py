"""Checkpoints as the pinned commit's ``mfe train`` writes them, and what its own code scores with them.

Run by ``tests/test_old_runs.py`` in a subprocess, with the pinned commit's package first on
the path (``git archive <commit> src``)::

    PYTHONPATH=<old>/src python tests/old_format.py OUTDIR

For each layout of :data:`LAYOUTS` (one per kind of model the old code can train) it builds the
model the way old ``training/cv.py`` ``train_fold`` does (``ClipClassifier(p.model,
{**p.model_config(), "fusion": ...}, ..., data=meta)``), tiny, with every weight and buffer
made distinct (see :func:`perturb`), writes it as Lightning's ``ModelCheckpoint(save_weights_only=True)``
does (``OUTDIR/<layout>.ckpt``), loads it back with the old ``inference.ensemble.load_ensemble``
and scores fixed inputs with the old ``FoldEnsemble`` in fp32. ``OUTDIR/<layout>.npz`` holds
the inputs (``input_*``) and the old scores (``expected_*``); ``OUTDIR/index.json`` lists the
layouts with their hyperparameters and state-dict keys. The test loads each checkpoint with
the working tree's code and must get the same scores: checkpoints of today's runs keep
loading and scoring the same after the model code changes.

Model weights are never committed: they are regenerated from the pinned commit's code.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

#: layout -> (model, TrainParams overrides, fused modalities or None, fusion or None).
LAYOUTS: dict[str, tuple[str, dict, str | None, str | None]] = {
    "advanced": ("advanced", {}, None, None),
    # d_model = the backbone's 512 features: no ``proj`` layer (Identity), as in default runs
    "advanced_d512": ("advanced", {"d_model": 512}, None, None),
    "baseline": ("baseline", {}, None, None),
    "resup": ("resup", {}, None, None),
    "relative": ("advanced", {"baseline_recording": 1}, None, None),
    "au_class": ("advanced", {"targets": "au+class"}, None, None),
    "au_only": ("advanced", {"targets": "au"}, None, None),
    "mil": ("advanced", {"weak": "attention"}, None, None),
    "fusion_late": ("advanced", {}, "face,behaviour,physiology", "late"),
    "fusion_stacked": ("advanced", {}, "face,behaviour", "stacked"),
    "fusion_mid": ("advanced", {}, "face,behaviour", "mid"),
    "fusion_late_noface": ("advanced", {}, "behaviour,physiology", "late"),
}

#: Small fake feature columns per tabular modality (real runs: preprocess.behaviour, io.physiology).
AUX_COLUMNS = {"behaviour": ["speed_mean", "rearing_frac", "immobile_frac"], "physiology": ["temperature_c", "weight_g"]}

#: The tiny model every layout uses.
TINY = dict(backbone="resnet18", d_model=64, num_layers=1, num_heads=2, ff_dim=64, num_frames=4, frame_stride=2,
            image_size=32, epochs=3)

#: Scored windows per layout, and baseline windows per animal (baseline-relative layout).
N_CLIPS, N_BASE = 4, 3


def main(out: Path) -> None:
    import mouse_facial_expressions as mfe

    src = Path(os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or ".").resolve()
    package = Path(mfe.__file__).resolve()
    assert package.is_relative_to(src), (
        f"imported {package}, not the pinned commit's package: run with PYTHONPATH=<archive>/src (first entry: {src})")

    import torch

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    index = {"package": str(package.parent), "layouts": {}}
    for k, (name, spec) in enumerate(LAYOUTS.items()):
        index["layouts"][name] = write_layout(out, name, *spec, seed=1000 + k)
    (out / "index.json").write_text(json.dumps(index, indent=1))


def train_params(model: str, overrides: dict, modalities: str | None, fusion: str | None):
    """The old ``TrainParams`` of ``mfe train --model MODEL ...`` at the tiny settings."""
    from mouse_facial_expressions.training.params import make_params

    extra = dict(modalities=modalities, fusion=fusion) if modalities else {}
    return make_params(model, **{**TINY, **overrides}, **extra)


def data_meta(p, fold: int = 0) -> dict:
    """The ``data`` dict old ``train_fold`` stores in the checkpoint (``meta``), with made-up paths and animals."""
    import numpy as np
    import pandas as pd

    from mouse_facial_expressions.data.datasets import NORM_MEAN, NORM_STD
    from mouse_facial_expressions.preprocess.domain import pool_summaries, video_summary

    rng = np.random.default_rng(fold)
    videos = [f"cam1__{v}__20240101_10000{v}" for v in range(2)]
    summaries = [video_summary(rng.integers(40, 200, (6, 32, 32), dtype=np.uint8),
                               pd.DataFrame({"video": [v] * 6, "sharpness": rng.uniform(50, 90, 6)})) for v in videos]
    meta = dict(
        num_frames=p.num_frames, frame_stride=p.frame_stride, image_size=p.image_size,
        norm_mean=[float(v) for v in np.ravel(NORM_MEAN)], norm_std=[float(v) for v in np.ravel(NORM_STD)],
        in_channels=p.in_channels, task_dir="/lab/project/tasks/task-1", fold=fold,
        train_animals=["m1", "m2", "m5", "m6"], val_animals=["m3", "m7"], test_animals=["m4", "m8"],
        run_name=p.default_run_name(), pretrained=p.pretrained, domain=pool_summaries(summaries),
    )
    if p.baseline_recording is not None:
        meta["baseline_recording"] = int(p.baseline_recording)
    return meta


def perturb(module, gen) -> None:
    """Make every floating weight and buffer distinct and non-default: BatchNorm running
    statistics drawn at random, every other tensor ``t`` moved by ``(0.2 |t| + 0.02) N(0, 1)``.
    Fresh initialisations hold ones and zeros (LayerNorm, biases, BatchNorm), so a key loaded
    into the wrong place, or not at all, would score the same; after this it does not."""
    import torch

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0.0, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
        bn = {id(t) for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
              for t in (m.running_mean, m.running_var)}
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point() and id(t) not in bn and t.numel():
                t.add_(torch.randn(t.shape, generator=gen) * (0.2 * t.abs() + 0.02))


def build_module(model: str, overrides: dict, modalities: str | None, fusion: str | None, seed: int):
    """Old ``ClipClassifier`` as ``train_fold`` builds it, with non-trivial weights and fused-model buffers."""
    import numpy as np
    import torch

    from mouse_facial_expressions.training.module import ClipClassifier

    p = train_params(model, overrides, modalities, fusion)
    aux_columns = {m: AUX_COLUMNS[m] for m in p.modality_list if m != "face"}
    fusion_cfg = p.fusion_config(aux_columns)
    torch.manual_seed(seed)
    module = ClipClassifier(
        p.model, {**p.model_config(), **({"fusion": fusion_cfg} if fusion_cfg else {})}, optimizer=p.optimizer,
        learning_rate=p.learning_rate, weight_decay=p.weight_decay, momentum=p.momentum, epochs=p.epochs,
        label_smoothing=p.label_smoothing, use_soft_labels=p.use_soft_labels or p.weak is not None, class_weights=None,
        data=data_meta(p), channels_last=False, select=p.select, warmup_epochs=p.warmup_epochs,
        **({"weak": p.weak} if p.weak is not None else {}),
    )
    gen = torch.Generator().manual_seed(seed)
    perturb(module, gen)
    net = module.model
    if fusion_cfg:  # what train_fold and its helpers set on a fused model
        n_feat = sum(len(c) for c in aux_columns.values())
        net.set_feature_stats(torch.randn(n_feat, generator=gen).numpy(), (0.5 + torch.rand(n_feat, generator=gen)).numpy())
        if fusion_cfg["fusion"] == "late":
            net.set_scales({m: 0.3 + 0.5 * i for i, m in enumerate(aux_columns)})
        if fusion_cfg["fusion"] == "stacked":
            rng = np.random.default_rng(seed)
            odds = rng.normal(size=(40, len(net.modalities)))
            net.fit_stack(odds, (odds @ np.linspace(1.0, 0.4, len(net.modalities)) + rng.normal(size=40) > 0).astype(int))
    module.history = {0: {"train_acc": 0.62, "train_loss": 0.71, "val_acc": 0.55, "val_loss": 0.69}}
    return module, p


def save_weights_only(module, path: Path) -> None:
    """Write the checkpoint ``ModelCheckpoint(save_weights_only=True)`` writes in old ``train_fold``:
    a Lightning trainer attached to the module saves it (``hyper_parameters``, ``state_dict``
    under ``model.``, ``epoch``, loops, and the module's ``mfe_history``)."""
    import logging

    import lightning.pytorch as pl

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no "GPU available" lines per layout
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, max_epochs=0, accelerator="cpu", devices=1,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path, weights_only=True)


def inputs(p, net, gen) -> dict:
    """Fixed inputs: normalised clips, a fused model's raw features (NaN: absent), a relative
    model's baseline clips and each row's animal."""
    import numpy as np
    import torch

    from mouse_facial_expressions.data.augment import normalize_clips

    def clips(n: int) -> np.ndarray:  # n random grey clips, normalised as the loader's batches are
        grey = torch.randint(0, 256, (n, p.num_frames, 1, p.image_size, p.image_size), generator=gen, dtype=torch.uint8)
        return normalize_clips(grey, p.in_channels).numpy()

    x = {"clips": clips(N_CLIPS)}
    if p.modalities is not None:
        n_feat = sum(len(c) for c in net.aux_columns.values())
        aux = torch.randn(N_CLIPS, n_feat, generator=gen).numpy()
        aux[1, 0] = np.nan  # row 1: the first tabular modality absent; row 2: the last; row 3: none present
        aux[2, -1] = np.nan
        aux[3, :] = np.nan
        x["aux"] = aux
    if p.baseline_recording is not None:  # two animals: rows 0, 1 and rows 2, 3
        x["base_clips"] = clips(2 * N_BASE)
        x["base_animal"] = np.repeat([0, 1], N_BASE)
        x["animal"] = np.array([0, 0, 1, 1])
    return x


def score_old(ens, x: dict) -> dict:
    """The old ``FoldEnsemble``'s scores of the inputs ``x``: ``p1`` per member, the AU scores,
    a relative model's references, a fused model's ``p1`` with each modality alone, and an
    attention-MIL model's score and attention weights of the clips as one bag (the only output its
    attention layers reach: a window alone is a bag of one)."""
    import numpy as np
    import torch

    clips = torch.from_numpy(x["clips"])
    aux = torch.from_numpy(x["aux"]) if "aux" in x else None
    out = {}
    if ens.relative:
        z = ens.embed(torch.from_numpy(x["base_clips"]))  # per member (W, D)
        refs = [torch.stack([zk[torch.from_numpy(x["base_animal"] == a)].mean(0) for a in x["animal"]]) for zk in z]
        out["refs"] = np.stack([r.numpy() for r in refs])  # (K, B, D)
        out["p1"] = ens.predict(clips, refs)
        return out
    p1, au = ens.predict_au(clips, aux=aux)
    out["p1"] = p1
    if au is not None:
        out["au"] = au
    if getattr(ens.models[0], "kind", None) == "mil":  # the attention weights (training, inspection): the clips as one bag
        with torch.no_grad():
            logits, attention = ens.models[0].bag_logits(clips[None])
        out["bag_p1"], out["bag_attention"] = torch.softmax(logits, -1)[:, 1].numpy(), attention.numpy()
    if aux is not None:
        for m in ens.modalities:
            ens.use([m])
            out[f"p1_only_{m}"] = ens.predict(clips, aux=aux)
        ens.use(None)
    return out


def write_layout(out: Path, name: str, model: str, overrides: dict, modalities, fusion, seed: int) -> dict:
    """Write ``<name>.ckpt`` and ``<name>.npz``; the layout's record for ``index.json``."""
    import numpy as np
    import torch

    from mouse_facial_expressions.inference.ensemble import load_ensemble

    module, p = build_module(model, overrides, modalities, fusion, seed)
    ckpt = out / f"{name}.ckpt"
    save_weights_only(module, ckpt)
    ens = load_ensemble(ckpt)  # the checkpoint read back by the old code, as mfe predict / evaluate do
    assert ens.dtype == torch.float32 and not any(m.training for m in ens.models)
    x = inputs(p, ens.models[0], torch.Generator().manual_seed(seed + 1))
    expected = score_old(ens, x)
    p1 = expected["p1"]
    assert np.isfinite(p1).all() and np.ptp(p1) > 1e-3 and ((p1 > 1e-3) & (p1 < 1 - 1e-3)).all(), (
        f"{name}: scores too flat or saturated to test anything: {p1.ravel()}")
    np.savez(out / f"{name}.npz", **{f"input_{k}": v for k, v in x.items()},
             **{f"expected_{k}": v for k, v in expected.items()})
    written = torch.load(ckpt, map_location="cpu", weights_only=True)
    flags = {**overrides, **({"modalities": modalities, "fusion": fusion} if modalities else {})}
    return dict(model_name=model, train_flags=flags, hyper_parameters=written["hyper_parameters"], checkpoint_keys=sorted(written),
                state_dict={k: list(v.shape) for k, v in written["state_dict"].items()})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: PYTHONPATH=<archive>/src python tests/old_format.py OUTDIR")
    main(Path(sys.argv[1]))
