"""Mouse Grimace Scale rating sheets (io/ratings.py, `mfe ratings import`), simulated raters
(synth/raters.py, `mfe synth --raters`) and MGS agreement metrics (evaluation/mgs.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.cli import build_parser, main
from mouse_facial_expressions.evaluation import mgs
from mouse_facial_expressions.io.ratings import AUS, import_ratings, read_sheet
from mouse_facial_expressions.synth.raters import rate_truth, rated_frames, rater_params, write_rater_sheet

PATTERN = r"(?P<video>MVI_\d+)_(?P<animal>LE\d+)_.*_min_(?P<minute>\d+)_sec_(?P<second>\d+)"
IMG = "MVI_0386_LE025_w0_t1_vb_00_min_{m:02d}_sec_{s}.png"
WIDE_HEADER = ["image"] + [f"{a}{r}" for r in (1, 2) for a in AUS]


def _write(path: Path, rows: list[list], sep: str = ",", newline: str = "\n") -> Path:
    path.write_bytes(newline.join(sep.join(str(c) for c in r) for r in rows).encode() + newline.encode())
    return path


def _scores(df: pd.DataFrame, item: str, rater: str) -> dict:
    sub = df[(df["item"] == item) & (df["rater"] == rater)]
    return dict(zip(sub["au"], sub["score"]))


# --- wide sheets -------------------------------------------------------------------------------

def test_wide_sheet_with_the_item_pattern(tmp_path):
    p = _write(tmp_path / "s.csv", [
        WIDE_HEADER,
        [IMG.format(m=6, s=0), 0, 1, 2, 1, 0, 1, 1, 2, 0, 0],
        [IMG.format(m=6, s=30), 2, 2, 1, 1, 1, "", "", "", "", ""],  # rater 2 did not score it
    ])
    res = read_sheet(p, pattern=PATTERN)
    r = res.ratings
    assert res.layout == "wide" and res.delimiter == ","
    assert len(r) == 15 and set(r["rater"]) == {"1", "2"} and list(res.issues["line"]) == []
    assert _scores(r, IMG.format(m=6, s=0), "2") == {"ot": 1, "nb": 1, "cb": 2, "ep": 0, "wc": 0}
    first = r[r["item"] == IMG.format(m=6, s=30)].iloc[0]
    assert (first["video"], first["animal"], first["time_s"], first["line"]) == ("MVI_0386", "LE025", 390.0, 3)
    assert list(r.columns) == ["item", "video", "frame", "time_s", "animal", "rater", "au", "score", "line"]


@pytest.mark.parametrize("sep", [";", "\t"])
def test_the_delimiter_is_sniffed(tmp_path, sep):
    p = _write(tmp_path / "s.csv", [WIDE_HEADER, ["a.png", 0, 1, 2, 1, 0, 1, 1, 2, 0, 0],
                                    ["b.png", 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]], sep=sep)
    res = read_sheet(p)
    assert res.delimiter == sep and len(res.ratings) == 20
    assert _scores(res.ratings, "b.png", "2") == dict.fromkeys(AUS, 2.0)


def test_crlf_and_an_unnamed_index_column(tmp_path):
    p = _write(tmp_path / "s.csv", [[""] + WIDE_HEADER, [0, "a.png"] + [1] * 10, [1, "b.png"] + [0] * 10], newline="\r\n")
    res = read_sheet(p)
    assert set(res.ratings["item"]) == {"a.png", "b.png"}
    assert list(res.ratings.groupby("item")["line"].first()) == [2, 3]
    assert any("index column" in n for n in res.notes)


def test_missing_codes_are_counted_per_au(tmp_path):
    p = _write(tmp_path / "s.csv", [
        WIDE_HEADER,
        ["a.png", "-", 1, 9, 1, 0, -1, 1, 2, 0, 0],
        ["b.png", "-", 1, 1, 1, 0, 1, 1, 1, 1, 1],
    ])
    res = read_sheet(p)
    assert res.missing == {"ot": 3, "nb": 0, "cb": 1, "ep": 0, "wc": 0}
    assert len(res.ratings) == 20 - 4 and res.issues.empty
    assert "ot 3" in res.summary()
    custom = read_sheet(p, missing_codes=["-"])  # 9 and -1 are now out of range, listed
    assert custom.missing["ot"] == 2
    assert sorted(custom.issues["value"]) == ["-1", "9"]


def test_a_stray_3_is_listed_with_its_line_number(tmp_path):
    p = _write(tmp_path / "s.csv", [WIDE_HEADER, ["a.png"] + [1] * 10, ["b.png", 1, 3, 1, 1, 1, 1, 1, 1, 1, "x"]])
    res = read_sheet(p)
    iss = res.issues.set_index("au")
    assert iss.loc["nb", "line"] == 3 and "out of range" in iss.loc["nb", "reason"]
    assert iss.loc["wc", "line"] == 3 and "not a number" in iss.loc["wc", "reason"]
    assert len(res.ratings) == 18  # the two bad scores alone are left out
    assert "line 3: b.png rater 1 au nb value 3: out of range 0..2" in res.summary()


def test_video_frame_columns_and_stills(tmp_path):
    header = ["video", "frame", "time_s", "animal"] + [f"{a}1" for a in AUS]
    p = _write(tmp_path / "vf.csv", [header, ["m1_rec1", 45, 3.0, "m1", 0, 1, 2, 1, 0]])
    r = read_sheet(p).ratings
    assert set(r["item"]) == {"m1_rec1:45"} and r["frame"].iloc[0] == 45 and r["time_s"].iloc[0] == 3.0
    assert r["animal"].iloc[0] == "m1" and r["video"].iloc[0] == "m1_rec1"
    stills = read_sheet(_write(tmp_path / "st.csv", [["image"] + [f"{a}1" for a in AUS], ["x.png", 0, 0, 1, 1, 2]])).ratings
    assert stills["video"].isna().all() and stills["time_s"].isna().all() and stills["frame"].isna().all()
    # a pattern that does not match keeps the item as a still, and says so
    res = read_sheet(tmp_path / "st.csv", pattern=PATTERN)
    assert res.ratings["video"].isna().all() and "does not match" in res.issues["reason"].iloc[0]


# --- long sheets -------------------------------------------------------------------------------

LONG_HEADER = ["image", "rater", "orbital.tightening", "nose.bulge", "cheek.bulge", "ear.position",
               "whisker.change", "average", "rejected"]


def test_long_sheet_with_average_and_rejected(tmp_path):
    p = _write(tmp_path / "l.csv", [
        LONG_HEADER,
        ["a.png", "JS", 0, 1, 2, 1, 0, 0.8, "no"],
        ["a.png", "AB", 1, 1, 1, 1, 1, 1.2, ""],  # wrong average (true mean 1.0)
        ["b.png", "JS", 2, 2, 2, 2, 2, 2, "yes"],  # rejected
        ["c.png", "JS", 1, "-", 1, 1, 1, 1, 0],  # average over the scored AUs
    ])
    res = read_sheet(p)
    assert res.layout == "long" and set(res.ratings["rater"]) == {"JS", "AB"}
    assert "b.png" not in set(res.ratings["item"])
    assert res.missing["nb"] == 1
    reasons = dict(zip(res.issues["line"], res.issues["reason"]))
    assert set(reasons) == {3, 4}
    assert "average 1.2" in reasons[3] and "rejected" in reasons[4]
    assert _scores(res.ratings, "a.png", "AB") == dict.fromkeys(AUS, 1.0)  # imported despite the average


def test_scale_max_maps_a_0_to_9_sheet(tmp_path):
    header = ["image", "orbital.tightening", "nose.bulge", "cheek.bulge", "ear.position", "whisker.change"]
    p = _write(tmp_path / "l.csv", [header, ["a.png", 0, 9, 4.5, 3, 10]], sep=";")
    res = read_sheet(p, scale_max=9)
    s = _scores(res.ratings, "a.png", "1")
    assert s == pytest.approx({"ot": 0.0, "nb": 2.0, "cb": 1.0, "ep": 2 / 3})
    assert res.issues["reason"].iloc[0] == "out of range 0..9" and res.issues["line"].iloc[0] == 2
    assert res.missing_codes == ("-", "-1") and any("'9' is a valid score" in n for n in res.notes)


def test_no_au_columns_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no MGS action-unit columns"):
        read_sheet(_write(tmp_path / "x.csv", [["a", "b"], [1, 2]]))


# --- the command -------------------------------------------------------------------------------

def test_cli_import_writes_the_table_and_the_issues(tmp_path, capsys):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mfe.yaml").write_text(f"ratings:\n  pattern: '{PATTERN}'\n")
    sheet = _write(tmp_path / "My sheet.csv", [WIDE_HEADER, [IMG.format(m=1, s=5)] + [1] * 9 + [3]], sep=";", newline="\r\n")
    assert main(["ratings", "import", str(sheet), "-p", str(project), "--name", "week1"]) == 0
    out = capsys.readouterr().out
    assert "line 2:" in out and "out of range" in out
    r = pd.read_parquet(project / "ratings" / "week1.parquet")
    assert len(r) == 9 and r["time_s"].iloc[0] == 65.0
    issues = pd.read_csv(project / "ratings" / "week1.issues.csv")
    assert list(issues["line"]) == [2]
    assert not list((project / "ratings").glob(".*"))  # no temporary files left
    assert main(["ratings", "import", str(tmp_path / "nope.csv"), "-p", str(project)]) == 1
    assert "mfe ratings: error: no such rating sheet" in capsys.readouterr().err


# --- simulated raters --------------------------------------------------------------------------

def _truth(n_videos: int = 4, seconds: float = 7.0, fps: float = 10.0, au: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    parts = []
    for v in range(n_videos):
        n = int(seconds * fps)
        part = pd.DataFrame({"video": f"m{v + 1}_rec1_x", "animal": f"m{v + 1}", "frame": np.arange(n),
                             "time": np.arange(n) / fps})
        for c in ("au_orbital", "au_ear", "au_nose", "au_cheek", "au_whisker"):
            part[c] = np.clip(au + 0.1 * rng.standard_normal(n), 0, 1)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_raters_sample_every_n_seconds_with_their_bias():
    truth = _truth(n_videos=30)
    frames = rated_frames(truth, 3.0)
    assert sorted(frames.groupby("video").size().unique()) == [3]  # t = 0, 3, 6 s of 7 s
    assert set(frames["time"]) == {0.0, 3.0, 6.0}
    params = [{"rater": "1", "bias": -0.45, "noise": 0.3}, {"rater": "2", "bias": 0.0, "noise": 0.3},
              {"rater": "3", "bias": 0.45, "noise": 0.3}]
    sheet, info = rate_truth(truth, 3, 3.0, params=params)
    assert [c for c in sheet.columns if c[-1] == "3"] == [f"{a}3" for a in AUS]
    means = [sheet[[f"{a}{k}" for a in AUS]].to_numpy().mean() for k in (1, 2, 3)]
    assert means[0] < means[1] - 0.2 and means[2] > means[1] + 0.2
    assert sheet[[c for c in sheet.columns if c[:2] in AUS]].isin([0, 1, 2]).all().all()
    assert info[1]["mgs_total"]["rmse"] < info[0]["mgs_total"]["rmse"]
    drawn = rater_params(5, seed=3)
    assert len(drawn) == 5 and drawn == rater_params(5, seed=3) and len({d["bias"] for d in drawn}) == 5


def test_the_synthetic_sheet_reimports_to_the_same_scores(tmp_path, capsys):
    project = tmp_path / "proj"
    (project / "truth").mkdir(parents=True)
    _truth().to_parquet(project / "truth" / "truth.parquet")
    (project / "mfe.yaml").write_text("")  # `-p` names a project
    csv_path, json_path = write_rater_sheet(project, 3, every_s=2.0, seed=7)
    params = json.loads(json_path.read_text())["raters"]
    assert [p["rater"] for p in params] == ["1", "2", "3"] and {"bias", "noise", "mgs_total"} <= set(params[0])
    assert main(["ratings", "import", str(csv_path), "-p", str(project)]) == 0
    r = pd.read_parquet(project / "ratings" / "synthetic_raters.parquet")
    sheet = pd.read_csv(csv_path)
    assert len(r) == len(sheet) * 3 * 5 and r["video"].notna().all()
    row = sheet.iloc[5]
    got = _scores(r, f"{row['video']}:{row['frame']}", "2")
    assert got == {a: float(row[f"{a}2"]) for a in AUS}
    assert r.loc[r["item"] == f"{row['video']}:{row['frame']}", "time_s"].iloc[0] == pytest.approx(row["time_s"])
    assert pd.read_csv(project / "ratings" / "synthetic_raters.issues.csv").empty


def test_synth_takes_the_rater_flags():
    args = build_parser().parse_args(["synth", "out", "--raters", "3", "--rating_every", "2"])
    assert (args.raters, args.rating_every) == (3, 2.0)
    assert build_parser().parse_args(["synth", "out"]).raters is None  # default: no sheet


# --- metrics -----------------------------------------------------------------------------------

A = [0, 1, 2, 2, 1]
B = [1, 1, 2, 2, 2]


def test_kappa_r_and_rmse_by_hand():
    # sum (a-b)^2 = 2; SS_a = 2.8, SS_b = 1.2, n (mean a - mean b)^2 = 0.8 -> 1 - 2 / 4.8
    assert mgs.weighted_kappa(A, B) == pytest.approx(7 / 12)
    assert mgs.pearson_r(A, B) == pytest.approx(1.4 / np.sqrt(2.8 * 1.2))
    assert mgs.rmse(A, B) == pytest.approx(np.sqrt(2 / 5))
    assert mgs.weighted_kappa(A, A) == 1.0 and np.isnan(mgs.pearson_r(A, [1] * 5))
    assert mgs.weighted_kappa(A + [np.nan], B + [0]) == pytest.approx(7 / 12)  # NaN pairs dropped


def test_kappa_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.integers(0, 3, 40)
        b = np.clip(a + rng.integers(-1, 2, 40), 0, 2)
        assert mgs.weighted_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))


def _ratings(raters: dict[str, list[int]], au: str = "ot") -> pd.DataFrame:
    rows = []
    for rater, scores in raters.items():
        for i, s in enumerate(scores):
            rows += [dict(item=f"i{i}", animal=f"m{i % 3}", rater=rater, au=a, score=float(s if a == au else 1))
                     for a in AUS]
    return pd.DataFrame(rows)


def test_inter_rater_agreement_is_the_mean_pairwise_value():
    r = _ratings({"1": A, "2": B, "3": A})
    table = mgs.inter_rater(r, n_boot=200)
    pairs = [mgs.weighted_kappa(A, B), mgs.weighted_kappa(A, A), mgs.weighted_kappa(B, A)]
    assert table.loc["ot", "kappa"] == pytest.approx(np.mean(pairs))
    assert table.loc["ot", "n_raters"] == 3 and table.loc["ot", "n_items"] == 5
    assert table.loc["ot", "kappa_low"] <= table.loc["ot", "kappa"] + 1e-9 <= table.loc["ot", "kappa_high"] + 2e-9
    assert np.isnan(table.loc["nb", "kappa"])  # every rater gave 1: undefined, not perfect
    # the total is each rater's mean over the five AUs
    total = mgs.score_matrix(r, "total")
    assert total.loc["i0", "2"] == pytest.approx((1 + 4) / 5)


def test_a_predictor_against_the_mean_rater_and_the_truth():
    r = _ratings({"1": A, "2": B})
    mean = (np.array(A) + np.array(B)) / 2
    pred = pd.DataFrame({"item": [f"i{i}" for i in range(5)], "ot": mean + 0.1, "nb": 1.0, "cb": 1.0, "ep": 1.0, "wc": 1.0})
    t = mgs.vs_mean_rater(r, pred, n_boot=100)
    assert t.loc["ot", "rmse"] == pytest.approx(0.1) and t.loc["ot", "r"] == pytest.approx(1.0)
    assert t.loc["ot", "ceiling_kappa"] == pytest.approx(7 / 12)
    assert t.loc["total", "r"] == pytest.approx(1.0)
    long = pred.melt(id_vars="item", var_name="au", value_name="score")
    assert mgs.vs_mean_rater(r, long, n_boot=0).loc["ot", "rmse"] == pytest.approx(0.1)
    res = mgs.vs_truth(A, B, groups=["m1", "m1", "m2", "m2", "m3"], n_boot=200, seed=1)
    assert res["rmse"].value == pytest.approx(np.sqrt(2 / 5)) and res["r"].n_boot > 0
    assert res["rmse"] == mgs.vs_truth(A, B, groups=["m1", "m1", "m2", "m2", "m3"], n_boot=200, seed=1)["rmse"]


def test_leave_one_rater_out_compares_model_and_rater_with_the_same_reference():
    C = [2, 1, 0, 0, 1]
    r = _ratings({"1": A, "2": B, "3": C})
    x = np.array([0.5, 1.0, 1.5, 0.2, 1.8])
    pred = pd.DataFrame({"item": [f"i{i}" for i in range(5)], "ot": x, "nb": 1.0, "cb": 1.0, "ep": 1.0, "wc": 1.0})
    t = mgs.leave_one_rater_out(r, pred)
    own = {"1": A, "2": B, "3": C}
    rest = {k: np.mean([v for j, v in own.items() if j != k], axis=0) for k in own}
    assert t.loc["ot", "loro_kappa"] == pytest.approx(np.nanmean([mgs.weighted_kappa(x, rest[k]) for k in own]))
    assert t.loc["ot", "loro_ceiling_kappa"] == pytest.approx(np.nanmean([mgs.weighted_kappa(own[k], rest[k]) for k in own]))
    assert t.loc["ot", "loro_r"] == pytest.approx(np.nanmean([mgs.pearson_r(x, rest[k]) for k in own]))
    full = mgs.vs_mean_rater(r, pred, n_boot=0)
    assert full.loc["ot", "loro_kappa"] == pytest.approx(t.loc["ot", "loro_kappa"])
    one = mgs.vs_mean_rater(_ratings({"1": A}), pred, n_boot=0)  # one rater: no one to leave out
    assert np.isnan(one.loc["ot", "loro_kappa"]) and mgs.leave_one_rater_out(_ratings({"1": A}), pred).empty


def test_bootstrap_resamples_whole_animals():
    seen = []
    ci = mgs.bootstrap(lambda idx: seen.append(sorted(idx)) or float(len(idx)), ["a", "a", "b", None], n=50)
    assert ci.value == 4.0 and ci.n_boot == 50
    # "a" comes with both of its rows; the row without an animal is its own group
    assert all(s.count(0) == s.count(1) for s in seen[1:])


def test_ratings_import_helper_raises_when_nothing_is_imported(tmp_path):
    p = _write(tmp_path / "bad.csv", [WIDE_HEADER, ["a.png"] + [5] * 10])
    with pytest.raises(ValueError, match="no score could be imported"):
        import_ratings(p, tmp_path)
    assert len(pd.read_csv(tmp_path / "ratings" / "bad.issues.csv")) == 10
