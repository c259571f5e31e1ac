"""Weak supervision: labels belong to videos, not windows (``mfe train --weak em|attention``).

A sick mouse does not grimace every second: in a video labelled 1 only some windows show
the affected state (multiple-instance learning: a positive video holds some positive
windows, a negative video none). ``--weak em`` trains on per-window targets that are
re-estimated from the model itself, expectation-maximisation style:

* start: every training window gets its video's soft label (what plain training uses);
* E-step (:func:`estep_posteriors`, at the start of every ``weak_every``-th epoch from epoch 1
  on, :class:`EStep`): the current model, in eval mode and without augmentation, scores the
  windows of the *training* animals' positive videos (validation and test animals are never
  scored here; they select and test the checkpoint as usual). Each window's posterior of being
  in the affected state, given its video's label:

  - a window of a negative video: 0 (a negative video holds no positive window);
  - a window of a positive video: ``q_i = clip(c * s_i, 0, 1)`` with ``s_i`` the model's p1,
    except the top-scoring window, whose ``q`` is 1 (a positive video holds at least one
    positive window). ``c`` is solved (bisection) so the video's mean posterior equals the
    prior ``weak_fraction`` (default 0.3: the expected fraction of a sick video's time spent
    in the affected state), or 1/n when that is more (the top window alone);

* M-step: ordinary training epochs on these posteriors as soft targets ``[1 - q, q]`` with the
  LDL loss (``use_soft_labels`` is forced on; the ``baseline`` model, whose own loss ignores
  soft targets, is trained with LDL on its logits).

The prior and the constraint: a positive video's windows are positive with expected
fraction ``weak_fraction``; the scores only decide *which* windows carry that mass. The
E-step is deterministic (no sampling; ties go to the earlier window).

``weak_posterior: bayes`` (``--weak-posterior bayes``) reads the scores as what they estimate
instead of rescaling them. A model trained on the videos' labels with classes balanced (the
default sampler) estimates ``s = P(positive video | window)``. If a positive video's windows
are affected with probability ``pi = weak_fraction`` (density ``p_a``) and otherwise look like a
negative video's (``p_n``), then ``s / (1 - s) = pi p_a / p_n + (1 - pi)``, and the posterior
of the affected state in a positive video is::

    q = pi p_a / (pi p_a + (1 - pi) p_n) = 1 - (1 - pi) (1 - s) / s      (clipped to 0..1)

A window scored like a negative video's (``s = 1 - pi / 2`` ... down) gets 0, one only positive
videos show (``s -> 1``) gets 1; the top window of each positive video is still set to 1 (at
least one positive window). No rescaling to a fixed mass: the video's posterior mass follows
the scores. The windows of negative videos stay 0.

Cost: on a real loader (training windows at every start position) only every ``stride``-th
window of a positive video is scored (``stride``: half the window span in cv.py, so scored
windows still overlap); the others take the posterior of the nearest scored window of the
same video (by start time). The constraint holds on the scored windows.

Workers: the soft targets live in one shared-memory tensor (``dataset._soft`` is replaced by
it before any DataLoader worker starts), so persistent workers see each E-step's targets
without being restarted. Resume: the tensor is part of the callback's state in ``last.ckpt``,
so a resumed fold trains on the posteriors it had (an E-step epoch recomputes them from the
restored weights, as the uninterrupted run did).

``--weak attention`` (the comparison baseline): no E-step; the model's attention-pooling part
(:class:`~mouse_facial_expressions.models.parts.attention.AttentionPool`) is trained on bags of ``weak_bag``
windows of one training video (:class:`BagDataset`) against the video's label, pooling the
windows' embeddings with learned attention. The training budget is kept in clips: an epoch
holds ``1 / weak_bag`` as many bags as the plain epoch holds windows (:class:`BagSampler`), and
a batch ``train_batch_size // weak_bag`` bags (at least 2).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from tqdm.auto import tqdm

from mouse_facial_expressions.compat import import_torchvision

import_torchvision()  # before lightning

import lightning.pytorch as pl  # noqa: E402

#: ``--weak`` methods.
WEAK_METHODS = ("em", "attention")
#: Expected fraction of a positive video's windows in the affected state (the E-step's prior).
DEFAULT_FRACTION = 0.3
#: ``weak_posterior`` choices: how the E-step turns scores into posteriors.
POSTERIORS = ("scaled", "bayes")
from mouse_facial_expressions.data.bags import DEFAULT_BAG, BagDataset, BagSampler  # noqa: E402,F401  (re-exported)


def _scale_to_mass(s: np.ndarray, mass: float, iters: int = 80) -> np.ndarray:
    """``clip(c * s, 0, 1)`` with ``c`` such that the sum is ``mass`` (``0 <= mass <= len(s)``)."""
    n = len(s)
    if n == 0 or mass <= 0:
        return np.zeros(n)
    if mass >= n:
        return np.ones(n)
    s = np.maximum(np.asarray(s, dtype=np.float64), 1e-6)
    lo, hi = 0.0, 1.0 / s.min()  # hi: every window at 1 (sum n >= mass)
    for _ in range(iters):
        mid = (lo + hi) / 2
        if np.clip(mid * s, 0, 1).sum() < mass:
            lo = mid
        else:
            hi = mid
    return np.clip(hi * s, 0, 1)


def bayes_posterior(s, fraction: float) -> np.ndarray:
    """``1 - (1 - pi) (1 - s) / s`` clipped to 0..1: the affected state's posterior in a positive
    video from a balanced video-label score ``s`` and the prior ``pi`` (module docstring)."""
    s = np.clip(np.asarray(s, dtype=np.float64), 1e-6, 1.0)
    return np.clip(1.0 - (1.0 - fraction) * (1.0 - s) / s, 0.0, 1.0)


def estep_posteriors(scores, videos, labels, fraction: float = DEFAULT_FRACTION, posterior: str = "scaled") -> np.ndarray:
    """Each window's posterior of the affected state given its video's label and the scores.

    Args:
        scores: the model's p1 per window ``(W,)`` (only positive videos' are read).
        videos: video id per window ``(W,)``.
        labels: the video's label per window ``(W,)`` (0/1, or a soft label: > 0.5 = positive).
        fraction: the prior: expected fraction of a positive video's windows that are positive.
        posterior: ``scaled`` (below) or ``bayes`` (:func:`bayes_posterior`, the top window 1).

    Returns:
        ``(W,)`` float32: 0 for negative videos' windows; for a positive video of ``n`` windows,
        ``clip(c * s, 0, 1)`` with the top-scoring window at 1 and ``c`` chosen so the video's
        mean posterior is ``max(fraction, 1 / n)``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    videos = np.asarray(videos).astype(str)
    positive = np.asarray(labels, dtype=np.float64) > 0.5
    if not 0 < fraction <= 1:
        raise ValueError(f"weak_fraction={fraction} must be in (0, 1]")
    if posterior not in POSTERIORS:
        raise ValueError(f"weak_posterior={posterior!r}: choose from {', '.join(POSTERIORS)}")
    q = np.zeros(len(scores), dtype=np.float64)
    for v in np.unique(videos[positive]):
        idx = np.flatnonzero((videos == v) & positive)
        s = scores[idx]
        top = int(np.argmax(s))  # first of ties
        if posterior == "bayes":
            out = bayes_posterior(s, fraction)
            out[top] = 1.0
            q[idx] = out
            continue
        mass = max(fraction * len(idx), 1.0)
        rest = np.delete(np.arange(len(idx)), top)
        out = np.empty(len(idx))
        out[top] = 1.0
        out[rest] = _scale_to_mass(s[rest], mass - 1.0)
        q[idx] = out
    return q.astype(np.float32)


