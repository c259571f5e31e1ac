"""`mfe synth` shifts (brightness, contrast, zoom, blur) and planted confounds (control
brightness, recording cue, occluder with treatment, control handling): defaults change
nothing, each option changes what it says, the action units never change, the truth records it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from mouse_facial_expressions.config import Config, load_config
from mouse_facial_expressions.io.video import iter_frames
from mouse_facial_expressions.synth import generate_cohort, make_config, truth_table
from mouse_facial_expressions.synth.motion import simulate_track
from mouse_facial_expressions.synth.mouse import AU_NAMES, SHADE
from mouse_facial_expressions.synth.params import CONTROL_TREATMENTS, SynthConfig
from mouse_facial_expressions.synth.motion import motion_kernel
from mouse_facial_expressions.synth.mouse import draw_mouse
from mouse_facial_expressions.synth.render import (Y_TOP, Shift, _vignette, apply_shift, background, cohort_looks,
                                                   draw_occluder, lighting_lut)
from mouse_facial_expressions.synth.stamp import draw_stamp, read_stamp, stamp_box
from mouse_facial_expressions.synth.takes import _intensity, _simulate, _video_plan, make_animals, video_frames
from mouse_facial_expressions.synth.truth import _truth_part

SMALL = dict(mice=2, recordings=[1, 4], seconds=3.0)
#: Every new option, spelled out at the value that changes nothing.
EXPLICIT_DEFAULTS = dict(brightness=0.0, contrast=1.0, zoom=1.0, blur=0.0, control_brightness=0.0,
                         rec_cue="4:0", occluder_treated=None, control_handling=0.0)
NEW_COLUMNS = ["shift_brightness", "shift_contrast", "shift_zoom", "shift_blur", "control_bright", "cue",
               "occluder", "handled"]
AU_COLUMNS = [f"au_{k}" for k in AU_NAMES] + ["intensity", "label", "label_true"]


def _takes(preset: str = "tiny", **overrides):
    """``(cfg, v, a, look)`` of every kept camera take of a small cohort."""
    cfg = make_config(preset, **{**SMALL, **overrides})
    animals = make_animals(cfg)
    looks = cohort_looks(np.random.default_rng(np.random.SeedSequence([cfg.seed, 3])), cfg.cohorts, cfg.lighting)
    by_name = animals.set_index("animal")
    return [(cfg, v, by_name.loc[v["animal"]], looks[v["cohort"]]) for v in _video_plan(cfg, animals)
            if not v["discard"]]


def _frames(take, n: int = 3) -> np.ndarray:
    """The first ``n`` rendered (unencoded) frames of a take, float."""
    cfg, v, a, look = take
    it = video_frames(cfg, v, a, look, _simulate(cfg, v, a, look))
    return np.stack([next(it) for _ in range(n)]).astype(float)


def _face_box(take, t: int = 0) -> tuple[slice, slice]:
    """Rows and columns around the head centre of frame ``t``."""
    cfg, v, a, look = take
    sim = _simulate(cfg, v, a, look)
    x, y, L = sim["track"]["x"][t], sim["track"]["y"][t], sim["L"]
    return slice(int(y - 0.5 * L), int(y + 0.5 * L)), slice(int(x - 0.7 * L), int(x + 0.7 * L))


def _is_control(treatment) -> bool:
    return str(treatment).lower() in CONTROL_TREATMENTS


# --- the defaults change nothing ----------------------------------------------------------

def _old_simulate(cfg: SynthConfig, v: dict, a: pd.Series, look) -> dict:
    """``cohort._simulate`` as it was before shifts and confounds existed (verbatim)."""
    width, height = cfg.size
    r_track, r_au, r_render, r_kp = (np.random.default_rng(s) for s in np.random.SeedSequence(
        [cfg.seed, 10, int(v["animal"][1:]), v["recording"], v["discard"]]).spawn(4))
    L = cfg.head_len * look.zoom
    track = simulate_track(r_track, v["n_raw"], cfg.fps, width, height, L, cfg.p_rear, cfg.p_look_away,
                           cfg.p_blur, y_top=Y_TOP, dy=look.dy * L)
    intensity, aus = _intensity(cfg, a, v, r_au, v["n_raw"])
    if r_track.random() >= cfg.p_occluder:
        bar = None
    else:
        xc, w = r_track.uniform(0.2 * width, 0.8 * width), 0.3 * L
        bar = (xc - w / 2, xc + w / 2, r_track.uniform(0.45 * height, 0.75 * height))
    return dict(track=track, intensity=intensity, aus=aus, bar=bar, L=L, r_render=r_render, r_kp=r_kp)


def _old_render_frames(track, aus, L, width, height, look, bar, rng, shade):
    """``render.render_frames`` as it was before shifts existed (verbatim)."""
    bg = background(rng, width, height, look)
    vig = _vignette(width, height, look.vignette)
    lut = lighting_lut(look)
    noise = [rng.normal(0, look.noise_sd, (height, width)).astype(np.float32) for _ in range(5)]
    order = rng.integers(0, len(noise), len(aus))
    pad = int(4 * L)
    fur = cv2.GaussianBlur(rng.normal(0, 1, (height + 2 * pad, width + 2 * pad)).astype(np.float32), (0, 0), 0.8)
    fur = np.round(fur * (5.0 / fur.std())).astype(np.int16)
    for t in range(len(aus)):
        img = bg.copy()
        draw_mouse(img, track["x"][t], track["y"][t], int(track["s"][t]), track["yaw"][t],
                   track["pitch"][t], track["body_pitch"][t], L, aus[t], shade, track["tail_phase"][t], track["body_yaw"][t])
        ox = int(np.clip(pad - round(track["x"][t]) + width // 2, 0, 2 * pad))
        oy = int(np.clip(pad - round(track["y"][t]) + height // 2, 0, 2 * pad))
        on_mouse = img != bg
        tex = fur[oy:oy + height, ox:ox + width]
        img = np.where(on_mouse, np.clip(img + tex, 0, 255), img).astype(np.uint8)
        if track["blur_len"][t] >= 2:
            x0, x1 = (int(np.clip(track["x"][t] + d * L, 0, width)) for d in (-3.6, 3.6))
            y0, y1 = (int(np.clip(track["y"][t] + d * L, 0, height)) for d in (-1.6, 2.4))
            img[y0:y1, x0:x1] = cv2.filter2D(img[y0:y1, x0:x1], -1, motion_kernel(
                track["blur_len"][t], track["blur_angle"][t]), borderType=cv2.BORDER_REFLECT)
        draw_occluder(img, bar)
        img = cv2.LUT(img, lut).astype(np.float32) * vig + noise[order[t]]
        frame = np.clip(img, 0, 255).astype(np.uint8)
        yield draw_stamp(frame, t)


@pytest.mark.parametrize("overrides", [{}, EXPLICIT_DEFAULTS], ids=["defaults", "explicit-defaults"])
def test_default_options_give_the_frames_and_truth_of_the_old_generator(overrides):
    takes = _takes(seed=3, **overrides)
    for cfg, v, a, look in takes:
        old, new = _old_simulate(cfg, v, a, look), _simulate(cfg, v, a, look)
        for key, arr in old["track"].items():
            np.testing.assert_array_equal(new["track"][key], arr, err_msg=key)
        np.testing.assert_array_equal(new["aus"], old["aus"])
        assert new["bar"] == old["bar"] and new["L"] == old["L"]
        assert new["shift"].identity and not new["handled"]
        coat = {k: SHADE[k] + a.fur for k in ("fur", "body", "far_ear", "ear", "lid")}
        before = _old_render_frames(old["track"], old["aus"], old["L"], *cfg.size, look, old["bar"], old["r_render"], coat)
        after = list(video_frames(cfg, v, a, look, new))
        assert len(after) == v["n_raw"]
        for t, (f0, f1) in enumerate(zip(before, after)):
            assert f0.tobytes() == f1.tobytes(), f"{v['animal']} rec{v['recording']} frame {t} differs"
        # the truth rows of the old simulation equal the new ones, new columns neutral
        rec_labels = Config().video.recording_labels
        t_old = _truth_part(cfg, rec_labels, v, a, {**old, "shift": Shift(), "handled": False}, None)
        t_new = _truth_part(cfg, rec_labels, v, a, new, None)
        pd.testing.assert_frame_equal(t_new, t_old)
        assert (t_new.shift_brightness == 0).all() and (t_new.shift_contrast == 1).all()
        assert (t_new.shift_zoom == 1).all() and (t_new.shift_blur == 0).all() and (t_new.cue == 0).all()
        assert not t_new.handled.any() and (t_new.control_bright == 0).all()


def test_truth_table_with_explicit_defaults_is_identical():
    pd.testing.assert_frame_equal(truth_table("tiny", seed=3), truth_table("tiny", seed=3, **EXPLICIT_DEFAULTS))
    assert make_config("demo", zoom=1.0).crop_size == make_config("demo").crop_size == 128


def test_cli_with_explicit_default_flags_writes_the_same_videos(tmp_path):
    from mouse_facial_expressions.cli import main

    a = generate_cohort(tmp_path / "a", "tiny", seed=4, **SMALL)
    b = tmp_path / "b"
    assert main(["synth", str(b), "--seed", "4", "--mice", "2", "--recordings", "1,4", "--seconds", "3",
                 "--brightness", "0", "--contrast", "1", "--zoom", "1", "--blur", "0", "--control-brightness", "0",
                 "--rec-cue", "4:0", "--control-handling", "0"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(a / "truth" / "truth.parquet"),
                                  pd.read_parquet(b / "truth" / "truth.parquet"))
    files = sorted((a / "videos" / "raw").glob("*.mp4"))
    assert len(files) == 5
    for f in files:
        fa = np.stack([x for _, x in iter_frames(f)])
        fb = np.stack([x for _, x in iter_frames(b / "videos" / "raw" / f.name)])
        np.testing.assert_array_equal(fa, fb)


# --- each shift changes what it should ------------------------------------------------------

@pytest.mark.parametrize("grey", [40.0, -40.0])
def test_brightness_adds_grey_levels_to_the_face(grey):
    base, shifted = _takes()[0], _takes(brightness=grey)[0]
    rows, cols = _face_box(base)
    diff = (_frames(shifted) - _frames(base))[:, rows, cols].mean()
    assert abs(diff - grey) < 1.0, diff
    y_stamp = stamp_box()[1]
    assert (_frames(shifted)[:, y_stamp + 2:, :] - _frames(base)[:, y_stamp + 2:, :]).mean() == pytest.approx(grey, abs=1.0)


def test_contrast_scales_the_spread_of_grey_levels():
    base, flat, harsh = _takes()[0], _takes(contrast=0.6)[0], _takes(contrast=1.4)[0]
    rows, cols = _face_box(base)
    sd = {k: _frames(t)[:, rows, cols].std() for k, t in (("base", base), ("flat", flat), ("harsh", harsh))}
    assert 0.55 < sd["flat"] / sd["base"] < 0.65, sd
    assert 1.3 < sd["harsh"] / sd["base"] < 1.45, sd


def test_blur_reduces_the_sharpness_of_the_face():
    base, blurred = _takes()[0], _takes(blur=1.5)[0]
    rows, cols = _face_box(base)

    def sharpness(take):
        return float(np.mean([cv2.Laplacian(f[rows, cols].astype(np.float32), cv2.CV_32F).var() for f in _frames(take)]))

    assert sharpness(blurred) < 0.3 * sharpness(base)
    # the shift is applied before the sensor noise; the stamp is drawn after it and decodes
    frame = _frames(blurred, 1)[0].astype(np.uint8)
    assert read_stamp(frame) == 0


def test_apply_shift_formula():
    img = np.array([[0.0, 128.0, 200.0]], np.float32)
    assert apply_shift(img, None) is img and apply_shift(img, Shift()) is img
    np.testing.assert_allclose(apply_shift(img, Shift(brightness=10, contrast=0.5)), [[74.0, 138.0, 174.0]])


@pytest.mark.parametrize("zoom", [0.85, 1.2])
def test_zoom_scales_the_head_in_the_truth_keypoints(zoom):
    base = truth_table("tiny", seed=2, **SMALL)
    zoomed = truth_table("tiny", seed=2, zoom=zoom, **SMALL)

    def nose_ear(t):
        t = t[t.visible & (t.yaw == 1.0)]
        ear_x = np.where(t.side == "right", t.right_ear_x, t.left_ear_x)
        ear_y = np.where(t.side == "right", t.right_ear_y, t.left_ear_y)
        return float(np.median(np.hypot(t.nose_x - ear_x, t.nose_y - ear_y)))

    assert nose_ear(zoomed) / nose_ear(base) == pytest.approx(zoom, rel=0.01)
    assert (zoomed.shift_zoom == zoom).all()
    pd.testing.assert_frame_equal(zoomed[AU_COLUMNS], base[AU_COLUMNS])


@pytest.mark.parametrize("zoom", [0.85, 1.2])
def test_zoomed_demo_renders_and_the_face_crop_fits(zoom):
    cfg = make_config("demo", zoom=zoom)
    assert cfg.size == (320, 240)
    assert cfg.crop_size >= 2.4 * cfg.head_len * zoom and (cfg.crop_size > 128) == (zoom > 1)
    t = truth_table("demo", zoom=zoom, mice=2, seconds=3.0)
    head_top = t[[f"{b}_{c}" for b in ("nose", "left_eye", "left_ear", "right_eye", "right_ear") for c in "y"]].min(axis=1)
    assert (head_top - 0.75 * cfg.head_len * zoom * 1.08 > stamp_box()[1]).all()
    assert t.visible.mean() > 0.5
    take = _takes("demo", zoom=zoom)[0]
    frame = _frames(take, 1)[0]
    assert frame.shape == (240, 320)


def test_zoom_that_does_not_fit_the_frame_is_an_error():
    with pytest.raises(ValueError, match="too small"):
        make_config("tiny", zoom=1.6)


# --- confounds: only where they belong, and recorded ----------------------------------------

def test_control_brightness_touches_only_control_videos():
    base, conf = _takes(), _takes(control_brightness=30.0)
    seen = set()
    for b, c in zip(base, conf):
        control = _is_control(b[2].treatment)
        seen.add(control)
        diff = _frames(c, 2) - _frames(b, 2)
        if control:
            assert diff[:, stamp_box()[1] + 2:].mean() == pytest.approx(30.0, abs=1.0)
        else:
            assert not diff.any()
    assert seen == {True, False}
    t = truth_table("tiny", control_brightness=30.0, **SMALL)
    control = t.treatment.map(_is_control)
    assert (t.control_bright == np.where(control, 30.0, 0.0)).all()
    assert (t.shift_brightness == t.control_bright).all() and (t.cue == 0).all()


@pytest.mark.parametrize("cue", ["4:30", {4: 30}, [(4, 30)], ((4, 30.0),)])
def test_rec_cue_spellings_normalise_to_pairs(cue):
    cfg = make_config("tiny", rec_cue=cue)
    assert cfg.rec_cue == ((4, 30.0),) and cfg.to_dict()["rec_cue"] == [[4, 30.0]]
    json.dumps(cfg.to_dict())


def test_rec_cue_pixels_and_truth():
    base, conf = _takes(), _takes(rec_cue="4:30")
    recs = set()
    for b, c in zip(base, conf):
        recs.add(b[1]["recording"])
        diff = _frames(c, 2) - _frames(b, 2)
        if b[1]["recording"] == 4:
            assert diff[:, stamp_box()[1] + 2:].mean() == pytest.approx(30.0, abs=1.0)
        else:
            assert not diff.any()
    assert recs == {1, 4}
    t = truth_table("tiny", rec_cue="4:30", brightness=-10.0, **SMALL)
    assert (t.cue == np.where(t.recording == 4, 30.0, 0.0)).all()
    assert (t.shift_brightness == t.cue - 10.0).all()


@pytest.mark.parametrize("p", [1.0, 0.0])
def test_occluder_treated_sets_the_feeder_bar_of_treated_videos(p):
    base = truth_table("tiny", seed=1, mice=4, seconds=3.0)
    conf = truth_table("tiny", seed=1, mice=4, seconds=3.0, occluder_treated=p)
    treated = ~conf.treatment.map(_is_control)
    assert (conf.occluder[treated] == bool(p)).all()
    pd.testing.assert_frame_equal(conf[~treated], base[~treated])  # controls keep p_occluder
    pd.testing.assert_frame_equal(conf[AU_COLUMNS], base[AU_COLUMNS])
    if p == 1.0:  # and the bar is drawn: dark pixels below the stamp where the truth says
        for take in _takes(mice=4, occluder_treated=1.0):
            cfg, v, a, look = take
            if _is_control(a.treatment):
                continue
            x0, x1, y1 = _simulate(cfg, v, a, look)["bar"]
            frame = _frames(take, 1)[0]
            assert frame[Y_TOP + 2:int(y1) - 4, int(x0) + 1:int(x1) - 1].mean() < 70


def test_control_handling_changes_only_the_controls_nuisance_rates():
    over = dict(seed=1, mice=4, seconds=40.0, recordings=[1, 4])
    base = truth_table("tiny", **over)
    conf = truth_table("tiny", control_handling=3.0, **over)
    control = conf.treatment.map(_is_control)
    assert (conf.handled == control).all()
    pd.testing.assert_frame_equal(conf[~control], base[~control])
    pd.testing.assert_frame_equal(conf[AU_COLUMNS], base[AU_COLUMNS])

    def nuisance(t):
        t = t[t.treatment.map(_is_control)]
        return float((t.looking_away | t.rearing | t.blurred).mean())

    assert nuisance(conf) > 1.5 * nuisance(base)


def test_shifts_and_confounds_never_change_the_action_units():
    base = truth_table("tiny", seed=5, **SMALL)
    every = truth_table("tiny", seed=5, brightness=25.0, contrast=0.7, zoom=1.1, blur=1.0, control_brightness=15.0,
                        rec_cue="4:20", occluder_treated=1.0, control_handling=2.0, **SMALL)
    pd.testing.assert_frame_equal(every[AU_COLUMNS], base[AU_COLUMNS])
    pd.testing.assert_frame_equal(every[["video", "frame", "raw_frame"]], base[["video", "frame", "raw_frame"]])


# --- validation, CLI, synth.json --------------------------------------------------------------

@pytest.mark.parametrize("bad, match", [
    (dict(contrast=0.0), "contrast"), (dict(zoom=-1.0), "zoom"), (dict(blur=-1.0), "blur"),
    (dict(brightness=300.0), "brightness"), (dict(control_brightness=float("nan")), "control_brightness"),
    (dict(occluder_treated=1.5), "occluder_treated"), (dict(control_handling=-2.0), "control_handling"),
    (dict(rec_cue="7:30"), "recording"), (dict(rec_cue="4=30"), "rec_cue"), (dict(rec_cue="4:30,4:10"), "twice"),
])
def test_invalid_shift_settings_are_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        make_config("tiny", **bad)


def test_cli_shift_and_confound_flags_reach_the_truth_and_synth_json(tmp_path, capsys):
    from mouse_facial_expressions.cli import main

    out = tmp_path / "p"
    assert main(["synth", str(out), "--mice", "2", "--recordings", "1,4", "--seconds", "3", "--zoom", "1.2",
                 "--brightness", "-20", "--contrast", "0.9", "--blur", "1", "--control-brightness", "10",
                 "--rec-cue", "4:30", "--occluder-treated", "1", "--control-handling", "1"]) == 0
    assert "shifts/confounds" in capsys.readouterr().out
    info = json.loads((out / "truth" / "synth.json").read_text())
    expected = dict(brightness=-20.0, contrast=0.9, zoom=1.2, blur=1.0, control_brightness=10.0,
                    rec_cue=[[4, 30.0]], occluder_treated=1.0, control_handling=1.0)
    assert {k: info["config"][k] for k in expected} == expected
    assert info["crop_size"] == make_config("tiny", zoom=1.2).crop_size == load_config(out).extract.crop_size
    t = pd.read_parquet(out / "truth" / "truth.parquet")
    assert set(NEW_COLUMNS) <= set(t.columns)
    control = t.treatment.map(_is_control)
    expected_bright = -20.0 + np.where(control, 10.0, 0.0) + np.where(t.recording == 4, 30.0, 0.0)
    np.testing.assert_allclose(t.shift_brightness, expected_bright)
    assert (t.occluder[~control]).all() and (t.handled == control).all()
    assert (t.shift_zoom == 1.2).all() and (t.shift_blur == 1.0).all() and (t.shift_contrast == 0.9).all()
    for f in sorted((out / "videos" / "raw").glob("*.mp4")):  # the stamps survive the shifts
        decoded = [read_stamp(x) for _, x in iter_frames(f)]
        assert decoded == list(range(len(decoded)))
