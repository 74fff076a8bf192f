"""Tests of the synthetic stick-figure generator, its label sets and their knowledge."""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from kgclip_core.errors import ConfigError, LabelError
from kgclip_core.kg.knowledge import LABELS_DIR, load_knowledge, validate_knowledge
from kgclip_core.kg.lexicon import KNOWLEDGE_DIR
from kgclip_core.synth import (
    SYNTHETIC, SYNTHETIC_NOVEL, SynthConfig, active_parts, render_clip, write_dataset, write_video,
)
from kgclip_core.synth.actions import LABEL_SETS, get_action
from kgclip_core.synth.cli import add_parser
from kgclip_core.synth.figure import OBJECT_COLOURS, PART_COLOURS, SIDES, Pose, rest_state, split_key
from kgclip_core.synth.knowledge import build_knowledge, knowledge_text, labels_text
from kgclip_core.synth.programs import PROGRAMS, sample_timing
from kgclip_core.synth.scene import muted_colour

ALL_ACTIONS = SYNTHETIC + SYNTHETIC_NOVEL
SHORT = SynthConfig(num_frames=24)
COLOURS = {**PART_COLOURS, **OBJECT_COLOURS}
PALETTE_KEYS = list(COLOURS)
PALETTE = np.array([COLOURS[k] for k in PALETTE_KEYS], np.float32)


def _regions(truth_frame: dict) -> list[tuple[str, list[int] | None, int]]:
    """(colour key, box, area) of every drawn part and object of one ground-truth frame."""
    out = [(key, p["box"], p["area"]) for key, p in truth_frame["parts"].items() if key != "whole body"]
    return out + [(o["name"], o["box"], o["area"]) for o in truth_frame["objects"]]


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _dilate(box: list[int], pad: int, size: int) -> tuple[slice, slice]:
    return slice(max(0, box[1] - pad), min(size, box[3] + pad)), slice(max(0, box[0] - pad), min(size, box[2] + pad))


# --- determinism -------------------------------------------------------------------------

def test_same_seed_gives_identical_frames_and_ground_truth():
    frames_a, truth_a = render_clip("throw ball overhand", 11, SHORT)
    frames_b, truth_b = render_clip("throw ball overhand", 11, SHORT)
    assert frames_a.dtype == np.uint8 and frames_a.shape == (24, 112, 112, 3)
    assert np.array_equal(frames_a, frames_b)
    assert json.dumps(truth_a) == json.dumps(truth_b)
    frames_c, truth_c = render_clip("throw ball overhand", 12, SHORT)
    assert not np.array_equal(frames_a, frames_c)
    assert truth_a["frames"] != truth_c["frames"]


def test_written_dataset_is_reproducible_byte_for_byte(tmp_path):
    cfg = SynthConfig(num_frames=12, size=64)
    classes = ["wave right hand", "kick left leg"]
    for name in ("a", "b"):
        write_dataset(tmp_path / name, per_class=2, seed=5, classes=classes, cfg=cfg)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len([p for p in files_a if p.suffix == ".mp4"]) == 4
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    write_dataset(tmp_path / "c", per_class=2, seed=6, classes=classes, cfg=cfg)
    assert (tmp_path / "a" / "ground_truth.jsonl").read_bytes() != (tmp_path / "c" / "ground_truth.jsonl").read_bytes()


def test_encoding_the_same_frames_gives_the_same_bytes(tmp_path):
    frames, truth = render_clip("march and swing arms", 4)
    outputs = set()
    for k in range(6):
        write_video(tmp_path / f"{k}.mp4", frames, truth["fps"])
        outputs.add((tmp_path / f"{k}.mp4").read_bytes())
    assert len(outputs) == 1


# --- ground truth against pixels ---------------------------------------------------------

@pytest.mark.parametrize("action", [a.name for a in ALL_ACTIONS])
def test_boxes_are_exactly_the_part_pixels_without_noise(action):
    cfg = replace(SHORT, noise_std=(0.0, 0.0))
    frames, truth = render_clip(action, 3, cfg)
    size = cfg.size
    for frame, gt in zip(frames, truth["frames"]):
        assert gt["parts"]["whole body"]["box"] is not None
        for key, box, area in _regions(gt):
            mask = np.all(frame == np.array(COLOURS[key], np.uint8), axis=-1)
            assert int(mask.sum()) == area, (key, area)
            if box is None:
                assert area == 0
                continue
            ys, xs = np.nonzero(mask)
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == box, key
            assert 0 <= box[0] < box[2] <= size and 0 <= box[1] < box[3] <= size
        whole = gt["parts"]["whole body"]["box"]
        for key, box, _ in _regions(gt):
            if box is not None and key in PART_COLOURS:
                assert whole[0] <= box[0] and whole[1] <= box[1] and box[2] <= whole[2] and box[3] <= whole[3]


