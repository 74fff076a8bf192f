"""The learnability testbed: KG-CLIP and its ablations trained from scratch on synthetic clips.

``python -m experiments.testbed`` renders the stick-figure data set once, caches its frames
as the model sees them, trains every (variant, protocol, seed) run, measures explanation
faithfulness with the pointing game, writes ``docs/TESTBED.md`` and exports the demo
checkpoint ``checkpoints/synthetic`` with example clips in ``assets/examples``.
"""