def posterior_summary(q, videos, labels) -> dict:
    """``weak_mean`` (mean posterior over positive videos' windows), ``weak_pos_frac`` (mean over
    positive videos of the fraction of windows with posterior > 0.5), ``weak_videos``."""
    q, videos = np.asarray(q, dtype=np.float64), np.asarray(videos).astype(str)
    positive = np.asarray(labels, dtype=np.float64) > 0.5
    vids = np.unique(videos[positive])
    if not len(vids):
        return {"weak_mean": float("nan"), "weak_pos_frac": float("nan"), "weak_videos": 0}
    frac = [float((q[(videos == v) & positive] > 0.5).mean()) for v in vids]
    return {"weak_mean": float(q[positive].mean()), "weak_pos_frac": float(np.mean(frac)), "weak_videos": int(len(vids))}


def _scored_subset(videos: np.ndarray, starts: np.ndarray, idx: np.ndarray, stride: int) -> np.ndarray:
    """Every ``stride``-th window (by start time) of each video among ``idx``."""
    if stride <= 1:
        return idx
    keep = []
    for v in np.unique(videos[idx]):
        members = idx[videos[idx] == v]
        members = members[np.argsort(starts[members], kind="stable")]
        keep.append(members[::stride])
    return np.sort(np.concatenate(keep)) if keep else idx


