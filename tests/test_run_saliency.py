"""Grad-CAM examples from a trained run reach the evaluation report."""

from __future__ import annotations

import numpy as np

from mouse_facial_expressions.report.runs import report_run
from mouse_facial_expressions.inference.saliency import run_saliency_examples


def test_run_saliency_gives_maps_for_both_classes_on_test_animals(run):
    items = run_saliency_examples(run.run_dir, n_per_class=1)
    assert len(items) == 2
    assert "label 0" in items[0]["title"] and "label 1" in items[1]["title"]
    for it in items:
        t, h, w = it["frames"].shape
        assert it["heatmaps"].shape == (t, h, w)
        assert np.isfinite(it["heatmaps"]).all()
        assert it["heatmaps"].min() >= 0 and it["heatmaps"].max() <= 1
        assert 0 <= it["frames"].min() and it["frames"].max() <= 1


def test_evaluating_a_run_puts_saliency_maps_in_the_report(run, tmp_path):
    results = report_run(run.run_dir, out_dir=tmp_path / "ev", n_boot=20)
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "Grad-CAM" in html
    assert html.count('src="data:image/png;base64,') == 7
    assert "no saliency maps" not in html
    assert "Which region the score leans on (occlusion)" in html
    regions = {(r["class"], r["region"]) for r in results["regions"]}
    c0, c1 = results["class_names"]
    assert {(c0, "eye"), (c1, "ear"), (c1, "background")} <= regions
    assert all(r["low"] <= r["mean_drop"] <= r["high"] for r in results["regions"])
    assert results["paths"]["report"].endswith("report.html")


def test_grad_cam_uses_a_layer_with_at_least_8x8_cells(run):
    import torch.nn as nn

    from mouse_facial_expressions.inference.ensemble import load_ensemble
    from mouse_facial_expressions.inference.saliency import feature_layer, last_conv_layer

    model = load_ensemble(run.run_dir).models[0]
    size = load_ensemble(run.run_dir).image_size
    sizes = {}
    hooks = [m.register_forward_hook(lambda mod, _i, out: sizes.__setitem__(mod, out.shape[-2:]))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    layer = feature_layer(model, (4, 3, size, size))
    import torch

    with torch.no_grad():
        model(torch.zeros(1, 4, 3, size, size))
    for h in hooks:
        h.remove()
    assert min(sizes[layer]) >= 8 and min(sizes[last_conv_layer(model)]) < 8
