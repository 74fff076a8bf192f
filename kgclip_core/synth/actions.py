"""The synthetic label sets: actions composed of part-state programs.

``synthetic`` (the training classes) share part states on purpose: "wave right hand",
"wave both hands" and "jump with arms up" differ by which parts do what, not by a whole new
movement. ``synthetic_novel`` recombines part states seen in training into actions never seen
in training, for zero-shot tests of composition.
"""

from __future__ import annotations

from dataclasses import dataclass

from kgclip_core.errors import LabelError
from kgclip_core.synth.figure import SIDES
from kgclip_core.synth.programs import PROGRAMS, Movement, Program


@dataclass(frozen=True)
class Step:
    """One program of an action, on a side (``right``, ``left``, ``both``) or the whole body."""

    program: str
    side: str | None = None

    @property
    def spec(self) -> Program:
        """The program this step runs."""
        return PROGRAMS[self.program]

    @property
    def sides(self) -> tuple[str, ...]:
        """The concrete sides: ``both`` is right and left; whole-body programs get none."""
        if self.side is None:
            return ()
        return SIDES if self.side == "both" else (self.side,)


@dataclass(frozen=True)
class Action:
    """A named action: programs run together on disjoint pose channels."""

    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for step in self.steps:
            if step.spec.lateral != (step.side is not None):
                raise ValueError(f"{self.name!r}: program {step.program!r} needs "
                                 f"{'a side' if step.spec.lateral else 'no side'}")
            channels = step.spec.expand_channels(step.sides)
            if seen & channels:
                raise ValueError(f"{self.name!r}: programs both drive {sorted(seen & channels)}")
            seen |= channels

    def movements(self) -> list[Movement]:
        """Every (part, side, state, object) the action's programs report, in order, once."""
        out: list[Movement] = []
        for step in self.steps:
            out += [m for m in step.spec.expand_movements(step.sides) if m not in out]
        return out

    def motions(self) -> list[str]:
        """The motion words of its programs, once each."""
        return list(dict.fromkeys(m for step in self.steps for m in step.spec.motions))

    def objects(self) -> list[str]:
        """The objects its programs use, once each."""
        return list(dict.fromkeys(o for step in self.steps for o in step.spec.objects))

    def description(self) -> str:
        """A plain-English description built from its programs' phrases."""
        phrases = [step.spec.describe(step.sides) for step in self.steps]
        text = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
        return f"A stick figure {text}."


def _action(name: str, *steps: tuple[str, str | None]) -> Action:
    return Action(name, tuple(Step(p, s) for p, s in steps))


SYNTHETIC: tuple[Action, ...] = (
    _action("raise right arm", ("raise", "right")),
    _action("raise left arm", ("raise", "left")),
    _action("raise both arms", ("raise", "both")),
    _action("wave right hand", ("wave", "right")),
    _action("wave left hand", ("wave", "left")),
    _action("wave both hands", ("wave", "both")),
    _action("swing right arm", ("swing", "right")),
    _action("swing left arm", ("swing", "left")),
    _action("punch with right arm", ("punch", "right")),
    _action("clap hands", ("clap", "both")),
    _action("kick right leg", ("kick", "right")),
    _action("kick left leg", ("kick", "left")),
    _action("march in place", ("march", "both")),
    _action("march and swing arms", ("march", "both"), ("swing", "both")),
    _action("jump in place", ("jump", None)),
    _action("jump with arms up", ("jump", None), ("raise", "both")),
    _action("squat", ("squat", None)),
    _action("squat and hold ball", ("squat", None), ("hold", "right")),
    _action("hold ball in right hand", ("hold", "right")),
    _action("throw ball overhand", ("throw", "right")),
    _action("bounce ball", ("dribble", "right")),
    _action("bend forward", ("bend", None)),
    _action("lean to the side", ("lean", None)),
    _action("hop on left leg", ("hop", "left")),
)

SYNTHETIC_NOVEL: tuple[Action, ...] = (
    _action("wave right hand while squatting", ("squat", None), ("wave", "right")),
    _action("jump and wave both hands", ("jump", None), ("wave", "both")),
    _action("kick right leg with arms raised", ("kick", "right"), ("raise", "both")),
    _action("march and hold ball", ("march", "both"), ("hold", "right")),
    _action("bend forward and clap hands", ("bend", None), ("clap", "both")),
    _action("hop on left leg and wave right hand", ("hop", "left"), ("wave", "right")),
    _action("lean to the side and raise left arm", ("lean", None), ("raise", "left")),
    _action("squat and bounce ball", ("squat", None), ("dribble", "right")),
)

LABEL_SETS: dict[str, tuple[Action, ...]] = {"synthetic": SYNTHETIC, "synthetic_novel": SYNTHETIC_NOVEL}
ACTIONS: dict[str, Action] = {a.name: a for actions in LABEL_SETS.values() for a in actions}


def get_action(name: str) -> Action:
    """The synthetic action called ``name``."""
    try:
        return ACTIONS[name]
    except KeyError:
        raise LabelError(f"Unknown synthetic action {name!r}; choose one of the label sets "
                         f"{sorted(LABEL_SETS)} (see kgclip_core/labels/synthetic*.txt).") from None


def label_set_actions(label_set: str) -> tuple[Action, ...]:
    """The actions of a synthetic label set, in label-index order."""
    try:
        return LABEL_SETS[label_set]
    except KeyError:
        raise LabelError(f"Unknown synthetic label set {label_set!r}; use one of {sorted(LABEL_SETS)}.") from None
