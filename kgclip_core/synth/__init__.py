"""Procedural stick-figure action clips with ground truth: the learnability testbed.

A stick figure (head, torso, arms with hands, legs with feet, each drawn in its own colour)
moves by part-state programs (raise, wave, swing, kick, squat, hold and throw a ball...)
composed into actions (``actions.py``), in cluttered scenes with camera shake, zoom, drift
and noise. Every clip comes with per-frame ground truth: the state and pixel box of every
body part and the boxes of objects. The label sets ``synthetic`` and ``synthetic_novel`` (new
combinations of part states seen in training) and their knowledge files are derived from
the same program definitions (``knowledge.py``).

    frames, truth = render_clip("wave right hand", seed=0)
    write_dataset("data/synth", per_class=8, seed=0)            # or: kgclip synth --out ...
"""

from kgclip_core.synth.actions import ACTIONS, LABEL_SETS, SYNTHETIC, SYNTHETIC_NOVEL, Action, get_action
from kgclip_core.synth.dataset import DatasetSummary, read_ground_truth, write_dataset, write_video
from kgclip_core.synth.render import SynthConfig, active_parts, render_clip

__all__ = [
    "ACTIONS", "LABEL_SETS", "SYNTHETIC", "SYNTHETIC_NOVEL", "Action", "DatasetSummary", "SynthConfig",
    "active_parts", "get_action", "read_ground_truth", "render_clip", "write_dataset", "write_video",
]
