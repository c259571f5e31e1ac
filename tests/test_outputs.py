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


# ----------------------------------------------------------------------------- names, too short (inference.checks)

def test_output_names_stay_the_stem_unless_two_files_share_it(tmp_path):
    from mouse_facial_expressions.inference.checks import output_names, source_key

    a, b, c = tmp_path / "day1" / "cam.mp4", tmp_path / "day2" / "cam.mp4", tmp_path / "day2" / "m1.mp4"
    assert output_names([a, c]) == {a: "cam", c: "m1"}  # the common case: unchanged
    assert output_names([a, b, c]) == {a: "day1__cam", b: "day2__cam", c: "m1"}
    # an earlier call scored day1/cam.mp4 as "cam": day2's gets its folder, day1's keeps its name
    assert output_names([b], {"cam": source_key(a)}) == {b: "day2__cam"}
    assert output_names([a], {"cam": source_key(a), "day2__cam": source_key(b)}) == {a: "cam"}
    assert output_names([a], {"cam": ""}) == {a: "cam"}  # a summary without sources: taken as the same file


def test_a_video_shorter_than_one_window_is_too_short():
    from mouse_facial_expressions.inference.checks import too_short

    s = {"num_frames": 10, "frame_stride": 2, "target_fps": 10.0}
    assert too_short(19, s) is None  # (10 - 1) x 2 + 1 kept frames: one window
    why = too_short(1, s)
    assert why.startswith("too short: 1 usable frame(s) kept, one window needs 19") and "not scored" in why


def test_summary_rows_are_replaced_by_source_as_well_as_name(tmp_path):
    from mouse_facial_expressions.inference.outputs import merge_summary

    path = tmp_path / "summary.csv"
    pd.DataFrame({"video": ["cam", "x"], "status": ["done", "done"], "source": ["/d1/cam.mp4", "/x.mp4"]}).to_csv(path, index=False)
    new = pd.DataFrame({"video": ["d1__cam"], "status": ["failed"], "source": ["/d1/cam.mp4"]})
    merged = merge_summary(path, new)
    assert list(merged["video"]) == ["d1__cam", "x"]


def test_a_failed_row_claims_no_name(tmp_path):
    from mouse_facial_expressions.inference.checks import previous_sources

    path = tmp_path / "summary.csv"
    pd.DataFrame({"video": ["cam", "m1"], "status": ["failed", "done"], "source": ["/a/cam.mp4", "/a/m1.mp4"]}).to_csv(path, index=False)
    assert previous_sources(path) == {"m1": "/a/m1.mp4"}  # rerunning a fixed cam.mp4 from elsewhere replaces the row
