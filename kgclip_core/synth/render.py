"""Render one synthetic clip and its ground truth.

:func:`render_clip` runs an action's part-state programs frame by frame, poses the stick
figure, places it in a cluttered scene with a shaking, zooming camera and pixel noise, and
returns the frames with per-frame ground truth: the state and pixel box of every body part
and the box of every object. Boxes come from a label map painted with the same strokes as
the frame, so a box is exactly the extent of that part's visible pixels. Everything random
is drawn from the seed, so the same (action, seed, config) gives identical frames.

Boxes are ``[x0, y0, x1, y1]`` in pixels with exclusive ends (``frame[y0:y1, x0:x1]``);
``None`` when the part or object is not visible in that frame. The whole body's box is the
union of the drawn parts' boxes (objects excluded). Part states are lexicon states (a part
no program moves is in its resting state, e.g. ``still`` or ``plant``); an object's state is
``held``, ``bouncing`` or ``flying``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

from kgclip_core.errors import ConfigError
from kgclip_core.synth.actions import Action, get_action
from kgclip_core.synth.figure import (
    BODY, DRAWN_PARTS, OBJECT_COLOURS, PART_COLOURS, PART_KEYS, SIDES, HeldObject, Pose, Skeleton,
    rest_state, skeleton,
)
from kgclip_core.synth.programs import Timing, sample_timing
from kgclip_core.synth.scene import BACKGROUNDS, make_background, sample_distractors

# Label-map ids: 0 is the scene, then the drawn parts, then the objects.
PART_IDS = {name: i + 1 for i, name in enumerate(DRAWN_PARTS)}
OBJECT_IDS = {name: len(PART_IDS) + 1 + i for i, name in enumerate(OBJECT_COLOURS)}
_PALETTE = np.zeros((1 + len(PART_IDS) + len(OBJECT_IDS), 3), np.uint8)
for _name, _id in PART_IDS.items():
    _PALETTE[_id] = PART_COLOURS[_name]
for _name, _id in OBJECT_IDS.items():
    _PALETTE[_id] = OBJECT_COLOURS[_name]

# Bounds of a rendered clip: a render holds every frame and a label map per frame in memory,
# so a 1024-px, 1000-frame clip (~3 GB) is the most one request may ask for.
MIN_SIZE, MAX_SIZE, MAX_FRAMES, MAX_FPS = 48, 1024, 1000, 240
GRAVITY = 5.0  # body units / s^2 (the figure is ~0.93 units, i.e. ~1.75 m, tall)
STANDING_HEIGHT = 0.93  # body units, for the figure-height fraction of the frame
_EXTENT_PAD = 0.08  # body units around the joints (head radius, limb thickness)


@dataclass
class SynthConfig:
    """How clips look: size, length, and how much nuisance variation there is.

    figure_height: the standing figure's height as a fraction of the frame, drawn per clip;
    max_zoom: relative change of the figure's scale over a clip; max_drift: how far (as a
    fraction of the frame) the figure may drift over a clip; jitter_px: camera shake;
    noise_std: range of the per-clip Gaussian pixel noise.
    """

    size: int = 112
    num_frames: int = 40
    fps: int = 16
    figure_height: tuple[float, float] = (0.5, 0.8)
    max_zoom: float = 0.12
    max_drift: float = 0.08
    jitter_px: int = 2
    max_distractors: int = 4
    noise_std: tuple[float, float] = (0.0, 6.0)

    @classmethod
    def from_dict(cls, data: dict) -> SynthConfig:
        """The config recorded in a clip's ground truth (``truth["config"]``)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def __post_init__(self) -> None:
        if not MIN_SIZE <= self.size <= MAX_SIZE or self.size % 2:
            raise ConfigError(f"Clip size must be an even number of pixels in [{MIN_SIZE}, {MAX_SIZE}], got {self.size}.")
        if not 2 <= self.num_frames <= MAX_FRAMES:
            raise ConfigError(f"A clip needs 2 to {MAX_FRAMES} frames, got {self.num_frames}.")
        if not 1 <= self.fps <= MAX_FPS:
            raise ConfigError(f"Frame rate must be in [1, {MAX_FPS}], got {self.fps}.")
        lo, hi = self.figure_height
        if not 0.1 <= lo <= hi <= 0.95:
            raise ConfigError(f"figure_height must be 0.1 <= low <= high <= 0.95, got {self.figure_height}.")
        if not (0.0 <= self.max_zoom <= 0.5 and 0.0 <= self.max_drift <= 0.25 and 0 <= self.jitter_px <= self.size // 8):
            raise ConfigError("Keep max_zoom in [0, 0.5], max_drift in [0, 0.25] and jitter_px in [0, size/8] "
                              "so the figure can stay inside the frame.")


@dataclass(frozen=True)
class _Camera:
    """Body units -> pixels per frame: x = ax + s * bx, y = ay - s * by."""

    ax: np.ndarray
    ay: np.ndarray
    scale: np.ndarray
    jitter: np.ndarray  # [T, 2] integer camera shake, also applied to the scene

    def to_px(self, i: int, p: tuple[float, float]) -> tuple[float, float]:
        return (float(self.ax[i] + self.scale[i] * p[0]), float(self.ay[i] - self.scale[i] * p[1]))


def _pose_at(action: Action, timings: list[Timing], u: float) -> tuple[Pose, dict[str, str]]:
    pose = Pose()
    states = {key: rest_state(key) for key in PART_KEYS}
    for step, tm in zip(action.steps, timings):
        states.update(step.spec.fn(pose, u, tm, step.sides))
    return pose, states


def _held_position(sk: Skeleton, side: str) -> tuple[float, float]:
    wrist = sk.arms[side][2]
    return (wrist[0], wrist[1] - 0.03)


class _ObjectTracker:
    """Object positions in body units, including balls in flight after a release."""

    def __init__(self, action: Action, timings: list[Timing], num_frames: int, duration: float):
        self._action, self._timings = action, timings
        self._du, self._duration = 1.0 / num_frames, duration
        self._launches: dict[tuple[str, str, float], tuple[tuple[float, float], tuple[float, float]]] = {}

    def _launch(self, obj: HeldObject) -> tuple[tuple[float, float], tuple[float, float]]:
        key = (obj.name, obj.side, obj.release)
        if key not in self._launches:
            before = _held_position(skeleton(_pose_at(self._action, self._timings, obj.release - self._du)[0]), obj.side)
            at = _held_position(skeleton(_pose_at(self._action, self._timings, obj.release)[0]), obj.side)
            dt = self._du * self._duration
            # The hand's velocity at release, plus some loft so the ball arcs.
            velocity = ((at[0] - before[0]) / dt, (at[1] - before[1]) / dt + 0.8)
            self._launches[key] = (at, velocity)
        return self._launches[key]

    def position(self, obj: HeldObject, sk: Skeleton, u: float) -> tuple[float, float]:
        held = _held_position(sk, obj.side)
        if obj.mode == "held":
            return held
        if obj.mode == "dribble":
            floor = BODY.ball_r
            return (held[0], floor + (held[1] - floor) * obj.bounce)
        (x0, y0), (vx, vy) = self._launch(obj)
        t = (u - obj.release) * self._duration
        return (x0 + vx * t, max(BODY.ball_r, y0 + vy * t - 0.5 * GRAVITY * t * t))


def _extent(sk: Skeleton, objects: list[tuple[HeldObject, tuple[float, float]]]) -> np.ndarray:
    """[xmin, xmax, ymin, ymax] of the figure and the objects it holds, in body units."""
    pts = np.array(sk.points())
    lo, hi = pts.min(0) - _EXTENT_PAD, pts.max(0) + _EXTENT_PAD
    for obj, (x, y) in objects:
        if obj.mode != "flying":
            lo = np.minimum(lo, (x - BODY.ball_r, y - BODY.ball_r))
            hi = np.maximum(hi, (x + BODY.ball_r, y + BODY.ball_r))
    return np.array([lo[0], hi[0], lo[1], hi[1]])


def _place_camera(extents: np.ndarray, cfg: SynthConfig, rng: np.random.Generator) -> _Camera:
    """Scale, zoom, drift and shake, with the figure kept inside the frame in every frame."""
    T, S, margin = len(extents), cfg.size, 2.0
    ramp = np.linspace(0.0, 1.0, T)
    zoom = 1.0 + rng.uniform(-cfg.max_zoom, cfg.max_zoom) * ramp
    drift = rng.uniform(-cfg.max_drift, cfg.max_drift, size=2) * S * ramp[:, None]
    steps = rng.integers(-1, 2, size=(T, 2))
    jitter = np.clip(np.cumsum(steps, axis=0), -cfg.jitter_px, cfg.jitter_px)
    offset = drift + jitter
    s0 = rng.uniform(*cfg.figure_height) * S / STANDING_HEIGHT
    pick_x, pick_y = rng.uniform(size=2)
    # Shrink the figure until its whole motion fits; the config's limits on drift and shake
    # guarantee that a small enough figure does.
    while True:
        scale = s0 * zoom
        x_lo = np.max(margin - offset[:, 0] - scale * extents[:, 0])
        x_hi = np.min(S - margin - offset[:, 0] - scale * extents[:, 1])
        y_lo = np.max(margin - offset[:, 1] + scale * extents[:, 3])
        y_hi = np.min(S - margin - offset[:, 1] + scale * extents[:, 2])
        if x_lo <= x_hi and y_lo <= y_hi:
            break
        s0 *= 0.92
    cx = x_lo + pick_x * (x_hi - x_lo)
    cy = y_lo + pick_y * (y_hi - y_lo)
    return _Camera(ax=cx + offset[:, 0], ay=cy + offset[:, 1], scale=scale, jitter=jitter)


def _paint_figure(draw: ImageDraw.ImageDraw, cam: _Camera, i: int, sk: Skeleton,
                  objects: list[tuple[HeldObject, tuple[float, float]]]) -> None:
    """Paint the figure's label map: each part (and object) with its id."""
    s = float(cam.scale[i])
    limb = max(2, round(BODY.limb_w * s))

    def px(p: tuple[float, float]) -> tuple[float, float]:
        return cam.to_px(i, p)

    def disc(centre: tuple[float, float], radius: float, fill: int) -> None:
        x, y = px(centre)
        r = max(1.5, radius * s)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    draw.line([px(sk.neck), px(sk.pelvis)], fill=PART_IDS["torso"], width=max(3, round(BODY.torso_w * s)))
    for side in SIDES:
        draw.line([px(p) for p in sk.legs[side]], fill=PART_IDS[f"{side} leg"], width=limb, joint="curve")
    for side in SIDES:
        draw.line([px(p) for p in sk.feet[side]], fill=PART_IDS[f"{side} foot"], width=limb)
    disc(sk.head, BODY.head_r, PART_IDS["head"])
    for side in SIDES:
        draw.line([px(p) for p in sk.arms[side]], fill=PART_IDS[f"{side} arm"], width=limb, joint="curve")
    for obj, pos in objects:
        disc(pos, BODY.ball_r, OBJECT_IDS[obj.name])
    for side in SIDES:
        disc(sk.arms[side][2], BODY.hand_r, PART_IDS[f"{side} hand"])


def _regions(labels: np.ndarray) -> dict[int, tuple[list[int] | None, int]]:
    """Per id of the label map: tight [x0, y0, x1, y1] (exclusive ends) and pixel count."""
    out: dict[int, tuple[list[int] | None, int]] = {}
    for idx in range(1, len(_PALETTE)):
        mask = labels == idx
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        box = None if rows.size == 0 else [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]
        out[idx] = (box, int(mask.sum()))
    return out


def _union(boxes: list[list[int] | None]) -> list[int] | None:
    present = [b for b in boxes if b is not None]
    if not present:
        return None
    return [min(b[0] for b in present), min(b[1] for b in present),
            max(b[2] for b in present), max(b[3] for b in present)]


def active_parts(frame_truth: dict, include_whole_body: bool = False) -> list[str]:
    """Part keys of one ground-truth frame that are not in their resting state: the parts a
    region map or attribution should point at (e.g. ``["right arm", "right hand"]``)."""
    return [key for key, part in frame_truth["parts"].items()
            if part["state"] != rest_state(key) and (include_whole_body or key != "whole body")]


def movement_dicts(action: Action) -> list[dict]:
    """The action's movements in the knowledge-file format (side and object only when set)."""
    out = []
    for part, side, state, obj in action.movements():
        entry = {"part": part}
        if side is not None:
            entry["side"] = side
        entry["state"] = state
        if obj is not None:
            entry["object"] = obj
        out.append(entry)
    return out


def render_clip(action: str | Action, seed: int, cfg: SynthConfig | None = None,
                frames: Sequence[int] | None = None) -> tuple[np.ndarray, dict]:
    """Frames (uint8 [T, H, W, 3]) and ground truth of one clip of ``action``.

    ``frames`` paints only those frame numbers (ground truth too, listed in
    ``truth["frame_indices"]``): the motion, camera and scene are those of the whole clip, so
    they equal the same frames of the full render, at a fraction of the cost.

    The ground truth holds the action, its movements, the scene settings and, per frame,
    ``parts`` (part key -> ``{"state", "box", "area"}``) and ``objects`` (``{"name",
    "state", "box", "area"}``), where area is the visible pixel count. Same ``(action,
    seed, cfg)`` -> identical frames and ground truth.
    """
    cfg = cfg or SynthConfig()
    action = get_action(action) if isinstance(action, str) else action
    motion_rng, camera_rng, scene_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    T, S = cfg.num_frames, cfg.size
    timings = [sample_timing(step.spec, motion_rng) for step in action.steps]
    tracker = _ObjectTracker(action, timings, T, T / cfg.fps)

    posed = []
    for i in range(T):
        u = i / T
        pose, states = _pose_at(action, timings, u)
        sk = skeleton(pose)
        objects = [(obj, tracker.position(obj, sk, u)) for obj in pose.objects]
        posed.append((sk, objects, states))
    cam = _place_camera(np.stack([_extent(sk, objs) for sk, objs, _ in posed]), cfg, camera_rng)

    pad = cfg.jitter_px
    background_kind = BACKGROUNDS[int(scene_rng.integers(len(BACKGROUNDS)))]
    background = make_background(background_kind, S + 2 * pad, scene_rng)
    distractors = sample_distractors(int(scene_rng.integers(0, cfg.max_distractors + 1)), S, scene_rng)
    noise_std = float(scene_rng.uniform(*cfg.noise_std))
    noise_key = int(noise_rng.integers(2**32))

    indices = list(range(T)) if frames is None else [int(i) for i in frames]
    if any(not 0 <= i < T for i in indices):
        raise ConfigError(f"Frame numbers must be in [0, {T}), got {indices}.")
    out = np.empty((len(indices), S, S, 3), np.uint8)
    gt_frames = []
    for k, i in enumerate(indices):
        sk, objects, states = posed[i]
        jx, jy = (int(v) for v in cam.jitter[i])
        scene = Image.fromarray(background[pad - jy:pad - jy + S, pad - jx:pad - jx + S])
        scene_draw = ImageDraw.Draw(scene)
        for d in distractors:
            d.draw(scene_draw, i, (jx, jy))
        label_img = Image.new("L", (S, S), 0)
        _paint_figure(ImageDraw.Draw(label_img), cam, i, sk, objects)
        labels = np.asarray(label_img)
        frame = np.where(labels[..., None] > 0, _PALETTE[labels], np.asarray(scene))
        if noise_std > 0:
            # Noise drawn per frame number, so a subset render equals the full one frame by frame.
            frame_rng = np.random.default_rng((noise_key, i))
            noisy = frame + frame_rng.standard_normal(frame.shape, dtype=np.float32) * noise_std
            frame = np.clip(np.rint(noisy), 0, 255)
        out[k] = frame
        regions = _regions(labels)
        parts = {}
        for key in PART_KEYS:
            if key in PART_IDS:
                box, area = regions[PART_IDS[key]]
            else:  # the whole body: every drawn part together
                box = _union([regions[idx][0] for idx in PART_IDS.values()])
                area = sum(regions[idx][1] for idx in PART_IDS.values())
            parts[key] = {"state": states[key], "box": box, "area": area}
        gt_frames.append({
            "parts": parts,
            "objects": [{"name": obj.name, "state": obj.state, "box": regions[OBJECT_IDS[obj.name]][0],
                         "area": regions[OBJECT_IDS[obj.name]][1]} for obj, _ in objects],
        })

    truth = {
        "action": action.name,
        "seed": int(seed),
        "num_frames": T,
        "fps": cfg.fps,
        "size": [S, S],
        "movements": movement_dicts(action),
        "scene": {
            "background": background_kind,
            "distractors": len(distractors),
            "noise_std": round(noise_std, 3),
            "scale_px_per_unit": round(float(cam.scale[0]), 3),
        },
        "config": asdict(cfg),
        "frames": gt_frames,
    }
    if frames is not None:
        truth["frame_indices"] = indices
    return out, truth
