"""Grad-CAM over the face crops of a window, for any clip classifier with a conv backbone.

The model maps a clip ``(B, T, C, H, W)`` to two logits ``(B, 2)``; its backbone runs on the
frames folded into the batch (``(B*T, C, H, W)``), as every model here does. Grad-CAM
(Selvaraju et al. 2017) weights the target layer's feature maps by the spatial mean of the
gradient of the class score and keeps the positive part, giving one map per frame: the
regions that raise the score of ``target_class``.
"""

from __future__ import annotations

import numpy as np

from mouse_facial_expressions.data.task_files import TaskFiles


def last_conv_layer(model):
    """The last ``nn.Conv2d`` in ``model`` (a reasonable default target layer)."""
    import torch.nn as nn

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("model has no nn.Conv2d layer: pass target_layer explicitly")
    return convs[-1]


def feature_layer(model, clip_shape: tuple[int, ...], min_side: int = 8):
    """The last ``nn.Conv2d`` whose feature map is at least ``min_side`` x ``min_side`` for clips of
    ``clip_shape`` ``(T, C, H, W)``: a map that can tell the eye from the ear (the last layer of a
    resnet at 64 px is 2 x 2). Falls back to :func:`last_conv_layer` when none is that large."""
    import torch
    import torch.nn as nn

    sizes: dict = {}
    hooks = [m.register_forward_hook(lambda mod, _i, out: sizes.__setitem__(mod, tuple(out.shape[-2:])))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros((1, *clip_shape)))
    finally:
        for h in hooks:
            h.remove()
    big = [m for m in model.modules() if isinstance(m, nn.Conv2d) and min(sizes.get(m, (0, 0))) >= min_side]
    return big[-1] if big else last_conv_layer(model)


