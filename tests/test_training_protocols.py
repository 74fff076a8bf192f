"""Protocols: seeded few-shot splits, base-to-novel halves, zero-shot targets, saved splits."""

import json

import pytest

from kgclip_core.errors import ConfigError
from kgclip_core.training.config import config_from_dict
from kgclip_core.training.datasets import Sample, read_list
from kgclip_core.training.protocols import base_novel_classes, build_splits, few_shot
from kgclip_core.labels import custom_label_set

NUM_CLASSES = 5


@pytest.fixture
def dataset(tmp_path):
    """A list of 12 videos per class for 5 classes, and its label file."""
    (tmp_path / "labels.txt").write_text("\n".join(f"class {c}" for c in range(NUM_CLASSES)) + "\n")
    lines = [f"videos/c{c}_{i}.mp4 {c}" for i in range(12) for c in range(NUM_CLASSES)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "val.txt").write_text("\n".join(lines[:20]) + "\n")
    return tmp_path


def cfg_for(d, **protocol):
    return config_from_dict({
        "data": {"train_list": str(d / "train.txt"), "val_list": str(d / "val.txt"), "labels": str(d / "labels.txt")},
        "protocol": protocol,
    })


def test_few_shot_split_is_identical_for_a_seed(dataset):
    labels = custom_label_set([f"class {c}" for c in range(NUM_CLASSES)])
    samples = read_list(dataset / "train.txt", labels)
    a = few_shot(samples, 4, seed=7, num_classes=NUM_CLASSES)
    b = few_shot(list(samples), 4, seed=7, num_classes=NUM_CLASSES)
    assert a == b
    assert a != few_shot(samples, 4, seed=8, num_classes=NUM_CLASSES)
    assert sorted(s.label for s in a) == sorted(list(range(NUM_CLASSES)) * 4)
    assert len(set(a)) == len(a)


def test_few_shot_k_per_class_and_short_classes(dataset):
    samples = [Sample(f"v{i}", 0) for i in range(3)] + [Sample(f"w{i}", 1) for i in range(10)]
    split = few_shot(samples, 4, seed=0, num_classes=2)
    assert sum(s.label == 0 for s in split) == 3 and sum(s.label == 1 for s in split) == 4
    with pytest.raises(ConfigError):
        few_shot(samples, 0, seed=0, num_classes=2)


def test_few_shot_split_is_saved_and_reproduced(dataset):
    cfg = cfg_for(dataset, name="few_shot", shots=2, seed=3)
    first = build_splits(cfg, dataset / "run1")
    second = build_splits(cfg, dataset / "run2")
    assert first.train == second.train and len(first.train) == 2 * NUM_CLASSES
    assert (dataset / "run1" / "train.txt").read_text() == (dataset / "run2" / "train.txt").read_text()
    summary = json.loads((dataset / "run1" / "splits.json").read_text())
    assert summary["shots"] == 2 and summary["train"]["samples"] == 2 * NUM_CLASSES
    # The saved list reads back as the same samples.
    reread = read_list(dataset / "run1" / "train.txt", first.labels, dataset)
    assert reread == first.train


def test_base_to_novel(dataset):
    assert base_novel_classes(5) == ([0, 1, 2], [3, 4])
    splits = build_splits(cfg_for(dataset, name="base_to_novel", shots=2, seed=0))
    assert splits.labels.classes == ("class 0", "class 1", "class 2")
    assert {s.label for s in splits.train} == {0, 1, 2} and len(splits.train) == 6
    base, novel = splits.evals
    assert (base.name, novel.name) == ("base", "novel")
    assert novel.labels.classes == ("class 3", "class 4")
    assert {s.label for s in novel.samples} == {0, 1}
    assert all(f"/c{s.label + 3}_" in s.path for s in novel.samples)


def test_zero_shot_evaluates_on_the_target_label_set(dataset, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "labels.txt").write_text("jump\nswim\n")
    (target / "list.txt").write_text("a.mp4 0\nb.mp4 1\n")
    cfg = cfg_for(dataset, name="zero_shot", target_list=str(target / "list.txt"),
                  target_labels=str(target / "labels.txt"), target_video_root="/videos")
    splits = build_splits(cfg)
    assert len(splits.train) == 12 * NUM_CLASSES
    assert [e.name for e in splits.evals] == ["val", "target"]
    assert splits.evals[1].labels.classes == ("jump", "swim")
    assert splits.evals[1].samples[0].path == "/videos/a.mp4"


def test_zero_shot_needs_a_target():
    with pytest.raises(ConfigError, match="target_list"):
        config_from_dict({"protocol": {"name": "zero_shot"}})
