"""``mfe predict --images``: still images scored with their hand-labelled keypoints (issue 15).

Images: the DeepLabCut project ``mfe synth --dlc-project`` writes for synth tiny (one video's
``labeled-data/<video>/img<k>.png`` + ``CollectedData_synth.h5|.csv``, labelled from the truth,
far-side points left empty); models: the session's tiny class run (``tiny_run.py``, 2 folds)
and a tiny ``--targets au+class`` run trained here on the same frame store with simulated raters.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from mouse_facial_expressions.data.predictions import AU_PREDICTION_COLUMNS
from mouse_facial_expressions.inference.ensemble import load_ensemble
from mouse_facial_expressions.inference.images import (AGREEMENT_CSV, PREVIEW_PNG, SCORES_CSV, crop_images, list_images,
                                                       predict_images, read_image_keypoints)
from mouse_facial_expressions.io.ratings import AUS
from mouse_facial_expressions.report.runs import score_images

torch.set_num_threads(1)
pytestmark = pytest.mark.slow

LABELS = "CollectedData_synth.h5"


@pytest.fixture(scope="module")
def images(tiny_cohort, tmp_path_factory) -> Path:
    """labeled-data/<video> of a DeepLabCut project of synth tiny: 8 labelled frames of one video
    (7 show one side of the face; in one the head is turned and the labeller left the points
    empty). Read-only."""
    from mouse_facial_expressions.synth.dlc_project import write_dlc_project

    out = tmp_path_factory.mktemp("dlc") / "dlc"
    write_dlc_project(tiny_cohort, out, frames_per_video=8, videos=1)
    (folder,) = sorted((out / "labeled-data").iterdir())
    return folder


@pytest.fixture(scope="module")
def au_run(run, tmp_path_factory) -> Path:
    """A tiny ``--targets au+class`` run (fold 0 only) on the class run's frame store: 2 simulated
    raters every 0.5 s, imported with ``mfe ratings import``'s reader; returns the run folder."""
    from tiny_run import tiny_params

    from mouse_facial_expressions.data.au_targets import AUTargetSpec
    from mouse_facial_expressions.data.tasks import make_task, preset
    from mouse_facial_expressions.io.ratings import import_ratings
    from mouse_facial_expressions.synth.raters import rate_truth
    from mouse_facial_expressions.training import train_cv

    work = tmp_path_factory.mktemp("au")
    sheet, _ = rate_truth(pd.read_parquet(run.project / "truth" / "truth.parquet"), 2, every_s=0.5, seed=0)
    sheet.to_csv(work / "raters.csv", index=False)
    _, parquet, _ = import_ratings(work / "raters.csv", work)
    spec = preset("task1", n_folds=2, num_frames=3, frame_stride=1, au=AUTargetSpec(ratings=str(parquet)))
    task = make_task(run.cfg, spec, work / "task")
    summary = train_cv(task, tiny_params(run_name="au", targets="au+class", folds=[0]), work / "models", progress=False,
                       track=False)
    return Path(summary["run_dir"])


def _scores(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / SCORES_CSV)


# ----------------------------------------------------------------------------- keypoints

def test_both_deeplabcut_layouts_and_an_image_table_give_the_same_keypoints(images, run, tmp_path):
    h5 = read_image_keypoints(images / LABELS, run.cfg)
    assert list(h5["image"]) == [p.name for p in list_images(images)]  # rows labelled by the images' names
    assert h5.filter(like="_likelihood").stack().dropna().eq(1.0).all()  # hand labels: 1.0 where labelled
    pd.testing.assert_frame_equal(read_image_keypoints(images / LABELS.replace(".h5", ".csv"), run.cfg), h5)
    old = pd.read_hdf(images / LABELS)  # DLC's older layout: one index column holding the image path
    old.index = ["/".join(t) for t in old.index]
    old.to_csv(tmp_path / "CollectedData_old.csv")
    old.to_hdf(tmp_path / "CollectedData_old.h5", key="df_with_missing")
    pd.testing.assert_frame_equal(read_image_keypoints(tmp_path / "CollectedData_old.csv", run.cfg), h5)
    pd.testing.assert_frame_equal(read_image_keypoints(tmp_path / "CollectedData_old.h5", run.cfg), h5)
    table = h5.assign(image="photos/" + h5["image"])  # an image column holding paths: matched by the file name
    table.to_csv(tmp_path / "kp.csv", index=False)
    table.drop(columns=[c for c in table if c.endswith("_likelihood")]).to_parquet(tmp_path / "kp.parquet")
    pd.testing.assert_frame_equal(read_image_keypoints(tmp_path / "kp.csv"), h5)
    pd.testing.assert_frame_equal(read_image_keypoints(tmp_path / "kp.parquet"), h5)  # no likelihoods: 1.0 where given


