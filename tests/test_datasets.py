import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from fake_cohort import frame_store, video_table
from mouse_facial_expressions.config import Config
from mouse_facial_expressions.data.augment import GREY_MEAN, GREY_STD, NORM_MEAN, NORM_STD, POLICY, apply_op, normalize_clips
from mouse_facial_expressions.data.datasets import BalancedWindowSampler, ClipDataset, fold_datasets
from mouse_facial_expressions.data.sequences import make_windows
from mouse_facial_expressions.data.tasks import load_task, make_task, preset
from mouse_facial_expressions.data.temporal_datasets import TemporalMouseDataset, create_soft_label

torch.set_num_threads(1)


@pytest.fixture
def store(tmp_path):
    videos = video_table(n_high=3, n_saline=3)
    index = frame_store(tmp_path / "frames", videos, n=40, size=16)
    frames = index.merge(videos, on="video")
    frames["label"] = ((frames.recording == 4) & (frames.treatment == "high")).astype(int)
    frames["soft"] = np.where(frames.label == 1, 0.9, 0.1)
    return tmp_path, videos, index, frames


def _windows(frames):
    return make_windows(frames, num_frames=4, frame_stride=2, max_gap_s=0.5)


def test_item_contract(store):
    tmp, _, _, frames = store
    w = _windows(frames)
    item = ClipDataset(tmp / "frames", w, image_size=16)[0]
    assert set(item) == {"clip", "soft", "label", "video", "animal", "start_time", "end_time"}
    assert item["clip"].shape == (4, 3, 16, 16) and item["clip"].dtype == torch.float32
    assert item["soft"].dtype == torch.float32 and float(item["soft"].sum()) == pytest.approx(1.0)
    assert item["label"].dtype == torch.int64 and item["label"].dim() == 0
    assert isinstance(item["video"], str) and isinstance(item["animal"], str)
    assert item["end_time"] > item["start_time"]


def test_clip_reads_the_window_rows(store):
    tmp, _, _, frames = store
    w = _windows(frames)
    i = 5
    clip = ClipDataset(tmp / "frames", w, image_size=16, channels=1)[i]["clip"]  # (T, 1, H, W)
    pixels = (clip[:, 0, 0, 0] * GREY_STD + GREY_MEAN) * 255
    np.testing.assert_allclose(pixels.numpy(), w["rows"].iloc[i], atol=0.01)  # fake pixel value = row


