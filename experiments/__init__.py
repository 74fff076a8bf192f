"""Experiments that train and evaluate KG-CLIP end to end (not part of the installed library)."""