def test_video_keypoints_are_refused_naming_the_file(run):
    dlc = sorted(run.cfg.path("dlc").glob("*.h5"))[0]
    with pytest.raises(ValueError, match=rf"{re.escape(dlc.name)}: its rows are video frames"):
        read_image_keypoints(dlc, run.cfg)


# ----------------------------------------------------------------------------- scoring

def test_a_class_run_scores_each_image_and_has_no_au_columns(images, run, tmp_path):
    report = predict_images(images, images / LABELS, run.run_dir, tmp_path, cfg=run.cfg)
    s = _scores(tmp_path)
    assert list(s.columns) == ["image", "status", "p1", "p1_fold0", "p1_fold1", "side", "sharpness",
                                "domain_warning", "no_face", "no_face_reason", "error"]
    assert list(s["image"]) == [p.name for p in list_images(images)]
    done = s[s["status"] == "done"]
    assert len(done) == report.n_scored >= 6 and set(done["side"]) == {"left", "right"}  # right faces are mirrored
    assert done["p1"].between(0, 1).all() and done["error"].isna().all()
    np.testing.assert_allclose(done["p1"], done[["p1_fold0", "p1_fold1"]].mean(axis=1))
    # the frame whose head is turned: the labeller left points empty, so it cannot be aligned; it alone fails
    (bad,) = s[s["status"] == "failed"].itertuples()
    row = list(read_image_keypoints(images / LABELS, run.cfg)["image"]).index(bad.image)
    assert bad.error.startswith(f"{bad.image} (row {row} of {images / LABELS}): cannot be aligned")
    assert "not labelled or at/below pcutoff" in bad.error and np.isnan(bad.p1)
    assert "1 failed" in report.summary() and "mgs" not in report.summary()


def test_the_score_is_the_models_score_of_the_repeated_crop(images, run, tmp_path):
    """Crop each image by hand, as extraction crops a frame, repeat it num_frames times and score
    that clip with the ensemble: the same p1 per member as predict_images wrote."""
    from mouse_facial_expressions.data.augment import to_model_input
    from mouse_facial_expressions.inference.predict import model_settings
    from mouse_facial_expressions.preprocess.extract import frame_geometry
    from mouse_facial_expressions.preprocess.geometry import warp_crop
    from mouse_facial_expressions.preprocess.normalize import normalize_video

    ens = load_ensemble(run.run_dir)
    predict_images(images, images / LABELS, ens, tmp_path, cfg=run.cfg)
    done = _scores(tmp_path).query("status == 'done'")
    s = model_settings(ens, run.cfg)
    assert s["source"].endswith("store.json")  # the crops of the model's own frame store
    kp = read_image_keypoints(images / LABELS, run.cfg).set_index("image")
    clips = []
    for name in done["image"]:
        geo = frame_geometry(kp.loc[[name]].reset_index(drop=True), s["pcutoff"], s["crop_size"], s["out_size"], s["alignment"])
        grey = cv2.imread(str(images / name), cv2.IMREAD_GRAYSCALE)
        crop = normalize_video(warp_crop(grey, geo["matrix"][0], s["out_size"])[None], s["normalize"])[0]
        frames = torch.from_numpy(np.repeat(crop[None], ens.num_frames, axis=0))  # (T, S, S): a still clip
        clips.append(to_model_input(frames, ens.image_size, ens.channels))
    p = ens.predict(torch.stack(clips))  # (B, K)
    np.testing.assert_allclose(done[["p1_fold0", "p1_fold1"]].to_numpy(), p, rtol=0, atol=1e-6)
    np.testing.assert_allclose(done["p1"], p.mean(axis=1), rtol=0, atol=1e-6)


