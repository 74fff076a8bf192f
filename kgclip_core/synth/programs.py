"""Part-state programs: how one movement drives the figure's pose over a clip.

A program (``wave``, ``kick``, ``squat``...) is a function of the clip's normalised time
``u`` in [0, 1) that writes a few pose channels (a hand target, the feet, the torso bend...)
and reports the state of every body part it moves, e.g. ``{"right arm": "raise",
"right hand": "wave"}``. Each program also declares, as data, the movements it can report
(body part, side, state, object) and the motion words it stands for; actions (actions.py) are
compositions of programs, and their knowledge (knowledge.py) is derived from these
declarations, so the label set, the knowledge base and the ground truth cannot drift apart.

Random per-clip variation (onset, speed, phase, amplitude) arrives as a :class:`Timing`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kgclip_core.synth.figure import REST_FOOT, REST_HAND, SIDES, HeldObject, Pose


@dataclass(frozen=True)
class Timing:
    """Per-clip variation of one program.

    onset: when it starts (fraction of the clip); ramp: how long it takes to reach its
    posture; cycles: repetitions over the clip; phase: where a cycle starts (radians);
    amp: amplitude factor; choice: a free draw in [0, 1) (e.g. which way to lean).
    """

    onset: float
    ramp: float
    cycles: float
    phase: float
    amp: float
    choice: float


# One declared movement: (part, which side, state, object). which is "side" (each side the
# program runs on), "other" (the opposite side), a fixed side, or None (a part without sides).
MovementSpec = tuple[str, str | None, str, str | None]
# A concrete movement: (part, side or None, state, object or None).
Movement = tuple[str, str | None, str, str | None]
ProgramFn = Callable[[Pose, float, Timing, tuple[str, ...]], dict[str, str]]


@dataclass(frozen=True)
class Program:
    """A part-state program and what it declares about itself."""

    name: str
    fn: ProgramFn
    lateral: bool  # applied to one side or both (arms, legs) or to the body as a whole
    movements: tuple[MovementSpec, ...]
    motions: tuple[str, ...]
    phrase: str  # what the figure does; describe() fills in {the} (side) and {s} (plural)
    channels: tuple[str, ...]  # pose channels written; "{side}"/"{other}" expand per side
    cycles: tuple[float, float] = (1.5, 3.0)
    objects: tuple[str, ...] = ()

    def expand_movements(self, sides: tuple[str, ...]) -> list[Movement]:
        """Concrete (part, side, state, object) tuples for the given sides."""
        out = []
        for part, which, state, obj in self.movements:
            if which is None or which in SIDES:
                out.append((part, which, state, obj))
                continue
            for side in sides:
                out.append((part, side if which == "side" else other_side(side), state, obj))
        return out

    def expand_channels(self, sides: tuple[str, ...]) -> set[str]:
        """Concrete pose channels written for the given sides."""
        out = set()
        for ch in self.channels:
            if "{" in ch:
                out.update(ch.format(side=s, other=other_side(s)) for s in sides)
            else:
                out.add(ch)
        return out

    def describe(self, sides: tuple[str, ...]) -> str:
        """The phrase with its sides filled in (``the right arm`` / ``both arms``)."""
        if len(sides) == 2:
            return self.phrase.format(the="both", s="s")
        return self.phrase.format(the=f"the {sides[0]}" if sides else "the", s="")


def other_side(side: str) -> str:
    """``right`` <-> ``left``."""
    return SIDES[1 - SIDES.index(side)]


def smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, a smooth S in between."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def lerp(a: tuple[float, float], b: tuple[float, float], w: float) -> tuple[float, float]:
    """Linear blend of two points."""
    return (a[0] + (b[0] - a[0]) * w, a[1] + (b[1] - a[1]) * w)


def _clock(u: float, tm: Timing) -> tuple[float, float, float]:
    """(time since onset, posture weight 0..1, cycle angle) of a program at time u."""
    v = u - tm.onset
    return v, smoothstep(v / tm.ramp), 2.0 * math.pi * tm.cycles * max(v, 0.0) + tm.phase


def _active(u: float, tm: Timing) -> bool:
    return u >= tm.onset


def _raise(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    for side in sides:
        pose.hand[side] = lerp(REST_HAND, (0.06 + 0.02 * math.sin(phi), 0.275), w)
        pose.elbow[side] = -1.0
    return {f"{s} arm": "raise" for s in sides} if _active(u, tm) else {}


def _wave(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    v, w, phi = _clock(u, tm)
    states: dict[str, str] = {}
    for side in sides:
        target = (0.15 + 0.075 * tm.amp * math.sin(phi), 0.19)
        pose.hand[side] = lerp(REST_HAND, target, w)
        pose.elbow[side] = -1.0
        if _active(u, tm):
            states[f"{side} arm"] = "raise"
        if v >= tm.ramp:
            states[f"{side} hand"] = "wave"
    return states


def _swing(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    for i, side in enumerate(sides):
        # Two arms swing in opposition, as when marching.
        theta = 0.55 + 0.8 * tm.amp * math.sin(phi + math.pi * i)
        pose.hand[side] = lerp(REST_HAND, (0.27 * math.sin(theta), -0.27 * math.cos(theta)), w)
    return {f"{s} arm": "swing" for s in sides} if _active(u, tm) else {}


def _punch(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    reach = ((1.0 - math.cos(phi)) / 2.0) ** 2
    for side in sides:
        pose.hand[side] = lerp(REST_HAND, lerp((-0.05, -0.1), (0.27, 0.0), reach), w)
    if not _active(u, tm):
        return {}
    return {k: "punch" for s in sides for k in (f"{s} arm", f"{s} hand")}


def _clap(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    gap = (1.0 + math.sin(phi)) / 2.0
    for side in sides:
        pose.hand[side] = lerp(REST_HAND, (-0.075 + 0.15 * tm.amp * gap, -0.1), w)
    if not _active(u, tm):
        return {}
    return {**{f"{s} arm": "bend" for s in sides}, **{f"{s} hand": "clap" for s in sides}}


def _hold(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    for side in sides:
        pose.hand[side] = lerp(REST_HAND, (-0.04 + 0.015 * math.sin(phi), -0.17), w)
        pose.objects.append(HeldObject("ball", side))
    # The ball is in the hand from the first frame, so the hand holds it from the start.
    return {k: "hold" for s in sides for k in (f"{s} arm", f"{s} hand")}


# Throw timeline after the onset, as fractions of the clip: hold, wind up, swing.
_THROW_WINDUP, _THROW_SWING, _THROW_RELEASE = 0.2, 0.1, 0.35


def _throw(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    v, w, _ = _clock(u, tm)
    hold_end = tm.ramp + 0.1 * tm.choice
    swing_start = hold_end + _THROW_WINDUP
    hold_pos, windup_pos = (0.08, -0.2), (-0.02, 0.275)
    states: dict[str, str] = {}
    for side in sides:
        if v < hold_end:
            pose.hand[side] = lerp(REST_HAND, hold_pos, w)
            state = "hold"
        elif v < swing_start:
            pose.hand[side] = lerp(hold_pos, windup_pos, smoothstep((v - hold_end) / _THROW_WINDUP))
            pose.elbow[side] = -1.0
            state = "throw"
        else:
            # A straight arm sweeping over the top and out: the fast part of the throw.
            s = smoothstep((v - swing_start) / _THROW_SWING)
            angle = math.radians(94.0 + (-10.0 - 94.0) * s)
            pose.hand[side] = (0.28 * math.cos(angle), 0.28 * math.sin(angle))
            pose.elbow[side] = -1.0
            state = "throw"
        release = tm.onset + swing_start + _THROW_RELEASE * _THROW_SWING
        if u < release:
            pose.objects.append(HeldObject("ball", side))
        else:
            pose.objects.append(HeldObject("ball", side, mode="flying", release=release, state="flying"))
        states[f"{side} arm"] = state
        states[f"{side} hand"] = state
    return states


def _dribble(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    v, w, _ = _clock(u, tm)
    bounce = abs(math.cos(math.pi * tm.cycles * max(v, 0.0)))
    for side in sides:
        pose.hand[side] = lerp(REST_HAND, (0.13, -0.2 + 0.04 * bounce), w)
        pose.objects.append(HeldObject("ball", side, mode="dribble", bounce=1.0 - w * (1.0 - bounce),
                                       state="bouncing" if v > 0 else "held"))
    return {**{f"{s} arm": "push" for s in sides}, **{f"{s} hand": "dribble" for s in sides}}


def _kick(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    v, _, _ = _clock(u, tm)
    # Starts from the rest pose at the onset, so no ramp is needed.
    up = (1.0 - math.cos(2.0 * math.pi * tm.cycles * max(v, 0.0))) / 2.0
    for side in sides:
        pose.foot[side] = lerp(REST_FOOT, (0.36 * tm.amp, -0.16), up)
    if not _active(u, tm):
        return {}
    return {k: "kick" for s in sides for k in (f"{s} leg", f"{s} foot")}


def _march(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    for i, side in enumerate(sides):
        knee_up = max(0.0, math.sin(phi + math.pi * i))
        pose.foot[side] = lerp(REST_FOOT, (0.03, REST_FOOT[1] + 0.18 * tm.amp * knee_up), w)
    if not _active(u, tm):
        return {}
    return {k: "step" for s in sides for k in (f"{s} leg", f"{s} foot")}


def _jump(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    air = max(0.0, math.sin(phi))
    crouch = max(0.0, -math.sin(phi))
    pose.lift = 0.16 * tm.amp * air * w
    for side in SIDES:
        pose.foot[side] = lerp(REST_FOOT, (0.035, REST_FOOT[1] + 0.06 * crouch + 0.05 * air), w)
    if not _active(u, tm):
        return {}
    return {"whole body": "jump", **{f"{s} leg": "jump" for s in SIDES}}


def _squat(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    depth = 0.17 * tm.amp * w * (0.9 + 0.1 * math.cos(phi))
    for side in SIDES:
        pose.foot[side] = lerp(REST_FOOT, (0.1, REST_FOOT[1] + depth), w)
    if not _active(u, tm):
        return {}
    return {"whole body": "squat", **{f"{s} leg": "squat" for s in SIDES}}


def _bend(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    pose.torso_bend = (0.5 + 0.05 * math.sin(phi)) * tm.amp * w
    return {"torso": "bend"} if _active(u, tm) else {}


def _lean(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    direction = 1.0 if tm.choice < 0.5 else -1.0
    pose.torso_lean = direction * (0.33 + 0.04 * math.sin(phi)) * tm.amp * w
    return {"torso": "lean"} if _active(u, tm) else {}


def _hop(pose: Pose, u: float, tm: Timing, sides: tuple[str, ...]) -> dict[str, str]:
    _, w, phi = _clock(u, tm)
    air = max(0.0, math.sin(phi))
    states: dict[str, str] = {}
    for side in sides:
        other = other_side(side)
        pose.foot[other] = lerp(REST_FOOT, (0.08, -0.26), w)
        pose.foot[side] = lerp(REST_FOOT, (0.0, REST_FOOT[1] + 0.03 * air), w)
        if _active(u, tm):
            states.update({f"{side} leg": "hop", f"{side} foot": "hop", f"{other} leg": "lift"})
    pose.lift = 0.08 * tm.amp * air * w
    if _active(u, tm):
        states["whole body"] = "bounce"
    return states


PROGRAMS: dict[str, Program] = {p.name: p for p in (
    Program("raise", _raise, True, (("arm", "side", "raise", None),), ("lift",),
            "raises {the} arm{s} overhead", ("hand:{side}",)),
    Program("wave", _wave, True, (("arm", "side", "raise", None), ("hand", "side", "wave", None)), ("wave",),
            "waves {the} hand{s} above the shoulder{s}", ("hand:{side}",), cycles=(3.0, 5.0)),
    Program("swing", _swing, True, (("arm", "side", "swing", None),), ("swing",),
            "swings {the} arm{s} back and forth", ("hand:{side}",)),
    Program("punch", _punch, True, (("arm", "side", "punch", None), ("hand", "side", "punch", None)), ("punch",),
            "punches out to the side with {the} arm{s}", ("hand:{side}",), cycles=(2.0, 3.5)),
    Program("clap", _clap, True, (("arm", "side", "bend", None), ("hand", "side", "clap", None)), ("clap",),
            "claps the hands in front of the chest", ("hand:{side}",), cycles=(2.5, 4.0)),
    Program("hold", _hold, True, (("arm", "side", "hold", None), ("hand", "side", "hold", "ball")), ("hold",),
            "holds a ball in {the} hand{s} in front of the body", ("hand:{side}", "ball"), objects=("ball",)),
    Program("throw", _throw, True,
            (("arm", "side", "hold", None), ("hand", "side", "hold", "ball"),
             ("arm", "side", "throw", None), ("hand", "side", "throw", "ball")), ("throw", "hold"),
            "holds a ball in {the} hand{s}, lifts it overhead and throws it overhand", ("hand:{side}", "ball"),
            objects=("ball",)),
    Program("dribble", _dribble, True, (("arm", "side", "push", None), ("hand", "side", "dribble", "ball")),
            ("dribble", "bounce"), "bounces a ball on the ground with {the} hand{s}", ("hand:{side}", "ball"),
            cycles=(2.0, 3.5), objects=("ball",)),
    Program("kick", _kick, True, (("leg", "side", "kick", None), ("foot", "side", "kick", None)), ("kick",),
            "kicks {the} leg{s} out to the side", ("foot:{side}",), cycles=(1.2, 2.5)),
    Program("march", _march, True, (("leg", "side", "step", None), ("foot", "side", "step", None)), ("march",),
            "marches in place lifting the feet in turn", ("foot:{side}",), cycles=(2.0, 3.5)),
    Program("jump", _jump, False, (("whole body", None, "jump", None), ("leg", "right", "jump", None),
                                   ("leg", "left", "jump", None)), ("jump",),
            "jumps up and down in place", ("lift", "foot:right", "foot:left")),
    Program("squat", _squat, False, (("whole body", None, "squat", None), ("leg", "right", "squat", None),
                                     ("leg", "left", "squat", None)), ("squat",),
            "squats down with bent knees", ("foot:right", "foot:left"), cycles=(1.0, 2.0)),
    Program("bend", _bend, False, (("torso", None, "bend", None),), ("bend",),
            "bends the torso forward", ("torso_bend",)),
    Program("lean", _lean, False, (("torso", None, "lean", None),), ("lean",),
            "leans the torso to one side", ("torso_lean",)),
    Program("hop", _hop, True, (("whole body", None, "bounce", None), ("leg", "side", "hop", None),
                                ("foot", "side", "hop", None), ("leg", "other", "lift", None)), ("hop", "balance"),
            "hops on {the} leg with the other leg lifted", ("lift", "foot:{side}", "foot:{other}"),
            cycles=(2.5, 4.0)),
)}


def sample_timing(program: Program, rng: np.random.Generator) -> Timing:
    """Random per-clip variation of ``program`` (onset, ramp, speed, phase, amplitude)."""
    return Timing(
        onset=float(rng.uniform(0.0, 0.12)),
        ramp=float(rng.uniform(0.12, 0.22)),
        cycles=float(rng.uniform(*program.cycles)),
        phase=float(rng.uniform(0.0, 2.0 * math.pi)),
        amp=float(rng.uniform(0.85, 1.15)),
        choice=float(rng.uniform(0.0, 1.0)),
    )