def test_figure_stays_whole_in_frame_under_strong_camera_motion():
    cfg = SynthConfig(num_frames=24, size=96, figure_height=(0.95, 0.95), max_zoom=0.5, max_drift=0.25, jitter_px=12)
    for k, action in enumerate(["jump with arms up", "kick left leg", "throw ball overhand", "lean to the side"]):
        _, truth = render_clip(action, k, cfg)
        for gt in truth["frames"]:
            x0, y0, x1, y1 = gt["parts"]["whole body"]["box"]
            assert x0 > 0 and y0 > 0 and x1 < cfg.size and y1 < cfg.size, (action, gt["parts"]["whole body"])
            assert gt["parts"]["head"]["area"] > 0 and gt["parts"]["torso"]["area"] > 0


def test_noise_leaves_geometry_and_ground_truth_unchanged():
    noisy, truth = render_clip("bounce ball", 8, SHORT)
    clean, clean_truth = render_clip("bounce ball", 8, replace(SHORT, noise_std=(0.0, 0.0)))
    assert [f["parts"] for f in truth["frames"]] == [f["parts"] for f in clean_truth["frames"]]
    assert truth["scene"]["noise_std"] > 0
    assert 0 < np.abs(noisy.astype(int) - clean.astype(int)).mean() < 10


def _interior(mask: np.ndarray) -> int:
    """Pixels whose whole 3x3 neighbourhood is in ``mask``: those keep their colour under the
    2x2 chroma subsampling of yuv420p video, unlike one- or two-pixel slivers."""
    core = mask[1:-1, 1:-1].copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            core &= mask[1 + dy:mask.shape[0] - 1 + dy, 1 + dx:mask.shape[1] - 1 + dx]
    return int(core.sum())


def test_part_colours_survive_video_encoding(tmp_path):
    """After the video round trip, the box of every part with a solid (not sliver-thin) visible
    region holds pixels of its colour, and nearly all pixels of that colour lie in its box."""
    tested = 0
    for k, action in enumerate(["wave both hands", "squat and hold ball", "throw ball overhand",
                                "hop on left leg and wave right hand", "clap hands", "march and swing arms"]):
        frames, truth = render_clip(action, 100 + k)
        clean, _ = render_clip(action, 100 + k, replace(SynthConfig.from_dict(truth["config"]), noise_std=(0.0, 0.0)))
        path = tmp_path / f"{k}.mp4"
        write_video(path, frames, truth["fps"])
        decoded = _decode(path).astype(np.float32)
        assert decoded.shape == frames.shape
        dist = np.linalg.norm(decoded[:, :, :, None, :] - PALETTE[None, None, None], axis=-1)
        nearest = np.where(dist.min(-1) < 60.0, dist.argmin(-1), -1)  # [T, H, W] palette index or -1
        inside, total = dict.fromkeys(PALETTE_KEYS, 0), dict.fromkeys(PALETTE_KEYS, 0)
        for t, gt in enumerate(truth["frames"]):
            for key, box, _ in _regions(gt):
                hits = nearest[t] == PALETTE_KEYS.index(key)
                total[key] += int(hits.sum())
                if box is None:
                    continue
                in_box = int(hits[_dilate(box, 2, frames.shape[1])].sum())
                inside[key] += in_box
                if _interior(np.all(clean[t] == np.array(COLOURS[key], np.uint8), axis=-1)):
                    assert in_box > 0, (action, t, key)
                    tested += 1
        for key in PALETTE_KEYS:
            if total[key]:
                assert inside[key] >= 0.99 * total[key], (action, key, inside[key], total[key])
    assert tested > 1500


def test_scene_colours_stay_far_from_part_colours():
    rng = np.random.default_rng(0)
    scene = np.stack([muted_colour(rng) for _ in range(5000)])
    dist = np.linalg.norm(scene[:, None, :] - PALETTE[None], axis=-1)
    assert dist.min() > 60.0


# --- ground truth against the definitions -------------------------------------------------

@pytest.mark.parametrize("action", ALL_ACTIONS, ids=lambda a: a.name)
def test_reported_states_are_exactly_the_declared_movements(action):
    _, truth = render_clip(action, 21, SHORT)
    seen = set()
    for gt in truth["frames"]:
        objects = {o["name"] for o in gt["objects"]}
        for key, part in gt["parts"].items():
            if part["state"] != rest_state(key):
                name, side = split_key(key)
                seen.add((name, side, part["state"]))
        assert objects == set(action.objects())
    declared = {(part, side, state) for part, side, state, _ in action.movements()}
    assert seen == declared
    assert truth["movements"] == build_knowledge(_label_set_of(action.name))["classes"][action.name]["movements"]


