"""Training and evaluation of KG-CLIP: datasets, protocols, the torchrun trainer, checkpoints.

This package is for research use (``kgclip train`` / ``kgclip eval``); the inference path
(``Predictor``, the app) never imports it.
"""
