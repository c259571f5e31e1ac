"""`mfe synth` behaviour and physiology: the body keypoint and physiology.csv contracts, effects
that follow ``behaviour_effect`` / ``physiology_effect`` (0 = no information), and the face
outputs untouched by them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.io.dlc import read_dlc
from mouse_facial_expressions.io.video import iter_frames
from mouse_facial_expressions.synth import SCORER, generate_cohort, make_config, truth_table
from mouse_facial_expressions.synth.body import BODY_SCORER, BODYPARTS, simulate_body
from mouse_facial_expressions.synth.cohort import modality_truth

SMALL = dict(mice=2, recordings=[1, 4], seconds=3.0)
#: Long enough videos for per-video means, a strong face effect, nothing rendered.
STRONG = dict(mice=8, recordings=[1, 4], seconds=20.0, effect_size=0.8)


def _late_treated(df: pd.DataFrame) -> pd.Series:
    """Treated (every second animal: saline, high, ...) at a recording after the injection."""
    return (df.animal.str[1:].astype(int) % 2 == 0) & (df.recording >= 2)


@pytest.fixture(scope="module")
def truth(tiny_cohort) -> pd.DataFrame:
    return pd.read_parquet(tiny_cohort / "truth" / "truth.parquet")


# --- file contracts -----------------------------------------------------------------------------

def test_body_dlc_files_follow_the_contract(tiny_cohort, truth):
    folder = tiny_cohort / "keypoints" / "body"
    videos = truth.video.unique()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{v}{BODY_SCORER}{ext}" for v in videos for ext in (".h5", ".csv"))
    body = pd.read_parquet(tiny_cohort / "truth" / "body.parquet")
    for video in videos:
        h5 = pd.read_hdf(folder / f"{video}{BODY_SCORER}.h5", key="df_with_missing")
        csv = pd.read_csv(folder / f"{video}{BODY_SCORER}.csv", header=[0, 1, 2], index_col=0)
        face = pd.read_hdf(tiny_cohort / "keypoints" / "dlc" / f"{video}{SCORER}.h5", key="df_with_missing")
        assert h5.columns.names == ["scorer", "bodyparts", "coords"]
        assert list(h5.columns.get_level_values("scorer").unique()) == [BODY_SCORER]
        assert list(h5.columns.get_level_values("bodyparts").unique()) == list(BODYPARTS)
        assert list(h5.columns.get_level_values("coords").unique()) == ["x", "y", "likelihood"]
        assert len(h5) == len(face) == (truth.video == video).sum() == (body.video == video).sum()
        assert list(csv.columns) == list(h5.columns)
        np.testing.assert_allclose(csv.to_numpy(), h5.to_numpy(), rtol=1e-9)
        pose = read_dlc(folder / f"{video}{BODY_SCORER}.h5")  # the library's reader takes it as it is
        assert pose.bodyparts == list(BODYPARTS) and len(pose) == len(h5)


def test_body_keypoints_track_the_true_body(tiny_cohort, truth):
    body = pd.read_parquet(tiny_cohort / "truth" / "body.parquet")
    pd.testing.assert_frame_equal(body[["video", "frame"]], truth[["video", "frame"]])
    np.testing.assert_array_equal(body.intensity, truth.intensity)  # driven by the face's latent
    liks, errs = [], []
    for video, t in body.groupby("video", sort=False):
        df = pd.read_hdf(tiny_cohort / "keypoints" / "body" / f"{video}{BODY_SCORER}.h5").droplevel(0, axis=1)
        for b in BODYPARTS:
            lik = df[(b, "likelihood")].to_numpy()
            err = np.hypot(df[(b, "x")] - t[f"{b}_x"].to_numpy(), df[(b, "y")] - t[f"{b}_y"].to_numpy())
            liks.append(lik)
            errs.append(err[lik > 0.9])
    lik, err = np.concatenate(liks), np.concatenate(errs)
    assert 0.85 < (lik > 0.9).mean() < 1.0  # mostly high, with dropouts
    assert np.median(err) < 2 and err.max() < 8


def test_physiology_csv_has_one_row_per_animal_and_recording(tiny_cohort, truth):
    phys = pd.read_csv(tiny_cohort / "metadata" / "physiology.csv")
    assert list(phys.columns) == ["animal", "recording", "temperature_c", "weight_g"]
    assert not phys.duplicated(["animal", "recording"]).any()
    pairs = set(truth[["animal", "recording"]].drop_duplicates().itertuples(index=False, name=None))
    assert set(phys[["animal", "recording"]].itertuples(index=False, name=None)) == pairs
    assert phys.temperature_c.between(33, 39).all() and phys.weight_g.between(18, 33).all()
    full = pd.read_csv(tiny_cohort / "truth" / "physiology.csv")
    pd.testing.assert_frame_equal(full[list(phys.columns)], phys)


def test_modality_truth_is_what_generate_cohort_writes(tiny_cohort):
    body, phys = modality_truth("tiny", seed=0)
    pd.testing.assert_frame_equal(body, pd.read_parquet(tiny_cohort / "truth" / "body.parquet"))
    pd.testing.assert_frame_equal(phys, pd.read_csv(tiny_cohort / "truth" / "physiology.csv"), check_dtype=False)


# --- effects: present at 1, absent at 0 ---------------------------------------------------------

def test_sick_animals_move_less_rear_less_and_hunch():
    body, _ = modality_truth("tiny", seed=1, **STRONG)
    sick = _late_treated(body)
    per = body.groupby([sick, "video"]).agg(speed=("speed_true", "mean"), rear=("rearing_true", "mean"),
                                            length=("elongation_true", "mean")).groupby(level=0).mean()
    assert per.speed[True] < 0.6 * per.speed[False], per
    assert per.rear[True] < per.rear[False] and per.length[True] < 0.95 * per.length[False], per


def test_behaviour_effect_zero_makes_the_body_independent_of_the_condition():
    sick = modality_truth("tiny", seed=1, behaviour_effect=0.0, **STRONG)[0]
    healthy = modality_truth("tiny", seed=1, behaviour_effect=0.0, **{**STRONG, "effect_size": 0.0})[0]
    assert (sick.intensity - healthy.intensity)[_late_treated(sick)].mean() > 0.5  # the latent moved...
    cols = [c for c in sick.columns if c != "intensity"]
    pd.testing.assert_frame_equal(sick[cols], healthy[cols])  # ...the body did not
    # the same comparison at behaviour_effect=1 does see the condition
    moved = modality_truth("tiny", seed=1, **STRONG)[0]
    still = modality_truth("tiny", seed=1, **{**STRONG, "effect_size": 0.0})[0]
    late = _late_treated(moved)
    assert moved.speed_true[late].mean() < 0.7 * still.speed_true[late].mean()


def test_simulate_body_ignores_intensity_at_effect_zero():
    def run(intensity, effect):
        return simulate_body(np.random.default_rng(4), np.full(150, intensity), 15.0, effect)

    calm, ill = run(0.0, 0.0), run(1.0, 0.0)
    for key in ("speed", "rearing", "elongation", "head"):
        np.testing.assert_array_equal(calm[key], ill[key], err_msg=key)
    assert run(1.0, 1.0)["elongation"].mean() < 0.9 * run(0.0, 1.0)["elongation"].mean()


def test_physiology_follows_physiology_effect():
    def phys(effect_size, effect):
        return modality_truth("tiny", seed=2, physiology_effect=effect, **{**STRONG, "effect_size": effect_size})[1]

    healthy, sick = phys(0.0, 1.0), phys(0.8, 1.0)
    late = _late_treated(sick)
    drop = healthy.temperature_c - sick.temperature_c  # the same noise draws: only the effect differs
    assert (drop[late] > 0).all() and drop[late].mean() > 0.3 and (drop[~late] == 0).all()
    lost = healthy.weight_g - sick.weight_g
    assert (lost[late] > 0).all() and lost[late].mean() > 0.3
    pd.testing.assert_frame_equal(phys(0.8, 0.0)[["animal", "recording", "temperature_c", "weight_g"]],
                                  phys(0.0, 0.0)[["animal", "recording", "temperature_c", "weight_g"]])


# --- the face outputs do not move; flags, synth.json, validation ------------------------------

def test_new_settings_leave_the_truth_table_unchanged():
    base = truth_table("tiny", seed=3, **SMALL)
    for over in (dict(behaviour_effect=0.0, physiology_effect=0.0), dict(behaviour_effect=2.5, physiology_effect=3.0)):
        pd.testing.assert_frame_equal(truth_table("tiny", seed=3, **SMALL, **over), base)


def test_cli_effect_flags_change_only_the_new_files(tmp_path, capsys):
    from mouse_facial_expressions.cli import main

    a = generate_cohort(tmp_path / "a", "tiny", seed=4, **SMALL)
    b = tmp_path / "b"
    assert main(["synth", str(b), "--seed", "4", "--mice", "2", "--recordings", "1,4", "--seconds", "3",
                 "--behaviour-effect", "0", "--physiology_effect", "0"]) == 0
    out = capsys.readouterr().out
    assert "keypoints/body/<video>" in out and "behaviour_effect=0" in out and "metadata/physiology.csv" in out
    config = json.loads((b / "truth" / "synth.json").read_text())["config"]
    assert config["behaviour_effect"] == 0.0 and config["physiology_effect"] == 0.0
    assert json.loads((a / "truth" / "synth.json").read_text())["config"]["behaviour_effect"] == 1.0
    for name in ("truth/truth.parquet", "truth/animals.csv", "metadata/raw_videos.csv", "metadata/treatments.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for f in sorted((a / "keypoints" / "dlc").glob("*.h5")):
        pd.testing.assert_frame_equal(pd.read_hdf(f), pd.read_hdf(b / "keypoints" / "dlc" / f.name))
    files = sorted((a / "videos" / "raw").glob("*.mp4"))
    assert len(files) == 5
    for f in files:
        fa = np.stack([x for _, x in iter_frames(f)])
        np.testing.assert_array_equal(fa, np.stack([x for _, x in iter_frames(b / "videos" / "raw" / f.name)]))
    body_a, body_b = (pd.read_parquet(p / "truth" / "body.parquet") for p in (a, b))
    assert not np.allclose(body_a.elongation_true, body_b.elongation_true)


@pytest.mark.parametrize("name", ["behaviour_effect", "physiology_effect"])
@pytest.mark.parametrize("value", [-0.5, float("nan")])
def test_negative_or_nan_effect_is_an_error(name, value):
    with pytest.raises(ValueError, match=name):
        make_config("tiny", **{name: value})
