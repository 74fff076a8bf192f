"""Datasets: list and label formats, clear errors at load, unreadable videos skipped and counted."""

import numpy as np
import pytest
import torch
from _training_data import CLASSES, write_tiny_dataset
from PIL import Image
from torch.utils.data import DataLoader

from kgclip_core.errors import ConfigError, LabelError
from kgclip_core.training.datasets import (
    ResumableSampler,
    Sample,
    VideoDataset,
    collate,
    load_labels,
    read_list,
)
from kgclip_core.training.transforms import ClipTransform

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def transform(train: bool, crops: int = 1) -> ClipTransform:
    return ClipTransform(image_size=32, mean=MEAN, std=STD, train=train, test_crops=crops)


@pytest.fixture
def data(tmp_path, shared_clips):
    return write_tiny_dataset(tmp_path, shared_clips, corrupt=1)


def test_label_csv_and_list_file(data):
    labels = load_labels(data["labels"])
    assert labels.classes == CLASSES
    samples = read_list(data["val"], labels, data["root"])
    assert [s.label for s in samples] == [0, 1, 2, 3]
    assert all(s.path.startswith(data["root"]) for s in samples)


def test_csv_list_with_class_names(tmp_path):
    labels = load_labels("hmdb51")
    (tmp_path / "list.csv").write_text("path,label\nx/a b.avi,climb_stairs\ny.avi,3\n")
    samples = read_list(tmp_path / "list.csv", labels, "/data")
    assert samples == [Sample("/data/x/a b.avi", labels.index("climb stairs")), Sample("/data/y.avi", 3)]


def test_label_out_of_range_fails_at_load_naming_the_line(tmp_path):
    labels = load_labels("hmdb51")
    (tmp_path / "train.txt").write_text("a.avi 0\nb.avi 51\n")
    with pytest.raises(LabelError, match=r"train.txt:2.*0\.\.50"):
        read_list(tmp_path / "train.txt", labels)


def test_empty_split_fails_clearly(tmp_path):
    (tmp_path / "empty.txt").write_text("\n# nothing here\n")
    with pytest.raises(ConfigError, match="no samples"):
        read_list(tmp_path / "empty.txt", load_labels("ucf101"))
    with pytest.raises(ConfigError, match="no samples"):
        VideoDataset([], transform(False), 4)


def test_bad_label_files(tmp_path):
    (tmp_path / "gap.csv").write_text("id,name\n0,run\n2,jump\n")
    with pytest.raises(LabelError, match="0..1"):
        load_labels(str(tmp_path / "gap.csv"))
    with pytest.raises(LabelError, match="does not exist"):
        load_labels(str(tmp_path / "missing.csv"))


def test_unreadable_videos_are_skipped_and_counted_in_workers(data, tmp_path):
    labels = load_labels(data["labels"])
    samples = read_list(data["train"], labels, data["root"]) + [Sample(str(tmp_path / "missing.mp4"), 0)]
    ds = VideoDataset(samples, transform(False), num_frames=2, short_side=40)
    loader = DataLoader(ds, batch_size=3, num_workers=1, collate_fn=collate)
    batches = list(loader)
    assert sum(b["skipped"] for b in batches) == 2  # the corrupt file and the missing one
    assert sum(b["label"].numel() for b in batches) == 4
    assert batches[0]["video"].shape == (3, 1, 2, 3, 32, 32)


def test_train_items_depend_only_on_seed_epoch_and_index(data):
    labels = load_labels(data["labels"])
    ds = VideoDataset(read_list(data["val"], labels, data["root"]), transform(True), num_frames=3, short_side=48)
    a, b = ds[1]["video"], ds[1]["video"]
    torch.testing.assert_close(a, b)
    ds.set_epoch(1)
    assert not torch.equal(a, ds[1]["video"])
    assert a.shape == (1, 3, 3, 32, 32)


def test_test_views_and_crops(data):
    labels = load_labels(data["labels"])
    samples = read_list(data["val"], labels, data["root"])
    ds = VideoDataset(samples, transform(False, crops=3), num_frames=2, num_views=2, short_side=32)
    video = ds[0]["video"]
    assert video.shape == (6, 2, 3, 32, 32)  # 2 temporal views x 3 crops
    assert not torch.equal(video[0], video[2])  # left and right crops differ


def test_frame_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.full((24, 40, 3), i * 40, dtype=np.uint8)).save(folder / f"img_{i:05d}.jpg")
    ds = VideoDataset([Sample(str(folder), 0)], transform(False), num_frames=3, short_side=32)
    video = ds[0]["video"]
    assert video.shape == (1, 3, 3, 32, 32)
    # TSN centres of 3 segments of 6 frames are frames 1, 3, 5: brightness 40, 120, 200.
    means = (video[0].mean(dim=(1, 2, 3)) * STD[0] + MEAN[0]) * 255
    np.testing.assert_allclose(means.numpy(), [40, 120, 200], atol=3)


def test_resumable_sampler_skips_exactly_the_done_part():
    ds = list(range(10))
    full = ResumableSampler(ds, num_replicas=2, rank=1, seed=4)
    full.set_epoch(3)
    order = list(full)
    tail = ResumableSampler(ds, num_replicas=2, rank=1, seed=4)
    tail.set_epoch(3, start=2)
    assert list(tail) == order[2:] and len(tail) == len(order) - 2
    other = ResumableSampler(ds, num_replicas=2, rank=0, seed=4)
    other.set_epoch(3)
    assert sorted(order + list(other)) == ds
