"""Heatmap methods compared on the synthetic world's ground truth (``python -m experiments.heatmaps``)."""
