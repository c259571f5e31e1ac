"""Report figures. Each function returns PNG bytes (matplotlib, Agg canvas, no pyplot state).

Inputs are the tables of :mod:`mouse_facial_expressions.evaluation` (columns ``label``, ``p1``,
``animal``, ``video``, ``start_time``, ``end_time`` and optional metadata such as ``cohort``).
Figures that show classes take ``class_names`` (the task's names of label 0 and label 1,
``results["class_names"]``), so axes and legends speak of "baseline" and "sick", not 0 and 1.
"""

from __future__ import annotations

import io
import textwrap

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mouse_facial_expressions.evaluation.animal_table import DEFAULT_CLASS_NAMES
from mouse_facial_expressions.evaluation.metrics import (
    THRESHOLD,
    auroc,
    confusion_matrix,
    reliability_curve,
    roc_curve,
)

LEVEL_COLORS = {"window": "#9e9e9e", "video": "#1f77b4", "animal": "#d62728"}
# Video and animal curves often coincide (one video per animal and label): draw the video one
# wide and solid, the animal one dashed on top, so both stay visible.
LEVEL_STYLE = {"window": dict(lw=1.5, ls="-"), "video": dict(lw=3.5, ls="-"), "animal": dict(lw=1.8, ls="--")}
LABEL_COLORS = {0: "#1f77b4", 1: "#d62728", None: "#7f7f7f"}
DPI = 100


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _names(class_names) -> tuple[str, str]:
    """``(name of label 0, name of label 1)``; the defaults when none are given."""
    neg, pos = (list(class_names) if class_names else list(DEFAULT_CLASS_NAMES))[:2]
    return str(neg), str(pos)


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["label"].notna()] if "label" in df.columns else df.iloc[:0]