def _label_set_of(name: str) -> str:
    return next(s for s, actions in LABEL_SETS.items() if any(a.name == name for a in actions))


def _written_channels(pose: Pose) -> set[str]:
    rest, out = Pose(), set()
    for side in SIDES:
        if pose.hand[side] != rest.hand[side] or pose.elbow[side] != rest.elbow[side]:
            out.add(f"hand:{side}")
        if pose.foot[side] != rest.foot[side] or pose.knee[side] != rest.knee[side]:
            out.add(f"foot:{side}")
    out |= {name for name in ("lift", "torso_bend", "torso_lean") if getattr(pose, name) != getattr(rest, name)}
    return out | ({"ball"} if pose.objects else set())


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_programs_write_exactly_the_channels_they_declare(program):
    spec = PROGRAMS[program]
    timing = sample_timing(spec, np.random.default_rng(0))
    for sides in ((("right",), ("left",), SIDES) if spec.lateral else ((),)):
        written = set()
        for u in np.linspace(0.0, 0.99, 50):
            pose = Pose()
            spec.fn(pose, float(u), timing, sides)
            written |= _written_channels(pose)
        assert written == spec.expand_channels(sides), (program, sides)


def test_moving_parts_really_move_and_resting_parts_stay_put():
    _, truth = render_clip("kick right leg", 4, replace(SHORT, max_zoom=0.0, max_drift=0.0, jitter_px=0))
    def travel(key):
        boxes = np.array([f["parts"][key]["box"] for f in truth["frames"]], float)
        return float(np.ptp(boxes, axis=0).max())
    assert travel("right foot") > 8 * max(travel("left foot"), 1.0)
    assert travel("right leg") > 3 * max(travel("left arm"), 1.0)


def test_active_parts_are_the_parts_a_program_moves():
    _, truth = render_clip("wave right hand", 6, SHORT)
    last = truth["frames"][-1]
    assert active_parts(last) == ["right arm", "right hand"]
    _, truth = render_clip("jump in place", 6, SHORT)
    assert active_parts(truth["frames"][-1]) == ["right leg", "left leg"]
    assert active_parts(truth["frames"][-1], include_whole_body=True) == ["whole body", "right leg", "left leg"]


def test_thrown_ball_leaves_the_hand():
    _, truth = render_clip("throw ball overhand", 2, SHORT)
    states = [f["objects"][0]["state"] for f in truth["frames"]]
    assert states[0] == "held" and states[-1] == "flying"
    first_flying = states.index("flying")
    hand = truth["frames"][-1]["parts"]["right hand"]["box"]
    ball = truth["frames"][-1]["objects"][0]["box"]
    assert all(s == "flying" for s in states[first_flying:])
    assert ball is None or ball[2] <= hand[0] or ball[0] >= hand[2] or ball[3] <= hand[1] or ball[1] >= hand[3]


# --- label sets and knowledge ---------------------------------------------------------------

def test_label_sets_are_large_enough_and_disjoint():
    train, novel = [a.name for a in SYNTHETIC], [a.name for a in SYNTHETIC_NOVEL]
    assert len(train) >= 20 and len(novel) >= 5
    assert len(set(train)) == len(train) and len(set(novel)) == len(novel)
    assert not set(train) & set(novel)


def test_novel_actions_only_recombine_part_states_seen_in_training():
    seen = {m for a in SYNTHETIC for m in a.movements()}
    train_sets = {frozenset(a.movements()) for a in SYNTHETIC}
    for action in SYNTHETIC_NOVEL:
        assert set(action.movements()) <= seen, action.name
        assert frozenset(action.movements()) not in train_sets, action.name
        assert len(action.steps) >= 2


def test_training_actions_share_part_states():
    counts: dict = {}
    for action in SYNTHETIC:
        for m in action.movements():
            counts[m] = counts.get(m, 0) + 1
    shared = [m for m, c in counts.items() if c > 1]
    assert len(shared) >= 8
    assert all(any(counts[m] > 1 for m in a.movements()) for a in SYNTHETIC if len(a.steps) > 1)


@pytest.mark.parametrize("label_set", sorted(LABEL_SETS))
def test_shipped_knowledge_and_labels_equal_the_definitions(label_set):
    assert (KNOWLEDGE_DIR / f"{label_set}.json").read_text(encoding="utf-8") == knowledge_text(label_set)
    assert (LABELS_DIR / f"{label_set}.txt").read_text(encoding="utf-8") == labels_text(label_set)
    data = json.loads((KNOWLEDGE_DIR / f"{label_set}.json").read_text(encoding="utf-8"))
    names = labels_text(label_set).splitlines()
    assert validate_knowledge(data, names) == []
    loaded = load_knowledge(label_set)
    assert list(loaded) == names
    assert all(k.movements and k.description.startswith("A stick figure") for k in loaded.values())


