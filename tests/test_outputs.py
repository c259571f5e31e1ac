"""What mfe predict draws: time courses break at gaps, mark resampled windows, drop thin ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mouse_facial_expressions.inference.outputs import plot_timecourse, timecourse_points


def _scores():
    starts = np.array([0.0, 2.0, 4.0, 6.0, 30.0, 32.0, 34.0])  # 24 s not scored after t = 7
    scores = pd.DataFrame({"video": "v", "start_time": starts, "end_time": starts + 2, "p1": np.linspace(0.1, 0.9, 7)})
    rows = [list(range(k * 10, k * 10 + 10)) for k in range(7)]
    rows[5] = [50, 50, 51, 51, 52, 52, 53, 53, 54, 54]  # resampled: 5 distinct frames of 10 (kept)
    rows[6] = [60] * 4 + [61] * 3 + [62] * 3  # 3 distinct of 10: dropped
    windows = pd.DataFrame({"rows": rows, "resampled": [False] * 5 + [True, True]})
    return scores, windows


def test_time_course_breaks_at_gaps_marks_resampled_and_drops_thin_windows():
    scores, windows = _scores()
    pts = timecourse_points(scores, windows)
    assert len(pts[pts["p1"].notna()]) == 6  # the window with 3 distinct frames is gone
    gap = pts[pts["p1"].isna()]
    assert len(gap) == 1 and 7 < float(gap["t"].iloc[0]) < 31  # one break, inside the unscored stretch
    assert pts.loc[pts["p1"].notna(), "resampled"].tolist() == [False] * 5 + [True]


def test_time_course_png_names_the_class(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    labels = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (labels.append(fig.axes[0].get_ylabel()), save(fig, *a, **k)))
    scores, windows = _scores()
    path = plot_timecourse(scores, tmp_path / "t.png", "v", windows, class_name="sick (LPS high, 4 h)")
    assert path.is_file() and labels == ["P(sick (LPS high, 4 h))"]
