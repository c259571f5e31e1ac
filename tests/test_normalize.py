"""extract.normalize: none / video_hist / clahe, in the frame store, its records, and mfe predict.

The extraction tests run the ``tiny`` synthetic cohort (prepare + keypoints import + extract,
a few seconds); the predict tests reuse the session's tiny trained run (``conftest.run``)
with a private copy of its task whose store.json says ``video_hist``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from mouse_facial_expressions.config import NORMALIZE_METHODS, ConfigError, load_config
from mouse_facial_expressions.inference.ensemble import load_ensemble
from mouse_facial_expressions.io.keypoints import import_keypoints
from mouse_facial_expressions.io.video import iter_frames, probe, write_video
from mouse_facial_expressions.preprocess import normalize as norm
from mouse_facial_expressions.preprocess import store
from mouse_facial_expressions.preprocess.extract import _settings, crop_video, extract_videos, read_keypoints, video_status
from mouse_facial_expressions.preprocess.prepare import prepare_videos

torch.set_num_threads(1)


def _lighting(x: np.ndarray, gain: float = 0.7, offset: float = 30.0) -> np.ndarray:
    """A global brightness/contrast change of a whole video."""
    return np.clip(np.round(gain * x.astype(np.float64) + offset), 0, 255).astype(np.uint8)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int64) - b.astype(np.int64)).mean())


def _set_yaml(project: Path, **extract) -> None:
    data = yaml.safe_load((project / "mfe.yaml").read_text())
    data.setdefault("extract", {}).update(extract)
    (project / "mfe.yaml").write_text(yaml.safe_dump(data))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, tiny_cohort):
    """The tiny cohort prepared, imported and extracted with the default (``none``). Read-only."""
    project = tmp_path_factory.mktemp("norm") / "project"
    shutil.copytree(tiny_cohort, project)
    cfg = load_config(project)
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    rep = extract_videos(cfg, progress=False)
    assert rep.ok, rep.summary()
    return project


def _copy(project: Path, dest: Path):
    shutil.copytree(project, dest)
    return load_config(dest)


def _video_crops(project: Path) -> np.ndarray:
    fdir = load_config(project).path("frames")
    return np.asarray(store.open_frames(fdir, store.complete_videos(fdir)[0]))


# ----------------------------------------------------------------------------- the functions


def test_methods_are_the_config_choices_and_an_unknown_one_lists_them(tmp_path):
    assert norm.METHODS == NORMALIZE_METHODS and norm.DEFAULT == NORMALIZE_METHODS[0] == "none"
    with pytest.raises(ValueError, match="choices: none, video_hist, clahe"):
        norm.normalize_video(np.zeros((1, 4, 4), np.uint8), "hist")
    (tmp_path / "mfe.yaml").write_text("extract:\n  normalize: hist\n")
    with pytest.raises(ConfigError, match=r"extract\.normalize: .*'none', 'video_hist' or 'clahe'.*got 'hist'"):
        load_config(tmp_path)
    (tmp_path / "mfe.yaml").write_text("extract:\n  normalize: clahe\n")
    assert load_config(tmp_path).extract.normalize == "clahe"


def test_none_leaves_the_crops_byte_identical(extracted):
    crops = _video_crops(extracted)
    before = crops.copy()
    out = norm.normalize_video(crops, "none")
    assert out is crops and np.array_equal(crops, before)
    assert norm.normalize_video(crops, None) is crops


def test_video_hist_removes_a_global_lighting_change_and_keeps_within_video_order(extracted):
    crops = _video_crops(extracted)
    # one video: each crop twice, once as it is and once darker (the face darkens during the video)
    video = np.concatenate([crops, _lighting(crops, 0.85, 0.0)])
    relit = _lighting(video)  # the same video under other lighting: 0.7 x + 30
    assert _mad(video, relit) > 10  # without normalisation they differ a lot
    a, b = norm.normalize_video(video, "video_hist"), norm.normalize_video(relit, "video_hist")
    assert a.shape == video.shape and a.dtype == np.uint8
    assert _mad(a, b) < 3  # measured 0.8 grey levels on the tiny cohort
    n = len(crops)
    light, dark = a[:n].reshape(n, -1).mean(1), a[n:].reshape(n, -1).mean(1)
    assert (dark < light).all() and (light - dark).mean() > 5  # the darker crops stay darker
    assert (a[n:] <= a[:n]).all()  # one monotone table per video: pixel order is kept too
    # the reference distribution: mean 128, SD 48 (up to the ties of grey levels)
    assert abs(a.mean() - 128) < 4 and abs(a.std() - 48) < 4


def test_video_hist_is_one_table_per_video_and_the_running_table_converges_to_it(extracted):
    crops = _video_crops(extracted)
    out = norm.normalize_video(crops, "video_hist")
    lut = norm.lut_from_histogram(norm.grey_histogram(crops))
    assert np.array_equal(out, lut[crops]) and (np.diff(lut.astype(int)) >= 0).all()
    running = norm.RunningHistogram()
    for c in crops:
        running.add(c)
    assert np.array_equal(running.apply(crops), out)
    # colour crops: one table over every channel (grey stays grey)
    rgb = np.repeat(crops[..., None], 3, axis=-1)
    assert np.array_equal(norm.normalize_video(rgb, "video_hist"), np.repeat(out[..., None], 3, axis=-1))
    assert norm.normalize_video(crops[:0], "video_hist").shape == (0, *crops.shape[1:])


def _local_contrast(crops: np.ndarray, block: int = 16) -> float:
    n, h, w = crops.shape[:3]
    x = crops[:, : h // block * block, : w // block * block].astype(np.float64)
    x = x.reshape(n, h // block, block, w // block, block)
    return float(x.std(axis=(2, 4)).mean())


def test_clahe_keeps_shape_and_type_and_raises_local_contrast(extracted):
    crops = _video_crops(extracted)
    flat = _lighting(crops, 0.25, 100)  # a low-contrast (under-lit, hazy) video
    out = norm.normalize_video(flat, "clahe")
    assert out.shape == flat.shape and out.dtype == np.uint8
    assert _local_contrast(out) > 1.5 * _local_contrast(flat)
    assert norm.CLAHE_CLIP_LIMIT == 2.0 and norm.CLAHE_TILES == (4, 4)
    one = norm.normalize_video(flat[..., None], "clahe")
    assert one.shape == flat.shape + (1,) and np.array_equal(one[..., 0], out)
    rgb = norm.normalize_video(np.repeat(flat[..., None], 3, axis=-1), "clahe")
    assert rgb.shape == flat.shape + (3,) and rgb.dtype == np.uint8
    assert _local_contrast(rgb[..., 0]) > 1.5 * _local_contrast(flat)


# ----------------------------------------------------------------------------- extract and the store


def test_the_default_writes_the_same_store_as_explicit_none_and_as_before(extracted, tmp_path):
    cfg = _copy(extracted, tmp_path / "explicit")
    _set_yaml(cfg.root, normalize="none")
    cfg = load_config(cfg.root)
    rep = extract_videos(cfg, progress=False, overwrite=True)
    assert rep.ok and len(rep.done) == len(store.complete_videos(cfg.path("frames")))
    a_dir, b_dir = load_config(extracted).path("frames"), cfg.path("frames")
    for v in store.complete_videos(a_dir):
        assert store.npy_path(a_dir, v).read_bytes() == store.npy_path(b_dir, v).read_bytes()
        pd.testing.assert_frame_equal(pd.read_parquet(store.index_path(a_dir, v)), pd.read_parquet(store.index_path(b_dir, v)))
    a_json, b_json = store.read_store_json(a_dir), store.read_store_json(b_dir)
    assert a_json == b_json and a_json["normalize"] == "none" == store.normalization_of(a_dir)
    # the code path of before (settings without the key) gives the same bytes
    v = store.complete_videos(a_dir)[0]
    old = {k: val for k, val in _settings(cfg).items() if k != "normalize"}
    kp = read_keypoints(cfg.path("keypoints") / f"{v}.parquet")
    crops, _, _ = crop_video(cfg.path("processed_videos") / f"{v}.mp4", kp, old, v)
    assert crops.tobytes() == np.asarray(store.open_frames(a_dir, v)).tobytes()


def _drop_normalize_record(frames_dir: Path, video: str) -> None:
    """Make a video look as written before extract.normalize existed."""
    path = store.index_path(frames_dir, video)
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[store.META_KEY])
    meta.pop("normalize")
    meta["provenance"]["settings"].pop("normalize")
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, store.META_KEY: json.dumps(meta).encode()}), path)


def test_a_store_from_before_the_setting_means_none_and_stays_fresh(extracted, tmp_path):
    cfg = _copy(extracted, tmp_path / "old")
    fdir = cfg.path("frames")
    data = store.read_store_json(fdir)
    del data["normalize"]
    (fdir / store.STORE_JSON).write_text(json.dumps(data))
    assert store.normalization_of(fdir) == "none" and store.normalization_of(tmp_path / "nowhere") == "none"
    v = store.complete_videos(fdir)[0]
    _drop_normalize_record(fdir, v)
    assert video_status(cfg, v) == []  # default config: fresh
    cfg.extract.normalize = "clahe"
    assert any("normalize" in r for r in video_status(cfg, v))


def test_store_json_records_the_setting_and_changing_it_redoes_every_video(extracted, tmp_path):
    cfg = _copy(extracted, tmp_path / "hist")
    fdir = cfg.path("frames")
    videos = store.complete_videos(fdir)
    before = {v: np.asarray(store.open_frames(fdir, v)).copy() for v in videos}
    cfg.extract.normalize = "clahe"
    with pytest.raises(ValueError, match="normalize: 'none' -> 'clahe'"):  # one shard alone would mix settings
        extract_videos(cfg, videos=videos[:1], progress=False)
    cfg.extract.normalize = "video_hist"
    rep = extract_videos(cfg, progress=False)
    assert rep.ok and len(rep.done) == len(videos)
    assert all(any("normalize" in r for r in res.reasons) for res in rep.done)
    assert store.read_store_json(fdir)["normalize"] == "video_hist" == store.normalization_of(fdir)
    v = videos[0]
    assert store.video_meta(fdir, v)["normalize"] == "video_hist"
    assert store.video_meta(fdir, v)["provenance"]["settings"]["normalize"] == "video_hist"
    for v in videos:  # the same frames are kept; each video's crops get its own table
        assert np.array_equal(np.asarray(store.open_frames(fdir, v)), norm.normalize_video(before[v], "video_hist"))
    assert len(extract_videos(cfg, progress=False).skipped) == len(videos)  # fresh now
    # and the project template carries the key, with its comment
    text = (cfg.root / "mfe.yaml").read_text()
    assert '  # normalize: "none"' in text and "# Intensity normalisation" in text  # at its default: commented out


# ----------------------------------------------------------------------------- predict


def _hist_model(run, tmp_path: Path, method: str = "video_hist"):
    """The tiny run's ensemble, pointed at a copy of its task whose frame store says ``method``."""
    task = tmp_path / "tasks" / run.task_dir.name
    shutil.copytree(run.task_dir, task)
    fdir = tmp_path / "frames"
    fdir.mkdir()
    data = store.read_store_json(run.cfg.path("frames"))
    data["normalize"] = method
    (fdir / store.STORE_JSON).write_text(json.dumps(data))
    spec = yaml.safe_load((task / "task.yaml").read_text())
    spec["frames_dir"] = str(fdir)
    (task / "task.yaml").write_text(yaml.safe_dump(spec))
    ens = load_ensemble(run.run_dir)
    ens.data["task_dir"] = str(task)
    return ens