def test_unknown_names_raise_label_errors(tmp_path):
    with pytest.raises(LabelError):
        get_action("moonwalk")
    with pytest.raises(LabelError):
        write_dataset(tmp_path, per_class=1, seed=0, classes="kinetics400")
    assert not list(tmp_path.iterdir())


# --- data set files and CLI ------------------------------------------------------------------

def test_written_dataset_files_parse(tmp_path):
    cfg = SynthConfig(num_frames=16, size=64, fps=12)
    summary = write_dataset(tmp_path, per_class=4, seed=1, classes="synthetic_novel", cfg=cfg)
    n_classes = len(SYNTHETIC_NOVEL)
    assert (summary.num_train, summary.num_val) == (3 * n_classes, n_classes)
    with open(tmp_path / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["id"]), r["name"]) for r in rows] == [(i, a.name) for i, a in enumerate(SYNTHETIC_NOVEL)]
    listed = {}
    for split in ("train", "val"):
        for line in (tmp_path / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            rel, label = line.rsplit(" ", 1)
            assert (tmp_path / rel).is_file() and 0 <= int(label) < n_classes
            listed[rel] = (split, int(label))
    truths = [json.loads(line) for line in (tmp_path / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(truths) == len(listed) == 4 * n_classes
    for truth in truths:
        assert listed[truth["path"]] == (truth["split"], truth["label"])
        assert rows[truth["label"]]["name"] == truth["action"]
        assert len(truth["frames"]) == 16
    video = _decode(tmp_path / truths[0]["path"])
    assert video.shape == (16, 64, 64, 3)
    with av.open(str(tmp_path / truths[0]["path"])) as container:
        assert container.streams.video[0].average_rate == 12
    meta = json.loads((tmp_path / "meta.json").read_text(encoding="utf-8"))
    assert meta["label_set"] == "synthetic_novel" and meta["config"]["num_frames"] == 16
    # A clip is reproducible from its recorded seed alone.
    frames, again = render_clip(truths[0]["action"], truths[0]["seed"], SynthConfig.from_dict(truths[0]["config"]))
    assert again["frames"] == truths[0]["frames"]
    assert np.abs(frames.astype(int) - video.astype(int)).mean() < 12


def test_training_code_reads_the_written_lists(tmp_path):
    from kgclip_core.training.datasets import load_labels, read_list

    write_dataset(tmp_path, per_class=2, seed=0, classes="synthetic", cfg=SynthConfig(num_frames=8, size=64))
    labels = load_labels(str(tmp_path / "labels.csv"))
    assert list(labels.classes) == [a.name for a in SYNTHETIC]
    for split in ("train", "val"):
        samples = read_list(tmp_path / f"{split}.txt", labels)
        assert len(samples) == len(SYNTHETIC)
        assert all(Path(s.path).is_file() for s in samples)
        assert sorted(s.label for s in samples) == list(range(len(SYNTHETIC)))


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_a_dataset(tmp_path, capsys):
    rc = _cli(["synth", "--out", str(tmp_path), "--per-class", "1", "--seed", "3", "--classes", "synthetic",
               "--frames", "8", "--size", "64"])
    assert rc == 0
    assert "24 classes" in capsys.readouterr().out
    assert len((tmp_path / "train.txt").read_text().splitlines()) == 24
    assert len(list((tmp_path / "videos").rglob("*.mp4"))) == 24


def test_bad_config_raises_config_error(tmp_path):
    with pytest.raises(ConfigError):
        _cli(["synth", "--out", str(tmp_path), "--per-class", "1", "--size", "63"])
    with pytest.raises(ConfigError):
        write_dataset(tmp_path, per_class=0, seed=0)
    for bad in ({"num_frames": 1}, {"max_drift": 0.5}, {"figure_height": (0.8, 0.5)}, {"fps": 0},
                {"size": 100_000}, {"num_frames": 10**7}, {"fps": 10**6}):  # bounded before any allocation
        with pytest.raises(ConfigError):
            SynthConfig(**bad)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="Cannot create the output folder"):
        write_dataset(blocker / "sub", per_class=1, seed=0)


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
def test_both_codecs_round_trip(tmp_path, codec):
    frames, truth = render_clip("punch with right arm", 9, SHORT)
    write_video(tmp_path / "clip.mp4", frames, truth["fps"], codec)
    decoded = _decode(tmp_path / "clip.mp4")
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 10
