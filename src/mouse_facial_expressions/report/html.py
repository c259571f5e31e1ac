"""One self-contained HTML report: inline CSS, figures embedded as base64 PNG data URIs.

The file opens offline and can be mailed as is: it references nothing outside itself.
"""

from __future__ import annotations

from pathlib import Path

from mouse_facial_expressions.evaluation.metrics import MAX_UNDEFINED
from mouse_facial_expressions.report.html_elements import FIGURES, METRIC_NAMES, _e, figure_html, fmt, fmt_ci, table

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f6f7f9;color:#222}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}.lead{font-size:17px;line-height:1.45;margin:14px 0 6px}
.caveats{margin:4px 0 12px;color:#7a4b00}h2{font-size:20px;margin:36px 0 10px;border-bottom:2px solid #e3e6ea;padding-bottom:4px}
h3{font-size:16px;margin:18px 0 6px}.sub{color:#666;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 14px}th,td{border:1px solid #dde1e6;padding:4px 9px;text-align:right}
th{background:#f0f2f5}td.l,th.l{text-align:left}tr:nth-child(even) td{background:#fafbfc}
figure{margin:14px 0 26px;padding:0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:13px;color:#444;max-width:900px;line-height:1.45}
.alert{border:3px solid #c62828;background:#ffebee;color:#8e0000;padding:12px 16px;margin:14px 0;border-radius:6px}
.alert h3{margin:0 0 6px;color:#b71c1c}.ok{border:1px solid #2e7d32;background:#e8f5e9;color:#1b5e20;padding:8px 14px;border-radius:6px}
.note{border-left:4px solid #f9a825;background:#fffde7;padding:6px 12px;margin:6px 0;font-size:13px}
.kv td{text-align:left}details{margin:6px 0 14px}summary{cursor:pointer;color:#1565c0}
nav a{margin-right:12px;font-size:13px}
.grid{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}.grid figure{flex:0 1 auto;max-width:560px}
"""


def _metrics_table(metrics: dict) -> str:
    levels = list(metrics)
    rows = []
    for m, name in METRIC_NAMES.items():
        if not any(m in metrics[lv] for lv in levels):
            continue
        row = {"metric": name}
        for lv in levels:
            d = metrics[lv].get(m, {})
            row[lv] = fmt_ci(d.get("value"), d.get("low"), d.get("high"), n_undefined=d.get("n_undefined"),
                             n_resamples=d.get("n_resamples"))
        rows.append(row)
    counts = {"metric": "n (positives) / animals"}
    for lv in levels:
        counts[lv] = f"{metrics[lv].get('n')} ({metrics[lv].get('n_pos')}) / {metrics[lv].get('n_animals')}"
    note = ("<p class='sub'>n counts the units of each level: windows (clips of consecutive frames), videos, and "
            "at animal level animal-conditions, i.e. one animal in one condition (an animal filmed at baseline and "
            "when sick counts twice); CIs resample whole animals. A metric can be undefined (–) on the data or in a "
            "resample: precision with no positive call, recall and F1 without a positive, AUROC with one class. Such "
            "resamples are left out and counted; when they are more than "
            f"{100 * MAX_UNDEFINED:.0f}% the CI reads n/a, as the rest no longer stand for the data.</p>")
    return table(rows + [counts], ["metric"] + levels) + note


def _plain(results: dict) -> str:
    """The plain-language headline and the caveats that apply (``report.headline``)."""
    from mouse_facial_expressions.report.headline import caveats, headline

    items = caveats(results, (results.get("summary") or {}).get("window_confidence"))
    notes = f"<ul class='caveats'>{''.join(f'<li>{_e(c)}</li>' for c in items)}</ul>" if items else ""
    return (f"<section id='plain'><p class='lead'>{_e(headline(results))}</p>{notes}"
            f"{_training_line(results.get('training') or {})}</section>")


def _training_line(tr: dict) -> str:
    """Model, backbone, image size, epochs, recipe, kept epoch per fold and training time."""
    if not tr.get("model"):
        return ""
    kept = ", ".join(f"fold {f['fold']}: epoch {f['kept_epoch']} of {f['epochs_trained']}" for f in tr.get("folds", [])
                     if f.get("kept_epoch") is not None)
    mins = f"; training took {tr['seconds'] / 60:.1f} min" if tr.get("seconds") else ""
    prec = {f.get("precision") for f in tr.get("folds", []) if f.get("precision")}
    return (f"<p class='sub'>Trained: {_e(tr['model'])} model, {_e(tr.get('backbone'))} backbone "
            f"({_e(tr.get('pretrained') or 'none')} weights), {_e(tr.get('image_size'))} px crops, clips of "
            f"{_e(tr.get('num_frames'))} frames, {_e(tr.get('epochs'))} epochs per fold, recipe {_e(tr.get('recipe'))}"
            f"{', ' + _e(', '.join(sorted(prec))) if prec else ''}{mins}. Kept epoch per fold (by {_e(tr.get('select') or 'validation')}): {_e(kept)}.</p>")


def _alerts(warnings: list[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    return f"<div class='alert' id='batch-effect-warning'><h3>&#9888; Batch-effect warning</h3><ul>{items}</ul></div>"


def _domain_section(dom: dict | None) -> str:
    """The domain check of zero-shot videos (``inference.zeroshot.domain_check``), when it found
    videos outside the model's training data or was skipped; nothing otherwise."""
    if not dom or not (dom.get("warnings") or dom.get("note")):
        return ""
    if not dom.get("warnings"):
        return f"<h2 id='domain'>Domain check</h2><p class='note'>{_e(dom['note'])}</p>"
    rows = [{"video": v, "why it lies outside the training data": w} for v, w in sorted(dom["warnings"].items())]
    return ("<div class='alert' id='domain'><h3>&#9888; Domain check: "
            f"{len(rows)} of {dom.get('n_videos', '?')} videos lie outside the model's training data</h3>"
            "<p>Their crops differ from every video the model was trained on (lighting, zoom, sharpness, "
            "keypoint quality, or synthetic against real); scores on them may mean nothing.</p>"
            f"{table(rows)}</div>")


def _shift_cell(d: dict | None, wrong: str) -> str:
    """``k/n wrong (rate) vs ref rate; logit shift`` of one group (``batch_effects.shift_test``), plain text."""
    if not d or not d.get("n"):
        return "–"
    text = f"{d['n_wrong']}/{d['n']} {wrong} ({fmt(d['rate'], 2)})"
    if d.get("reference_rate") is not None:
        text += f" vs {fmt(d['reference_rate'], 2)}; logit {d['shift_logit']:+.2f}"
    return text + (" \u26a0 shifted" if d.get("flagged") else "")


def _batch_section(be: dict, figures: dict) -> str:
    out = ["<h2 id='batch'>Cohort / batch-effect check</h2>"]
    if not be or not be.get("available"):
        reason = (be or {}).get("reason", "not run")
        out.append(f"<p class='note'>Not available: {_e(reason)}</p>")
        return "".join(out)
    out.append(_alerts(be.get("warnings", [])))
    rules = be.get("rules", {})
    ref = be.get("reference", {})
    if not be.get("warnings"):
        out.append("<p class='ok'>No cohort's calls change: its controls are called positive, and its positives "
                   f"missed, no more often than in {_e(ref.get('description', 'the reference'))}.</p>")
    out.append(
        "<p class='sub'>Each cohort against " + _e(ref.get("description", "the reference")) + ": its controls "
        "(false positives: called positive) and its positives (misses: called negative) at the threshold; the median "
        "logit shift of the animal scores is shown but warns of nothing while no call changes. A group is flagged "
        f"when its error rate exceeds the reference's by &ge; {fmt(rules.get('min_rate_excess'), 2)} with a one-sided "
        f"Fisher exact p &le; {fmt(rules.get('alpha'), 2)}, and only where that p is attainable at its animal counts. "
        "The AUROC inside the cohort (controls vs positives) tells a moved "
        f"threshold (AUROC &ge; {fmt(rules.get('intact_auroc'), 2)}: recalibrate) from a lost signal (AUROC &le; "
        f"{fmt(rules.get('lost_auroc'), 2)}: fine-tune).</p>")
    if ref.get("source") == "training":
        out.append(table([{"reference": ref.get("description"), "controls": ref.get("n_controls"),
                           "false-positive rate": ref.get("fp_rate"), "positives": ref.get("n_positives"),
                           "miss rate": ref.get("miss_rate"), "AUROC": ref.get("auroc")}]))
    rows = [{"cohort": r["cohort"],
             "controls: false positives vs reference": _shift_cell(r.get("controls"), "positive"),
             "positives: misses vs reference": _shift_cell(r.get("positives"), "missed"),
             "AUROC inside cohort": r.get("auroc"), "reading": r.get("verdict_text", ""), "remedy": r.get("remedy") or ""}
            for r in be.get("per_cohort", [])]
    if rows:
        out.append("<h3>Shift per cohort</h3>" + table(rows))
    out.append(f"<h3>Per-cohort scores of {_e(be.get('predictability', {}).get('subset', 'controls'))}</h3>")
    rows = [
        {
            "cohort": r["cohort"], "animals": r["n_animals"], "rows": r["n"], "called positive": r["n_positive"],
            "positive rate [95% CI]": fmt_ci(r["positive_rate"], r["positive_rate_low"], r["positive_rate_high"], 2),
            "mean score [95% CI]": fmt_ci(r["mean_p1"], r["mean_p1_low"], r["mean_p1_high"], 2),
        }
        for r in be.get("per_cohort", []) if r.get("n")
    ]
    out.append(table(rows))
    pred = be.get("predictability", {})
    out.append("<h3>Can the cohort be predicted from the score?</h3>")
    if pred.get("available"):
        out.append(
            f"<p class='sub'>One score per animal (the mean of its rows), among {_e(pred.get('subset'))}; the AUROC "
            f"and the {_e(pred['test'])} p-value come from the same ranks of the same {pred['n']} animals. AUROC 0.5: "
            "the score does not know the cohort, as it should not.</p>"
        )
        quiet = not pred.get("separates") and (pred.get("min_p") or 0) <= pred.get("alpha", 0.05)
        out.append(f"<p class='{'ok' if quiet else 'note'}'>{_e(pred.get('text', ''))}</p>")
        out.append(table([
            {"measure": f"AUROC, cohort {pred['cohort']} vs the {'other' if len(pred['cohorts']) == 2 else 'rest'} (animals)",
             "value": pred["auroc"], "chance": 0.5},
            {"measure": f"{pred['test']} p-value", "value": pred["p_value"], "chance": None},
            {"measure": "smallest attainable p at these animal counts", "value": pred.get("min_p"), "chance": None},
        ]))
    else:
        out.append(f"<p class='note'>{_e(pred.get('reason', 'not available'))}</p>")
    for n in be.get("notes", []):
        out.append(f"<p class='note'>{_e(n)}</p>")
    if "cohorts" in figures:
        out.append(figure_html("cohorts", figures["cohorts"]))
    return "".join(out)


def _recalibration_section(recal: dict | None) -> str:
    """Raw zero-shot numbers and each recalibration, side by side (``report.runs.recalibrated_zeroshot``)."""
    if not recal or not recal.get("comparison"):
        return ""
    heads = {"scoring": "scoring", "threshold": "threshold", "accuracy": "accuracy",
             "balanced_accuracy": "balanced accuracy", "auroc": "AUROC", "n_called_positive": "called positive",
             "controls_called_positive": "control animals called positive"}
    rows = [{k: (f"{r['n_called_positive']}/{r['n']}" if k == "n_called_positive" else r.get(k)) for k in heads}
            for r in recal["comparison"]]
    out = ["<h2 id='recalibration'>Zero-shot: raw and recalibrated</h2>",
           "<p class='sub'>Animal level (one row per animal-condition). The raw row is the model as trained; each "
           "recalibrated row is an extra reading, not a replacement. The AUROC does not change with a threshold "
           "(controls): only the calls do.</p>", table(rows, headers=heads)]
    for method, d in (recal.get("methods") or {}).items():
        if method == "controls":
            out.append(f"<p class='note'><b>controls</b>: threshold {fmt(d.get('threshold'), 3)} &rarr; "
                       f"{fmt(d.get('new_threshold'), 3)} (logit offset {d.get('offset_logit', 0):+.3f}: median control "
                       f"score {fmt(d.get('new_controls_median_p1'), 3)} here vs {fmt(d.get('reference_controls_median_p1'), 3)} "
                       f"in training). This uses {_e(d.get('uses', ''))}.</p>")
        else:
            out.append(f"<p class='note'><b>{_e(method)}</b>: {_e(d.get('uses', ''))}"
                       f"{'; ' + _e(d['note']) if d.get('note') else ''}.</p>")
    return "".join(out)


def _modality_section(mod: dict | None) -> str:
    """A fused run's modalities: each alone, each left out, all (evaluation/modalities.py)."""
    if not mod or not mod.get("rows"):
        return ""
    rows = [{"modalities": r["modalities"], "variant": r["variant"], "animal accuracy (95% CI)":
             fmt_ci(r["animal_accuracy"], r["animal_low"], r["animal_high"]), "animal AUROC": fmt(r["animal_auroc"]),
             "video accuracy": fmt(r["video_accuracy"]), "window accuracy": fmt(r["window_accuracy"]),
             "animals": r["n_animals"]} for r in mod["rows"]]
    out = ["<h2 id='modalities'>Modalities</h2>",
           "<p class='sub'>The fused model scored the test animals with each modality alone, with each left out, "
           "and with all (it was trained with modality dropout, so it learned to score with each subset). A "
           "modality's contribution is the animal accuracy with all of them minus that without it. Models trained "
           "on one modality each are the stricter comparison (bench/bench_fusion.py).</p>", table(rows)]
    if mod.get("contributions"):
        out.append(table([{"modality": c["modality"], "animal accuracy lost without it": fmt(c["animal_accuracy_drop"]),
                           "animal AUROC lost without it": fmt(c["auroc_drop"])} for c in mod["contributions"]]))
    return "".join(out)


def _mgs_section(mgs: dict | None) -> str:
    """A run with action-unit heads: its MGS predictions vs the mean rater and the truth (evaluation/mgs_models.py)."""
    if not mgs or not mgs.get("rows"):
        return ""
    rows = [{"target": r["target"], "rated frames": r.get("n_items"),
             "kappa vs mean rater": fmt_ci(r.get("kappa"), r.get("kappa_low"), r.get("kappa_high")),
             "r vs mean rater": fmt_ci(r.get("r"), r.get("r_low"), r.get("r_high")), "RMSE": fmt(r.get("rmse")),
             "raters: kappa": fmt(r.get("ceiling_kappa")), "raters: r": fmt(r.get("ceiling_r")),
             "left-out rater: model kappa": fmt(r.get("loro_kappa")), "left-out rater: rater kappa": fmt(r.get("loro_ceiling_kappa")),
             "r vs truth": fmt_ci(r.get("truth_r"), r.get("truth_r_low"), r.get("truth_r_high"))} for r in mgs["rows"]]
    return ("<h2 id='mgs'>Mouse Grimace Scale</h2><p class='sub'>The model's expected score per action unit (0..2) and "
            "the MGS total (their mean) on the test windows. Each rated frame takes the test window nearest it (within "
            f"{fmt(mgs.get('tolerance_s'), 2)} s; {mgs.get('n_matched_items', 0)} of {mgs.get('n_rated_items', 0)} rated "
            f"frames, {mgs.get('n_raters', 0)} raters): quadratic-weighted kappa and Pearson r against the mean rater; "
            "'raters' is their mean pairwise agreement on the same frames, the ceiling. That comparison favours the "
            "model (the mean of several raters is less noisy than one rater); 'left-out rater' is the fair one: each "
            "rater in turn and the model, both against the mean of the other raters, averaged. 'vs truth': against the "
            "synthetic cohort's true intensity, every test window. CIs resample animals.</p>" + table(rows))


def _breakdown_section(rows: list[dict]) -> str:
    if not rows:
        return ""
    out = ["<h2 id='breakdown'>Breakdown by metadata</h2>",
           "<p class='sub'>Metrics within each group (threshold as above); AUROC is undefined (–) in groups with "
           "one class. Animal level unless marked; CIs resample animals.</p>"]
    for level in dict.fromkeys(r["level"] for r in rows):
        for col in dict.fromkeys(r["column"] for r in rows if r["level"] == level):
            part = [r for r in rows if r["level"] == level and r["column"] == col]
            cells = []
            for r in part:
                c = {"group": str(r["group"]), "n": r["n"], "animals": r["n_animals"], "pos": r["n_pos"], "neg": r["n_neg"]}
                for m in ("accuracy", "balanced_accuracy", "auroc", "mean_p1"):
                    if m in r:
                        c[METRIC_NAMES.get(m, "mean score")] = fmt_ci(r.get(m), r.get(f"{m}_low"), r.get(f"{m}_high"),
                                                                      n_undefined=r.get(f"{m}_undefined"),
                                                                      n_resamples=r.get(f"{m}_resamples"))
                cells.append(c)
            out.append(f"<h3>by {_e(col)} ({_e(level)} level)</h3>" + table(cells))
    return "".join(out)


def _regions_table(rows: list[dict]) -> str:
    """Region occlusion (``inference.occlusion``): how much p1 drops when each region is masked."""
    if not rows:
        return ""
    cells = [{"true class": r["class"], "region masked": r["region"], "windows": r["n_windows"],
              "p1 drop [95% CI]": fmt_ci(r["mean_drop"], r["low"], r["high"])} for r in rows]
    return ("<h3>Which region the score leans on (occlusion)</h3><p class='sub'>Each region of every frame of a test "
            "window is replaced by the frame's mean grey in turn; the drop of p1 (original minus masked) says how much "
            "the score relied on it: positive = the region raised p1, negative = it lowered p1, near 0 = not used. "
            "CIs resample windows (first fold's test animals).</p>" + table(cells))


def _saliency_section(figures: dict, regions: list[dict] | None = None, class_names=None) -> str:
    out = ["<h2 id='saliency'>Saliency</h2>", _regions_table(regions or [])]
    if "saliency" in figures:
        out.append(figure_html("saliency", figures["saliency"], class_names=class_names))
    else:
        out.append("<p class='note'>No saliency maps in this report: they need the trained model and the "
                   "face crops (see <code>mouse_facial_expressions.inference.saliency.grad_cam</code>).</p>")
    return "".join(out)


def render_report(results: dict, figures: dict[str, bytes]) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    s = results.get("summary", {})
    st = results.get("settings", {})
    title = results.get("title") or "mfe evaluation report"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>",
             f"<style>{_CSS}</style></head><body><main>",
             f"<h1>{_e(title)}</h1><p class='sub'>{_e(results.get('source', ''))} · generated {_e(results.get('created', ''))}</p>",
             "<nav><a href='#headline'>metrics</a><a href='#figures'>figures</a><a href='#breakdown'>breakdown</a>"
             "<a href='#batch'>batch effects</a><a href='#saliency'>saliency</a><a href='#folds'>folds</a></nav>",
             _plain(results), _alerts(results.get("warnings", [])), _domain_section(results.get("domain"))]
    parts.append("<h2 id='headline'>Summary</h2>")
    parts.append(table([{"windows": s.get("n_windows"), "videos": s.get("n_videos"), "animals": s.get("n_animals"),
                         "folds": s.get("n_folds"), "cohorts": s.get("n_cohorts"), "labelled": s.get("labelled")}]))
    if results.get("metrics"):
        parts.append("<h3>Metrics with 95% bootstrap CIs (resampling animals)</h3>")
        parts.append(f"<p class='sub'>Threshold p1 &ge; {fmt(st.get('threshold'), 2)}; {st.get('n_boot')} bootstrap "
                     f"resamples of animals (seed {st.get('seed')}); video = mean of its windows, animal = mean of its "
                     "videos with the same label. ECE uses equal-width bins.</p>")
        parts.append(_metrics_table(results["metrics"]))
    else:
        parts.append("<p class='note'>No labels: the report gives scores per animal only.</p>")
    parts.append(_recalibration_section(results.get("recalibration")))
    parts.append(_modality_section(results.get("modalities")))
    parts.append(_mgs_section(results.get("mgs")))
    parts.append("<h2 id='figures'>Figures</h2>")
    names = results.get("class_names")
    pair = [figure_html(f, figures[f], class_names=names) for f in ("roc", "calibration") if f in figures]
    if pair:
        parts.append(f"<div class='grid'>{''.join(pair)}</div>")
    for fid in ("confusion", "animal_scores", "timecourse"):
        if fid in figures:
            parts.append(figure_html(fid, figures[fid], class_names=names))
    animals = results.get("animal_scores", [])
    if animals:
        cols = [c for c in ("animal", "label", "p1", "called_positive", "n_videos", "n_windows", "cohort", "treatment", "sex", "fold") if c in animals[0]]
        parts.append(f"<details {'open' if not results.get('metrics') else ''}><summary>Per-animal scores ({len(animals)} rows)</summary>{table(animals, cols)}</details>")
    parts.append(_breakdown_section(results.get("breakdown", [])))
    parts.append(_batch_section(results.get("batch_effects", {}), figures))
    parts.append(_saliency_section(figures, results.get("regions"), names))
    folds = results.get("per_fold", [])
    if folds:
        heads = {"balanced_accuracy": "balanced accuracy", "auroc": "AUROC"}
        parts.append("<h2 id='folds'>Per fold (no CIs)</h2><p class='sub'>The spread between folds shows how much "
                     "the result depends on which animals were held out.</p>" + table(folds, headers=heads))
    known = set(FIGURES)
    for fid, png in figures.items():  # figures the report has no slot for still appear
        if fid not in known:
            parts.append(figure_html(fid, png, class_names=names))
    parts.append("</main></body></html>")
    return "\n".join(p for p in parts if p)


def write_report(results: dict, figures: dict[str, bytes], out_html: str | Path) -> Path:
    """Write the self-contained report atomically; returns its path.

    Args:
        results: the JSON-safe results of ``evaluation.evaluate`` (``summary``, ``settings``,
            ``metrics``, ``breakdown``, ``batch_effects``, ``animal_scores``, ``per_fold``,
            ``warnings``).
        figures: figure id (keys of :data:`FIGURES`, others are appended) -> PNG bytes.
        out_html: where to write.
    """
    from mouse_facial_expressions.io.atomic import write_text

    return write_text(out_html, render_report(results, figures))