def _no_data(fig: Figure, ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555")
    ax.set_axis_off()


def roc_figure(levels: dict[str, pd.DataFrame], class_names=None) -> bytes:
    """ROC curves, one per level, AUROC in the legend."""
    neg, pos = _names(class_names)
    fig = _figure(4.8, 4.4)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="#bbb", lw=1, label="chance")
    drawn = 0
    for name, df in levels.items():
        lab = _labelled(df)
        if lab["label"].nunique() < 2:
            continue
        fpr, tpr, _ = roc_curve(lab["label"], lab["p1"])
        a = auroc(lab["label"], lab["p1"])
        ax.step(fpr, tpr, where="post", color=LEVEL_COLORS.get(name), label=f"{name} (AUROC {a:.2f}, n={len(lab)})",
                **LEVEL_STYLE.get(name, {}))
        drawn += 1
    if not drawn:
        _no_data(fig, ax, "ROC needs both classes")
        return _png(fig)
    ax.set(xlabel=f"false positive rate (1 - specificity):\n{neg} called {pos}",
           ylabel=f"true positive rate (sensitivity):\n{pos} called {pos}", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_aspect("equal")
    return _png(fig)


def confusion_figure(levels: dict[str, pd.DataFrame], threshold: float = THRESHOLD, class_names=None) -> bytes:
    """Confusion matrices side by side, one per level (counts and row percentages); rows are
    the true class, columns the class called, both in the task's class names."""
    neg, pos = _names(class_names)
    names = [n for n, df in levels.items() if len(_labelled(df))]
    fig = _figure(3.3 * max(len(names), 1), 3.3)
    if not names:
        _no_data(fig, fig.add_subplot(), "no labelled predictions")
        return _png(fig)
    for i, name in enumerate(names):
        lab = _labelled(levels[name])
        cm = confusion_matrix(lab["label"], (lab["p1"] >= threshold).astype(int))
        frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax = fig.add_subplot(1, len(names), i + 1)
        ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(cm):
            ax.text(c, r, f"{v}\n({100 * frac[r, c]:.0f}%)", ha="center", va="center", color="white" if frac[r, c] > 0.6 else "black", fontsize=10)
        ticks = [textwrap.fill(n, 16, break_on_hyphens=False) for n in (neg, pos)]  # long names on two lines
        ax.set_xticks([0, 1], ticks, fontsize=8)
        ax.set_yticks([0, 1], ticks, fontsize=8, rotation=90, va="center")
        ax.set(xlabel="called", ylabel="true class" if i == 0 else "")
        ax.set_title(f"{name} (n={cm.sum()})", fontsize=10)
    return _png(fig)


def calibration_figure(levels: dict[str, pd.DataFrame], n_bins: int = 10, class_names=None) -> bytes:
    """Reliability curves (observed fraction positive vs mean predicted p1) and a p1 histogram."""
    _, pos = _names(class_names)
    fig = _figure(4.8, 5.6)
    gs = fig.add_gridspec(2, 1, height_ratios=[3, 1], hspace=0.08)
    ax = fig.add_subplot(gs[0])
    hist = fig.add_subplot(gs[1], sharex=ax)
    ax.plot([0, 1], [0, 1], ls="--", color="#bbb", lw=1, label="perfect calibration")
    for name, df in levels.items():
        lab = _labelled(df)
        if lab.empty:
            continue
        curve = reliability_curve(lab["label"], lab["p1"], n_bins)
        ax.plot(curve["mean_p"], curve["frac_pos"], marker="o", color=LEVEL_COLORS.get(name), label=f"{name} (n={len(lab)})",
                ms=4, **LEVEL_STYLE.get(name, {}))
        hist.hist(lab["p1"], bins=np.linspace(0, 1, n_bins + 1), color=LEVEL_COLORS.get(name), histtype="step",
                  density=True, **LEVEL_STYLE.get(name, {}))
    ax.set(ylabel=f"observed fraction: {pos}", xlim=(0, 1), ylim=(-0.02, 1.02), title="Calibration (reliability)")
    ax.tick_params(labelbottom=False)
    ax.legend(loc="upper left", fontsize=8)
    hist.set(xlabel=f"predicted probability of {pos} (p1)", ylabel="density")
    hist.set_yticks([])
    return _png(fig)


def animal_strip_figure(animals: pd.DataFrame, threshold: float = THRESHOLD, color_by: str = "cohort", seed: int = 0,
                        class_names=None) -> bytes:
    """One dot per animal (and label): its mean p1, by condition (the class names), coloured by cohort."""
    neg, pos = _names(class_names)
    df = animals.copy()
    if df["label"].notna().any():
        df["condition"] = df["label"].map({0.0: neg, 1.0: pos}).fillna("unlabelled")
    elif "treatment" in df.columns:
        df["condition"] = df["treatment"].astype(str)
    else:
        df["condition"] = "all animals"
    order = {neg: 0, pos: 1, "unlabelled": 2}  # label 0 first, whatever the names sort as
    conds = sorted(df["condition"].unique(), key=lambda c: (order.get(c, 3), c))
    fig = _figure(max(4.0, 1.9 * len(conds) + 1.8), 4.2)
    ax = fig.add_subplot()
    rng = np.random.default_rng(seed)
    groups = sorted(df[color_by].astype(str).unique()) if color_by in df.columns else ["all"]
    palette = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    for i, cond in enumerate(conds):
        part = df[df["condition"] == cond]
        x = i + rng.uniform(-0.18, 0.18, len(part))
        colors = [palette[str(g)] for g in part[color_by]] if color_by in df.columns else "C0"
        ax.scatter(x, part["p1"], c=colors, s=36, edgecolor="k", lw=0.5, zorder=3)
        ax.hlines(part["p1"].median(), i - 0.3, i + 0.3, color="k", lw=2, zorder=4)
        if len(part) <= 16:
            for xi, (_, r) in zip(x, part.iterrows()):
                ax.annotate(str(r["animal"]), (xi, r["p1"]), fontsize=6, xytext=(4, 0), textcoords="offset points", va="center", color="#444")
    ax.axhline(threshold, ls="--", color="#888", lw=1)
    ax.set_xticks(range(len(conds)), [textwrap.fill(c, 20, break_on_hyphens=False) for c in conds])
    ax.set(ylim=(-0.03, 1.03), xlim=(-0.6, len(conds) - 0.4), ylabel="animal score (mean p1)", title="Per-animal scores (bar = median)")
    if color_by in df.columns:
        for g in groups:
            ax.scatter([], [], c=palette[g], edgecolor="k", lw=0.5, label=f"{color_by} {g}")
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _png(fig)


def _pick_videos(videos: pd.DataFrame, max_videos: int) -> list[str]:
    v = videos.sort_values(["label", "animal", "video"], na_position="last")
    if len(v) <= max_videos:
        return v["video"].tolist()
    take = np.linspace(0, len(v) - 1, max_videos).round().astype(int)
    return v["video"].iloc[np.unique(take)].tolist()


def timecourse_figure(windows: pd.DataFrame, max_videos: int = 12, threshold: float = THRESHOLD, ncols: int = 4,
                      class_names=None) -> bytes:
    """Small multiples: p1 of each window over its start time, one panel per video (its class
    name in the title)."""
    names = _names(class_names)
    vids = windows.groupby("video", as_index=False).agg(label=("label", "first"), animal=("animal", "first"))
    videos = _pick_videos(vids, max_videos)
    ncols = min(ncols, len(videos))
    nrows = int(np.ceil(len(videos) / ncols))
    fig = _figure(3.2 * ncols, 2.2 * nrows + 0.3)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    for ax in axes.ravel()[len(videos):]:
        ax.set_axis_off()
    for ax, name in zip(axes.ravel(), videos):
        w = windows[windows["video"] == name].sort_values("start_time")
        lab = w["label"].iloc[0]
        color = LABEL_COLORS[None if pd.isna(lab) else int(lab)]
        ax.scatter(w["start_time"], w["p1"], s=6, color=color, alpha=0.5, lw=0)
        if len(w) >= 3:
            k = max(3, len(w) // 10)
            ax.plot(w["start_time"], w["p1"].rolling(k, center=True, min_periods=1).mean(), color=color, lw=1.8)
        ax.axhline(threshold, ls="--", color="#999", lw=0.8)
        tag = "" if pd.isna(lab) else f"  [{names[int(lab)]}]"
        ax.set_title(f"{name}{tag}", fontsize=8)
        ax.set_ylim(-0.03, 1.03)
        ax.tick_params(labelsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("p1", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("window start (s)", fontsize=8)
    fig.subplots_adjust(hspace=0.55, wspace=0.08)
    return _png(fig)


def cohort_figure(animals: pd.DataFrame, cohort: str = "cohort", threshold: float = THRESHOLD, seed: int = 0,
                  flagged: list[str] | None = None, class_names=None) -> bytes:
    """Control animals' scores per cohort: the animals the batch-effect check looks at
    (label 0; unlabelled: control treatments; failing both: all animals). Cohorts in
    ``flagged`` (the check's verdict) have their positive rate in red."""
    from mouse_facial_expressions.evaluation.batch_effects import control_mask

    if cohort not in animals.columns or animals[cohort].isna().all():
        fig = _figure(3.5, 3.6)
        _no_data(fig, fig.add_subplot(), f"no {cohort!r} column")
        return _png(fig)
    df = animals[animals[cohort].notna()]
    mask, how = control_mask(df)
    df = df[mask]
    neg, pos = _names(class_names)
    who = {"label": f"controls ({neg})", "treatment": "control-treated animals", "all": "all animals"}[how]
    cohorts = sorted(df[cohort].astype(str).unique())
    fig = _figure(max(3.5, 1.3 * len(cohorts) + 1.5), 3.6)
    ax = fig.add_subplot()
    rng = np.random.default_rng(seed)
    for i, c in enumerate(cohorts):
        p = df.loc[df[cohort].astype(str) == c, "p1"].to_numpy()
        rate = np.mean(p >= threshold)
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(p)), p, s=30, color=f"C{i % 10}", edgecolor="k", lw=0.5, zorder=3)
        ax.hlines(p.mean(), i - 0.3, i + 0.3, color="k", lw=2)
        ax.text(i, 1.06, f"{100 * rate:.0f}%", ha="center", fontsize=8, color="#b00" if c in set(map(str, flagged or [])) else "#333")
    ax.axhline(threshold, ls="--", color="#888", lw=1)
    ax.set_xticks(range(len(cohorts)), cohorts)
    ax.set(ylim=(-0.03, 1.12), xlim=(-0.6, len(cohorts) - 0.4), xlabel=f"{cohort} (above: % called {pos})",
           ylabel="animal score (mean p1)", title=f"Scores of {who} by {cohort} (bar = mean)")
    return _png(fig)


def overlay(frame: np.ndarray, heat: np.ndarray, alpha: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """RGB float image in [0, 1]: a grey (H, W) or RGB (H, W, 3) crop with a heatmap on top."""
    from matplotlib import colormaps

    f = np.asarray(frame, dtype=float)
    if f.max() > 1.0:
        f = f / 255.0
    if f.ndim == 2:
        f = np.repeat(f[..., None], 3, axis=2)
    if f.ndim == 3 and f.shape[0] in (1, 3) and f.shape[-1] not in (1, 3):  # (C, H, W)
        f = np.moveaxis(f, 0, -1)
        f = np.repeat(f, 3, axis=2) if f.shape[2] == 1 else f
    h = np.clip(np.asarray(heat, dtype=float), 0, 1)
    if h.shape != f.shape[:2]:
        raise ValueError(f"heatmap {h.shape} and frame {f.shape[:2]} differ in size")
    color = colormaps[cmap](h)[..., :3]
    a = alpha * h[..., None]  # stronger overlay where the map is hot, the face shows elsewhere
    return (1 - a) * f + a * color


def saliency_figure(items: list[dict], max_frames: int = 6, class_names=None) -> bytes:
    """Grid of crops with Grad-CAM overlays: one row per example, one column per frame.

    Args:
        items: dicts with ``frames`` ((T, H, W) grey or (T, H, W, 3)), ``heatmaps`` ((T, H, W)
            in [0, 1]) and a ``title`` (e.g. ``"m3_rec4 t=12.0 s p1=0.91"``).
    """
    if not items:
        fig = _figure(4, 1.5)
        _no_data(fig, fig.add_subplot(), "no saliency maps")
        return _png(fig)
    ncols = min(max_frames, max(len(it["frames"]) for it in items))
    fig = _figure(1.6 * ncols + 2.6, 1.75 * len(items) + 0.4)
    axes = fig.subplots(len(items), ncols, squeeze=False)
    for r, it in enumerate(items):
        frames, heats = it["frames"], it["heatmaps"]
        idx = np.linspace(0, len(frames) - 1, min(ncols, len(frames))).round().astype(int)
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(idx):
                ax.set_axis_off()
                continue
            ax.imshow(overlay(frames[idx[c]], heats[idx[c]]))
            if c == 0:
                ax.set_ylabel(it.get("title", ""), fontsize=8, rotation=0, ha="right", va="center", labelpad=6)
            if r == 0:
                ax.set_title(f"frame {idx[c]}", fontsize=8)
    fig.subplots_adjust(left=0.2, right=0.9, wspace=0.03, hspace=0.06)
    from matplotlib import cm, colors

    cax = fig.add_axes((0.92, 0.15, 0.015, 0.7))
    bar = fig.colorbar(cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap="jet"), cax=cax)
    bar.set_label(f"Grad-CAM: share of the frame's strongest\nevidence for the {_names(class_names)[1]} score (p1)", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return _png(fig)