def test_grey_repeated_to_three_normalised_channels(store):
    tmp, _, _, frames = store
    w = _windows(frames)
    clip = ClipDataset(tmp / "frames", w, image_size=8)[3]["clip"]
    assert clip.shape == (4, 3, 8, 8)
    grey = clip * torch.tensor(NORM_STD).view(1, 3, 1, 1) + torch.tensor(NORM_MEAN).view(1, 3, 1, 1)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5) and torch.allclose(grey[:, 0], grey[:, 2], atol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_uint8_clips_normalise_to_the_float_clips(store, channels):
    tmp, _, _, frames = store
    w = _windows(frames)
    raw = ClipDataset(tmp / "frames", w, image_size=8, channels=channels, clip_dtype="uint8")
    ref = ClipDataset(tmp / "frames", w, image_size=8, channels=channels)
    item = raw[3]
    assert item["clip"].dtype == torch.uint8 and item["clip"].shape == (4, 1, 8, 8)
    batch = torch.stack([raw[i]["clip"] for i in range(4)])  # (B, T, 1, H, W) as a loader gives it
    expect = torch.stack([ref[i]["clip"] for i in range(4)])
    out = normalize_clips(batch, channels)
    assert out.dtype == torch.float32 and out.shape == (4, 4, channels, 8, 8)
    assert torch.equal(out, expect)
    assert normalize_clips(expect, channels) is expect  # float input passes through


def test_uint8_clips_reject_bad_settings(store):
    tmp, _, _, frames = store
    with pytest.raises(ValueError, match="clip_dtype"):
        ClipDataset(tmp / "frames", _windows(frames), image_size=8, clip_dtype="float16")
    with pytest.raises(ValueError, match="1 grey channel"):
        normalize_clips(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


@pytest.mark.parametrize("op", sorted(POLICY))
def test_augmentation_is_the_same_for_every_frame(op):
    torch.manual_seed(0)
    frame = torch.randint(0, 256, (1, 1, 24, 24), dtype=torch.uint8)
    clip = frame.repeat(5, 1, 1, 1)  # (T, 1, H, W): identical frames
    lo, hi = POLICY[op]
    out = apply_op(clip, op, (lo + hi) / 2 + 0.3 * (hi - lo))
    assert out.shape == clip.shape and out.dtype == torch.uint8
    assert all(torch.equal(out[0], out[t]) for t in range(1, 5))


def test_augmented_dataset_keeps_frames_consistent(store):
    tmp, _, _, frames = store
    w = _windows(frames).iloc[:1]
    w = w.assign(rows=[[30, 30, 30, 30]])  # one frame (pixel value 30) repeated: any difference comes from augmentation
    ds = ClipDataset(tmp / "frames", w, image_size=16, augment=True, seed=1)
    plain = ClipDataset(tmp / "frames", w, image_size=16)[0]["clip"]
    changed = 0
    for _ in range(12):
        clip = ds[0]["clip"]
        assert all(torch.equal(clip[0], clip[t]) for t in range(4))
        changed += not torch.equal(clip, plain)
    assert changed > 0  # the policy does change clips (different params per draw)


def test_dataset_pickles_without_open_memmaps(store):
    tmp, _, _, frames = store
    ds = ClipDataset(tmp / "frames", _windows(frames), image_size=16)
    ds[0]
    assert ds._maps
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._maps == {} and torch.equal(clone[0]["clip"], ds[0]["clip"])
    assert clone.windows is None and len(clone) == len(ds)  # workers get arrays, not the table


def test_dataloader_with_two_workers(store):
    tmp, _, _, frames = store
    w = _windows(frames)
    ds = ClipDataset(tmp / "frames", w, image_size=16, augment=True)
    sampler = BalancedWindowSampler(w, epoch_size=8, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, sampler=sampler, num_workers=2)
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["clip"].shape == (4, 4, 3, 16, 16)
    assert batches[0]["soft"].shape == (4, 2) and len(batches[0]["video"]) == 4


def test_fold_datasets_follow_the_folds(store):
    tmp, videos, index, _ = store
    cfg = Config(root=tmp)
    out = make_task(cfg, preset("task1", n_folds=3, num_frames=4, frame_stride=2), videos=videos, index=index,
                    frames_dir=tmp / "frames")
    task = load_task(out)
    d = fold_datasets(out, 1, image_size=16, val_windows_per_video=2, seed=3)
    assert set(d) == {"train", "val", "test", "train_sampler"}
    for role in ("train", "val", "test"):
        assert set(d[role].windows["animal"]) <= set(task.folds[1][role])
    assert d["train"].augment and not d["test"].augment
    assert d["val"].windows.groupby("video").size().max() <= 2
    assert len(d["train_sampler"]) >= 1
    labels = d["train"].windows["label"].to_numpy()[d["train_sampler"].indices()]
    assert 0.2 < labels.mean() < 0.8
    item = d["test"][0]
    assert item["clip"].shape == (4, 3, 16, 16)
    t = fold_datasets(out, 0, num_frames=3, frame_stride=1, image_size=8, test_windows_per_video=1)["test"]
    assert t[0]["clip"].shape == (3, 3, 8, 8) and t.windows.groupby("video").size().max() == 1


def test_seed_names_exist():
    assert issubclass(TemporalMouseDataset, ClipDataset)
    assert create_soft_label(1, 0.1) == [0.1, 0.9]


@pytest.mark.slow
def test_end_to_end_on_the_tiny_synthetic_cohort(tiny_project):
    """synth tiny -> prepare -> keypoints -> extract -> task1 -> fold datasets -> a clip."""
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.io.keypoints import import_keypoints
    from mouse_facial_expressions.preprocess.extract import extract_videos
    from mouse_facial_expressions.preprocess.prepare import prepare_videos

    cfg = load_config(tiny_project)
    prepare_videos(cfg, progress=False)
    import_keypoints(cfg)
    extract_videos(cfg, progress=False)
    out = make_task(cfg, preset("task1"))
    task = load_task(out)
    assert set(task.frames["label"]) == {0, 1}
    d = fold_datasets(out, 0, image_size=32)
    item = d["test"][0]
    assert item["clip"].shape == (10, 3, 32, 32) and torch.isfinite(item["clip"]).all()
    times = task.frames.set_index(["video", "row"])["time"]
    for _, w in d["test"].windows.iterrows():  # real time: frames in order, no gap bridged
        t = times.loc[[(w["video"], r) for r in w["rows"]]].to_numpy()
        assert np.all(np.diff(t) >= 0) and np.all(np.diff(t) <= task.spec.max_gap_s * task.spec.frame_stride)


def test_collate_clips_sends_only_the_clip_as_a_tensor(store):
    from mouse_facial_expressions.data.datasets import batch_tensors, collate_clips

    tmp, _, _, frames = store
    ds = ClipDataset(tmp / "frames", _windows(frames), image_size=16, clip_dtype="uint8")
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_clips)
    batch = next(iter(loader))
    assert torch.is_tensor(batch["clip"]) and batch["clip"].shape == (4, 4, 1, 16, 16)
    assert isinstance(batch["soft"], np.ndarray) and isinstance(batch["label"], np.ndarray)
    assert len(batch["video"]) == 4 and isinstance(batch["video"][0], str)
    back = batch_tensors(batch)
    ref = torch.utils.data.default_collate([ds[i] for i in range(4)])
    for k in ("clip", "soft", "label", "start_time", "end_time"):
        assert torch.equal(back[k], ref[k]), k
    assert back["video"] == ref["video"]


def test_augmentation_is_reproducible_across_processes(store):
    """The same seeds give the same augmented clips in a fresh process (no pid in the seed)."""
    import subprocess
    import sys

    tmp, _, _, frames = store
    w = _windows(frames)
    w.to_pickle(tmp / "w.pkl")
    code = (
        "import sys, pandas as pd, torch\n"
        "from mouse_facial_expressions.data.datasets import ClipDataset\n"
        "torch.manual_seed(5)\n"
        f"ds = ClipDataset({str(tmp / 'frames')!r}, pd.read_pickle({str(tmp / 'w.pkl')!r}), image_size=16, augment=True, seed=2)\n"
        "print(float(sum(ds[i]['clip'].double().sum() for i in range(6))))\n"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] and runs[0].strip()


def test_frame_scope_augments_each_frame_on_its_own(store):
    tmp, _, _, frames = store
    w = _windows(frames).iloc[:1].assign(rows=[[30, 30, 30, 30]])  # one frame repeated
    ds = ClipDataset(tmp / "frames", w, image_size=16, augment=True, seed=1, augment_scope="frame", augment_policy="wide")
    differing = 0
    for _ in range(6):
        clip = ds[0]["clip"]
        differing += any(not torch.equal(clip[0], clip[t]) for t in range(1, 4))
    assert differing >= 4  # a new operation per frame: frames of one clip differ (identity draws aside)


def test_wide_policy_is_torchvision_trivial_augment_wide_on_grey():
    from mouse_facial_expressions.data.augment import WIDE_POLICY

    assert set(WIDE_POLICY) == set(POLICY)  # same operations, wider ranges
    assert WIDE_POLICY["rotate"] == (-135.0, 135.0) and WIDE_POLICY["shear_x"] == (-0.99, 0.99)
    assert WIDE_POLICY["posterize"] == (2.0, 8.0) and WIDE_POLICY["solarize"] == (0.0, 255.0)


def test_unknown_augmentation_settings_are_errors(store):
    tmp, _, _, frames = store
    with pytest.raises(ValueError, match="scope"):
        ClipDataset(tmp / "frames", _windows(frames), image_size=16, augment_scope="video")
    with pytest.raises(ValueError, match="policy"):
        ClipDataset(tmp / "frames", _windows(frames), image_size=16, augment_policy="strong")


def test_uniform_sampler_draws_each_window_once_per_pass(store):
    from mouse_facial_expressions.data.datasets import UniformWindowSampler

    _, _, _, frames = store
    w = _windows(frames)
    s = UniformWindowSampler(w, epoch_size=len(w), seed=3)
    first = s.indices()
    assert sorted(first.tolist()) == list(range(len(w)))  # a permutation: no window twice
    assert np.array_equal(first, UniformWindowSampler(w, len(w), seed=3).indices())  # seeded
    s.set_epoch(1)
    assert not np.array_equal(first, s.indices())  # fresh order each epoch
    longer = UniformWindowSampler(w, epoch_size=2 * len(w) + 1, seed=0).indices()
    assert len(longer) == 2 * len(w) + 1 and np.bincount(longer).max() == 3
    assert not UniformWindowSampler.balances_classes


def test_class_weights_only_without_a_class_balancing_sampler(store):
    from mouse_facial_expressions.data.datasets import UniformWindowSampler
    from mouse_facial_expressions.training.cv import _class_weights

    tmp, _, _, frames = store
    w = _windows(frames)
    ds = ClipDataset(tmp / "frames", w, image_size=16)
    assert _class_weights({"train": ds, "train_sampler": BalancedWindowSampler(w, 8)}) is None
    weights = _class_weights({"train": ds, "train_sampler": UniformWindowSampler(w, 8)})
    n1 = int((w["label"] == 1).sum())
    assert weights == pytest.approx([len(w) / (2 * (len(w) - n1)), len(w) / (2 * n1)])
