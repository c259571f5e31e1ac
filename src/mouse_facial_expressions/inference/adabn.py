"""AdaBN: a model's BatchNorm statistics recomputed on a new cohort's crops, without labels.

BatchNorm layers normalise each channel with running statistics (mean, variance) collected on
the training crops. A new cohort's recording conditions (light, camera, contrast) shift those
activations, and a shift early in the backbone moves every score: the ranking can survive
while the operating point does not. AdaBN (Li et al. 2016, "Revisiting batch normalization
for practical domain adaptation") replaces the running statistics by the new cohort's: the
statistics are reset and recomputed as a cumulative average (``momentum=None``) over forward
passes of the new cohort's clips, with only the BatchNorm layers in training mode (dropout
and everything else stay in eval mode) and no gradients. No weight changes and no label is
used; what it assumes is that the new cohort's crops, taken together, differ from the
training crops in their channel statistics only (and that the cohort is not, say, all sick
animals whose face differences the statistics would then absorb: a mix like the training
cohort's is safest).

``mfe evaluate RUN --task X --recalibrate adabn`` recomputes the statistics per recording
cohort (:func:`predict_task_adabn`): a task pooled from set-ups with different light and cameras
has no one set of statistics that fits them all (one such task reached animal accuracy 0.880
with pooled statistics, 1.000 per set-up). A group too small for statistics of its own
(fewer than :data:`MIN_GROUP_ANIMALS` animals or :data:`MIN_GROUP_WINDOWS` windows) gets the
whole task's, and which each group got is recorded.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path

import pandas as pd
import torch

from mouse_facial_expressions.inference.ensemble import FoldEnsemble

_BN = torch.nn.modules.batchnorm._BatchNorm

#: Fewest animals a recording cohort needs for BatchNorm statistics of its own. With one animal the
#: set-up and the animal are the same thing: its own statistics would normalise away its face's
#: difference from the training mean, which is its signal. Two animals already average over faces.
MIN_GROUP_ANIMALS = 2
#: Fewest windows a recording cohort needs: one default scoring batch (16 clips). Fewer clips rest
#: the statistics on a few seconds of video; the whole task's are then the better estimate.
MIN_GROUP_WINDOWS = 16
#: The group of windows whose videos carry no value in the grouping column.
NO_GROUP = "(none)"


def bn_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The BatchNorm layers of a model that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]


@torch.no_grad()
def adapt_models(models: list[torch.nn.Module], batches: Iterable[torch.Tensor]) -> tuple[list[torch.nn.Module], dict]:
    """Copies of ``models`` with BatchNorm statistics recomputed on ``batches``.

    Args:
        models: the models (left unchanged).
        batches: input batches (for the clip models ``(B, T, C, H, W)`` float32 normalised
            clips, as scoring feeds them); iterated once, every batch goes through every model.
            Batches of one clip are fine for 2-D BatchNorm (it averages over frames and pixels).

    Returns:
        ``(adapted models in eval mode, info)``; ``info``: ``n_batches``, ``n_clips`` and
        ``bn_layers`` (per model). Only ``running_mean``, ``running_var`` and
        ``num_batches_tracked`` differ from the originals.

    Raises:
        ValueError: ``batches`` was empty.
    """
    from mouse_facial_expressions.training.callbacks import recompute_batchnorm  # update_bn, for some layers only

    adapted = [copy.deepcopy(m) for m in models]
    layers = [bn_layers(m) for m in adapted]
    for m in adapted:
        m.eval()  # dropout off, everything in inference mode but BatchNorm, which collects statistics
    count = {"batches": 0, "clips": 0}

    def counted():
        for clips in batches:
            count["batches"] += 1
            count["clips"] += int(len(clips))
            yield clips

    def forward(clips: torch.Tensor) -> None:  # every batch through every model: batches are read once
        for m in adapted:
            param = next(m.parameters(), None)
            x = clips.to(param.device if param is not None else clips.device, torch.float32)
            m.encode(x)  # the face model: every BatchNorm layer is in it

    recompute_batchnorm([bn for bns in layers for bn in bns], forward, counted())
    if count["batches"] == 0:
        raise ValueError("adabn: no clips to recompute the BatchNorm statistics from")
    return adapted, {"n_batches": count["batches"], "n_clips": count["clips"], "bn_layers": [len(b) for b in layers]}


def adapt_ensemble(ens: FoldEnsemble, batches: Iterable[torch.Tensor]) -> tuple[FoldEnsemble, dict]:
    """A :class:`FoldEnsemble` of adapted copies of ``ens``'s members (:func:`adapt_models`);
    ``ens`` is left as it was."""
    models, info = adapt_models(ens.models, batches)
    adapted = FoldEnsemble(models, ens.hparams, list(ens.names), source=ens.source, dtype=ens.dtype)
    if not any(info["bn_layers"]):
        info["note"] = "the model has no BatchNorm layers: adabn changes nothing"
    return adapted, info


def plan_groups(windows: pd.DataFrame, group_of_video: Mapping[str, object] | None, *,
                min_animals: int = MIN_GROUP_ANIMALS, min_windows: int = MIN_GROUP_WINDOWS) -> pd.DataFrame:
    """Which statistics each recording cohort gets: its own, or the whole task's.

    Args:
        windows: the windows to be scored (``video``, ``animal``).
        group_of_video: video -> group (e.g. its ``cohort``); None: one group, the whole task.
        min_animals, min_windows: the fewest a group needs for statistics of its own.

    Returns:
        One row per group (sorted): ``group, n_animals, n_windows, statistics`` (``"own"`` or
        ``"task"``) and ``reason`` (why ``"task"``; empty for ``"own"``).
    """
    if group_of_video is None:
        return pd.DataFrame([{"group": "(whole task)", "n_animals": int(windows["animal"].nunique()),
                              "n_windows": len(windows), "statistics": "task", "reason": "no grouping column"}])
    groups = windows["video"].astype(str).map(lambda v: group_of_video.get(v)).map(
        lambda g: NO_GROUP if g is None or (isinstance(g, float) and g != g) else str(g))
    rows = []
    for name, part in windows.groupby(groups, sort=True):
        n_animals, n_windows = int(part["animal"].nunique()), len(part)
        if name == NO_GROUP:
            reason = "no value in the grouping column"
        elif groups.nunique() == 1:
            reason = "the only group: its statistics are the whole task's"
        elif n_animals < min_animals:
            reason = f"{n_animals} animal(s) < {min_animals}"
        elif n_windows < min_windows:
            reason = f"{n_windows} windows < {min_windows}"
        else:
            reason = ""
        rows.append({"group": str(name), "n_animals": n_animals, "n_windows": n_windows,
                     "statistics": "task" if reason else "own", "reason": reason})
    return pd.DataFrame(rows)


def adapt_groups(models: list[torch.nn.Module], batches_of: Mapping[str, Callable[[], Iterable[torch.Tensor]]],
                 own: Collection[str]) -> tuple[dict[str, list[torch.nn.Module]], dict]:
    """Per group, copies of ``models`` adapted (:func:`adapt_models`) on that group's batches
    (groups in ``own``), or one shared set adapted on every group's batches together (the others).

    Args:
        batches_of: group -> a function giving its batches (called once per adaptation).
        own: the groups that get statistics of their own.

    Returns:
        ``(group -> adapted models, info)``; ``info``: ``n_clips`` and ``bn_layers`` as in
        :func:`adapt_models`, ``n_clips_by_group`` (own groups and ``"(whole task)"``).
    """
    adapted: dict[str, list[torch.nn.Module]] = {}
    info: dict = {"n_clips_by_group": {}}
    for g in batches_of:
        if g in own:
            adapted[g], got = adapt_models(models, batches_of[g]())
            info["n_clips_by_group"][g] = got["n_clips"]
    shared = [g for g in batches_of if g not in own]
    if shared:
        pooled, got = adapt_models(models, itertools.chain.from_iterable(f() for f in batches_of.values()))
        info["n_clips_by_group"]["(whole task)"] = got["n_clips"]
        adapted.update({g: pooled for g in shared})
    info["bn_layers"] = [len(bn_layers(m)) for m in models]
    return adapted, info


def predict_task_adabn(ens: FoldEnsemble, task_dir: str | Path, group_of_video: Mapping[str, object] | None = None, *,
                       window_step: int | None = None, batch_size: int = 16, min_animals: int = MIN_GROUP_ANIMALS,
                       min_windows: int = MIN_GROUP_WINDOWS) -> tuple[pd.DataFrame, dict]:
    """``--recalibrate adabn``: score a task with BatchNorm statistics recomputed per recording cohort.

    Each group of videos (``group_of_video``; None: the whole task) large enough
    (:func:`plan_groups`) is scored by copies of the ensemble adapted on its own clips; the
    others by copies adapted on the whole task's clips.

    Returns:
        ``(predictions as inference.zeroshot.predict_task gives them, in its window order; info)``
        with ``info["groups"]``: the plan's rows (which statistics each group got).
    """
    from mouse_facial_expressions.inference.zeroshot import predict_task, task_clips, task_windows

    _, _, windows = task_windows(ens, task_dir, window_step)
    plan = plan_groups(windows, group_of_video, min_animals=min_animals, min_windows=min_windows)
    if group_of_video is None:
        videos_of = {plan["group"].iloc[0]: None}
    else:
        video_group = windows["video"].astype(str).map(lambda v: group_of_video.get(v))
        key = video_group.map(lambda g: NO_GROUP if g is None or (isinstance(g, float) and g != g) else str(g))
        videos_of = {g: sorted(set(windows.loc[key == g, "video"].astype(str))) for g in plan["group"]}
    batches_of = {g: (lambda v=v: task_clips(ens, task_dir, window_step=window_step, batch_size=batch_size, videos=v))
                  for g, v in videos_of.items()}
    own = set(plan.loc[plan["statistics"] == "own", "group"])
    models_of, info = adapt_groups(ens.models, batches_of, own)
    parts = []
    for g, v in videos_of.items():
        adapted = FoldEnsemble(models_of[g], ens.hparams, list(ens.names), source=ens.source, dtype=ens.dtype)
        parts.append(predict_task(adapted, task_dir, window_step=window_step, batch_size=batch_size, videos=v))
    pred = pd.concat(parts, ignore_index=True)
    order = {(str(v), float(t)): i for i, (v, t) in enumerate(zip(windows["video"], windows["start_time"]))}
    rank = [order.get((str(v), float(t)), len(order)) for v, t in zip(pred["video"], pred["start_time"])]
    pred = pred.iloc[pd.Series(rank).argsort(kind="stable").to_numpy()]  # the whole task's window order
    info.update(groups=plan.to_dict(orient="records"), n_clips=len(windows))
    if not any(info["bn_layers"]):
        info["note"] = "the model has no BatchNorm layers: adabn changes nothing"
    return pred.reset_index(drop=True), info