def _relit_video(src: Path, dest: Path) -> Path:
    """``src`` re-encoded with 0.7 x + 30 on every frame (same name, another folder)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / src.name
    write_video(out, (_lighting(f) for _, f in iter_frames(src)), fps=probe(src).fps)
    return out


@pytest.mark.slow
def test_predict_applies_the_store_normalisation_to_a_relit_video(run, tmp_path):
    from mouse_facial_expressions.inference.predict import model_settings, predict_videos

    ens = _hist_model(run, tmp_path)
    s = model_settings(ens, run.cfg)
    assert s["normalize"] == "video_hist" and s["source"].endswith("store.json")
    assert model_settings(load_ensemble(run.run_dir), run.cfg)["normalize"] == "none"  # the run's own store
    video = "m3_rec4_4h-postinjection"
    src = run.cfg.path("processed_videos") / f"{video}.mp4"
    kp_file = run.cfg.path("keypoints") / f"{video}.parquet"
    relit = _relit_video(src, tmp_path / "relit")
    kp = read_keypoints(kp_file)
    raw = {k: crop_video(p, kp, {**s, "normalize": "none"}, video)[0] for k, p in (("orig", src), ("relit", relit))}
    hist = {k: crop_video(p, kp, s, video)[0] for k, p in (("orig", src), ("relit", relit))}
    assert raw["orig"].shape == raw["relit"].shape
    # measured 18.3 grey levels raw, 3.5 normalised: 0.8 without the second H.264 encoding (the
    # test above); the table's slope (about 2 for a video at 0.7x contrast, more on the flat fur)
    # amplifies the encoder's pixel noise
    assert _mad(raw["orig"], raw["relit"]) > 10 and _mad(hist["orig"], hist["relit"]) < 5
    assert np.array_equal(hist["orig"], norm.normalize_video(raw["orig"], "video_hist"))
    p1 = {}
    for name, model in (("hist", ens), ("none", load_ensemble(run.run_dir))):
        for k, p in (("orig", src), ("relit", relit)):
            out = tmp_path / f"{name}_{k}"
            rep = predict_videos(p, kp_file, model, out, cfg=run.cfg, progress=False, backend="torch")
            assert rep.ok, rep.summary()
            p1[name, k] = pd.read_csv(out / f"{video}_scores.csv")["p1"].to_numpy()
    assert len(p1["hist", "orig"]) == len(p1["hist", "relit"]) > 0
    # measured: max |difference| 0.005 with the store's video_hist, 0.078 without normalisation
    np.testing.assert_allclose(p1["hist", "relit"], p1["hist", "orig"], atol=0.02)
    assert np.abs(p1["none", "relit"] - p1["none", "orig"]).max() > 0.03


@pytest.mark.slow
def test_live_video_hist_uses_the_table_of_the_crops_seen_so_far(run, tmp_path):
    from mouse_facial_expressions.inference.predict import model_settings, predict_videos
    from mouse_facial_expressions.inference.streams import predict_live

    ens = _hist_model(run, tmp_path)
    video = "m3_rec4_4h-postinjection"
    src = run.cfg.path("processed_videos") / f"{video}.mp4"
    kp_file = run.cfg.path("keypoints") / f"{video}.parquet"
    rep = predict_videos(src, kp_file, ens, tmp_path / "off", cfg=run.cfg, progress=False, backend="torch")
    assert rep.ok
    want = pd.read_csv(tmp_path / "off" / f"{video}_scores.csv")
    growing = tmp_path / "kp.csv"
    read_keypoints(kp_file).to_csv(growing, index=False, float_format="%.10g")  # already complete
    live = predict_live(str(src), growing, ens, tmp_path / "live.csv", model_settings(ens, run.cfg), name=video,
                        keypoint_timeout_s=1)
    got = pd.read_csv(tmp_path / "live.csv")
    assert live.n_windows == len(got) == len(want) >= 2
    np.testing.assert_allclose(got["start_time"], want["start_time"], atol=1e-6)
    # a running table: the first windows differ a little (measured 0.013 at most), the last one
    # completes with the last kept crop and so gets the whole video's table, as offline
    np.testing.assert_allclose(got["p1"], want["p1"], atol=0.05)
    np.testing.assert_allclose(got["p1"].iloc[-1], want["p1"].iloc[-1], atol=1e-5)
    # without normalisation in the settings the live crops are the raw ones: other scores
    raw = predict_live(str(src), growing, ens, tmp_path / "raw.csv", {**model_settings(ens, run.cfg), "normalize": "none"},
                       name=video, keypoint_timeout_s=1)
    assert raw.n_windows == len(got) and not np.allclose(pd.read_csv(tmp_path / "raw.csv")["p1"], got["p1"], atol=1e-3)


@pytest.mark.slow
def test_live_clahe_gives_the_offline_scores(run, tmp_path):
    from mouse_facial_expressions.inference.predict import model_settings, predict_videos
    from mouse_facial_expressions.inference.streams import predict_live

    ens = _hist_model(run, tmp_path, "clahe")
    video = "m1_rec1_preinjection"
    src = run.cfg.path("processed_videos") / f"{video}.mp4"
    kp_file = run.cfg.path("keypoints") / f"{video}.parquet"
    assert predict_videos(src, kp_file, ens, tmp_path / "off", cfg=run.cfg, progress=False, backend="torch").ok
    want = pd.read_csv(tmp_path / "off" / f"{video}_scores.csv")
    growing = tmp_path / "kp.csv"
    read_keypoints(kp_file).to_csv(growing, index=False, float_format="%.10g")
    predict_live(str(src), growing, ens, tmp_path / "live.csv", model_settings(ens, run.cfg), name=video, keypoint_timeout_s=1)
    got = pd.read_csv(tmp_path / "live.csv")
    assert len(got) == len(want) > 0
    np.testing.assert_allclose(got["p1"], want["p1"], atol=1e-5)  # per crop: the same crops as offline
