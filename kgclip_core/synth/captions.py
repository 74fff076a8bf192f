"""A caption corpus of the stick-figure world: what its "CLIP" is pretrained on.

Real CLIP learned from captioned web images; the synthetic world's CLIP learns from clips of
random compositions of the body-part programs (one, two or three at once), each captioned
from its own ground-truth program in mixed styles:

- a sentence: "A stick figure squats down with bent knees and waves the right hand above the
  shoulder." (the programs' phrases, in random order);
- a part-state list: "right arm raise, whole body squat, right hand wave" (the movements, as
  the knowledge graph writes them, in random order);
- for a composition that is one of the 24 training actions: its name, bare or in a prompt
  template ("a video of a person wave right hand.").

The 8 ``synthetic_novel`` compositions are held out for zero-shot tests: no clip's movements
equal or contain the movements of a novel action (stricter than "not equal": a clip that
squats, waves the right hand *and* kicks would teach the pair too). Everything is drawn from
the seed, so the same (size, seed, config) gives the same corpus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from kgclip_core.backbone import resize_center_crop
from kgclip_core.errors import ConfigError
from kgclip_core.kg.knowledge import Movement as KGMovement
from kgclip_core.prompts import VIDEO_TEMPLATES
from kgclip_core.synth.actions import SYNTHETIC, SYNTHETIC_NOVEL, Action, Step
from kgclip_core.synth.programs import PROGRAMS
from kgclip_core.synth.regions import movement_cells
from kgclip_core.synth.render import SynthConfig, render_clip
from kgclip_core.video import sample_indices

log = logging.getLogger(__name__)

MAX_STEPS = 3
_STEP_COUNTS = (1, 2, 3)
_STEP_PROBS = (0.35, 0.45, 0.2)
# The sides a lateral program is drawn on: clapping and marching take both sides; one ball
# goes in one hand; hopping on both legs "with the other leg lifted" is no movement at all.
_SIDES = {"clap": ("both",), "march": ("both",), "hold": ("right", "left"), "throw": ("right", "left"),
          "dribble": ("right", "left"), "kick": ("right", "left"), "hop": ("right", "left")}
_ANY_SIDE = ("right", "left", "both")
MovementSet = frozenset


def movement_set(action: Action) -> MovementSet:
    """The action's movements as a set: compositions that move the same parts the same way
    are the same composition, however their programs are split ("wave both" = wave right +
    wave left)."""
    return frozenset(action.movements())


_NOVEL = tuple(movement_set(a) for a in SYNTHETIC_NOVEL)
_NAMED = {movement_set(a): a.name for a in SYNTHETIC}


def overlaps_novel(action: Action) -> bool:
    """True when the action's movements equal or contain those of a held-out novel action."""
    moves = movement_set(action)
    return any(novel <= moves for novel in _NOVEL)


def action_name(action: Action) -> str | None:
    """The training-class name of a composition, if it is one of the 24 training actions."""
    return _NAMED.get(movement_set(action))


def random_composition(rng: np.random.Generator) -> Action:
    """A random composition of 1-3 programs on disjoint pose channels, never a novel one."""
    programs = sorted(PROGRAMS)
    while True:
        n = int(rng.choice(_STEP_COUNTS, p=_STEP_PROBS))
        steps: list[Step] = []
        channels: set[str] = set()
        for _ in range(8 * n):  # a few draws are refused for sharing channels; give up after many
            if len(steps) == n:
                break
            spec = PROGRAMS[programs[int(rng.integers(len(programs)))]]
            sides = _SIDES.get(spec.name, _ANY_SIDE)
            step = Step(spec.name, sides[int(rng.integers(len(sides)))] if spec.lateral else None)
            wanted = spec.expand_channels(step.sides)
            if wanted & channels or any(s.program == spec.name for s in steps):
                continue
            steps.append(step)
            channels |= wanted
        action = Action("+".join(f"{s.program}:{s.side or 'body'}" for s in steps), tuple(steps))
        if not overlaps_novel(action):
            return action


