"""The report's plain-language headline and caveats, on constructed results."""

from __future__ import annotations

from mouse_facial_expressions.report.headline import BALANCE_LIMIT, ECE_LIMIT, caveats, headline


def _results(ece=0.05, sens=0.5, spec=1.0, synthetic=False, batch=(), domain=None, acc_w=0.9):
    return {
        "class_names": ["baseline", "sick (LPS high, 4 h)"],
        "task": {"name": "task1", "synthetic": synthetic},
        "summary": {"n_animals": 12, "n_folds": 3},
        "metrics": {
            "animal": {"n": 18, "accuracy": {"value": 0.8333, "low": 0.68, "high": 1.0},
                       "recall": {"value": sens}, "specificity": {"value": spec}},
            "window": {"ece": {"value": ece}, "accuracy": {"value": acc_w}},
        },
        "confusion": {"animal": [[12, 0], [3, 3]]},
        "batch_effects": {"warnings": list(batch)},
        "domain": domain,
    }


def test_headline_names_the_task_the_counts_and_the_errors_in_class_names():
    text = headline(_results())
    assert text.startswith("Task: sick (LPS high, 4 h) vs baseline (task1).")
    assert "18 animal-conditions (one animal in one condition) from 12 mice, 3 folds by animal" in text
    assert "Animal-level accuracy 0.83 [0.68, 1.00]" in text
    assert "3 of 6 sick (LPS high, 4 h) animal-conditions were called baseline (sensitivity 0.50)" in text
    assert "0 of 12 baseline were called sick (LPS high, 4 h) (specificity 1.00)" in text
    assert "class 1" not in text


def test_no_caveat_when_nothing_applies():
    assert caveats(_results(sens=0.9, spec=1.0), window_confidence=0.9) == []


def test_each_caveat_appears_exactly_when_its_condition_holds():
    assert any("synthetic" in c for c in caveats(_results(synthetic=True, sens=1.0)))
    over = caveats(_results(ece=ECE_LIMIT + 0.05, sens=1.0), window_confidence=0.97)
    assert len(over) == 1 and "over-confident" in over[0]
    under = caveats(_results(ece=ECE_LIMIT + 0.05, sens=1.0), window_confidence=0.6)
    assert len(under) == 1 and "under-confident" in under[0]
    assert caveats(_results(ece=ECE_LIMIT - 0.01, sens=1.0), window_confidence=0.6) == []
    unbalanced = caveats(_results(sens=0.5, spec=1.0))
    assert len(unbalanced) == 1 and "misses sick (LPS high, 4 h) animals" in unbalanced[0]
    assert caveats(_results(sens=1.0 - BALANCE_LIMIT + 0.01, spec=1.0)) == []
    assert any("batch-effect" in c for c in caveats(_results(sens=1.0, batch=["cohort B scores higher"])))
    dom = {"n_videos": 8, "warnings": {"v1": "face size 28 px (training 21-22 px)"}}
    assert any("1 of 8 videos lie outside" in c for c in caveats(_results(sens=1.0, domain=dom)))


def test_unlabelled_results_say_there_is_no_accuracy():
    r = _results()
    r["metrics"] = {}
    assert "no labels" in headline(r)


def test_the_batch_effect_caveat_says_whether_the_ranking_held():
    def with_verdict(verdict):
        r = _results(sens=1.0, batch=["cohort B: controls shifted up"])
        r["batch_effects"].update(flagged=["B"], per_cohort=[{"cohort": "A", "verdict": "ok"}, {"cohort": "B", "verdict": verdict}])
        return [c for c in caveats(r) if "batch-effect" in c]

    (moved,) = with_verdict("intact")
    assert "Scores of B" in moved and "threshold problem" in moved and "recalibrate" in moved
    (lost,) = with_verdict("lost")
    assert "Scores of B" in lost and "signal is lost" in lost and "recalibrate" not in lost


def test_headline_gives_the_sensitivity_ci_or_says_why_there_is_none():
    r = _results()
    r["confusion"]["animal"] = [[12, 0], [0, 1]]
    r["metrics"]["animal"]["recall"] = {"value": 1.0, "low": None, "high": None, "n_undefined": 330, "n_resamples": 1000}
    r["metrics"]["animal"]["accuracy"].update(n_undefined=12, n_resamples=1000)
    text = headline(r)
    assert "(sensitivity 1.00 [n/a (330 of 1000 resamples undefined)])" in text
    assert "[0.00," not in text
    assert "Animal-level accuracy 0.83 [0.68, 1.00];" in text  # a few undefined: counted in the table only

    r["metrics"]["animal"]["recall"] = {"value": 0.75, "low": 0.5, "high": 1.0, "n_undefined": 0, "n_resamples": 1000}
    r["confusion"]["animal"] = [[12, 0], [1, 3]]
    assert "(sensitivity 0.75 [0.50, 1.00])" in headline(r)