def test_an_au_run_adds_the_action_units_and_mgs(images, au_run, run, tmp_path):
    report = predict_images(images, images / LABELS, au_run, tmp_path, cfg=run.cfg)
    s = _scores(tmp_path)
    assert list(s.columns) == ["image", "status", "p1", *AU_PREDICTION_COLUMNS, "side", "sharpness", "domain_warning",
                               "no_face", "no_face_reason", "error"]  # one fold
    done = s[s["status"] == "done"]
    au = done[[f"au_{a}" for a in AUS]]
    assert au.notna().all().all() and ((au >= 0) & (au <= 2)).all().all()
    np.testing.assert_allclose(done["mgs"], au.mean(axis=1))
    assert s.loc[s["status"] == "failed", AU_PREDICTION_COLUMNS].isna().all().all()
    assert f"mean mgs {done['mgs'].mean():.3f}" in report.summary()


def test_bad_rows_fail_their_image_alone_with_the_file_and_row(images, run, tmp_path):
    """An image without keypoints, one labelled twice, one with a NaN landmark; a row for an image
    that is not given: each is named; every other image scores as it does alone."""
    folder = tmp_path / "images"
    shutil.copytree(images, folder)
    kp = read_image_keypoints(images / LABELS, run.cfg)
    good = [p.name for p in list_images(images)]
    shutil.copy(folder / good[0], folder / "extra.png")  # no keypoints
    kp.loc[1, "nose_x"] = np.nan  # NaN: the nose the alignment needs is missing
    table = pd.concat([kp, kp.iloc[[2]], kp.iloc[[3]].assign(image="gone.png")], ignore_index=True)  # row 8: a duplicate
    table.to_csv(tmp_path / "kp.csv", index=False)
    report = predict_images(folder, tmp_path / "kp.csv", run.run_dir, tmp_path / "out", cfg=run.cfg)
    s = _scores(tmp_path / "out").set_index("image")
    where = tmp_path / "kp.csv"
    assert s.loc["extra.png", "error"] == f"extra.png: no keypoints for this image in {where} (rows are matched by file name)"
    assert s.loc[good[1], "error"].startswith(f"{good[1]} (row 1 of {where}): cannot be aligned")
    assert "nose" in s.loc[good[1], "error"].split("seen:")[0]
    assert s.loc[good[2], "error"].startswith(f"{good[2]}: rows 2, 8 of {where} all label this image")
    assert any("row 9 (gone.png)" in w for w in report.warnings) and "gone.png" in report.summary()
    alone = predict_images(images, images / LABELS, run.run_dir, tmp_path / "alone", cfg=run.cfg).scores.set_index("image")
    rest = [n for n in good[3:] if alone.loc[n, "status"] == "done"]
    assert rest and (s.loc[rest, "status"] == "done").all()
    # float32 scores from batches of different sizes: the CPU's GEMM kernels may round differently
    # (3e-8 seen on AVX-512); another image's crop or a shifted row would move p1 by far more
    np.testing.assert_allclose(s.loc[rest, "p1"], alone.loc[rest, "p1"], rtol=0, atol=1e-6)


def test_video_hist_uses_each_images_own_table(images, run):
    """No video: ``video_hist`` maps each crop with the table of its own histogram, so a crop does
    not change with the other images scored beside it."""
    from mouse_facial_expressions.preprocess.normalize import video_hist

    kp = read_image_keypoints(images / LABELS, run.cfg)
    s = dict(crop_size=run.cfg.extract.crop_size, out_size=32, pcutoff=0.6, alignment="dlc_face", min_sharpness=0,
             min_likelihood=0)
    raw, rows, _ = crop_images(list_images(images), kp, {**s, "normalize": "none"}, LABELS)
    hist, _, _ = crop_images(list_images(images), kp, {**s, "normalize": "video_hist"}, LABELS)
    first = [p for p, r in zip(list_images(images), rows) if r["status"] == "done"][:1]
    alone, _, _ = crop_images(first, kp, {**s, "normalize": "video_hist"}, LABELS)
    assert hist.shape == raw.shape == (len(raw), 32, 32) and not np.array_equal(hist, raw)
    assert all(np.array_equal(hist[i], video_hist(raw[i][None])[0]) for i in range(len(raw)))
    assert np.array_equal(alone[0], hist[0])


