"""extract.alignment: presets and custom landmark sets, checked at import, used by extract.

The head-fixed tests run the real facemap images (one side, no ears) through
``keypoints import`` and ``extract`` with ``extract.alignment: headfixed_eye_nose``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from mouse_facial_expressions.config import ConfigError, load_config
from mouse_facial_expressions.io.keypoints import (KeypointImportError, import_keypoints, landmark_names,
                                                   load_canonical, write_canonical)
from mouse_facial_expressions.io.video import write_video
from mouse_facial_expressions.preprocess import alignment as al
from mouse_facial_expressions.preprocess import geometry as g
from mouse_facial_expressions.preprocess.extract import extract_videos
from mouse_facial_expressions.preprocess.preview import contact_sheet
from mouse_facial_expressions.preprocess.store import load_index, read_store_json

FACEMAP = Path(__file__).parent / "data" / "facemap_headfixed" / "labeled-data"  # tests/data/README.md
EYE = ["eye_top", "eye_front", "eye_bottom", "eye_back"]
HEADFIXED = {"keypoints": {"bodyparts": {"eye": EYE, "nose": ["nose_tip"]}},
             "extract": {"alignment": "headfixed_eye_nose", "crop_size": 700, "out_size": 96}}


def _project(root: Path, settings: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mfe.yaml").write_text(yaml.safe_dump(settings))
    return root


def _random_face(n: int, seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    names = ["nose", "left_eye", "left_ear", "right_eye", "right_ear"]
    xy = {k: rng.uniform(50, 400, size=(n, 2)) for k in names}
    lik = {k: rng.uniform(0, 1, size=n) for k in names}
    xy["nose"][3] = np.nan  # a missing point: that frame is unusable
    return xy, lik


# ----------------------------------------------------------------------------- presets


def test_dlc_face_preset_is_the_original_side_rule_and_geometry():
    xy, lik = _random_face(400)
    geo = al.frame_geometry(al.resolve("dlc_face"), xy, lik, 0.4, 300, 64)
    lik_nan = {k: np.where(np.isfinite(xy[k]).all(1), v, np.nan) for k, v in lik.items()}
    side = g.visible_side(np.stack([lik_nan[k] for k in ("nose", "left_eye", "left_ear")], 1),
                          np.stack([lik_nan[k] for k in ("nose", "right_eye", "right_ear")], 1), 0.4)
    m, pts = g.side_geometry(xy, side, 300, 64)
    np.testing.assert_array_equal(geo["side"], side)
    assert (geo["side"] == g.LEFT).sum() > 10 and (geo["side"] == g.RIGHT).sum() > 10
    ok = geo["usable"]
    assert not ok[3]
    np.testing.assert_allclose(geo["matrix"][ok], m[ok])
    for role in ("eye", "ear", "nose"):
        np.testing.assert_allclose(geo[role][ok], pts[role][ok])


def test_config_accepts_exactly_the_presets_defined_here():
    from mouse_facial_expressions.config import ALIGNMENT_PRESETS, ExtractConfig

    assert tuple(al.PRESETS) == ALIGNMENT_PRESETS and ExtractConfig().alignment == al.DEFAULT


def test_unknown_preset_is_a_config_error_that_lists_the_presets(tmp_path):
    _project(tmp_path, {"extract": {"alignment": "headfixed"}})
    with pytest.raises(ConfigError, match="headfixed_eye_nose"):
        load_config(tmp_path)


def test_custom_alignment_from_mfe_yaml(tmp_path):
    custom = {"axis": ["nose", ["eye_a", "eye_b"]], "centre": ["nose", ["eye_a", "eye_b"]], "side": "right"}
    cfg = load_config(_project(tmp_path, {"extract": {"alignment": custom}}))
    a = al.resolve(cfg.extract.alignment)
    assert a.landmarks() == ["nose", "eye_a", "eye_b"] and a.side == "right"
    assert al.resolve(a.to_setting()) == a  # what store.json records gives it back
    # fixed right side: frames are mirrored, the snout (pointing right) ends up on the left
    xy = {"nose": np.array([[300.0, 100.0]]), "eye_a": np.array([[100.0, 90.0]]), "eye_b": np.array([[100.0, 110.0]])}
    lik = {k: np.ones(1) for k in xy}
    geo = al.frame_geometry(a, xy, lik, 0.5, 400, 100)
    assert geo["side"][0] == g.RIGHT and geo["nose"][0, 0] < geo["eye_a"][0, 0]
    np.testing.assert_allclose(geo["axis_px"], [200.0])


def test_one_side_per_video_from_the_snout_direction():
    a = al.resolve("headfixed_eye_nose")
    nose = np.array([[500.0, 100.0]] * 5)
    eye = np.array([[100.0, 100.0]] * 5)
    eye[0] = [900, 100]  # one odd frame does not flip the video's side
    geo = al.frame_geometry(a, {"nose": nose, "eye": eye}, {"nose": np.ones(5), "eye": np.ones(5)}, 0.5, 400, 64)
    assert (geo["side"] == g.RIGHT).all()


# ----------------------------------------------------------------------------- import


def _facemap_files() -> list[Path]:
    """The label files of the two recordings (30 labelled frames each, 2 images each committed)."""
    files = sorted(FACEMAP.glob("*/CollectedData_AVS.h5"))
    assert len(files) == 2, FACEMAP
    return files


def test_import_names_a_landmark_the_alignment_needs_but_the_mapping_lacks(tmp_path):
    files = _facemap_files()
    cfg = load_config(_project(tmp_path, {"extract": {"alignment": "headfixed_eye_nose"},
                                          "keypoints": {"bodyparts": {"nose": ["nose_tip"]}}}))
    with pytest.raises(ValueError, match=r"needs landmarks \['eye'\].*eye: \[eye_top"):
        al.import_check(cfg)
    # with the mapping it imports, and keeps the bodyparts it does not map
    cfg = load_config(_project(tmp_path, HEADFIXED))
    out = import_keypoints(cfg, files[:1], check=al.import_check(cfg))
    names = landmark_names(load_canonical(out[0]))
    assert names[:2] == ["eye", "nose"]
    assert {"whisker_1", "whisker_3", "mouth", "lip", "nose_top"} <= set(names)
    assert not {"eye_top", "nose_tip"} & set(names)  # folded into eye and nose


def test_import_fails_a_file_in_which_no_frame_can_be_aligned(tmp_path):
    files = _facemap_files()
    # 'eye' mapped to a point that is never labelled in the second file: nothing aligns there
    src = tmp_path / "pose"
    src.mkdir()
    for f in files:
        df = pd.read_hdf(f)
        if f == files[1]:
            df.loc[:, (slice(None), "eye_back", slice(None))] = np.nan
        df.to_hdf(src / f"{f.parent.name}.h5", key="df_with_missing")
    cfg = load_config(_project(tmp_path / "p", HEADFIXED))
    with pytest.raises(KeypointImportError) as err:
        import_keypoints(cfg, [src], check=al.import_check(cfg))
    msg = str(err.value)
    assert "1 of 2" in msg and f"{files[1].parent.name}.h5" in msg
    assert "no frame can be aligned" in msg and "eye 0/30" in msg and "nose 30/30" in msg
    assert (cfg.path("keypoints") / f"{files[0].parent.name}.parquet").is_file()


# ----------------------------------------------------------------------------- extract on real images


def _facemap_project(tmp_path: Path) -> tuple:
    """The real images of each recording (the 2 of its 30 labelled frames whose image is committed) as a
    10 fps grey video, and their keypoints renumbered 0..1."""
    files = _facemap_files()
    cfg = load_config(_project(tmp_path, HEADFIXED))
    staging = tmp_path / "staging"
    import_keypoints(cfg, files, out=staging, check=al.import_check(cfg))
    for f in files:
        rec = f.parent.name
        kp = load_canonical(staging / f"{rec}.parquet")  # frames = image numbers, sorted
        kp = kp[[(f.parent / f"img{int(k):04d}.png").is_file() for k in kp["frame"]]].reset_index(drop=True)
        assert len(kp) == 2
        images = [cv2.imread(str(f.parent / f"img{int(k):04d}.png"), cv2.IMREAD_GRAYSCALE) for k in kp["frame"]]
        assert all(im is not None for im in images)
        write_video(cfg.path("processed_videos") / f"{rec}.mp4", images, fps=10)
        write_canonical(kp.assign(frame=np.arange(len(kp))), cfg.path("keypoints") / f"{rec}.parquet")
    return cfg, files


def test_headfixed_extract_aligns_every_labelled_frame_and_puts_the_eye_at_one_spot(tmp_path):
    cfg, files = _facemap_project(tmp_path)
    rep = extract_videos(cfg, progress=False)
    assert rep.ok, rep.summary()
    index = load_index(cfg.path("frames"))
    assert len(index) == 4 and set(index["video"]) == {f.parent.name for f in files}
    assert (index["side"] == "left").all()  # the snout points left in these images
    out = cfg.extract.out_size
    eye = index[["eye_x", "eye_y"]].to_numpy()
    np.testing.assert_allclose(eye[:, 1], (out - 1) / 2, atol=1e-6)  # the nose -> eye axis is horizontal
    assert np.abs(eye - np.median(eye, axis=0)).max() < 3.0  # px of 96
    assert index["ear_x"].isna().all()  # no ears on this rig
    assert {"whisker_1_x", "mouth_y"} <= set(index.columns)  # the extra landmarks, in crop space
    assert (index["axis_px"].between(400, 520)).all()  # nose tip to eye centre in source pixels
    assert read_store_json(cfg.path("frames"))["alignment"] == "headfixed_eye_nose"
    sheet = contact_sheet(cfg.path("frames"), tmp_path / "preview.png", n=12)
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[:2] == (160, 4 * 160)  # the 4 frames, one 160-px tile each


def test_changing_the_alignment_redoes_the_crops(tmp_path):
    cfg, _ = _facemap_project(tmp_path)
    assert extract_videos(cfg, progress=False).ok
    assert len(extract_videos(cfg, progress=False).skipped) == 2
    cfg.extract.alignment = {"axis": ["nose", "eye"], "centre": ["eye"]}  # centred on the eye now
    rep = extract_videos(cfg, progress=False)
    assert len(rep.done) == 2 and all("alignment" in r for res in rep.done for r in res.reasons)
    index = load_index(cfg.path("frames"))
    np.testing.assert_allclose(index[["eye_x", "eye_y"]].to_numpy(), (cfg.extract.out_size - 1) / 2, atol=1e-6)