def captions(action: Action, rng: np.random.Generator) -> list[str]:
    """Captions of one clip of ``action`` in mixed styles (sentence, part-state list, name)."""
    order = rng.permutation(len(action.steps))
    shuffled = Action(action.name, tuple(action.steps[i] for i in order))
    phrases = [KGMovement(part, state, side, obj).phrase for part, side, state, obj in action.movements()]
    out = [shuffled.description(), ", ".join(phrases[i] for i in rng.permutation(len(phrases)))]
    name = action_name(action)
    if name is not None:
        out += [name, VIDEO_TEMPLATES[int(rng.integers(len(VIDEO_TEMPLATES)))].format(name)]
    return out


@dataclass
class CaptionCorpus:
    """Rendered clips with their captions, in memory, ready for contrastive pretraining."""

    frames: torch.Tensor  # uint8 [N, F, 3, S, S]: the pixels the image tower sees, unnormalised
    captions: list[list[str]]  # several captions per clip
    keys: torch.Tensor  # [N] composition id: clips with the same id are positives of each other
    actions: list[Action]
    # Region-text pairs, built when a patch grid is given: a movement's phrase and the patches
    # its part's box touches in one frame (kgclip_core.synth.regions).
    phrases: list[str] = field(default_factory=list)
    regions: torch.Tensor | None = None  # long [R, 3]: clip, frame (of ``frames``), index into ``phrases``
    region_cells: torch.Tensor | None = None  # bool [R, h * w]: the patches of each pair

    def __len__(self) -> int:
        return len(self.captions)


def build_corpus(size: int, seed: int, image_size: int, num_frames: int = 8, synth: SynthConfig | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 grid: tuple[int, int] | None = None) -> CaptionCorpus:
    """Render ``size`` clips of random compositions, ``num_frames`` TSN-sampled frames each,
    resized to ``image_size`` as the backbone's preprocessing does; ``progress(done, total)``.
    With the image tower's patch ``grid``, also the region-text pairs of every frame."""
    if size < 1:
        raise ConfigError(f"The caption corpus needs at least 1 clip, got {size}.")
    synth = synth or SynthConfig()
    rng = np.random.default_rng([seed, 0x5EED])
    frames = torch.empty(size, num_frames, 3, image_size, image_size, dtype=torch.uint8)
    texts: list[list[str]] = []
    actions: list[Action] = []
    key_ids: dict[MovementSet, int] = {}
    keys = torch.empty(size, dtype=torch.long)
    phrases: dict[str, int] = {}
    regions: list[tuple[int, int, int]] = []
    cells: list[np.ndarray] = []
    for i in range(size):
        action = random_composition(rng)
        indices = sample_indices(synth.num_frames, num_frames, "train", rng=rng)[0]
        clip, truth = render_clip(action, seed=int(rng.integers(2**31)), cfg=synth, frames=indices)
        frames[i] = resize_center_crop(torch.from_numpy(clip), image_size)
        texts.append(captions(action, rng))
        actions.append(action)
        keys[i] = key_ids.setdefault(movement_set(action), len(key_ids))
        if grid is not None:  # the render is square: resizing scales the boxes, nothing is cropped
            scale = image_size / truth["size"][0]
            for f, frame_truth in enumerate(truth["frames"]):
                for phrase, touched in movement_cells(action, frame_truth, (image_size, image_size), scale, grid):
                    regions.append((i, f, phrases.setdefault(phrase, len(phrases))))
                    cells.append(touched.reshape(-1))
        if progress is not None and ((i + 1) % 500 == 0 or i + 1 == size):
            progress(i + 1, size)
    log.info("caption corpus: %d clips, %d distinct compositions, %d region-text pairs", size, len(key_ids),
             len(regions))
    corpus = CaptionCorpus(frames, texts, keys, actions)
    if grid is not None:
        corpus.phrases = list(phrases)
        corpus.regions = torch.tensor(regions, dtype=torch.long).reshape(-1, 3)
        corpus.region_cells = torch.from_numpy(np.stack(cells)) if cells else torch.zeros(0, grid[0] * grid[1],
                                                                                          dtype=torch.bool)
    return corpus