def test_baseline_relative_and_fused_runs_are_refused(images, run, tmp_path):
    from mouse_facial_expressions.models import create_model

    def with_part(name, options):
        """The run's ensemble with its member rebuilt with one more part (the parts make the run what it is)."""
        ens = load_ensemble(run.run_dir)
        m = ens.models[0]
        ens.models[0] = create_model(ens.hparams[0]["model_name"], **{**m.config, "parts": {**m.config["parts"], name: options}}).eval()
        return ens

    ens = with_part("fusion", dict(modalities=["face", "behaviour"], aux_columns={"behaviour": ["beh_a"]}, fusion="late"))
    with pytest.raises(ValueError, match=r"trained on face, behaviour; `mfe predict --images` scores face clips only"):
        predict_images(images, images / LABELS, ens, tmp_path)
    ens = with_part("relative", {"recording": 1})
    assert ens.relative
    with pytest.raises(ValueError, match=r"baseline recording.*`mfe predict --images` has no baseline windows"):
        predict_images(images, images / LABELS, ens, tmp_path)
    assert not (tmp_path / SCORES_CSV).exists()


# ----------------------------------------------------------------------------- agreement

def _rating_sheet(path: Path, names: list[str]) -> Path:
    """A wide MGS sheet (image, ot1 ... wc1, ot2 ... wc2) of two raters who mostly agree, plus a
    rated photo that is not among the images."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 3, size=(len(names) + 1, len(AUS)))
    second = np.clip(base + (rng.random(base.shape) < 0.2) * rng.choice([-1, 1], size=base.shape), 0, 2)
    sheet = pd.DataFrame({"image": [*names, "not_scored.png"]})
    for k, scores in (("1", base), ("2", second)):
        for j, a in enumerate(AUS):
            sheet[f"{a}{k}"] = scores[:, j]
    sheet.to_csv(path, index=False)
    return path


def test_agreement_with_the_raters_of_the_images(images, au_run, run, tmp_path):
    from mouse_facial_expressions.evaluation.mgs import weighted_kappa
    from mouse_facial_expressions.io.ratings import import_ratings

    names = [p.name for p in list_images(images)]
    _, parquet, _ = import_ratings(_rating_sheet(tmp_path / "sheet.csv", [n.replace(".png", "") for n in names]), tmp_path)
    report = score_images(images, images / LABELS, au_run, tmp_path / "out", cfg=run.cfg, ratings=parquet, n_boot=20)
    a = pd.read_csv(tmp_path / "out" / AGREEMENT_CSV).set_index("target")
    assert list(a.index) == [*AUS, "total"] and (a["n_raters"] == 2).all()
    done = report.scores[report.scores["status"] == "done"]
    assert (a["n_images"] == len(done)).all()  # the failed image and the unscored photo are left out
    assert a[["kappa", "r", "ceiling_kappa", "ceiling_r"]].stack().between(-1, 1).all()
    assert 0.5 < a.loc["total", "ceiling_kappa"] <= 1  # the two raters mostly agree
    # the total by hand: the model's mgs against the mean over the raters of each image's AU mean
    ratings = pd.read_parquet(parquet)
    mean_rater = ratings.pivot_table(index="item", columns="au", values="score").mean(axis=1)
    truth = mean_rater.loc[done["image"].str.replace(".png", "")].to_numpy()
    assert a.loc["total", "kappa"] == pytest.approx(weighted_kappa(done["mgs"], truth))
    assert a.loc["total", "r"] == pytest.approx(np.corrcoef(done["mgs"], truth)[0, 1])
    n_rated = len(names) + 1
    assert f"{n_rated - len(done)} of the {n_rated} rated items are not scored images" in " ".join(report.notes)
    assert "agreement with the mean rater (2 rater(s)" in report.summary()


def test_a_run_without_au_heads_says_why_there_is_no_agreement(images, run, tmp_path):
    from mouse_facial_expressions.io.ratings import import_ratings

    _, parquet, _ = import_ratings(_rating_sheet(tmp_path / "sheet.csv", [p.name for p in list_images(images)]), tmp_path)
    report = score_images(images, images / LABELS, run.run_dir, tmp_path / "out", cfg=run.cfg, ratings=parquet)
    assert report.agreement is None and not (tmp_path / "out" / AGREEMENT_CSV).exists()
    assert any("no action-unit heads" in n for n in report.notes) and "no action-unit heads" in report.summary()


# ----------------------------------------------------------------------------- CLI

def test_cli_scores_a_folder_and_a_list_of_files(images, run, tmp_path, capsys):
    from mouse_facial_expressions.cli import main

    base = ["predict", "--keypoints", str(images), "--model", str(run.run_dir), "-p", str(run.project)]
    assert main(["predict", "--images", str(images), *base[1:], "--out", str(tmp_path / "a"), "--preview"]) == 1
    out, err = capsys.readouterr()
    s = _scores(tmp_path / "a")
    n_done = int((s["status"] == "done").sum())
    assert f"{n_done} scored, 1 failed" in out and "1 image(s) failed" in err
    assert cv2.imread(str(tmp_path / "a" / PREVIEW_PNG)) is not None
    files = [str(images / n) for n in s.loc[s["status"] == "done", "image"]]
    assert main([*base, "--images", *files, "--out", str(tmp_path / "b"), "--batch-size", "3"]) == 0
    cols = ["image", "p1", "p1_fold0", "p1_fold1", "side"]
    pd.testing.assert_frame_equal(_scores(tmp_path / "b")[cols], s.loc[s["status"] == "done", cols].reset_index(drop=True),
                                  check_exact=False, atol=1e-6)
    assert main([*base, "--images", str(images), "--workers", "2"]) == 1
    assert "--decode-workers: for videos, not --images" in capsys.readouterr().err


def test_cli_help_teaches_images():
    from mouse_facial_expressions.cli import build_parser

    sub = next(a for a in build_parser()._actions if hasattr(a, "_name_parser_map"))
    text = sub.choices["predict"].format_help()
    for words in ("--images FOLDER|FILE", "CollectedData_<scorer>", "images_scores.csv", "images_agreement.csv",
                  "--ratings PARQUET", "repeated num_frames times"):
        assert words in text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "v.mp4", "--images", "a.png", "--keypoints", "k", "--model", "m"])


# ----------------------------------------------------------------------------- real data

def test_real_headfixed_images_are_aligned_and_cropped(real_data):
    """facemap's head-fixed mouse face images with their hand labels (CollectedData_AVS.csv):
    eye contour, nose, whiskers and mouth points, no ears. Mapped to the headfixed_eye_nose
    alignment (eye = mean of the 4 eye-contour points, nose = the nose tip)."""
    from mouse_facial_expressions.config import Config

    folder = real_data / "facemap_headfixed" / "labeled-data" / "cam1_G7c1_1"  # 30 labelled frames, 2 images
    cfg = Config(keypoints={"bodyparts": {"eye": ["eye_top", "eye_front", "eye_bottom", "eye_back"], "nose": ["nose_tip"]}},
                 extract={"alignment": "headfixed_eye_nose", "crop_size": 600})  # 864x646 images, eye-nose ~450 px
    paths = list_images(folder)
    kp = read_image_keypoints(folder / "CollectedData_AVS.csv", cfg)
    assert len(kp) == 30 and len(paths) == 2 and {p.name for p in paths} <= set(kp["image"])  # matched by name
    pd.testing.assert_frame_equal(read_image_keypoints(folder / "CollectedData_AVS.h5", cfg), kp)
    x = cfg.extract
    s = dict(crop_size=x.crop_size, out_size=x.out_size, pcutoff=cfg.keypoints.pcutoff, alignment=x.alignment,
             normalize=x.normalize, min_sharpness=x.min_sharpness, min_likelihood=x.min_likelihood)
    crops, rows, warnings = crop_images(paths, kp, s, folder / "CollectedData_AVS.csv")
    assert [r["status"] for r in rows] == ["done"] * len(paths)
    assert len(warnings) == 1 and "28 keypoint row(s) label no image given" in warnings[0]  # the 28 images not committed
    assert crops.shape == (len(paths), x.out_size, x.out_size) and crops.dtype == np.uint8
    assert (crops.reshape(len(crops), -1).std(axis=1) > 5).all()  # a face, not a border colour
    eye = np.array([[r["eye_x"], r["eye_y"]] for r in rows])
    nose = np.array([[r["nose_x"], r["nose_y"]] for r in rows])
    np.testing.assert_allclose(eye[:, 1], nose[:, 1], atol=1e-6)  # nose -> eye horizontal, snout left
    assert (eye[:, 0] > nose[:, 0]).all()