def grad_cam(
    model,
    clip,
    target_layer,
    target_class: int = 1,
    normalize: str = "frame",
) -> np.ndarray:
    """Grad-CAM heatmaps for each frame of a clip.

    Args:
        model: ``torch.nn.Module`` mapping ``(B, T, C, H, W)`` to logits ``(B, 2)``. Its mode
            (train/eval) is left as it is: call ``model.eval()`` first for dropout-free maps.
        clip: tensor or array ``(T, C, H, W)`` or ``(B, T, C, H, W)``, already normalised the
            way the model expects.
        target_layer: the module whose output feature maps ``(B*T, K, h, w)`` are explained,
            e.g. ``model.backbone.layer4``; see :func:`last_conv_layer`.
        target_class: the logit explained (1 = the affective state).
        normalize: ``"frame"`` scales each frame's map to [0, 1] on its own; ``"clip"``
            scales all frames of a clip together (keeps their relative strength).

    Returns:
        ``(T, H, W)`` float32 heatmaps in [0, 1] (``(B, T, H, W)`` for a batch with B > 1),
        upsampled bilinearly to the input size. A map with no positive evidence is all zero.
    """
    import torch
    import torch.nn.functional as F

    if normalize not in ("frame", "clip"):
        raise ValueError(f"normalize must be 'frame' or 'clip', got {normalize!r}")
    x = torch.as_tensor(clip, dtype=torch.float32)
    single = x.ndim == 4
    if single:
        x = x.unsqueeze(0)  # (1, T, C, H, W)
    if x.ndim != 5:
        raise ValueError(f"clip must be (T, C, H, W) or (B, T, C, H, W), got shape {tuple(x.shape)}")
    b, t, _, h, w = x.shape
    try:
        param = next(model.parameters())
        x = x.to(device=param.device, dtype=param.dtype)
    except StopIteration:
        pass
    x = x.detach().requires_grad_(True)  # so feature maps carry gradients even with a frozen backbone
    store: dict = {}

    def hook(_module, _inp, out):
        if not isinstance(out, torch.Tensor) or out.ndim != 4:
            raise ValueError(f"target layer must output (B*T, K, h, w) feature maps, got {getattr(out, 'shape', type(out))}")
        store["act"] = out
        out.register_hook(lambda g: store.__setitem__("grad", g))

    handle = target_layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(x)  # (B, 2)
            if logits.ndim != 2 or logits.shape[0] != b:
                raise ValueError(f"model must return (B, n_classes) logits, got {tuple(logits.shape)}")
            model.zero_grad(set_to_none=True)
            logits[:, target_class].sum().backward()
    finally:
        handle.remove()
    if "act" not in store or "grad" not in store:
        raise ValueError("target layer was not used in the forward pass (or got no gradient)")
    act, grad = store["act"].detach(), store["grad"].detach()  # (B*T, K, h', w')
    if act.shape[0] != b * t:
        raise ValueError(f"target layer output has batch {act.shape[0]}, expected B*T = {b * t}: pick a per-frame layer")
    weights = grad.mean(dim=(2, 3), keepdim=True)  # (B*T, K, 1, 1)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))  # (B*T, 1, h', w')
    cam = F.interpolate(cam.float(), size=(h, w), mode="bilinear", align_corners=False)
    cam = cam.reshape(b, t, h, w)  # (B, T, H, W)
    dims = (2, 3) if normalize == "frame" else (1, 2, 3)
    lo = cam.amin(dim=dims, keepdim=True)
    hi = cam.amax(dim=dims, keepdim=True)
    cam = torch.where(hi > lo, (cam - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(cam))
    out = cam.cpu().numpy().astype(np.float32)
    return out[0] if (single or b == 1) else out


def _fold_test_items(run_dir, max_windows: int, score: bool = True):
    """The first fold's model, checkpoint data and evenly spread test windows with their ``p1``
    (None without ``score``)."""
    import torch

    from mouse_facial_expressions.data.datasets import fold_datasets
    from mouse_facial_expressions.training.module import load_model_from_checkpoint
    from mouse_facial_expressions.training.runs import fold_checkpoints

    fold, ckpt = fold_checkpoints(run_dir)[0]
    model, hp = load_model_from_checkpoint(ckpt)
    model.eval()
    d = hp.get("data") or {}
    ds = fold_datasets(d["task_dir"], int(d.get("fold", fold)), num_frames=d["num_frames"],
                       frame_stride=d["frame_stride"], image_size=d["image_size"],
                       train_augmentation=False)["test"]
    idx = np.unique(np.linspace(0, len(ds) - 1, min(len(ds), max_windows)).round().astype(int))
    items = [ds[int(i)] for i in idx]
    if not score:
        return model, d, ds, idx, items, None
    with torch.no_grad():
        p1 = np.concatenate([
            torch.softmax(model(torch.stack([it["clip"] for it in items[k:k + 16]]).float()), 1)[:, 1].numpy()
            for k in range(0, len(items), 16)
        ])
    return model, d, ds, idx, items, p1


def run_saliency_examples(run_dir, n_per_class: int = 2, max_windows: int = 400) -> list[dict]:
    """Grad-CAM examples from a training run, for the report.

    Takes the first fold's selected checkpoint, the test windows of that fold (animals the
    model never saw), and for each class the ``n_per_class`` windows the model scores most
    confidently as that class. The maps come from the last convolution with at least 8 x 8
    cells (:func:`feature_layer`). Returns items for :func:`report.figures.saliency_figure`.

    Raises:
        FileNotFoundError: the run has no checkpoint, or its task / frame store is gone.
    """
    model, d, _, _, items, p1 = _fold_test_items(run_dir, max_windows)
    mean, std = float(d["norm_mean"][0]), float(d["norm_std"][0])
    layer = feature_layer(model, tuple(items[0]["clip"].shape))
    out = []
    for label in (0, 1):
        cand = [k for k, it in enumerate(items) if int(it["label"]) == label]
        # most confident for the true class first: what the model relies on when it is sure
        cand.sort(key=lambda k: p1[k] if label == 1 else -p1[k], reverse=True)
        for k in cand[:n_per_class]:
            it = items[k]
            heat = grad_cam(model, it["clip"], layer, target_class=1)
            grey = (it["clip"][:, 0].numpy() * std + mean).clip(0, 1)  # (T, H, W) back to [0, 1]
            out.append({"frames": grey, "heatmaps": heat,
                        "title": f"{it['video']}\nt={it['start_time']:.1f} s\nlabel {label}, p1 {p1[k]:.2f}"})
    return out


def run_region_importance(run_dir, class_names=("class 0", "class 1"), per_class: int = 48, n_boot: int = 1000):
    """:func:`inference.occlusion.region_importance` on the first fold's test windows (up to
    ``per_class`` of each class), with the crop-space landmarks from the task's frame table."""
    from pathlib import Path

    import pandas as pd

    from mouse_facial_expressions.inference.occlusion import region_importance

    model, d, ds, idx, items, _ = _fold_test_items(run_dir, 4 * per_class, score=False)
    frames = pd.read_parquet(Path(d["task_dir"]) / TaskFiles.FRAMES).set_index(["video", "row"])
    store_side = _store_side(d["task_dir"])
    scale = items[0]["clip"].shape[-1] / store_side
    picked = {0: [], 1: []}
    for k, it in zip(idx, items):
        y = int(it["label"])
        if len(picked[y]) < per_class:
            picked[y].append((int(k), it))
    clips, points, labels = [], [], []
    for y in (0, 1):
        for k, it in picked[y]:
            w = ds.windows.iloc[k]
            rows = frames.loc[[(str(w["video"]), int(r)) for r in w["rows"]]]
            points.append({role: rows[[f"{role}_x", f"{role}_y"]].to_numpy(np.float32) * scale for role in ("eye", "ear", "nose")
                           if f"{role}_x" in rows})
            clips.append(it["clip"])
            labels.append(y)
    return region_importance(model, clips, points, np.asarray(labels), class_names, n_boot=n_boot)


def _store_side(task_dir) -> int:
    """The crop side of the frame store a task was made from (``store.json`` ``out_size``)."""
    from pathlib import Path

    from mouse_facial_expressions.preprocess.store import read_store_json
    from mouse_facial_expressions.training.domain import task_frames_dir

    fdir = task_frames_dir(Path(task_dir))
    stored = read_store_json(fdir) if fdir is not None else None
    if not stored or "out_size" not in stored:
        raise FileNotFoundError(f"{task_dir}: the frame store's store.json (crop size) is not reachable")
    return int(stored["out_size"])