def _nearest_fill(values: np.ndarray, scored: np.ndarray, targets: np.ndarray, videos, starts) -> np.ndarray:
    """Posterior of each window in ``targets``: that of the nearest scored window of its video."""
    out = np.zeros(len(targets), dtype=np.float32)
    by_video = {}
    for k, i in enumerate(scored):
        by_video.setdefault(videos[i], []).append(k)
    for v, ks in by_video.items():
        ks = np.asarray(ks)
        order = ks[np.argsort(starts[scored[ks]], kind="stable")]
        st = starts[scored[order]]
        sel = np.flatnonzero(videos[targets] == v)
        t = starts[targets[sel]]
        pos = np.clip(np.searchsorted(st, t), 1, len(st) - 1) if len(st) > 1 else np.zeros(len(t), int)
        if len(st) > 1:
            left_closer = (t - st[pos - 1]) <= (st[pos] - t)
            pos = np.where(left_closer, pos - 1, pos)
        out[sel] = values[order[pos]]
    return out


class EStep(pl.Callback):
    """The E-step of ``--weak em`` on the training dataset (see the module docstring).

    Args:
        dataset: the training dataset (``ClipDataset`` or one with ``_soft``, ``_video``,
            ``labels`` and, optionally, ``_start`` and ``augment``). Its ``_soft`` becomes a
            shared-memory tensor that this callback rewrites.
        fraction: the prior ``weak_fraction``.
        every: E-step at epochs ``start, start + every, ...``.
        start: the first E-step's epoch (>= 1; never at epoch 0: the model has not learned yet;
            until then the targets are the videos' labels).
        batch_size: windows per scoring batch.
        stride: score every ``stride``-th window of a positive video (1: all).
        fold: for the log line.
    """

    def __init__(self, dataset, fraction: float = DEFAULT_FRACTION, every: int = 1, batch_size: int = 32,
                 stride: int = 1, fold: int | None = None, start: int = 1, posterior: str = "scaled"):
        if every < 1:
            raise ValueError(f"weak_every={every} must be >= 1")
        if start < 1:
            raise ValueError(f"weak_start={start} must be >= 1 (epoch 0 trains on the videos' labels)")
        self.start = int(start)
        if posterior not in POSTERIORS:
            raise ValueError(f"weak_posterior={posterior!r}: choose from {', '.join(POSTERIORS)}")
        self.posterior = posterior
        self.dataset, self.fraction, self.every = dataset, float(fraction), int(every)
        self.batch_size, self.stride, self.fold = int(batch_size), max(1, int(stride)), fold
        self.videos = np.asarray(dataset._video).astype(str)
        self.labels = np.asarray(dataset.labels)
        self.starts = np.asarray(getattr(dataset, "_start", np.zeros(len(self.videos))), dtype=np.float64)
        soft = torch.as_tensor(np.asarray(dataset._soft, dtype=np.float32)).clone().share_memory_()
        dataset._soft = soft  # before any worker starts: workers (persistent or not) read this memory
        self.soft = soft
        self.last_epoch = -1  # epoch of the last E-step (-1: none; the videos' labels)
        self.scored_animals: set[str] = set()  # every animal this callback ever scored (tests)
        self.summaries: dict[int, dict] = {}

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"soft": self.soft.clone(), "last_epoch": int(self.last_epoch),
                "summaries": {str(k): v for k, v in self.summaries.items()}}

    def load_state_dict(self, state: dict) -> None:
        soft = torch.as_tensor(state["soft"], dtype=torch.float32)
        if soft.shape != self.soft.shape:
            raise ValueError(f"weak EM: the checkpoint holds {soft.shape[0]} training windows' posteriors, "
                             f"the fold has {self.soft.shape[0]} (the task changed?)")
        self.soft.copy_(soft)  # in place: the workers' shared memory
        self.last_epoch = int(state.get("last_epoch", -1))
        self.summaries = {int(k): dict(v) for k, v in (state.get("summaries") or {}).items()}

    # ----------------------------------------------------------------------------- E-step
    @torch.no_grad()
    def score(self, pl_module, idx: np.ndarray, trainer=None) -> np.ndarray:
        """p1 of the training windows ``idx``: eval mode, no augmentation, modes restored after."""
        from torch.utils.data import DataLoader, Subset

        from mouse_facial_expressions.data.datasets import collate_clips
        from mouse_facial_expressions.data.datasets import prepare_batch

        view = copy.copy(self.dataset)
        if hasattr(view, "augment"):
            view.augment = False
        loader = DataLoader(Subset(view, idx.tolist()), batch_size=self.batch_size, shuffle=False, num_workers=0,
                            collate_fn=collate_clips)
        modes = [(m, m.training) for m in pl_module.modules()]
        pl_module.eval()
        out = []
        ctx = trainer.precision_plugin.forward_context() if trainer is not None else torch.autocast("cpu", enabled=False)
        channels = getattr(pl_module, "in_channels", 3)
        try:
            for batch in loader:
                self.scored_animals.update(map(str, batch["animal"]))
                with ctx:  # every field the model's parts read (a fused model's features, a reference clip)
                    logits = pl_module.model.run(prepare_batch(batch, pl_module.device, channels)).logits
                out.append(torch.softmax(logits.float(), -1)[:, 1].cpu().numpy())
        finally:
            for m, training in modes:
                m.train(training)
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def estep(self, pl_module, trainer=None) -> dict:
        """Score the positive videos' windows and write the posteriors into the dataset."""
        positive = self.labels > 0.5
        pos_idx = np.flatnonzero(positive)
        scored = _scored_subset(self.videos, self.starts, pos_idx, self.stride)
        s = self.score(pl_module, scored, trainer)
        q_scored = estep_posteriors(s, self.videos[scored], self.labels[scored], self.fraction, self.posterior)
        q = np.zeros(len(self.videos), dtype=np.float32)
        q[pos_idx] = _nearest_fill(q_scored, scored, pos_idx, self.videos, self.starts)
        self.soft.copy_(torch.from_numpy(q))  # negatives: 0
        return posterior_summary(q, self.videos, self.labels)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        epoch = int(trainer.current_epoch)
        if epoch < self.start or (epoch - self.start) % self.every or epoch == self.last_epoch:
            return
        summary = self.estep(pl_module, trainer)
        self.last_epoch = epoch
        self.summaries[epoch] = summary
        if hasattr(pl_module, "history"):
            pl_module.history.setdefault(epoch, {}).update({k: float(v) for k, v in summary.items()})
        if trainer.is_global_zero:
            tqdm.write(f"fold {self.fold} epoch {epoch + 1}: E-step on {summary['weak_videos']} positive training videos: "
                       f"mean posterior {summary['weak_mean']:.3f}, windows > 0.5 per video {summary['weak_pos_frac']:.3f}")


def weak_callbacks(p, train_ds, fold: int) -> list:
    """The callbacks of ``p.weak``'s training strategy: ``em``: the E-step over the training animals'
    windows (any model, any heads: it rewrites the class targets ``soft``); others: none (``attention``
    is a model part, ``models.parts.attention``).

    The training windows start at every row (``fold_datasets``): only every half window span of a
    positive video is scored; the rest take the nearest scored window's posterior."""
    if p.weak != "em":
        return []
    if p.targets == "au":
        raise ValueError("--weak em re-estimates the class targets of windows, and --targets au has no class head: "
                         "use --targets au+class")
    from mouse_facial_expressions.data.sequences import window_span

    stride = max(1, window_span(p.num_frames or 1, p.frame_stride or 1) // 2) if hasattr(train_ds, "_rows") else 1
    return [EStep(train_ds, p.weak_fraction or DEFAULT_FRACTION, p.weak_every or 1, p.test_batch_size, stride, fold,
                  start=p.weak_start or 1, posterior=p.weak_posterior or "scaled")]
