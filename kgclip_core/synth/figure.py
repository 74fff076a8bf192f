"""The stick figure: its body parts, their colours, a pose and the pose's joint positions.

The figure faces the camera, so its right side is on the image's left. Positions are in
body units (the standing figure is about 0.93 units tall) with y pointing up and y = 0 on the
ground. A :class:`Pose` is what part-state programs write: where each hand sits relative to
its shoulder, where each foot sits relative to its hip joint, how the torso leans or bends,
how high the body is off the ground, and what happens to the objects. :func:`skeleton`
turns a pose into joint positions with two-link inverse kinematics, then stands the figure
on its lowest foot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SIDES = ("right", "left")
# Outward direction on the image's x axis: the figure's right is on the image's left.
OUTWARD = {"right": -1.0, "left": 1.0}

# Every body part the ground truth reports, in a fixed order. "whole body" is the union.
PART_KEYS = (
    "whole body", "head", "torso",
    "right arm", "left arm", "right hand", "left hand",
    "right leg", "left leg", "right foot", "left foot",
)
# Parts that are drawn, each with its own colour and label-map id (render.py paints them).
DRAWN_PARTS = (
    "torso", "right leg", "left leg", "right foot", "left foot", "head",
    "right arm", "left arm", "right hand", "left hand",
)
# Saturated (or pure black and white), well separated colours; backgrounds and distractors
# stay muted (scene.py), so every pixel of one of these colours belongs to that part. The
# assignment also keeps parts that often touch from blending, under the 4:2:0 chroma
# subsampling of h264, into a third part's colour (e.g. no violet between a blue and a
# magenta part): chosen by a search over hue assignments scored on such blends.
PART_COLOURS: dict[str, tuple[int, int, int]] = {
    "head": (255, 128, 0),
    "torso": (250, 250, 250),
    "right arm": (0, 255, 21),
    "left arm": (255, 0, 255),
    "right hand": (128, 0, 255),
    "left hand": (0, 255, 149),
    "right leg": (0, 128, 255),
    "left leg": (0, 234, 255),
    "right foot": (0, 0, 0),
    "left foot": (255, 0, 0),
}
OBJECT_COLOURS: dict[str, tuple[int, int, int]] = {"ball": (255, 234, 0)}

# The state a part is in when no program moves it (all lexicon states of that part).
REST_STATES = {
    "whole body": "stand", "head": "still", "torso": "still",
    "arm": "still", "hand": "rest", "leg": "still", "foot": "plant",
}


def split_key(key: str) -> tuple[str, str | None]:
    """``"right hand"`` -> ``("hand", "right")``; ``"torso"`` -> ``("torso", None)``."""
    side, _, part = key.partition(" ")
    return (part, side) if side in SIDES else (key, None)


def rest_state(key: str) -> str:
    """The resting state of a part key such as ``"left foot"``."""
    return REST_STATES[split_key(key)[0]]


@dataclass(frozen=True)
class Body:
    """Proportions of the figure, in body units."""

    torso: float = 0.30
    neck: float = 0.03
    head_r: float = 0.07
    shoulder_half: float = 0.085
    hip_half: float = 0.05
    upper_arm: float = 0.15
    forearm: float = 0.14
    thigh: float = 0.23
    shin: float = 0.22
    hand_r: float = 0.035
    foot_len: float = 0.07
    limb_w: float = 0.055
    torso_w: float = 0.10
    ball_r: float = 0.05

    @property
    def arm_reach(self) -> float:
        """Shoulder-to-wrist distance with a straight arm."""
        return self.upper_arm + self.forearm

    @property
    def leg_reach(self) -> float:
        """Hip-to-ankle distance with a straight leg."""
        return self.thigh + self.shin


BODY = Body()
# Resting targets as (outward, up) offsets from the shoulder / hip joint.
REST_HAND = (0.055, -0.282)
REST_FOOT = (0.03, -0.447)


@dataclass
class HeldObject:
    """An object and how it moves this frame.

    mode: ``held`` (in the hand), ``dribble`` (between the hand and the ground; ``bounce``
    is 1 at the hand and 0 on the ground) or ``flying`` (launched from the hand at time
    ``release`` in seconds, with velocity ``velocity`` in body units per second, which the
    renderer computes from the hand's motion at that moment).
    """

    name: str
    side: str
    mode: str = "held"
    bounce: float = 1.0
    release: float = 0.0
    state: str = "held"


@dataclass
class Pose:
    """Everything programs set for one frame; unset fields keep the resting pose."""

    hand: dict[str, tuple[float, float]] = field(default_factory=lambda: {s: REST_HAND for s in SIDES})
    # +1 bends the elbow / knee outward (away from the body), -1 the other way (downward
    # when the limb points up): two-link IK has two solutions and the program picks one.
    elbow: dict[str, float] = field(default_factory=lambda: {s: 1.0 for s in SIDES})
    foot: dict[str, tuple[float, float]] = field(default_factory=lambda: {s: REST_FOOT for s in SIDES})
    knee: dict[str, float] = field(default_factory=lambda: {s: 1.0 for s in SIDES})
    torso_lean: float = 0.0  # radians, positive toward the image's right
    torso_bend: float = 0.0  # forward bend seen from the front: fraction the torso shortens
    lift: float = 0.0  # height of the lowest foot above the ground (jumps, hops)
    objects: list[HeldObject] = field(default_factory=list)


@dataclass
class Skeleton:
    """Joint positions of one pose, in body units on the ground (y up)."""

    head: tuple[float, float]
    neck: tuple[float, float]
    pelvis: tuple[float, float]
    arms: dict[str, tuple[tuple[float, float], ...]]  # shoulder, elbow, wrist
    legs: dict[str, tuple[tuple[float, float], ...]]  # hip, knee, ankle
    feet: dict[str, tuple[tuple[float, float], tuple[float, float]]]  # heel, toe

    def shifted(self, dx: float, dy: float) -> Skeleton:
        """The same skeleton moved by (dx, dy)."""
        def mv(p: tuple[float, float]) -> tuple[float, float]:
            return (p[0] + dx, p[1] + dy)
        return Skeleton(
            head=mv(self.head), neck=mv(self.neck), pelvis=mv(self.pelvis),
            arms={s: tuple(mv(p) for p in pts) for s, pts in self.arms.items()},
            legs={s: tuple(mv(p) for p in pts) for s, pts in self.legs.items()},
            feet={s: tuple(mv(p) for p in pts) for s, pts in self.feet.items()},
        )

    def points(self) -> list[tuple[float, float]]:
        """Every joint, for extents."""
        pts = [self.head, self.neck, self.pelvis]
        for group in (self.arms, self.legs, self.feet):
            for chain in group.values():
                pts.extend(chain)
        return pts


def two_link(root: tuple[float, float], target: tuple[float, float], l1: float, l2: float,
             bend: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Middle joint and end point of a two-link chain reaching for ``target``.

    ``bend`` (+1 / -1) picks which of the two mirror solutions; a target out of reach is
    approached along the same direction with a straight chain.
    """
    dx, dy = target[0] - root[0], target[1] - root[1]
    dist = math.hypot(dx, dy)
    reach = min(max(dist, abs(l1 - l2) + 1e-6), l1 + l2 - 1e-6)
    base = math.atan2(dy, dx)
    cos_a = (l1 * l1 + reach * reach - l2 * l2) / (2 * l1 * reach)
    angle = base + bend * math.acos(max(-1.0, min(1.0, cos_a)))
    mid = (root[0] + l1 * math.cos(angle), root[1] + l1 * math.sin(angle))
    end = (root[0] + reach * math.cos(base), root[1] + reach * math.sin(base))
    return mid, end


def skeleton(pose: Pose, body: Body = BODY) -> Skeleton:
    """Joint positions of ``pose``, standing on its lowest foot (lifted by ``pose.lift``)."""
    up = (math.sin(pose.torso_lean), math.cos(pose.torso_lean))
    across = (up[1], -up[0])  # unit vector toward the image's right
    torso_len = body.torso * (1.0 - pose.torso_bend)
    neck = (up[0] * torso_len, up[1] * torso_len)
    head_dist = (body.neck + body.head_r) * (1.0 - 0.5 * pose.torso_bend)
    head = (neck[0] + up[0] * head_dist, neck[1] + up[1] * head_dist)
    arms, legs, feet = {}, {}, {}
    for side in SIDES:
        out = OUTWARD[side]
        # The shoulder line sits a little below the neck.
        shoulder = (neck[0] - 0.02 * up[0] + out * body.shoulder_half * across[0],
                    neck[1] - 0.02 * up[1] + out * body.shoulder_half * across[1])
        hx, hy = pose.hand[side]
        # Mirror the outward-positive bend on the right side so +1 means "outward" on both.
        elbow, wrist = two_link(shoulder, (shoulder[0] + out * hx, shoulder[1] + hy),
                                body.upper_arm, body.forearm, pose.elbow[side] * out)
        arms[side] = (shoulder, elbow, wrist)
        hip = (out * body.hip_half, 0.0)
        fx, fy = pose.foot[side]
        knee, ankle = two_link(hip, (hip[0] + out * fx, hip[1] + fy), body.thigh, body.shin,
                               pose.knee[side] * out)
        legs[side] = (hip, knee, ankle)
        feet[side] = ((ankle[0] - out * 0.01, ankle[1]), (ankle[0] + out * body.foot_len, ankle[1]))
    lowest = min(min(p[1] for p in feet[s]) for s in SIDES)
    # Feet are drawn limb_w thick around their centre line: stand the sole on y = 0.
    dy = -lowest + body.limb_w / 2 + pose.lift
    sk = Skeleton(head=head, neck=neck, pelvis=(0.0, 0.0), arms=arms, legs=legs, feet=feet)
    return sk.shifted(0.0, dy)
