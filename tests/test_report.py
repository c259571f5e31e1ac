"""evaluate -> files + self-contained HTML report; compare; the evaluate/compare CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from fake_predictions import fake_predictions

from mouse_facial_expressions.cli import main
from mouse_facial_expressions.evaluation.compare import compare_runs, format_compare
from mouse_facial_expressions.evaluation.evaluate import evaluate_predictions, evaluate_run
from mouse_facial_expressions.report.runs import report_predictions
from mouse_facial_expressions.report import figures as F
from mouse_facial_expressions.report.html import FIGURES, write_report

N_BOOT = 40  # small: the numbers are not under test here, the files are
IMG = '<img src="data:image/png;base64,'


def _saliency_items():
    rng = np.random.default_rng(0)
    return [{"title": f"clip {i}", "frames": rng.integers(0, 255, (4, 24, 24), dtype=np.uint8),
             "heatmaps": rng.random((4, 24, 24))} for i in range(2)]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    pred, meta = fake_predictions(seed=0)
    res = report_predictions(pred, meta, out, n_boot=N_BOOT, saliency=_saliency_items())
    return out, res


@pytest.fixture(scope="module")
def batch_shifted(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_batch")
    pred, meta = fake_predictions(seed=0, batch_shift=4.0)
    return out, report_predictions(pred, meta, out, n_boot=N_BOOT)


def test_report_embeds_every_figure(labelled):
    out, _ = labelled
    text = (out / "report.html").read_text()
    assert text.count(IMG) == len(FIGURES) == 7
    for fid, (title, _) in FIGURES.items():
        assert f"id='fig-{fid}'" in text
        assert title in text
    assert text.count("How to read this:") == 7


def test_report_is_self_contained(labelled):
    text = (labelled[0] / "report.html").read_text()
    assert "http://" not in text and "https://" not in text
    srcs = re.findall(r"""src=["']([^"']{0,30})""", text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in text and "<script" not in text


def test_report_has_metric_tables_with_cis(labelled):
    text = (labelled[0] / "report.html").read_text()
    assert "Metrics with 95% bootstrap CIs" in text
    assert re.search(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", text)
    for section in ("by sex", "by treatment", "by cohort", "Cohort / batch-effect check", "Per fold"):
        assert section in text


def test_balanced_run_has_no_red_box(labelled):
    out, res = labelled
    assert res["warnings"] == []
    assert "class='alert'" not in (out / "report.html").read_text()


def test_batch_effect_puts_a_red_box_in_the_report(batch_shifted):
    out, res = batch_shifted
    assert any("cohort B" in w for w in res["warnings"])
    text = (out / "report.html").read_text()
    assert text.count("class='alert'") == 2  # at the top and in the batch-effect section
    assert "Batch-effect warning" in text


def test_output_files(labelled):
    out, res = labelled
    for name in ("metrics.json", "metrics.csv", "predictions_window.csv", "predictions_video.csv",
                 "predictions_animal.csv", "breakdown.csv", "report.html"):
        assert (out / name).is_file(), name
    m = pd.read_csv(out / "metrics.csv")
    assert list(m.columns) == ["level", "metric", "value", "ci_low", "ci_high"]
    assert set(m["level"]) == {"window", "video", "animal"}
    auc = m[(m["level"] == "animal") & (m["metric"] == "auroc")].iloc[0]
    assert auc["ci_low"] <= auc["value"] <= auc["ci_high"]
    j = json.loads((out / "metrics.json").read_text())
    assert j["metrics"]["animal"]["auroc"]["value"] == pytest.approx(auc["value"])
    assert j["summary"]["n_animals"] == 12 and j["summary"]["n_folds"] == 3
    assert len(pd.read_csv(out / "predictions_animal.csv")) == 18  # 12 label-0 + 6 label-1


def test_unlabelled_predictions_give_animal_scores_only(tmp_path):
    pred, meta = fake_predictions(seed=1, unlabelled=True)
    res = report_predictions(pred, meta, tmp_path, n_boot=N_BOOT)
    assert res["metrics"] == {} and not res["summary"]["labelled"]
    assert len(res["animal_scores"]) == 12
    text = (tmp_path / "report.html").read_text()
    assert "No labels" in text and "id='fig-roc'" not in text and "id='fig-animal_scores'" in text
    assert pd.read_csv(tmp_path / "metrics.csv").empty


def test_metadata_with_duplicate_video_rows_is_an_error(tmp_path):
    pred, meta = fake_predictions(seed=0)
    meta = pd.concat([meta, meta.iloc[[0]].assign(cohort="Z")], ignore_index=True)
    with pytest.raises(ValueError, match="appears more than once"):
        evaluate_predictions(pred, meta, tmp_path, n_boot=0)


def test_figures_are_png_bytes():
    pred, _ = fake_predictions(seed=0)
    png = F.timecourse_figure(pred.assign(label=pred["label"].astype(float)))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert F.saliency_figure(_saliency_items())[:4] == b"\x89PNG"


def test_write_report_appends_unknown_figures(tmp_path):
    png = F.saliency_figure([])
    path = write_report({"summary": {}, "settings": {}}, {"extra_plot": png}, tmp_path / "r.html")
    text = path.read_text()
    assert text.count(IMG) == 1 and "id='fig-extra_plot'" in text


def _run(tmp_path, name, seed, effect):
    run = tmp_path / name
    run.mkdir()
    pred, meta = fake_predictions(seed=seed, effect=effect)
    pred.to_csv(run / "predictions.csv", index=False)
    meta.to_csv(run / "metadata.csv", index=False)
    return run


def test_compare_runs_one_row_per_run_with_cis(tmp_path):
    runs = [_run(tmp_path, "strong", 0, 2.5), _run(tmp_path, "weak", 1, 0.3)]
    df = compare_runs(runs, n_boot=N_BOOT)
    assert df["run"].tolist() == ["strong", "weak"]
    assert {"auroc", "auroc_low", "auroc_high", "accuracy_low"} <= set(df.columns)
    assert (df["auroc_low"] <= df["auroc"]).all() and (df["auroc"] <= df["auroc_high"]).all()
    assert df.loc[0, "auroc"] > df.loc[1, "auroc"]
    table = format_compare(df)
    assert "strong" in table and "weak" in table and "[" in table


def test_evaluate_run_reads_run_folder_and_metadata(tmp_path):
    run = _run(tmp_path, "r1", 0, 1.6)
    res = evaluate_run(run, n_boot=0)
    assert (run / "evaluation" / "metrics.json").is_file()
    assert res["summary"]["n_cohorts"] == 2  # cohort came from metadata.csv


def test_evaluate_run_takes_metadata_from_the_task(tmp_path):
    pred, meta = fake_predictions(seed=0)
    task = tmp_path / "task"
    task.mkdir()
    frames = meta.loc[meta.index.repeat(3)].assign(frame=np.arange(3 * len(meta)), label=0)
    frames.to_parquet(task / "frames.parquet")
    run = tmp_path / "run"
    run.mkdir()
    pred.to_csv(run / "predictions.csv", index=False)
    (run / "params.json").write_text(json.dumps({"task_dir": str(task)}))
    res = evaluate_run(run, n_boot=0)
    assert res["summary"]["n_cohorts"] == 2
    assert res["batch_effects"]["available"]


def test_cli_evaluate_and_compare(tmp_path, capsys):
    run = _run(tmp_path, "cli_run", 0, 1.6)
    assert main(["evaluate", str(run), "--out", str(tmp_path / "ev"), "--bootstrap", "20", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "animal (n=18 animal-conditions)" in out and "accuracy" in out and str(tmp_path / "ev") in out
    assert (tmp_path / "ev" / "metrics.csv").is_file() and not (tmp_path / "ev" / "report.html").exists()
    other = _run(tmp_path, "cli_other", 1, 0.3)
    assert main(["compare", str(run), str(other), "--bootstrap", "10", "--out", str(tmp_path / "cmp.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "cmp.csv")) == 2
    assert "cli_other - cli_run (animal level" in capsys.readouterr().out
    assert main(["compare", str(run), str(run)]) == 1
    assert "same run" in capsys.readouterr().err


def test_paired_difference_over_the_animals_both_runs_scored(tmp_path):
    from mouse_facial_expressions.evaluation.compare import paired_differences

    strong, weak = _run(tmp_path, "strong", 0, 2.5), _run(tmp_path, "weak", 0, 0.3)
    df = paired_differences([strong, weak], n_boot=200, seed=0)
    r = df.iloc[0]
    assert (r["run"], r["baseline"], r["level"]) == ("weak", "strong", "animal")
    a = compare_runs([strong, weak], n_boot=0).set_index("run")["accuracy"]
    assert r["difference"] == pytest.approx(a["weak"] - a["strong"])  # the same animals in both runs
    assert r["low"] <= r["difference"] <= r["high"] and r["high"] < 0  # the weak run is worse, and the CI says so
    assert r["only_baseline_right"] - r["only_run_right"] == round(-r["difference"] * r["n_units"])


def test_a_copy_of_a_run_is_refused_as_the_same_run(tmp_path):
    import shutil

    run = _run(tmp_path, "r", 0, 1.6)
    shutil.copytree(run, tmp_path / "copy")
    with pytest.raises(ValueError, match="same run"):
        compare_runs([run, tmp_path / "copy"], n_boot=0)


def test_cli_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope")]) == 1
    assert "run not found" in capsys.readouterr().err


def test_without_metadata_the_batch_check_says_why(tmp_path):
    pred, _ = fake_predictions(seed=2)
    res = report_predictions(pred, None, tmp_path, n_boot=0)
    assert res["batch_effects"]["available"] is False
    text = (tmp_path / "report.html").read_text()
    assert "no &#x27;cohort&#x27; column" in text and "id='fig-cohorts'" not in text
    assert text.count(IMG) == 5  # roc, confusion, calibration, animal scores, time course


NAMES = ["baseline (pre-injection)", "sick (LPS high, 4 h)"]
GENERIC = ("label 0", "label 1", "pred 0", "pred 1", "true 0", "true 1", "class 0", "class 1", "class-1")


def _figure_texts(monkeypatch, draw) -> str:
    """Every text of the Figure a figure function draws (axis labels, ticks, legends, titles)."""
    from matplotlib.text import Text

    monkeypatch.setattr(F, "_png", lambda fig: fig)  # keep the Figure instead of its PNG
    fig = draw()
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def _levels():
    from mouse_facial_expressions.evaluation.aggregate import aggregate_levels

    pred, meta = fake_predictions(seed=0)
    windows = pred.merge(meta.drop(columns="animal"), on="video", how="left")  # cohort, treatment
    return aggregate_levels(windows.assign(label=windows["label"].astype(float)))


@pytest.mark.parametrize("name", ["roc", "confusion", "calibration", "animal_strip", "timecourse", "cohort", "saliency"])
def test_figures_speak_the_task_class_names(monkeypatch, name):
    levels = _levels()
    draw = {
        "roc": lambda: F.roc_figure(levels, class_names=NAMES),
        "confusion": lambda: F.confusion_figure(levels, class_names=NAMES),
        "calibration": lambda: F.calibration_figure(levels, class_names=NAMES),
        "animal_strip": lambda: F.animal_strip_figure(levels["animal"], class_names=NAMES),
        "timecourse": lambda: F.timecourse_figure(levels["window"], class_names=NAMES),
        "cohort": lambda: F.cohort_figure(levels["animal"], class_names=NAMES),
        "saliency": lambda: F.saliency_figure(_saliency_items(), class_names=NAMES),
    }[name]
    text = _figure_texts(monkeypatch, draw)
    flat = " ".join(text.split())  # tick labels of long names are wrapped over two lines
    assert "sick (LPS high, 4 h)" in flat
    if name in ("roc", "confusion", "animal_strip", "timecourse", "cohort"):
        assert "baseline (pre-injection)" in flat
    assert not [g for g in GENERIC if g in text]


def test_report_captions_use_the_class_names():
    from mouse_facial_expressions.report.html import render_report

    png = F.saliency_figure([])
    text = render_report({"summary": {}, "settings": {}, "class_names": ["baseline", "sick"]},
                         {"calibration": png, "saliency": png})
    assert "the fraction of sick actually in it" in text
    assert "Grad-CAM map of the sick score" in text
    assert "class 1" not in text and "class-1" not in text and "{pos}" not in text


def test_report_says_why_a_ci_is_missing():
    from mouse_facial_expressions.report.html import render_report

    recall = {"value": 1.0, "low": None, "high": None, "n_undefined": 330, "n_resamples": 1000}
    auroc = {"value": 0.9, "low": 0.8, "high": 1.0, "n_undefined": 20, "n_resamples": 1000}
    results = {"summary": {}, "settings": {"n_boot": 1000}, "class_names": ["baseline", "sick"],
               "metrics": {"animal": {"accuracy": {"value": 0.8, "low": 0.6, "high": 1.0}, "recall": recall,
                                      "auroc": auroc, "n": 5, "n_pos": 1, "n_animals": 5}},
               "breakdown": [{"level": "animal", "column": "cohort", "group": "A", "n": 3, "n_animals": 3, "n_pos": 0,
                              "n_neg": 3, "auroc": None, "auroc_low": None, "auroc_high": None,
                              "auroc_undefined": 200, "auroc_resamples": 200, "accuracy": 0.5, "accuracy_low": None,
                              "accuracy_high": None, "accuracy_undefined": 150, "accuracy_resamples": 200}]}
    text = render_report(results, {})
    assert "1.000 [n/a (330 of 1000 resamples undefined)]" in text
    assert "0.900 [0.800, 1.000] (20 of 1000 resamples undefined)" in text
    assert "0.500 [n/a (150 of 200 resamples undefined)]" in text
    assert "(200 of 200" not in text  # an AUROC undefined on the group itself is just –
    assert "0.000" not in text
