"""Does a region-text signal in pretraining make the foundation's maps point at the named part?

The heatmap comparison (docs/EXPLAIN.md) found the foundation's maps peak on the torso: nothing
in its pretraining asks a patch to carry its part's meaning. This experiment tests that reading.
It continues the foundation's first stage (CLIP's loss alone, ``python -m experiments.foundation
--only pretrain``; the shipped foundation until this result made the region stage part of its
recipe) on a fresh corpus twice, for the same steps:

- **control**: CLIP's loss alone (as much more pretraining, no regions);
- **regions**: plus the region-text loss (``PretrainConfig.region_weight``, RegionCLIP's idea
  with the generator's boxes as region annotations).

Then it measures the first-stage foundation, the control and the regions model the same way:

- the pointing game at the patch grid of each cheap map method, for the movement units that name
  a body part, on the heatmap comparison's test clips (``experiments.heatmaps``);
- zero-shot top-1 on the foundation report's test clips (``experiments.foundation``).

The weights and results stay in the work folder; nothing shipped changes.
"""
